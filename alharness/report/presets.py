"""Method presets: restrict a report to a paper's list of methods, in the paper's order.

``--methods alfamix`` keeps only the strategies of ALFA-Mix's comparison matrix, so its
bottom row (column sum / (m − 1)) is computed over the same m methods as the paper's;
``--methods random,margin,badge`` gives an explicit list. Every variant of a listed
strategy (a ``strategy.km`` sweep, say) is kept. A listed method without runs and a
strategy left out are reported as findings, never silently.

Sources of the lists (registry names; see ``alharness/strategies``):

``alfamix``  ALFA-Mix (Parvaneh et al., CVPR 2022), Sec. 4 and its overall comparison
    matrix: the baselines the official README lists as "reported in the paper" (Random,
    Entropy, BALD, CoreSet, Adversarial DeepFool, GCNAL, CDAL, BADGE) plus ALFA-Mix, in
    the order of the official ``agg_results.py`` (which has DFAL in its colour table but
    not in its matrix list; we follow the README and keep it). GCNAL = ``coregcn``.
    Learning Loss is not among the paper's baselines and is left out.
``badge``  BADGE (Ash et al., ICLR 2020), Sec. 5 / its ``plot_all_matrices``: BADGE, ALBL,
    CoreSet, Confidence, Margin, Entropy, Random. ALBL (active learning by learning) is
    not in this harness's registry and is absent.
``cluster_margin``  Cluster-Margin (Citovsky et al., NeurIPS 2021), Sec. 5.2
    (CIFAR-10/100, SVHN): Random, Margin, CoreSet, BADGE, Cluster-Margin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from alharness.errors import ConfigError
from alharness.report.errors import Finding


@dataclass(frozen=True)
class MethodPreset:
    name: str
    strategies: tuple[str, ...]  # registry names, in the order rows/columns are drawn
    source: str


PRESETS = {
    "alfamix": MethodPreset(
        "alfamix",
        ("random", "entropy", "bald", "coreset", "dfal", "coregcn", "cdal", "badge", "alfa_mix"),
        "ALFA-Mix (CVPR 2022) comparison matrix"),
    "badge": MethodPreset(
        "badge", ("random", "entropy", "margin", "least_confidence", "coreset", "badge"),
        "BADGE (ICLR 2020) comparison matrix, without ALBL"),
    "cluster_margin": MethodPreset(
        "cluster_margin", ("random", "margin", "coreset", "badge", "cluster_margin"),
        "Cluster-Margin (NeurIPS 2021) CIFAR/SVHN comparison"),
}


def resolve_methods(spec: str | Sequence[str] | None) -> MethodPreset | None:
    """A preset name (``alfamix``, ``badge``, ``cluster_margin``), a comma-separated list
    or sequence of strategy names, or None / ``all`` for every strategy found."""
    if spec is None or spec == "all":
        return None
    if isinstance(spec, str):
        if spec in PRESETS:
            return PRESETS[spec]
        spec = spec.split(",")
    names = tuple(s.strip() for s in spec if s.strip())
    if not names:
        raise ConfigError("--methods is empty; give a preset "
                          f"({', '.join(sorted(PRESETS))}) or strategy names, e.g. random,margin")
    if len(set(names)) != len(names):
        raise ConfigError(f"--methods lists a strategy twice: {','.join(names)}")
    return MethodPreset("custom", names, "--methods " + ",".join(names))


def apply_methods(rows: pd.DataFrame, preset: MethodPreset | None
                  ) -> tuple[pd.DataFrame, list[Finding]]:
    """Keep the rows of the preset's strategies; report listed methods with no runs and
    strategies that were found but left out."""
    if preset is None:
        return rows, []
    found = set(rows["strategy"].astype(str))
    wanted = set(preset.strategies)
    findings = []
    absent = [s for s in preset.strategies if s not in found]
    if absent:
        findings.append(Finding("methods", f"{preset.source}: no runs of {', '.join(absent)}; "
                                "the matrix and its bottom row cover fewer methods than the "
                                "paper's"))
    dropped = sorted(found - wanted)
    if dropped:
        findings.append(Finding("methods", f"left out (not in {preset.source}): "
                                f"{', '.join(dropped)}"))
    kept = rows[rows["strategy"].astype(str).isin(wanted)]
    if kept.empty:
        raise ConfigError(f"none of the runs is of a strategy in {preset.source} "
                          f"({', '.join(preset.strategies)}); found {', '.join(sorted(found))}")
    return kept.reset_index(drop=True), findings
