"""Checks that the runs in one setting can be compared, reported rather than averaged over.

- ``mixed-setting``: one dataset × backbone × budget cell holds runs of different configs
  (different ``setting`` hash: trainer, data or budget options differ). They are reported
  as separate settings, labelled with their hash.
- ``missing-seeds``: a strategy variant has fewer seeds than another in its setting; its
  curve and its win-matrix comparisons rest on fewer runs.
- ``one-seed``: a strategy variant has a single seed in a setting: its curve has no spread
  and no significance test can be computed for it (its win-matrix cells there are n/a).
- ``mixed-labelled``: runs in one setting have different labelled counts at the same cycle
  (a strategy returned fewer points than the budget). Curves and tables group by labelled
  count, so such points are never averaged together.
- ``missing-variant``: a variant has runs in some settings but none in another; the win
  matrix sums over settings, so it can neither win nor lose there (as in ALFA-Mix's
  ``agg_results.py``, where a method without results scores 0).
"""

from __future__ import annotations

import pandas as pd

from alharness.report.errors import Finding


def _mixed_settings(rows: pd.DataFrame) -> list[Finding]:
    findings = []
    for cell, group in rows.groupby("cell", sort=True):
        hashes = group.groupby("setting")["variant"].unique()
        if len(hashes) > 1:
            parts = "; ".join(f"{h}: {', '.join(sorted(v))}" for h, v in hashes.items())
            findings.append(Finding("mixed-setting", f"{cell} holds runs of {len(hashes)} "
                                    f"different configs ({parts}); reported as separate "
                                    "settings — diff their config.yaml files"))
    return findings


def _missing_seeds(rows: pd.DataFrame) -> list[Finding]:
    findings = []
    for setting, group in rows.groupby("setting_label", sort=True):
        seeds = group.groupby("variant")["seed"].unique().map(lambda s: {int(x) for x in s})
        every = set().union(*seeds)
        for variant, own in seeds.items():
            if own != every:
                findings.append(Finding("missing-seeds", f"{setting}: {variant} has "
                                        f"{len(own)} seed(s) {sorted(own)}, missing "
                                        f"{sorted(every - own)} that other variants have"))
    return findings


def _one_seed(rows: pd.DataFrame) -> list[Finding]:
    seeds = rows.groupby(["setting_label", "variant"])["seed"].unique()
    return [Finding("one-seed", f"{setting}: {variant} has one seed ({int(own[0])}); no "
                    "spread, and no significance test against it (win-matrix cells n/a)")
            for (setting, variant), own in seeds.items() if len(own) == 1]


def _mixed_labelled(rows: pd.DataFrame) -> list[Finding]:
    counts = rows.groupby(["setting_label", "cycle"])["n_labelled"].unique()
    mixed = counts[counts.map(len) > 1]
    return [Finding("mixed-labelled", f"{setting}: cycle {cycle} has labelled counts "
                    f"{sorted(int(v) for v in values)} across runs; points are grouped by "
                    "labelled count, not averaged across counts")
            for (setting, cycle), values in mixed.items()]


def _missing_variants(rows: pd.DataFrame) -> list[Finding]:
    present = rows.groupby("setting_label")["variant"].unique().map(set)
    every = set().union(*present)
    return [Finding("missing-variant", f"{setting}: no runs of {', '.join(sorted(every - own))}"
                    " (present in other settings); the summed win matrix counts 0 for them "
                    "here") for setting, own in present.items() if own != every]


def validate(rows: pd.DataFrame) -> list[Finding]:
    """Everything that makes a comparison in ``rows`` (annotated by ``load``) shaky."""
    return (_mixed_settings(rows) + _missing_seeds(rows) + _one_seed(rows)
            + _missing_variants(rows) + _mixed_labelled(rows))
