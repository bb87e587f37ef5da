"""Real dataset loaders on tiny files written in the real on-disk formats.

CIFAR-10/100 pickles, SVHN .mat files, MNIST/EMNIST idx files (gzip or not, as
torchvision leaves them) and an Open Images subset (official CSV layouts + JPEGs). Most
assertions call the loaders directly; a few runs go through the runner and ``run.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from alharness.data import PoolData, load_dataset
from alharness.data.initial import initial_labelled
from alharness.errors import ConfigError, DataError
from alharness.loop import run_experiment
from alharness.metrics import mean_average_precision, pooled_average_precision
from alharness.models import build_backbone
from tests.conftest import load_script, run_cli
from tests.data_files import (
    N_TEST,
    N_TRAIN,
    write_cifar,
    write_emnist_letters,
    write_mnist,
    write_openimages,
    write_svhn,
)

#: One short cycle: 20 initial labels, one batch of 10, one epoch.
ONE_CYCLE = ["seeds=[0]", "budget.initial=20", "budget.batch=10", "budget.cycles=1",
             "trainer.epochs=1", "progress=false", "device=cpu"]
SMALL_CNN = ["backbone=small_cnn", "backbone.width=8", "backbone.embed_dim=16"]


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict:
    """Every dataset written once for the module: {name: (root, written arrays)}."""
    base = tmp_path_factory.mktemp("datasets")
    return {"cifar10": (base, write_cifar(base)),
            "cifar100": (base, write_cifar(base, hundred=True, str_keys=True)),
            "svhn": (base, write_svhn(base)),
            "mnist": (base, write_mnist(base)),
            "emnist_letters": (base, write_emnist_letters(base)),
            "openimages": (base / "oi", write_openimages(base / "oi"))}


def load(name: str, root: Path, **params) -> PoolData:
    return load_dataset({"name": name, "root": str(root), "download": False, **params})


def pixels(x: torch.Tensor, mean: tuple, std: tuple) -> np.ndarray:
    """Undo the normalisation: back to uint8 pixel values."""
    m, s = torch.tensor(mean).view(-1, 1, 1), torch.tensor(std).view(-1, 1, 1)
    return torch.round((x * s + m) * 255).to(torch.int64).numpy()


# ---------------------------------------------------------------- torchvision formats

@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_pickles_load_in_order_with_labels_and_normalisation(roots, name):
    from alharness.data.cifar import CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD

    root, written = roots[name]
    data = load(name, root)
    classes = 100 if name == "cifar100" else 10
    assert (data.info.task, data.info.num_classes, data.info.input_shape) == (
        "multiclass", classes, (3, 32, 32))
    assert data.pool_size == N_TRAIN and len(data.test) == N_TEST and data.val is None
    np.testing.assert_array_equal(data.pool_targets, written["y"][:N_TRAIN])
    np.testing.assert_array_equal(data.test_targets, written["y"][N_TRAIN:])
    assert data.pool_targets.dtype == np.int64 and data.pool_targets.min() >= 0
    assert data.pool_targets.max() < classes
    mean, std = (CIFAR100_MEAN, CIFAR100_STD) if name == "cifar100" else (CIFAR10_MEAN, CIFAR10_STD)
    x, y = data.pool_eval[13]
    assert x.dtype == torch.float32 and x.shape == (3, 32, 32) and int(y) == written["y"][13]
    np.testing.assert_array_equal(pixels(x, mean, std), written["x"][13])  # R, G, B planes
    np.testing.assert_array_equal(pixels(data.test[2][0], mean, std), written["x"][N_TRAIN + 2])


def test_augmentation_is_for_training_batches_only(roots):
    """Crop + flip on ``pool_train``; ``pool_eval`` (inference, selection) and ``test`` are
    deterministic and unaugmented, and ``dataset.augment=false`` turns it off."""
    root, _ = roots["cifar10"]
    data = load("cifar10", root)
    torch.manual_seed(0)
    for i in range(5):
        assert torch.equal(data.pool_eval[i][0], data.pool_eval[i][0])
        assert torch.equal(data.test[i][0], data.test[i][0])
    views = [(i, data.pool_train[i][0]) for i in range(10) for _ in range(2)]
    changed = sum(not torch.equal(x, data.pool_eval[i][0]) for i, x in views)
    assert changed >= 15  # 161 of the 162 crop × flip choices change the image
    assert all(x.shape == (3, 32, 32) for _, x in views)
    plain = load("cifar10", root, augment=False)
    assert torch.equal(plain.pool_train[3][0], plain.pool_eval[3][0])
    for name in ("svhn", "mnist"):  # no augmentation for digits
        other = load(name, roots[name][0])
        assert torch.equal(other.pool_train[3][0], other.pool_eval[3][0])


def test_svhn_mat_layout_and_label_10_is_digit_0(roots):
    from alharness.data.svhn import SVHN_MEAN, SVHN_STD

    root, written = roots["svhn"]
    data = load("svhn", root)
    x_train, y_train = written["train"]
    expected = y_train.reshape(-1).astype(np.int64)
    expected[expected == 10] = 0
    np.testing.assert_array_equal(data.pool_targets, expected)
    assert data.pool_targets[0] == 0 and set(np.unique(data.pool_targets)) <= set(range(10))
    assert (data.info.num_classes, data.info.input_shape) == (10, (3, 32, 32))
    # X is (H, W, C, N): image i is X[:, :, :, i], channels first after loading
    np.testing.assert_array_equal(pixels(data.pool_eval[7][0], SVHN_MEAN, SVHN_STD),
                                  x_train[:, :, :, 7].transpose(2, 0, 1))
    assert len(data.test) == N_TEST


def test_mnist_gz_and_emnist_letters_idx(roots):
    from alharness.data.mnist import MNIST_MEAN, MNIST_STD

    root, written = roots["mnist"]
    data = load("mnist", root)  # only the .gz files exist
    x_train, y_train = written["train"]
    np.testing.assert_array_equal(data.pool_targets, y_train)
    np.testing.assert_array_equal(pixels(data.pool_eval[5][0], MNIST_MEAN, MNIST_STD)[0],
                                  x_train[5])
    assert (data.info.num_classes, data.info.input_shape) == (10, (1, 28, 28))
    np.testing.assert_array_equal(data.test_targets, written["t10k"][1])

    root, written = roots["emnist_letters"]
    letters = load("emnist_letters", root)  # uncompressed files, labels 1..26 on disk
    np.testing.assert_array_equal(letters.pool_targets,
                                  written["emnist-letters-train"][1].astype(np.int64) - 1)
    assert letters.info.num_classes == 26
    assert letters.pool_targets.min() >= 0 and letters.pool_targets.max() <= 25
    assert letters.test[0][0].shape == (1, 28, 28)


def test_bad_files_give_one_line_errors(tmp_path):
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="test_batch is not a CIFAR batch") as err:
        load("cifar10", tmp_path)
    assert "\n" not in str(err.value)
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / "MNIST" / "raw" / name).write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 8)
    with pytest.raises(DataError, match="truncated"):
        load("mnist", tmp_path)


def test_pool_subset_and_validation_split(roots):
    root, _ = roots["svhn"]
    data = load("svhn", root, pool_subset=50, val_size=10, split_seed=3)
    assert data.pool_size == 40 and len(data.val) == 10 and len(data.val_targets) == 10
    full = load("svhn", root)
    # pool + val are exactly the first 50 training images, disjoint, in file order
    pool_x = torch.stack([data.pool_eval[i][0] for i in range(40)])
    val_x = torch.stack([data.val[i][0] for i in range(10)])
    first = torch.stack([full.pool_eval[i][0] for i in range(50)])
    matches = [int(torch.nonzero((first == x).flatten(1).all(1))[0]) for x in [*pool_x, *val_x]]
    assert sorted(matches) == list(range(50)) and matches[:40] == sorted(matches[:40])
    np.testing.assert_array_equal(data.val_targets, full.pool_targets[matches[40:]])
    again = load("svhn", root, pool_subset=50, val_size=10, split_seed=3)
    np.testing.assert_array_equal(again.pool_targets, data.pool_targets)
    with pytest.raises(ConfigError, match="pool_subset"):
        load("svhn", root, pool_subset=N_TRAIN + 1)
    with pytest.raises(ConfigError, match="val_size"):
        load("svhn", root, val_size=N_TRAIN)


def test_initial_modes_on_real_loaders(roots):
    data = load("cifar10", roots["cifar10"][0])
    assert np.bincount(data.pool_targets, minlength=10).min() >= 2  # the fixture allows 2 each
    per_class = initial_labelled(data.pool_targets, 20, seed=0, mode="per_class")
    np.testing.assert_array_equal(np.bincount(data.pool_targets[per_class], minlength=10), 2)
    uniform = initial_labelled(data.pool_targets, 20, seed=0, mode="uniform")
    assert len(np.unique(uniform)) == 20


def test_image_size_resizes_for_backbones_that_need_it(roots):
    root, _ = roots["mnist"]
    native = load("mnist", root)
    with pytest.raises(ConfigError, match=r"dataset.image_size=32"):
        build_backbone({"name": "vgg16"}, native.info)
    resized = load("mnist", root, image_size=32)
    assert resized.info.input_shape == (1, 32, 32) and resized.pool_eval[0][0].shape == (1, 32, 32)
    model = build_backbone({"name": "vgg16"}, resized.info).eval()
    with torch.no_grad():
        assert model(resized.pool_eval[0][0][None]).shape == (1, 10)


@pytest.mark.parametrize("name,files", [
    ("cifar10", ["cifar-10-batches-py/data_batch_1", "cifar-10-batches-py/test_batch"]),
    ("cifar100", ["cifar-100-python/train", "cifar-100-python/test"]),
    ("svhn", ["train_32x32.mat", "test_32x32.mat"]),
    ("mnist", ["MNIST/raw/train-images-idx3-ubyte", "MNIST/raw/t10k-labels-idx1-ubyte"]),
    ("emnist_letters", ["EMNIST/raw/emnist-letters-train-images-idx3-ubyte"]),
])
def test_missing_dataset_names_files_and_the_fetch_command(tmp_path, name, files):
    with pytest.raises(DataError) as err:
        load(name, tmp_path)
    message = str(err.value)
    assert "\n" not in message and all(f in message for f in files)
    assert f"python scripts/prepare_data.py {name} --root {tmp_path}" in message


def test_missing_dataset_on_the_command_line_is_one_line_and_fails(tmp_path):
    proc = run_cli(["dataset=cifar10", f"dataset.root={tmp_path / 'none'}",
                    "dataset.download=false", f"results_dir={tmp_path / 'results'}",
                    "progress=false"])
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr
    assert "cifar-10-batches-py/data_batch_1" in errors[0]
    assert "python scripts/prepare_data.py cifar10" in errors[0]
    assert not list((tmp_path / "results").rglob("rows.csv"))


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "svhn", "mnist", "emnist_letters"])
def test_one_cycle_through_the_runner(roots, make_config, name):
    root, _ = roots[name]
    cfg = make_config([*ONE_CYCLE, *SMALL_CNN, f"dataset={name}", f"dataset.root={root}",
                       "dataset.download=false"], fast=False)
    rows = run_experiment(cfg)
    assert list(rows["cycle"]) == [0, 1] and list(rows["n_labelled"]) == [20, 30]
    assert set(rows["metric_name"]) == {"accuracy"} and set(rows["dataset"]) == {name}
    assert (rows["n_pool"] == N_TRAIN).all() and rows["metric"].between(0, 1).all()


# ---------------------------------------------------------------- Open Images

def expected_top(root: Path, k: int) -> list[str]:
    """The k labels with the most verified positives in the train CSV (ties by label id)."""
    df = pd.read_csv(root / "oidv6-train-annotations-human-imagelabels.csv")
    counts = df[df["Confidence"] == 1]["LabelName"].value_counts()
    return sorted(counts.index, key=lambda label: (-counts[label], label))[:k]


def test_openimages_subset_from_official_csvs(roots):
    root, truth = roots["openimages"]
    data = load_dataset({"name": "openimages", "root": str(root), "top_k": 3, "image_size": 16})
    labels = expected_top(root, 3)
    assert (data.info.task, data.info.num_classes, data.info.input_shape) == (
        "multilabel", 3, (3, 16, 16))
    # every image with a JPEG and a verified positive among the 3 classes; none without a JPEG
    ids = data.pool_eval.image_ids
    assert list(ids) == sorted(i for i, pos in truth["train"].items() if pos & set(labels))
    assert data.pool_targets.shape == (len(ids), 3) and set(np.unique(data.pool_targets)) <= {0, 1}
    for image_id, row in zip(ids, data.pool_targets, strict=True):  # negatives stay 0
        assert {labels[c] for c in np.flatnonzero(row)} == truth["train"][image_id] & set(labels)
    assert list(data.test.image_ids) == sorted(
        i for i, pos in truth["validation"].items() if pos & set(labels))
    x, y = data.pool_eval[0]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32
    np.testing.assert_array_equal(y.numpy(), data.pool_targets[0])
    assert torch.equal(data.pool_eval[1][0], data.pool_eval[1][0])


def test_openimages_manifest_is_written_once_and_options_select_the_subset(roots, tmp_path):
    root, truth = roots["openimages"]
    params = {"name": "openimages", "root": str(root), "image_size": 8,
              "manifest_dir": str(tmp_path), "classes": ["dog", "/m/07j7r"], "max_pool": 5}
    data = load_dataset(params)
    (manifest,) = tmp_path.glob("*.parquet")
    stamp = manifest.stat().st_mtime_ns
    assert data.info.num_classes == 2 and data.pool_size == 5  # names any case, or label ids
    wanted = {"/m/0bt9lr", "/m/07j7r"}
    assert list(data.pool_eval.image_ids) == sorted(
        i for i, pos in truth["train"].items() if pos & wanted)[:5]  # first 5 by ImageID
    load_dataset(params)
    assert manifest.stat().st_mtime_ns == stamp and len(list(tmp_path.iterdir())) == 1
    for bad, message in ((["Unicorn"], "not a class name"), (["Cat", "/m/01yrx"], "twice")):
        with pytest.raises(ConfigError, match=message):
            load_dataset({**params, "classes": bad})
    with pytest.raises(DataError, match="oidv6-class-descriptions.csv"):
        load_dataset({**params, "root": str(tmp_path / "empty"),
                      "manifest_dir": str(tmp_path / "other")})


@pytest.mark.slow
def test_openimages_end_to_end_reports_map(roots, tmp_path):
    root, _ = roots["openimages"]
    proc = run_cli(["dataset=openimages", f"dataset.root={root}", "dataset.top_k=3",
                    "dataset.image_size=16", f"dataset.manifest_dir={tmp_path / 'm'}",
                    *ONE_CYCLE, *SMALL_CNN, f"results_dir={tmp_path / 'results'}"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    (rows_file,) = (tmp_path / "results").rglob("rows.csv")
    rows = pd.read_csv(rows_file)
    assert list(rows["cycle"]) == [0, 1] and set(rows["metric_name"]) == {"mAP"}
    assert rows["mAP"].between(0, 1).all() and rows["pooled_AP"].between(0, 1).all()
    np.testing.assert_allclose(rows["metric"], rows["mAP"])


def script_main(name: str):
    return load_script(name).main


def test_extracted_embeddings_feed_openimages_features(roots, tmp_path, make_config):
    root, _ = roots["openimages"]
    out = tmp_path / "emb.npz"
    assert script_main("extract_features")([
        "dataset=openimages", f"dataset.root={root}", "dataset.top_k=3", "dataset.image_size=16",
        "backbone=small_cnn", "backbone.embed_dim=12", f"dataset.manifest_dir={tmp_path / 'm'}",
        "--out", str(out), "--device", "cpu"]) == 0
    images = load_dataset({"name": "openimages", "root": str(root), "top_k": 3,
                           "manifest_dir": str(tmp_path / "m")})
    features = load_dataset({"name": "openimages_features", "root": str(root), "top_k": 3,
                             "embeddings": str(out), "manifest_dir": str(tmp_path / "m")})
    assert features.info.input_shape == (12,) and features.info.task == "multilabel"
    np.testing.assert_array_equal(features.pool_targets, images.pool_targets)
    np.testing.assert_array_equal(features.test_targets, images.test_targets)
    with np.load(out) as npz:
        row = list(npz["image_ids"]).index(images.pool_eval.image_ids[4])
        np.testing.assert_allclose(features.pool_eval[4][0].numpy(), npz["embeddings"][row])
    cfg = make_config([*ONE_CYCLE, "dataset=openimages_features", f"dataset.root={root}",
                       "dataset.top_k=3", f"dataset.embeddings={out}", "backbone=linear",
                       f"dataset.manifest_dir={tmp_path / 'm'}", "dataset.val_size=5"],
                      fast=False)
    rows = run_experiment(cfg)
    assert set(rows["metric_name"]) == {"mAP"} and rows["val_mAP"].notna().all()
    assert (rows["n_pool"] == features.pool_size - 5).all()


def test_prepare_openimages_builds_the_manifest_runs_use(roots, tmp_path, capsys):
    root, _ = roots["openimages"]
    assert script_main("prepare_openimages")(
        ["--root", str(root), "--top-k", "2", "--manifest-dir", str(tmp_path)]) == 0
    (manifest,) = tmp_path.glob("*.parquet")
    printed = capsys.readouterr().out
    assert str(manifest) in printed and "dataset.top_k=2" in printed
    stamp = manifest.stat().st_mtime_ns
    data = load_dataset({"name": "openimages", "root": str(root), "top_k": 2,
                         "manifest_dir": str(tmp_path)})
    assert data.info.num_classes == 2 and manifest.stat().st_mtime_ns == stamp


def test_prepare_data_rejects_unknown_names(capsys):
    with pytest.raises(SystemExit) as exit_:
        script_main("prepare_data")(["imagenet", "--root", "/nonexistent"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "unknown dataset" in err and "cifar10" in err


# ---------------------------------------------------------------- multi-label metrics

def test_multilabel_metrics_match_sklearn():
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(0)
    targets = (rng.random((200, 6)) < 0.2).astype(np.uint8)
    targets[:, 5] = 0  # a class without positives is left out of the mean
    probs = np.clip(targets * 0.3 + rng.random((200, 6)) * 0.7, 0, 1)
    per_class = [average_precision_score(targets[:, c], probs[:, c]) for c in range(5)]
    assert mean_average_precision(probs, targets) == pytest.approx(np.mean(per_class))
    assert pooled_average_precision(probs, targets) == pytest.approx(
        average_precision_score(targets.ravel(), probs.ravel()))
