"""One order, colour and marker per strategy, fixed by the strategy's name, so that every
figure of every report (a paper's several figures included) draws a strategy the same
way, whatever else is in the figure; variants of one strategy (a sweep) share its hue in
shades and line styles."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import to_hex, to_rgb

#: Baselines first, then the papers' methods; unknown strategies follow alphabetically.
STRATEGY_ORDER = ("random", "least_confidence", "entropy", "margin", "bald", "coreset", "dfal",
                  "coregcn", "cdal", "lloss", "badge", "alfa_mix", "cluster_margin")
#: Random is the reference everything is compared with: always the same neutral grey.
BASELINE_COLOUR = "#555555"
MARKERS = ("o", "s", "^", "v", "D", "P", "X", "<", ">", "*", "h", "p")
#: Colours for strategies other than random: tab10 without its grey, then Dark2.
PALETTE = tuple(to_hex(c) for c in colormaps["tab10"].colors + colormaps["Dark2"].colors
                if to_hex(c) != "#7f7f7f")
LINESTYLES = ("-", "--", ":", "-.")


@dataclass(frozen=True)
class Style:
    colour: str
    marker: str
    linestyle: str = "-"


def _slot(strategy: str) -> int:
    """A built-in strategy's place in `STRATEGY_ORDER`; other names a stable hash."""
    if strategy in STRATEGY_ORDER:
        return STRATEGY_ORDER.index(strategy)
    return len(STRATEGY_ORDER) + zlib.crc32(strategy.encode())


def strategy_style(strategy: str) -> Style:
    """The colour and marker of ``strategy``: the same in every figure. Built-in names get
    distinct ones; other names are hashed into the palette (two may then share)."""
    slot = _slot(strategy)
    colour = BASELINE_COLOUR if strategy == "random" else PALETTE[(slot - 1) % len(PALETTE)]
    return Style(colour, MARKERS[slot % len(MARKERS)])


def _shade(colour: str, k: int) -> str:
    """The ``k``-th variant of a strategy: alternately lighter and darker than its colour."""
    if k == 0:
        return colour
    amount = min(0.25 * ((k + 1) // 2), 0.6)
    towards = np.ones(3) if k % 2 else np.zeros(3)
    rgb = np.asarray(to_rgb(colour))
    return to_hex(rgb + (towards - rgb) * amount)


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
    """Style per variant, in :func:`variant_order`: its strategy's colour and marker
    (`strategy_style`; ``random`` is grey); a strategy's second, third, ... variant gets a
    lighter or darker shade and another line style."""
    strategy_of = dict(rows[["variant", "strategy"]].drop_duplicates().itertuples(index=False))
    styles, seen = {}, {}
    for variant in variant_order(rows, order):
        strategy = strategy_of[variant]
        k = seen[strategy] = seen.get(strategy, -1) + 1
        base = strategy_style(strategy)
        styles[variant] = Style(_shade(base.colour, k), base.marker, LINESTYLES[k % len(LINESTYLES)])
    return styles
