"""Read every run under some folders into one tidy table (one row per run × cycle).

A run is a folder ``results/<experiment>/<run-id>/`` holding ``rows.csv``,
``status.json`` and ``config.yaml`` (see ``alharness/loop/run_folder.py``). Folders whose
name starts with a dot (Hydra's ``.hydra``, temporary files) are skipped.

What is kept is decided here, and every decision is reported as a :class:`Finding`:
unfinished runs are left out unless asked for, a damaged run (unreadable files) and a
finished run whose rows lack cycles are left out, a run found twice (a copied folder) is
used once. Nothing is averaged silently.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from alharness.report.errors import Finding, ReportError
from alharness.report.presets import MethodPreset, apply_methods, resolve_methods
from alharness.report.style import STRATEGY_ORDER
from alharness.schema import SETTING_COLUMNS, variant_labels

#: Columns the report cannot work without.
REQUIRED_COLUMNS = ("run_id", "setting", "dataset", "backbone", "strategy", "strategy_params",
                    "seed", "cycle", "n_labelled", "budget_initial", "budget_batch",
                    "budget_cycles", "metric_name", "metric")
#: Identifies one run's results regardless of the folder it was found in.
RUN_KEY = ("setting", "strategy", "strategy_params", "seed")


@dataclass
class Run:
    """One run folder as found on disk."""

    path: Path
    status: str
    config: dict[str, Any]
    rows: pd.DataFrame
    identity: dict[str, Any] = field(default_factory=dict)  # what its hashes were made of

    def describe(self) -> str:
        strategy = self.config.get("strategy", {}).get("name", "?")
        return f"{self.path} ({strategy}, seed {self.config.get('seed', '?')})"


@dataclass
class Results:
    """The rows the report uses, plus what was left out or is suspicious, and why."""

    rows: pd.DataFrame
    runs: list[Run]
    findings: list[Finding] = field(default_factory=list)
    #: Strategy order of figures and tables: the preset's, else ``STRATEGY_ORDER``.
    order: tuple[str, ...] = STRATEGY_ORDER


def find_run_folders(paths: Iterable[str | Path]) -> list[Path]:
    """Every folder below ``paths`` (or equal to one) that holds ``rows.csv`` or
    ``status.json``, sorted so that reports do not depend on file-system order."""
    folders: set[Path] = set()
    for root in map(Path, paths):
        if not root.exists():
            raise ReportError(f"{root} does not exist; pass a results folder such as results/")
        for name in ("rows.csv", "status.json"):
            for file in root.rglob(name):
                if not any(part.startswith(".") for part in file.relative_to(root).parts):
                    folders.add(file.parent)
    return sorted(folders)


def _read_json(file: Path) -> dict[str, Any]:
    try:
        return json.loads(file.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def read_run(folder: Path) -> Run:
    """Read one run folder; a damaged ``rows.csv`` or ``config.yaml`` is a ReportError."""
    status = str(_read_json(folder / "status.json").get("status", "unknown"))
    config: dict[str, Any] = {}
    if (folder / "config.yaml").is_file():
        try:
            config = yaml.safe_load((folder / "config.yaml").read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ReportError(f"{folder / 'config.yaml'} is unreadable "
                              f"({type(exc).__name__}); fix or remove the run {folder}") from exc
    file = folder / "rows.csv"
    if not file.is_file():
        if status == "finished":
            raise ReportError(f"{folder} says it is finished but has no rows.csv; "
                              "remove the folder and re-run that seed")
        return Run(folder, status, config, pd.DataFrame(columns=list(REQUIRED_COLUMNS)),
                   _read_json(folder / "identity.json"))
    try:
        rows = pd.read_csv(file)
    except (OSError, ValueError, UnicodeDecodeError) as exc:  # pandas' parser errors are ValueErrors
        raise ReportError(f"{file} is unreadable ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}); "
                          f"remove the run {folder} and re-run that seed") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in rows.columns]
    if missing:
        raise ReportError(f"{file} lacks column(s) {missing}; it was not written by run.py "
                          "(or by an incompatible version)")
    if not pd.api.types.is_numeric_dtype(rows["metric"]):
        raise ReportError(f"{file} has a non-numeric metric column; the file is damaged")
    return Run(folder, status, config, rows, _read_json(folder / "identity.json"))


def _budget_label(initial: object, batch: object, cycles: object) -> str:
    """``20+20x8``; a per-cycle batch list ``(10, 20)`` becomes ``10-20``."""
    batch = re.sub(r"[\s()\[\]]", "", str(batch)).replace(",", "-")
    return f"{initial}+{batch}x{cycles}"


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


#: A setting name longer than this falls back to the setting hash.
_MAX_SETTING_NAME = 60


def setting_names(hashes: list[str], identities: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Name each setting of one cell by the config keys that differ among them (``identity.json``
    less strategy and seed, what the setting hash is made of), e.g. ``trainer.lr=0.01``: a
    Hydra sweep over a trainer option reads as such. The hash where that is not possible."""
    flats = {h: _flatten({k: v for k, v in identities.get(h, {}).items()
                          if k not in ("strategy", "seed")}) for h in hashes}
    keys = sorted({k for flat in flats.values() for k in flat})
    varying = [k for k in keys
               if len({json.dumps(f.get(k), sort_keys=True, default=str) for f in flats.values()}) > 1]
    names = {h: ", ".join(f"{k}={flats[h].get(k)}" for k in varying) for h in hashes}
    if (not varying or not all(flats.values()) or len(set(names.values())) < len(hashes)
            or max(map(len, names.values())) > _MAX_SETTING_NAME):
        return {h: h for h in hashes}
    return names


