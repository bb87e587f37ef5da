"""Built-in in-memory datasets, the seeded splits and the initial labelled set."""

from __future__ import annotations

import numpy as np
import pytest

from alharness.data import DATASETS, load_dataset
from alharness.data.initial import initial_labelled
from alharness.data.synthetic import blob_centres, make_blobs
from alharness.errors import ConfigError, DataError
from alharness.metrics import average_precision, mean_average_precision, pooled_average_precision


def test_digits_is_the_real_dataset_with_a_fixed_split():
    data = load_dataset({"name": "digits"})
    again = load_dataset({"name": "digits", "split_seed": 0})
    assert data.pool_size + len(data.test) == 1797
    assert data.info.input_shape == (1, 8, 8) and data.info.num_classes == 10
    np.testing.assert_array_equal(data.pool_targets, again.pool_targets)
    assert set(np.unique(data.pool_targets)) == set(range(10))
    x, y = data.pool_eval[0]
    assert tuple(x.shape) == (1, 8, 8) and int(y) == data.pool_targets[0]


def test_declared_metadata_must_match_the_loader():
    with pytest.raises(ConfigError, match="num_classes"):
        load_dataset({"name": "digits", "num_classes": 7})


def test_synthetic_blobs_are_seeded_and_hold_near_duplicate_groups():
    x, y, xt, yt = make_blobs(1000, 8, 3, seed=4, duplicate_groups=5, duplicate_size=10,
                              n_test=100)
    x2, *_ = make_blobs(1000, 8, 3, seed=4, duplicate_groups=5, duplicate_size=10, n_test=100)
    np.testing.assert_array_equal(x, x2)
    groups = x[-50:].reshape(5, 10, 8)
    assert groups.std(axis=1).max() < 0.05  # tight copies
    assert (y[-50:].reshape(5, 10) == y[-50:].reshape(5, 10)[:, :1]).all()
    assert xt.shape == (100, 8) and set(np.unique(yt)) <= {0, 1, 2}
    centres = blob_centres(8, 3, seed=4)
    nearest = ((x[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
    assert (nearest == y).mean() > 0.9  # the blobs sit around the advertised centres


def test_features_file_errors_say_what_to_do(tmp_path):
    with pytest.raises(DataError, match="dataset.path"):
        load_dataset({"name": "features", "path": str(tmp_path / "none.npz")})
    np.savez(tmp_path / "bad.npz", X=np.zeros((4, 2)))
    with pytest.raises(DataError, match=r"lacks array\(s\) \['y'\]"):
        load_dataset({"name": "features", "path": str(tmp_path / "bad.npz")})


def test_features_file_with_its_own_test_split_and_multilabel_targets(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "f.npz", X=rng.normal(size=(30, 5)), y=rng.integers(0, 2, (30, 3)),
             X_test=rng.normal(size=(10, 5)), y_test=rng.integers(0, 2, (10, 3)))
    data = load_dataset({"name": "features", "path": str(tmp_path / "f.npz")})
    assert data.info.task == "multilabel" and data.info.num_classes == 3
    assert data.pool_size == 30 and len(data.test) == 10


def test_initial_set_depends_on_seed_only_and_per_class_is_balanced():
    targets = np.repeat(np.arange(5), 40)
    a = initial_labelled(targets, 25, seed=3)
    np.testing.assert_array_equal(a, initial_labelled(targets, 25, seed=3))
    assert not np.array_equal(a, initial_labelled(targets, 25, seed=4))
    balanced = initial_labelled(targets, 25, seed=3, mode="per_class")
    assert np.bincount(targets[balanced]).tolist() == [5, 5, 5, 5, 5]
    with pytest.raises(ConfigError, match="exceeds the pool"):
        initial_labelled(targets, 500, seed=0)


def test_average_precision_matches_hand_computation():
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    assert average_precision(scores, np.array([1, 0, 1, 0])) == pytest.approx((1 + 2 / 3) / 2)
    probs = np.array([[0.9, 0.2], [0.1, 0.8], [0.6, 0.3]])
    targets = np.array([[1, 0], [0, 1], [0, 0]])
    assert mean_average_precision(probs, targets) == pytest.approx(1.0)
    assert pooled_average_precision(probs, targets) == pytest.approx(1.0)


def test_registry_has_the_offline_datasets():
    assert {"digits", "synthetic", "features"} <= set(DATASETS.names())
