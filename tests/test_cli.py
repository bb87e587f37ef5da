"""The command line's contract (`alharness.cli.main`): a mistake the user can fix is one
line on stderr, exit code 2, no traceback, and nothing written — Hydra's own errors and
sweeps included; Ctrl-C says what is saved; a sweep runs its good points and lists its
bad ones; summaries never pool settings.

Most bad inputs run in this process (``main(argv)``); a few run as a real ``run.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from alharness.loop.runner import run_experiment
from alharness.training.trainer import TrainResult
from tests.conftest import FAST, ROOT, compose_config, run_cli

#: (overrides, a fragment of the one error line). ``{base}`` is the test's folder, which
#: holds ``results/`` (one finished run), ``afile``, ``readonly/`` and damaged copies of
#: ``results/`` named after their damage.
BAD_INPUTS = [
    (["budget.cycles=abc"], "budget.cycles: wrong type (got 'abc'; expected an integer ≥ 0)"),
    (["budget.cycles=2.5"], "budget.cycles: wrong type (got 2.5;"),
    (["budget.cycles=-1"], "budget.cycles: out of range (got -1;"),
    (["budget.initial=0"], "budget.initial: out of range"),
    (["budget.batch=0"], "budget.batch: out of range"),
    (["budget.batch=[10]"], "budget.batch: lists 1 size(s) for 2 cycles"),
    (["budget.initial_mode=stratified"], "budget.initial_mode: not a valid choice"),
    (["budget.cycles=1000"], "the pool has 1438"),
    (["trainer.lr=abc"], "trainer.lr: wrong type (got 'abc'; expected a number > 0)"),
    (["trainer.lr=-1"], "trainer.lr: out of range (got -1; expected a number > 0)"),
    (["trainer.lr=inf"], "trainer.lr: wrong type (got inf;"),
    (["trainer.epochs=0"], "trainer.epochs: out of range"),
    (["trainer.batch_size=0"], "trainer.batch_size: out of range"),
    (["trainer.optimizer=lbfgs"], "trainer.optimizer: not a valid choice (got 'lbfgs'; "
                                  "expected one of adam, sgd)"),
    (["trainer.lrr=0.1"], "trainer.lrr: unknown key, did you mean trainer.lr?"),
    (["trainer.stop_at_train_acc=1.5"], "trainer.stop_at_train_acc: out of range"),
    (["trainer.amp=maybe"], "trainer.amp: wrong type (got 'maybe'; expected true or false)"),
    (["strategy=cluster_margin", "strategy.epsilon=abc"], "strategy.epsilon: wrong type"),
    (["strategy=cluster_margin", "strategy.km=0.5"], "strategy.km: out of range (got 0.5; "
                                                     "expected a number ≥ 1)"),
    (["strategy=cluster_margin", "strategy.knn_index=foo"], "strategy.knn_index: not a valid "
                                                            "choice (got 'foo'; expected one of"),
    (["strategy=cluster_margin", "strategy.epsilon=null", "strategy.target_cluster_size=null"],
     "strategy.epsilon: neither it nor strategy.target_cluster_size is set"),
    (["strategy=cluster_margin", "strategy.hac=foo"], "strategy.hac: not a valid choice (got "
                                                      "'foo'; expected one of auto, exact, graph)"),
    (["strategy=cluster_margin", "strategy.hac_exact_max_n=0"],
     "strategy.hac_exact_max_n: out of range"),
    (["strategy=bald", "strategy.passes=1"], "strategy.passes: out of range (got 1; expected an "
                                             "integer ≥ 2)"),
    (["strategy=alfa_mix", "strategy.alpha_cap=0"], "strategy.alpha_cap: out of range (got 0; "
                                                    "expected a number > 0)"),
    (["strategy=alfa_mix", "strategy.kmeans_init=foo"], "strategy.kmeans_init: not a valid choice "
                                                        "(got 'foo'; expected one of kmeanspp, "
                                                        "random)"),
    (["strategy=alfa_mix", "strategy.candidate_selection=kmeans"],
     "strategy.candidate_selection: not a valid choice (got 'kmeans'; expected one of clustering, "
     "norm, symmetric_kl, uniform)"),
    (["strategy=alfa_mix", "strategy.kmeans_max_local_trials=0"],
     "strategy.kmeans_max_local_trials: out of range (got 0; expected an integer ≥ 1 or null)"),
    (["strategy=alfa_mix", "strategy.chunk_size=0"], "strategy.chunk_size: out of range (got 0;"),
    (["strategy=dfal", "strategy.overshoot=-1"], "strategy.overshoot: out of range (got -1; "
                                                 "expected a number ≥ 0)"),
    (["strategy=dfal", "strategy.candidates=1"], "strategy.candidates: out of range (got 1; "
                                                 "expected an integer ≥ 2 or null)"),
    (["strategy=lloss", "strategy.stop_grad_after=2"], "strategy.stop_grad_after: out of range "
                                                       "(got 2; expected a number ≥ 0 and ≤ 1)"),
    (["strategy=lloss", "strategy.taps=[]"], "strategy.taps: too few items (got []; expected a "
                                             "non-empty list of strings or null)"),
    (["strategy=coregcn", "strategy.dropout=1"], "strategy.dropout: out of range (got 1; expected "
                                                 "a number ≥ 0 and < 1)"),
    (["strategy=coregcn", "strategy.subset=0"], "strategy.subset: out of range (got 0; expected "
                                                "an integer ≥ 1 or null)"),
    (["strategy=margin", "strategy.multilabel_aggregate=max"],
     "strategy.multilabel_aggregate: not a valid choice (got 'max'; expected one of min, mean)"),
    (["strategy=nope"], "strategy: unknown option 'nope' (expected one of alfa_mix, badge"),
    (["strategy=entropyy"], "did you mean entropy?"),
    (["+strategy.nope=1"], "strategy.nope: unknown key"),
    (["strategy.name=nope"], "strategy.name: unknown strategy 'nope'"),
    (["seeds=0"], "seeds: wrong type (got 0; expected a non-empty list of integers ≥ 0)"),
    (["seeds=abc"], "seeds: wrong type (got 'abc';"),
    (['seeds="0,1"'], "seeds: wrong type (got '0,1';"),
    (['seeds="12"'], "seeds: wrong type (got '12';"),  # never seeds 1 and 2
    (["seeds=[]"], "seeds: too few items"),
    (["seeds=[0,0]"], "seeds: seed 0 is listed twice"),
    (["seeds=[-1]"], "seeds: out of range at item 0"),
    (["seeds=[true]"], "seeds: wrong type at item 0 (got [true];"),
    (["seeds={a:1}"], "seeds: cannot be merged"),
    (["dataset=features"], "dataset.path: required but not set (got ???; expected a string)"),
    (["dataset=features", "dataset.path={base}/missing.npz", "backbone=linear"],
     "missing.npz does not exist"),
    (["dataset=features", "dataset.path={base}/afile", "backbone=linear"], "cannot read"),
    (["dataset=nope"], "dataset: unknown option 'nope'"),
    (["dataset.split_seed=abc"], "dataset.split_seed: wrong type"),
    (["dataset.split_seed=-1"], "dataset.split_seed: out of range (got -1; expected an integer ≥ 0)"),
    (["dataset=synthetic", "dataset.classes=0"], "dataset.classes: out of range"),
    (["backbone=vgg16"], "at least 32×32"),
    (["backbone.dropout=1.5"], "backbone.dropout: out of range (got 1.5; expected a number ≥ 0 "
                               "and < 1)"),
    (["backbone=linear", "backbone.hidden=[8]"], "backbone.hidden: unknown key"),
    (["results_dir={base}/afile"], "results_dir: not a directory"),
    (["results_dir={base}/afile/sub"], "afile is a file"),
    (["results_dir={base}/readonly"], "results_dir: not writable"),
    (["results_dir=/proc/alharness-results"], "results_dir: not writable (/proc is read-only)"),
    (["hydra.run.dir=/proc/alharness-logs"], "hydra.run.dir: not writable"),
    (["data_dir={base}/afile"], "data_dir: not a directory"),
    (["device=gpu"], "device: not a device (got 'gpu'"),
    (["torch_threads=0"], "torch_threads: out of range"),
    (["logger=wandb", "logger.mode=sometimes"], "logger.mode: not a valid choice"),
    (["logger=wandb", "logger.tags=abc"], "logger.tags: wrong type (got 'abc'; expected a list of "
                                          "strings or null)"),
    (["progress=maybe"], "progress: wrong type"),
    (["experiment_name=../elsewhere"], "experiment_name: not a folder name"),
    (["experiment_name=${nope}"], "experiment_name: cannot be resolved"),
    (["+foo=1"], "foo: unknown key"),
    (["trainer.lr=["], "trainer.lr=[: cannot parse the override"),
    (["strategy=margin,entropy"], "strategy: a comma-separated list is a sweep"),
    (["+strategy=margin"], "strategy: chosen twice"),
    (["~nope"], "nope: does not exist"),
    (["+experiment=nope"], "experiment: unknown option 'nope' (expected one of alfa_mix/"),
    (["--config-name=nope"], "--config-name: no config named 'nope'"),
    (["--foo"], "command line: unrecognized arguments: --foo"),
    (["-m", "--cfg=job"], "give only one of"),
    (["results_dir={base}/garbage"], "rows.csv: unreadable in a finished run"),
    (["results_dir={base}/short"], "rows.csv: a finished run with 2 of its 3 cycles"),
    (["results_dir={base}/foreign"], "holds a run with a different config"),
    (["results_dir={base}/corrupt"], "state.pt is corrupt"),
    (["results_dir={base}/partial", "resume=false"], "holds a partial run"),
    (["-m", "trainer.lr=-1"], "trainer.lr: out of range (got -1;"),
    (["-m", "strategy=margin,nope"], "strategy: unknown option 'nope'"),
    (["-m", "trainer.lrr=0.1,0.2"], "did you mean trainer.lr?"),
    (["-m", "dataset=digits,nope"], "dataset: unknown option 'nope'"),
    (["-m", "strategy=margin,entropy", "seeds=abc"], "seeds: wrong type (got 'abc'; expected a "
                                                      "non-empty list of integers ≥ 0) [every sweep point]"),
    (["strategy=bald", "backbone.dropout=0"],
     "backbone.dropout: bald samples MC dropout, so the backbone needs dropout > 0 (got 0"),
    (["-m", "+experiment=alfa_mix/mnist,alfa_mix/svhn", "dataset.image_size=16"],
     "dataset.image_size: unknown key (got 16); Hydra composes a sweep once without its swept "
     "values, so pass a key that only some swept choices have as ++dataset.image_size="),
    (["-m", "hydra.sweep.dir=/proc/alharness-sweep", "trainer.lr=0.1,0.2"],
     "hydra.sweep.dir: not writable"),
]


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A finished run in ``results/``, and the files the bad inputs point at."""
    base = tmp_path_factory.mktemp("cli")
    run_experiment(compose_config(FAST, base / "results"))
    (base / "afile").write_text("not a folder\n")
    (base / "readonly").mkdir()
    (base / "readonly").chmod(0o555)
    for damage in ("garbage", "short", "foreign", "corrupt", "partial"):
        shutil.copytree(base / "results", base / damage)
        (run,) = {p.parent for p in (base / damage).rglob("rows.csv")}
        if damage == "garbage":
            (run / "rows.csv").write_bytes(b'a,b\n1,"unterminated\n2,3,4,5\n')
        elif damage == "short":
            lines = (run / "rows.csv").read_text().splitlines(keepends=True)
            (run / "rows.csv").write_text("".join(lines[:-1]))
        elif damage == "foreign":
            identity = json.loads((run / "identity.json").read_text())
            identity["trainer"]["lr"] = 123.0
            (run / "identity.json").write_text(json.dumps(identity))
        else:
            (run / "status.json").write_text(json.dumps({"status": "running", "cycles_done": 2}))
            if damage == "corrupt":
                (run / "state.pt").write_bytes(b"not a checkpoint")
    return base


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder``, with the bytes of files."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None
            for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize(("overrides", "message"), BAD_INPUTS,
                         ids=[" ".join(o) for o, _ in BAD_INPUTS])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(base, overrides, message, capsys):
    from alharness.cli import main

    if "readonly" in " ".join(overrides) and os.access(base / "readonly", os.W_OK):
        pytest.skip("running as root: a read-only folder is writable")
    before = snapshot(base)
    given = [o.replace("{base}", str(base)) for o in overrides]
    flags = [o for o in given if o.startswith("-") and o != "--foo"]  # before the overrides
    argv = [*flags, *FAST, f"results_dir={base}/results", *(o for o in given if o not in flags)]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert message in err
    assert "Traceback" not in out + err
    assert snapshot(base) == before  # byte-identical, no new file or folder


