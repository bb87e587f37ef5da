"""The report package on synthetic results written in the real on-disk layout.

Four strategies, by construction, from cycle ``active`` on: ``better`` = random + 0.05,
``equal`` = random with zero-mean noise, ``worse`` = random − 0.05 (small noise on each).
Cycle 0 is the same for all, as in real runs (shared initial set and weights). Setting A
(20 + 20 × 4, active from cycle 1) and setting B (20 + 20 × 2, active only at cycle 2) give
hand-computable matrix cells.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alharness.errors import ConfigError
from alharness.report import (
    PRESETS,
    ReportError,
    labels_to_target,
    load,
    load_results,
    resolve_methods,
    t_critical,
    validate,
    win_matrix,
    write_learning_curves,
    write_report,
)
from alharness.report.build import collect
from alharness.report.cli import main as report_main
from alharness.report.load import annotate, setting_names
from alharness.schema import ROW_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
ORDER = ["random", "better", "equal", "worse"]
OFFSET = {"random": 0.0, "better": 0.05, "equal": 0.0, "worse": -0.05}
NOISE = {"random": [0.0, 0.0, 0.0], "better": [0.002, -0.002, 0.0],
         "equal": [0.01, -0.01, 0.0], "worse": [0.0, 0.002, -0.002]}
SETTINGS = {"A": {"dataset": "synth_a", "cycles": 4, "active": 1},
            "B": {"dataset": "synth_b", "cycles": 2, "active": 2}}


def curve(strategy: str, seed: int, cycles: int, active: int) -> list[tuple[int, int, float]]:
    """(cycle, labelled count, metric): random rises 0.001 per label from 0.5 at 20."""
    out = []
    for cycle in range(cycles + 1):
        x = 20 + 20 * cycle
        metric = 0.5 + 0.001 * (x - 20)
        if cycle >= active:
            metric += OFFSET[strategy] + NOISE[strategy][seed]
        out.append((cycle, x, metric))
    return out


def write_run(root: Path, strategy: str, seed: int, dataset: str, cycles: int,
              points: list[tuple[int, int, float]], setting: str | None = None,
              finished: bool = True, params: dict | None = None, lr: float = 0.001) -> Path:
    """One run folder exactly as the runner leaves it (RunFolder does the writing); a
    different ``setting`` hash should come with a different config (e.g. ``lr``)."""
    from alharness.loop.run_folder import LoopState, RunFolder  # imports torch: tests only

    setting = setting or f"set-{dataset}"
    params = params or {}
    run_id = "-".join([strategy, f"s{seed}", setting, *(f"{k}{v}" for k, v in sorted(params.items()))])
    config = {"experiment_name": f"{dataset}-mlp", "dataset": {"name": dataset},
              "backbone": {"name": "mlp"}, "strategy": {"name": strategy, **params},
              "budget": {"initial": 20, "batch": 20, "cycles": cycles},
              "trainer": {"lr": lr, "epochs": 5}, "seed": seed}
    rows = []
    for cycle, n_labelled, metric in points:
        row = dict.fromkeys(ROW_COLUMNS, 0)
        row.update(experiment=config["experiment_name"], run_id=run_id, setting=setting,
                   dataset=dataset, backbone="mlp", strategy=strategy,
                   strategy_params=json.dumps(params, sort_keys=True),
                   seed=seed, cycle=cycle, n_labelled=n_labelled, n_pool=1000,
                   budget_initial=20, budget_batch="20", budget_cycles=cycles,
                   metric_name="accuracy", metric=metric, code_version="test",
                   config_hash=run_id, n_selected=0 if cycle == cycles else 20,
                   select_seconds=np.nan if cycle == cycles else 0.01 * (1 + seed),
                   prepare_seconds=np.nan if cycle == cycles else 0.001)
        rows.append(row)
    folder = RunFolder(root / config["experiment_name"] / run_id)
    identity = {k: config[k] for k in ("dataset", "backbone", "strategy", "budget", "trainer",
                                       "seed")}  # as the runner's identity_config
    folder.start(config, identity)
    labelled = np.arange(points[-1][1])
    folder.save(LoopState(next_cycle=len(points), labelled=labelled, rows=rows,
                          picks={"initial": labelled[:20]}), finished=finished)
    return folder.path


def write_results(root: Path, seeds: tuple[int, ...] = (0, 1, 2)) -> Path:
    for spec in SETTINGS.values():
        for strategy in ORDER:
            for seed in seeds:
                write_run(root, strategy, seed, spec["dataset"], spec["cycles"],
                          curve(strategy, seed, spec["cycles"], spec["active"]))
    return root


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    return write_results(tmp_path_factory.mktemp("report") / "results")


@pytest.fixture(scope="module")
def rows(results) -> pd.DataFrame:
    return load_results([results])


def test_load_reads_every_run(rows):
    assert rows.groupby("setting_label")["run_dir"].nunique().tolist() == [12, 12]
    assert set(rows["variant"]) == set(ORDER)
    assert sorted(rows["setting_label"].unique()) == ["synth_a · mlp · 20+20x4",
                                                      "synth_b · mlp · 20+20x2"]


def test_alfamix_matrix_cells_and_bottom_row(rows):
    m = win_matrix(rows, "alfamix", ORDER)
    # A: wins at all 4 cycles ≥ 1 → 1; B: at 1 of 2 cycles ≥ 1 → 0.5; summed → 1.5
    expected = np.array([[0, 0, 0, 1.5],
                         [1.5, 0, 1.5, 1.5],
                         [0, 0, 0, 1.5],
                         [0, 0, 0, 0]])
    np.testing.assert_allclose(m.loc[ORDER, ORDER].to_numpy(), expected)
    # bottom row = column sum / (methods − 1)
    np.testing.assert_allclose(m.loc["beaten"].to_numpy(), [0.5, 0, 0.5, 1.5])


def test_badge_matrix_cells_and_bottom_row(rows):
    m = win_matrix(rows, "badge", ORDER)
    # cycle 0 counts as a checkpoint: A 4 of 5, B 1 of 3
    win = 4 / 5 + 1 / 3
    expected = np.array([[0, 0, 0, win], [win, 0, win, win], [0, 0, 0, win], [0, 0, 0, 0]])
    np.testing.assert_allclose(m.loc[ORDER, ORDER].to_numpy(), expected)
    # bottom row = column mean over all 4 rows
    np.testing.assert_allclose(m.loc["beaten"].to_numpy(), [win / 4, 0, win / 4, 3 * win / 4])


def _two_variant_rows(diffs: list[float]) -> pd.DataFrame:
    """Variant a − variant b = diffs[seed] at cycle 1; equal at cycle 0."""
    records = []
    for seed, d in enumerate(diffs):
        for strategy, value in (("a", 0.6 + d), ("b", 0.6)):
            for cycle, metric in ((0, 0.5), (1, value)):
                records.append(dict(run_id=f"{strategy}{seed}", setting="s", dataset="d",
                                    backbone="m", strategy=strategy, strategy_params="{}",
                                    seed=seed, cycle=cycle, n_labelled=10 + 10 * cycle,
                                    budget_initial=10, budget_batch="10", budget_cycles=1,
                                    metric_name="accuracy", metric=metric))
    return annotate(pd.DataFrame(records))


def test_t_critical_follows_the_seed_count():
    assert t_critical(5) == pytest.approx(2.7764, abs=1e-4)  # the value ALFA-Mix hard-codes
    assert t_critical(3) == pytest.approx(4.3027, abs=1e-4)
    # 3 seeds: t = √3·0.02/std₀ = 4.24 — a win against 2.776, not against t(0.975, 2)
    three = win_matrix(_two_variant_rows([0.01, 0.02, 0.03]), "alfamix", ["a", "b"])
    assert three.at["a", "b"] == 0
    # 5 seeds, same mean, similar spread: t = 5.0 > t(0.975, 4) = 2.776 → win
    five = win_matrix(_two_variant_rows([0.01, 0.02, 0.03, 0.01, 0.03]), "alfamix", ["a", "b"])
    assert five.at["a", "b"] == 1
    assert five.at["beaten", "b"] == 1  # column sum / (2 − 1)
    # BADGE: p = 0.074 with 3 seeds, 0.011 with 5
    assert win_matrix(_two_variant_rows([0.01, 0.02, 0.03]), "badge").at["a", "b"] == 0
    assert win_matrix(_two_variant_rows([0.01, 0.02, 0.03, 0.01, 0.03]),
                      "badge").at["a", "b"] == 0.5  # won at 1 of 2 checkpoints (cycle 0 tied)


def test_badge_uses_at_most_five_runs():
    rows = _two_variant_rows([0.01, 0.02, 0.03, 0.01, 0.03, -1.0])
    assert win_matrix(rows, "badge").at["a", "b"] == 0.5  # seed 5's −1.0 is never paired
    assert win_matrix(rows, "alfamix").at["a", "b"] == 0  # all 6 seeds: mean < 0


def test_labels_to_target_and_saved(rows):
    table = labels_to_target(rows, target=0.55, baseline="random")
    a = table[table["setting_label"].str.startswith("synth_a")].set_index("variant")
    assert a.at["random", "labels_needed"] == pytest.approx(70)  # 0.54 at 60, 0.56 at 80
    assert a.at["equal", "labels_needed"] == pytest.approx(70)
    assert a.at["better", "labels_needed"] == pytest.approx(20 + 20 * 0.05 / 0.07)
    assert np.isnan(a.at["worse", "labels_needed"])  # 0.53 at the end: not reached
    assert a.at["better", "saved_pct"] == pytest.approx(100 * (1 - (20 + 20 / 1.4) / 70))
    assert a.at["random", "saved_pct"] == pytest.approx(0)
    assert np.isnan(a.at["worse", "saved_pct"])
    assert not a["saved_is_lower_bound"].any()
    # B: random never reaches 0.55 (0.54 at its last count, 60), better does at 48.6 →
    # at least 1 − 48.6/60 saved
    b = table[table["setting_label"].str.startswith("synth_b")].set_index("variant")
    assert np.isnan(b.at["random", "labels_needed"])
    assert b.at["better", "labels_needed"] == pytest.approx(40 + 20 * 0.03 / 0.07)
    assert b.at["better", "saved_pct"] == pytest.approx(100 * (1 - (40 + 20 * 0.03 / 0.07) / 60))
    assert b.at["better", "saved_is_lower_bound"]
    # default target: 0.95 × best final mean (better's 0.63 in A)
    default = labels_to_target(rows).set_index(["setting_label", "variant"])
    assert default["target"].iloc[0] == pytest.approx(0.95 * 0.63)


def test_sweep_variants_are_labelled_readably(tmp_path):
    """A multirun over strategy.km × strategy.epsilon: one variant per parameter setting."""
    root = tmp_path / "results"
    for km in (1.25, 10):
        for epsilon in (0.5, 1.0):
            for seed in (0, 1):
                write_run(root, "cluster_margin", seed, "synth_a", 2,
                          curve("equal", seed, 2, 1), params={"km": km, "epsilon": epsilon,
                                                              "linkage": "average"})
    for seed in (0, 1):
        write_run(root, "random", seed, "synth_a", 2, curve("random", seed, 2, 1))
    rows = load_results([root])
    assert sorted(rows["variant"].unique()) == [
        "cluster_margin(epsilon=0.5, km=1.25)", "cluster_margin(epsilon=0.5, km=10)",
        "cluster_margin(epsilon=1.0, km=1.25)", "cluster_margin(epsilon=1.0, km=10)", "random"]
    assert win_matrix(rows).shape == (6, 5)
    assert not collect([root], baseline="random").findings  # same seeds, one config


def test_inconsistent_inputs_are_reported(tmp_path):
    root = write_results(tmp_path / "results", seeds=(0, 1))
    spec = SETTINGS["A"]
    # missing seed: 'worse' lacks seed 2, which the others have
    for strategy in ("random", "better", "equal"):
        write_run(root, strategy, 2, spec["dataset"], 4, curve(strategy, 2, 4, 1))
    # unfinished run
    write_run(root, "random", 2, "synth_b", 2, curve("random", 2, 2, 2)[:2], finished=False)
    # mixed setting: same dataset/backbone/budget, another config (lr) and so another hash
    write_run(root, "random", 0, "synth_a", 4, curve("random", 0, 4, 1), setting="other",
              lr=0.01)
    # a run whose labelled count at cycle 1 differs
    write_run(root, "equal", 2, "synth_b", 2, [(0, 20, 0.5), (1, 39, 0.52), (2, 60, 0.54)])
    # a finished run whose rows lack its last cycle, and one whose rows.csv is garbage
    write_run(root, "better", 7, "synth_b", 2, curve("better", 0, 2, 2)[:2])
    garbage = write_run(root, "worse", 7, "synth_b", 2, curve("worse", 0, 2, 2))
    (garbage / "rows.csv").write_bytes(b'a,b\n1,"unterminated\n2,3,4,5\n')

    results = load([root])
    kinds: dict[str, str] = {}
    for finding in results.findings + validate(results.rows):
        kinds[finding.kind] = kinds.get(finding.kind, "") + str(finding) + "\n"
    assert ("20+20x4 [trainer.lr=0.001]: worse has 2 seed(s) [0, 1], missing [2]"
            in kinds["missing-seeds"])
    assert "running" in kinds["unfinished"] and "left out" in kinds["unfinished"]
    assert "synth_a · mlp · 20+20x4" in kinds["mixed-setting"]
    assert "[39, 40]" in kinds["mixed-labelled"]
    assert "lacks cycle(s) [2]; left out" in kinds["truncated"]
    assert str(garbage / "rows.csv") in kinds["damaged"] and "left out" in kinds["damaged"]
    assert 7 not in set(results.rows["seed"])
    # the unfinished run is left out unless asked for, and then it is in
    unfinished = results.rows[(results.rows["setting_label"] == "synth_b · mlp · 20+20x2")
                              & (results.rows["variant"] == "random")]
    assert sorted(unfinished["seed"].unique()) == [0, 1]
    with_it = load([root], include_unfinished=True).rows
    assert 2 in set(with_it.loc[with_it["setting_label"] == "synth_b · mlp · 20+20x2", "seed"])
    # the mixed cell is split by setting, named by the config key that differs, never averaged
    labels = set(results.rows["setting_label"])
    assert {"synth_a · mlp · 20+20x4 [trainer.lr=0.001]",
            "synth_a · mlp · 20+20x4 [trainer.lr=0.01]"} <= labels
    # ... and the variants missing from that second setting are named
    assert "[trainer.lr=0.01]: no runs of better, equal, worse" in kinds["missing-variant"]


def test_setting_names_fall_back_to_the_hash():
    lr = {"h1": {"trainer": {"lr": 0.1}, "seed": 0}, "h2": {"trainer": {"lr": 0.2}, "seed": 1}}
    assert setting_names(["h1", "h2"], lr) == {"h1": "trainer.lr=0.1", "h2": "trainer.lr=0.2"}
    assert setting_names(["h1", "h2"], {"h1": lr["h1"]}) == {"h1": "h1", "h2": "h2"}  # no file
    same = {"h1": {"seed": 0, "trainer": {"lr": 1}}, "h2": {"seed": 1, "trainer": {"lr": 1}}}
    assert setting_names(["h1", "h2"], same) == {"h1": "h1", "h2": "h2"}  # only the seed differs


def test_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match="no runs under"):
        load_results([tmp_path / "empty"])
    assert report_main([str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no runs under") and err.count("\n") == 1
    bad = tmp_path / "bad" / "exp" / "run"
    bad.mkdir(parents=True)
    (bad / "status.json").write_text(json.dumps({"status": "finished"}))
    (bad / "rows.csv").write_text("seed,cycle\n0,0\n")
    with pytest.raises(ReportError, match="lacks column"):
        load_results([tmp_path / "bad"])
    (bad / "rows.csv").write_bytes(b"\x00\xff\xfe garbage \"unterminated\n")
    with pytest.raises(ReportError, match="unreadable|lacks column"):
        load_results([tmp_path / "bad"])
    with pytest.raises(ReportError, match="does not exist"):
        load_results([tmp_path / "nowhere"])


def test_write_report_files(results, tmp_path):
    report = write_report([results], tmp_path / "out", convention="badge", spread="sem",
                          target=0.55, quiet=True)
    out = tmp_path / "out"
    for name in ("index.html", "validation.txt", "win_matrix_badge.csv", "win_matrix_badge.png",
                 "win_matrix_badge.pdf", "curves/synth_a_mlp_20+20x4.png",
                 "curves/synth_b_mlp_20+20x2.pdf", "tables/metric.csv", "tables/metric.md",
                 "tables/auc.csv", "tables/labels_to_target.md", "tables/selection_time.csv",
                 "tables/selection_time_per_cycle.csv"):
        assert (out / name).is_file(), name
    assert all(p.is_file() for p in report.files)
    html = (out / "index.html").read_text()
    assert "win_matrix_badge.png" in html and "curves/synth_a_mlp_20+20x4.png" in html
    assert "No problems found" in html
    saved = pd.read_csv(out / "tables/labels_to_target.csv")
    assert saved["saved_pct"].max() == pytest.approx(100 * (1 - (20 + 20 / 1.4) / 70))
    auc = pd.read_csv(out / "tables/auc.csv").set_index(["setting_label", "variant"])
    # random in A: linear 0.50 → 0.58, normalised AUC = its mean height 0.54
    assert auc.at[("synth_a · mlp · 20+20x4", "random"), "auc_mean"] == pytest.approx(0.54)
    times = pd.read_csv(out / "tables/selection_time.csv").set_index(["setting_label", "variant"])
    assert times.at[("synth_a · mlp · 20+20x4", "better"), "select_seconds_mean"] == \
        pytest.approx(0.02)  # seeds 0, 1, 2 take 0.01, 0.02, 0.03 s
    assert times.at[("synth_a · mlp · 20+20x4", "better"), "n_selections"] == 12


def test_methods_restrict_and_order_the_report(results, tmp_path):
    """``methods``: only the listed strategies, in the listed order, the rest reported."""
    report = write_report([results], tmp_path / "out", methods="worse,random,better", quiet=True)
    matrix = pd.read_csv(tmp_path / "out" / "win_matrix_alfamix.csv", index_col=0)
    assert list(matrix.columns) == ["worse", "random", "better"]
    assert list(matrix.index) == ["worse", "random", "better", "beaten"]
    # A: better beats worse at 4 of 4 cycles, B at 1 of 2; bottom row over m − 1 = 2
    assert matrix.at["better", "worse"] == pytest.approx(1.5)
    assert matrix.at["beaten", "worse"] == pytest.approx((1.5 + 1.5) / 2)
    assert set(report.rows["strategy"]) == {"worse", "random", "better"}
    assert any("left out" in f.message and "equal" in f.message for f in report.findings)
    with pytest.raises(ConfigError, match="none of the runs"):
        load_results([results], methods="cluster_margin,badge")
    with pytest.raises(ConfigError, match="twice"):
        load_results([results], methods="random,random")


def test_paper_presets_name_registered_strategies():
    """Issue 7: the ALFA-Mix preset lists the methods of the paper's matrix (official README's
    baselines + ALFA-Mix); every preset names strategies the registry has."""
    from alharness.strategies import STRATEGIES  # imports torch: tests only

    assert PRESETS["alfamix"].strategies == ("random", "entropy", "bald", "coreset", "dfal",
                                             "coregcn", "cdal", "badge", "alfa_mix")
    assert PRESETS["cluster_margin"].strategies == ("random", "margin", "coreset", "badge",
                                                    "cluster_margin")
    for preset in PRESETS.values():
        assert set(preset.strategies) <= set(STRATEGIES), preset.name
    assert resolve_methods("alfamix") is PRESETS["alfamix"]
    assert resolve_methods(None) is None and resolve_methods("all") is None


def test_write_learning_curves_for_one_experiment(results, tmp_path):
    """The call a logger makes at the end of a run: PNG paths of one experiment folder."""
    experiment = results / "synth_a-mlp"
    pngs = write_learning_curves(experiment, tmp_path / "curves")
    assert pngs == [tmp_path / "curves" / "synth_a_mlp_20+20x4.png"]
    assert pngs[0].stat().st_size > 10_000 and pngs[0].with_suffix(".pdf").is_file()
    default = write_learning_curves(experiment)  # beside the runs, never read back as a run
    assert default[0].parent == experiment / "figures"
    assert write_learning_curves(experiment) == default  # a second call is not confused


def _python(args: list[str], pythonpath: list[Path]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, [*pythonpath, ROOT]))}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, text=True,
                          capture_output=True, timeout=120)


def test_cli_writes_the_report(results, tmp_path):
    """``python -m alharness.report`` end to end, where ``import torch`` fails."""
    blocker = tmp_path / "blocker" / "torch"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('the report must not need torch')")
    out = tmp_path / "fig"
    done = _python(["-m", "alharness.report", str(results), "--out", str(out)], [blocker.parent])
    assert done.returncode == 0, done.stderr
    assert "report:" in done.stdout
    for name in ("index.html", "win_matrix_alfamix.png", "win_matrix_alfamix.pdf",
                 "win_matrix_alfamix.csv", "curves/synth_a_mlp_20+20x4.png",
                 "curves/synth_b_mlp_20+20x2.pdf", "tables/labels_to_target.csv",
                 "tables/metric.md"):
        assert (out / name).is_file(), name
    matrix = pd.read_csv(out / "win_matrix_alfamix.csv", index_col=0)
    assert matrix.at["better", "worse"] == pytest.approx(1.5)
    assert matrix.at["beaten", "worse"] == pytest.approx(1.5)


def test_import_does_not_import_torch():
    code = ("import sys, alharness.report\n"
            "assert 'torch' not in sys.modules, 'alharness.report imported torch'")
    done = _python(["-c", code], [])
    assert done.returncode == 0, done.stderr


def test_figure_scripts_regenerate_each_paper_figure(results, tmp_path, capsys):
    """scripts/figure_learning_curves.py, figure_win_matrix.py, table_labels_saved.py."""
    from tests.conftest import load_script

    curves = tmp_path / "curves"
    assert load_script("figure_learning_curves").main(
        [str(results), "--out", str(curves), "--methods", "random,better"]) == 0
    assert sorted(p.name for p in curves.glob("*.png")) == ["synth_a_mlp_20+20x4.png",
                                                            "synth_b_mlp_20+20x2.png"]

    assert load_script("figure_win_matrix").main(
        [str(results), "--out", str(tmp_path), "--convention", "alfamix"]) == 0
    matrix = pd.read_csv(tmp_path / "win_matrix_alfamix.csv", index_col=0)
    assert matrix.at["better", "worse"] == pytest.approx(1.5)
    assert (tmp_path / "win_matrix_alfamix.png").is_file()

    capsys.readouterr()
    assert load_script("table_labels_saved").main(
        [str(results), "--target", "0.55", "--baseline", "random", "--out", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "labels_to_target.csv")
    a = table[table["setting_label"].str.startswith("synth_a")].set_index("variant")
    assert a.at["better", "saved_pct"] == pytest.approx(100 * (1 - (20 + 20 / 1.4) / 70))
    assert "Labels needed to reach the target" in capsys.readouterr().out

    assert load_script("figure_win_matrix").main([str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_untestable_pairs_are_na_and_left_out_of_the_bottom_row():
    """A variant with one seed can be tested against nobody: its cells are n/a, not 0,
    and the bottom row averages the tested cells only; a one-seed variant is a finding."""
    from alharness.report.win_matrix import plot_win_matrix

    rows = _two_variant_rows([0.01, 0.02, 0.03, 0.01, 0.03])
    lonely = rows[(rows["strategy"] == "b") & (rows["seed"] == 0)].assign(
        strategy="c", variant="c", run_id="c0")
    rows = pd.concat([rows, lonely], ignore_index=True)
    alfamix = win_matrix(rows, "alfamix", ["a", "b", "c"])
    for pair in (("a", "c"), ("c", "a"), ("b", "c"), ("c", "b")):
        assert np.isnan(alfamix.loc[pair]), pair
    assert alfamix.at["a", "b"] == 1
    assert alfamix.at["beaten", "b"] == 1  # 1 over its one tested cell, not (1 + 0) / 2
    assert np.isnan(alfamix.at["beaten", "c"])
    badge = win_matrix(rows, "badge", ["a", "b", "c"])
    assert badge.at["beaten", "b"] == pytest.approx(0.5 / 2)  # tested cell + the 0 diagonal
    texts = [t.get_text() for t in plot_win_matrix(alfamix, "alfamix", 1).axes[0].texts]
    assert texts.count("n/a") == 4
    assert any(f.kind == "one-seed" and "c has one seed" in f.message for f in validate(rows))


def test_colours_are_fixed_per_strategy_name_across_reports():
    from alharness.report import variant_styles

    def styles(*variants: tuple[str, str]) -> dict:
        frame = pd.DataFrame(variants, columns=["strategy", "variant"])
        return variant_styles(frame)

    paper_one = styles(("random", "random"), ("margin", "margin"), ("badge", "badge"))
    paper_two = styles(("margin", "margin"), ("cluster_margin", "cluster_margin"),
                       ("my_method", "my_method"))
    assert paper_one["margin"] == paper_two["margin"]
    assert paper_one["random"].colour == "#555555"
    assert len({s.colour for s in (*paper_one.values(), *paper_two.values())}) == 5
    sweep = styles(("cluster_margin", "cluster_margin(km=1.25)"),
                   ("cluster_margin", "cluster_margin(km=10)"))
    first, second = sweep.values()
    assert first.colour == paper_two["cluster_margin"].colour
    assert second.colour != first.colour and second.linestyle != first.linestyle