def annotate(rows: pd.DataFrame, identities: dict[str, dict[str, Any]] | None = None
             ) -> pd.DataFrame:
    """Add ``variant`` (strategy plus the parameters that vary, see
    :func:`alharness.schema.variant_labels`), ``cell`` (dataset · backbone · budget) and
    ``setting_label`` (the cell, plus :func:`setting_names` where one cell holds runs of
    different configs, so that those are reported apart instead of averaged).
    ``identities``: setting hash → a run's ``identity.json``."""
    rows = rows.reset_index(drop=True)
    budget = [_budget_label(*b) for b in
              rows[["budget_initial", "budget_batch", "budget_cycles"]].itertuples(index=False)]
    cell = rows["dataset"].astype(str) + " · " + rows["backbone"].astype(str) + " · " + budget
    mixed = rows.groupby(list(SETTING_COLUMNS))["setting"].transform("nunique") > 1
    label = cell.copy()
    for _, index in rows[mixed].groupby(cell[mixed]).groups.items():
        hashes = rows.loc[index, "setting"].astype(str)
        names = setting_names(sorted(hashes.unique()), identities or {})
        label[index] = cell[index] + " [" + hashes.map(names) + "]"
    return rows.assign(variant=variant_labels(rows), cell=cell, setting_label=label)


def _read_runs(folders: list[Path]) -> tuple[list[Run], list[Finding]]:
    """Every readable run; a damaged one (`read_run` refuses it) becomes a finding."""
    runs, findings = [], []
    for folder in folders:
        try:
            runs.append(read_run(folder))
        except ReportError as exc:
            findings.append(Finding("damaged", f"{exc}; left out"))
    return runs, findings


def _missing_cycles(run: Run) -> list[int]:
    expected = set(range(int(run.rows["budget_cycles"].iloc[0]) + 1))
    return sorted(expected - set(run.rows["cycle"].astype(int)))


def _select_runs(runs: list[Run], include_unfinished: bool) -> tuple[list[Run], list[Finding]]:
    kept, findings = [], []
    for run in runs:
        if run.status == "finished" and not run.rows.empty and _missing_cycles(run):
            findings.append(Finding("truncated", f"{run.describe()} is finished but its "
                                    f"rows.csv lacks cycle(s) {_missing_cycles(run)}; left "
                                    "out (delete the folder and re-run that seed)"))
            continue
        if run.rows.empty:
            findings.append(Finding("no-rows", f"{run.describe()} is {run.status} with no "
                                    "finished cycle; left out"))
            continue
        if run.status != "finished":
            done = int(run.rows["cycle"].max()) + 1
            total = int(run.rows["budget_cycles"].iloc[0]) + 1
            action = ("included; its curve stops early" if include_unfinished
                      else "left out (use --include-unfinished to include it)")
            findings.append(Finding("unfinished", f"{run.describe()} is {run.status} after "
                                    f"{done} of {total} cycles; {action}"))
            if not include_unfinished:
                continue
        kept.append(run)
    return kept, findings


def _drop_duplicates(rows: pd.DataFrame) -> tuple[pd.DataFrame, list[Finding]]:
    """A run found in two folders (a copied results tree) is used once, from the first."""
    first = rows.groupby(list(RUN_KEY), sort=False)["run_dir"].transform("first")
    dupes = rows.loc[rows["run_dir"] != first, [*RUN_KEY, "run_dir"]].drop_duplicates()
    findings = [Finding("duplicate", f"{d.strategy} seed {d.seed} (setting {d.setting}) is in "
                        f"both {f} and {d.run_dir}; using {f}")
                for d, f in zip(dupes.itertuples(index=False), first[dupes.index], strict=True)]
    return rows[rows["run_dir"] == first], findings


def load(paths: Iterable[str | Path], include_unfinished: bool = False,
         methods: str | Iterable[str] | MethodPreset | None = None) -> Results:
    """Read, filter and annotate every run under ``paths``; ``methods`` (a preset name,
    strategy names, see :mod:`alharness.report.presets`) keeps only those strategies."""
    paths = list(paths)
    folders = find_run_folders(paths)
    if not folders:
        raise ReportError(f"no runs under {', '.join(map(str, paths))}: expected "
                          "<experiment>/<run-id>/rows.csv folders written by run.py")
    runs, damaged = _read_runs(folders)
    kept, findings = _select_runs(runs, include_unfinished)
    findings = damaged + findings
    if not kept:
        reasons = "; ".join(str(f) for f in findings[:1]) or "none has finished"
        raise ReportError(f"none of the {len(folders)} runs under {', '.join(map(str, paths))} "
                          f"can be reported ({reasons}); wait for unfinished runs or pass "
                          "--include-unfinished")
    rows = pd.concat([r.rows.assign(run_dir=str(r.path), run_status=r.status) for r in kept],
                     ignore_index=True)
    rows, duplicates = _drop_duplicates(rows)
    preset = methods if isinstance(methods, MethodPreset) else resolve_methods(methods)
    rows, chosen = apply_methods(rows, preset)
    identities = {str(r.rows["setting"].iloc[0]): r.identity for r in kept if r.identity}
    return Results(annotate(rows, identities), runs, findings + duplicates + chosen,
                   preset.strategies if preset else STRATEGY_ORDER)


def load_results(paths: Iterable[str | Path], include_unfinished: bool = False,
                 methods: str | Iterable[str] | None = None) -> pd.DataFrame:
    """All rows of the (finished) runs under ``paths``, with ``variant``, ``cell``,
    ``setting_label``, ``run_dir`` and ``run_status`` columns added."""
    return load(paths, include_unfinished, methods).rows