def test_bad_input_through_a_real_process(tmp_path):
    """What a user sees: Hydra prints nothing of its own, the exit code is 2."""
    proc = run_cli([*FAST, "strategy=nope", f"results_dir={tmp_path}/results"])
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: strategy: unknown option 'nope'")
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "results").exists()


def test_ctrl_c_says_which_cycle_is_saved_and_rerunning_resumes(tmp_path, monkeypatch):
    """A run with cycle 0 saved is resumed by ``run.py``, which is sent SIGINT while it
    trains cycle 1: it says cycle 0 is saved and that re-running resumes at cycle 1."""
    from alharness.loop import runner

    overrides = [*FAST, "trainer.epochs=5000", f"results_dir={tmp_path}/results"]
    calls = []

    def quick_then_ctrl_c(*args, **kwargs):  # cycle 0 without the 5000 epochs, then Ctrl-C
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return TrainResult(epochs=1, loss=1.0, train_accuracy=0.5, seconds=0.0)

    monkeypatch.setattr(runner, "train", quick_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt, match="finished cycle 0"):
        run_experiment(compose_config(overrides, tmp_path / "results"))
    (folder,) = {p.parent for p in (tmp_path / "results").rglob("rows.csv")}
    rows = (folder / "rows.csv").read_bytes()

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), *overrides], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # as from a terminal: an ignored SIGINT would be inherited
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        seen = []
        for line in proc.stdout:  # blocks until the child says it resumed
            seen.append(line)
            if line.startswith("resuming"):
                break
        assert seen[-1:] == [f"resuming {folder.name} at cycle 1\n"], seen
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert err == (f"interrupted: {folder.name} finished cycle 0 of 0..2 (saved in {folder}); "
                   "re-running the same command resumes at cycle 1\n")
    assert (folder / "rows.csv").read_bytes() == rows


