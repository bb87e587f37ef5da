"""One order, colour and marker per strategy variant, shared by every figure of a report,
so that a reader can match curves and matrix rows across pages (and in greyscale)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import to_hex

#: Baselines first, then the papers' methods; unknown strategies follow alphabetically.
STRATEGY_ORDER = ("random", "least_confidence", "entropy", "margin", "bald", "coreset", "dfal",
                  "coregcn", "cdal", "lloss", "badge", "alfa_mix", "cluster_margin")
#: Random is the reference everything is compared with: always the same neutral grey.
BASELINE_COLOUR = "#555555"
MARKERS = ("o", "s", "^", "v", "D", "P", "X", "<", ">", "*", "h", "p")


@dataclass(frozen=True)
class Style:
    colour: str
    marker: str


def variant_order(rows: pd.DataFrame, order: Sequence[str] = STRATEGY_ORDER) -> list[str]:
    """Variants sorted by strategy (``order``, e.g. a paper preset's; others after it by
    name), then by label."""
    pairs = rows[["strategy", "variant"]].drop_duplicates()
    order = list(order)

    def key(pair: tuple[str, str]) -> tuple[int, str, str]:
        strategy, variant = pair
        rank = order.index(strategy) if strategy in order else len(order)
        return rank, strategy, variant

    return [v for _, v in sorted(pairs.itertuples(index=False, name=None), key=key)]


def variant_styles(rows: pd.DataFrame, order: Sequence[str] = STRATEGY_ORDER) -> dict[str, Style]:
    """Colour and marker per variant, in :func:`variant_order`; the baseline ``random`` is
    grey."""
    palette = colormaps["tab10"].colors + colormaps["Dark2"].colors
    palette = [c for c in palette if to_hex(c) != "#7f7f7f"]  # tab10's grey
    styles, colour_index = {}, 0
    for i, variant in enumerate(variant_order(rows, order)):
        if variant == "random":
            colour = BASELINE_COLOUR
        else:
            colour = to_hex(palette[colour_index % len(palette)])
            colour_index += 1
        styles[variant] = Style(colour, MARKERS[i % len(MARKERS)])
    return styles