def test_sweep_runs_good_points_lists_bad_ones_and_never_pools_settings(tmp_path):
    """Two epoch counts × a good and a bad learning rate: the bad points fail with one
    line each, the good ones run, and the summary shows the two settings apart."""
    results = tmp_path / "results"
    proc = run_cli(["-m", *FAST, "budget.cycles=1", "trainer.epochs=1,2",
                    "trainer.lr=0.001,-1", f"results_dir={results}"])
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = proc.stderr.splitlines()
    assert [e.split(" [sweep point")[0] for e in errors if e.startswith("error:")] == [
        "error: trainer.lr: out of range (got -1; expected a number > 0)"] * 2, proc.stderr
    assert "Traceback" not in proc.stderr
    summary = proc.stdout.split("sweep summary: ")[1]
    assert summary.startswith("2 of 4 points ran")
    assert "digits · small_cnn · 20+10x1 [trainer.epochs=1]" in summary
    assert "digits · small_cnn · 20+10x1 [trainer.epochs=2]" in summary
    assert "failed: trainer.epochs=1 trainer.lr=-1: trainer.lr: out of range" in summary
    assert "failed: trainer.epochs=2 trainer.lr=-1: trainer.lr: out of range" in summary
    rows = pd.concat(pd.read_csv(f) for f in results.rglob("rows.csv"))
    assert sorted(rows.groupby("run_id")["train_epochs"].max()) == [1, 2]
