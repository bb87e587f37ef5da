"""DFAL, CDAL, CoreGCN and Learning Loss: each paper's defining behaviour on hand-built
inputs, the training add-on's contract, and one end-to-end run of each through ``run.py``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from alharness.data.base import TensorPool
from alharness.errors import ConfigError, SelectionError
from alharness.loop.runner import run_experiment
from alharness.models.linear_head import LinearHead
from alharness.models.mlp import MLP
from alharness.models.resnet import ResNet
from alharness.models.small_cnn import SmallCNN
from alharness.strategies import SelectionContext, build_strategy, validate_picks
from alharness.strategies.cdal import DivergencePoints, furthest_first
from alharness.strategies.coregcn import Affinity, train_gcn
from alharness.strategies.dfal import deepfool
from alharness.strategies.lloss import (
    CACHE_KEY,
    LossPredictionAddon,
    predicted_losses,
    ranking_loss,
    stage_taps,
)
from alharness.strategies.outputs import ArrayOutputs
from alharness.training.trainer import TrainerConfig, loss_function, train
from tests.conftest import FAST, run_cli, run_until_killed


def context(outputs: ArrayOutputs, pool: int, labelled=(), needs=(), seed: int = 0,
            task: str = "multiclass") -> SelectionContext:
    labelled = np.asarray(labelled, dtype=np.int64)
    return SelectionContext(
        labelled=labelled, unlabelled=np.setdiff1d(np.arange(pool), labelled), outputs=outputs,
        needs=frozenset(needs), rng=np.random.default_rng(seed), task=task, pool_size=pool)


def select(name: str, ctx: SelectionContext, budget: int, **params) -> np.ndarray:
    return validate_picks(build_strategy({"name": name, **params}).select(ctx, budget), ctx,
                          budget, name)


# --- DFAL ---------------------------------------------------------------------------

def three_class_linear() -> LinearHead:
    """Class 0 for x₀ > 0, class 1 for x₀ < 0; class 2 (last) is far from every test point."""
    return LinearHead(np.array([[1.0, 0], [-1, 0], [0, -5]]), np.array([0.0, 0, -10]), dropout=0)


def test_deepfool_on_a_linear_model_steps_to_the_closest_boundary():
    """Linear logits: one step lands exactly on the nearest boundary, |x₀|·(1+η). ALFA-Mix's
    port stepped toward the last class (never updating its running minimum): distance ≫ |x₀|."""
    x = torch.tensor([[0.5, 0.0], [2.0, 1.0], [-0.1, 0.3]])
    found = deepfool(three_class_linear(), x, overshoot=0.02)
    assert found.flipped.all() and found.steps.tolist() == [1, 1, 1]
    norms = found.perturbation.norm(dim=1).numpy()
    np.testing.assert_allclose(norms, 1.02 * (np.array([0.5, 2.0, 0.1]) + 1e-4), rtol=1e-5)
    assert (found.perturbation[:, 1] == 0).all()  # straight across x₀ = 0, not toward class 2
    model = three_class_linear()
    assert (model(x + found.perturbation).argmax(1) != model(x).argmax(1)).all()  # it crosses
    every_class = deepfool(model, x, overshoot=0.02, candidates=None)
    torch.testing.assert_close(every_class.perturbation, found.perturbation)


class Ring(nn.Module):
    """Class 0 outside the unit circle (logit |x|² − 1), class 1 inside (logit 0): a curved
    boundary, so one linearised step falls short and DeepFool must iterate."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([(x**2).sum(dim=1) - 1, torch.zeros(len(x))], dim=1)


def test_deepfool_iterates_until_the_prediction_flips():
    radius = torch.tensor([1.5, 2.0, 3.0])
    x = radius[:, None] * torch.tensor([[0.6, 0.8], [1.0, 0.0], [0.0, -1.0]])
    one_step = deepfool(Ring(), x, max_iter=1, overshoot=0.02)
    assert not one_step.flipped.any()
    found = deepfool(Ring(), x, max_iter=50, overshoot=0.02)
    assert found.flipped.all() and (found.steps > 1).all()
    norms = found.perturbation.norm(dim=1)
    assert (norms > one_step.perturbation.norm(dim=1)).all()
    np.testing.assert_allclose(norms.numpy(), (radius - 1).numpy(), rtol=0.03)
    assert (Ring()(x + found.perturbation).argmax(dim=1) == 1).all()


def test_dfal_picks_the_unlabelled_points_nearest_the_boundary():
    x0 = np.array([3.0, -0.2, 0.05, 1.0, -2.5, 0.4, -0.01, 5.0])
    inputs = np.stack([x0, np.linspace(-1, 1, len(x0))], axis=1).astype(np.float32)
    ctx = context(ArrayOutputs(model=three_class_linear(), inputs=inputs), len(x0),
                  labelled=[6], needs={"model", "inputs"})
    picks = select("dfal", ctx, 3)
    assert sorted(picks.tolist()) == [1, 2, 5]  # |x₀| = 0.2, 0.05, 0.4; point 6 is labelled
    assert ctx.diagnostics["dfal_unconverged"] == 0.0
    with pytest.raises(ConfigError, match="single-label"):
        select("dfal", context(ctx.outputs, len(x0), needs={"model", "inputs"},
                               task="multilabel"), 3)


class DeadBelowZero(nn.Module):
    """Logits (1 − relu(x₀), 0): class 0 for x₀ < 1, the boundary at x₀ = 1, and no input
    gradient at all for x₀ < 0, where DeepFool cannot move."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([1 - torch.relu(x[:, 0]), torch.zeros(len(x))], dim=1)


def test_dfal_ranks_points_deepfool_cannot_flip_last():
    inputs = np.array([[-3.0, 0], [0.9, 0], [0.2, 0], [0.5, 0]], dtype=np.float32)
    ctx = context(ArrayOutputs(model=DeadBelowZero(), inputs=inputs), 4,
                  needs={"model", "inputs"})
    found = deepfool(DeadBelowZero(), torch.as_tensor(inputs))
    assert found.flipped.tolist() == [False, True, True, True]
    assert found.perturbation[0].norm() == 0  # its accumulated "distance" would rank it first
    assert select("dfal", ctx, 3).tolist() == [1, 3, 2]  # 0.1, 0.5, 0.8 from the boundary
    assert ctx.diagnostics["dfal_unconverged"] == 0.25
    assert select("dfal", ctx, 4).tolist()[-1] == 0


def test_dfal_rejects_bad_parameters_in_one_line():
    for bad in ({"max_iter": 0}, {"overshoot": -1}, {"candidates": 1}, {"batch_size": 0}):
        with pytest.raises(ConfigError, match="dfal"):
            build_strategy({"name": "dfal", **bad})


def test_inputs_must_be_declared_and_served():
    ctx = context(ArrayOutputs(model=three_class_linear()), 4, needs={"model", "inputs"})
    with pytest.raises(ValueError, match="without inputs"):
        ctx.inputs()
    with pytest.raises(SelectionError, match="did not declare"):
        context(ArrayOutputs(inputs=np.zeros((4, 2))), 4, needs={"model"}).inputs()


# --- CDAL ---------------------------------------------------------------------------

def test_contextual_diversity_is_half_the_symmetric_kl_of_the_probabilities():
    p, q = np.array([[0.7, 0.2, 0.1]]), np.array([[0.1, 0.3, 0.6]])
    d = DivergencePoints(p).min_divergence(DivergencePoints(q))
    by_hand = 0.5 * (0.7 * math.log(7) + 0.2 * math.log(2 / 3) + 0.1 * math.log(1 / 6)
                     + 0.1 * math.log(1 / 7) + 0.3 * math.log(3 / 2) + 0.6 * math.log(6))
    assert d[0] == pytest.approx(by_hand, rel=1e-5) == pytest.approx(1.0519862, rel=1e-5)
    assert DivergencePoints(p).min_divergence(DivergencePoints(p))[0] == pytest.approx(0, abs=1e-6)
    # Multi-label: the sum over classes of the Bernoulli symmetric KL, (p − q)(logit p − logit q).
    a, b = np.array([[0.9, 0.5]]), np.array([[0.2, 0.5]])
    bernoulli = 0.5 * (0.9 - 0.2) * (math.log(9) - math.log(0.25))
    assert DivergencePoints(a, "multilabel").min_divergence(
        DivergencePoints(b, "multilabel"))[0] == pytest.approx(bernoulli, rel=1e-5)


def test_cdal_picks_the_most_contextually_different_points_first():
    """Labelled: confident class 0. Unlabelled: near-copies of them, one confident class 2,
    one torn between 0 and 1. Furthest-first takes class 2, then the torn one."""
    rng = np.random.default_rng(0)
    copies = rng.dirichlet([90, 5, 5], size=8)
    probs = np.concatenate([copies, [[0.02, 0.03, 0.95], [0.5, 0.45, 0.05]]]).astype(np.float32)
    ctx = context(ArrayOutputs(probs=probs), len(probs), labelled=[0, 1, 2], needs={"probs"})
    assert select("cdal", ctx, 1).tolist() == [8]
    assert select("cdal", ctx, 2).tolist() == [8, 9]
    assert ctx.diagnostics["cdal_radius"] > 0


def test_furthest_first_matches_a_brute_force_traversal():
    rng = np.random.default_rng(1)
    pool, labelled = rng.dirichlet(np.ones(6), size=300), rng.dirichlet(np.ones(6), size=20)

    def dense(a, b):
        return 0.5 * ((a[:, None] - b[None]) * (np.log(a)[:, None] - np.log(b)[None])).sum(-1)

    nearest, expected = dense(pool, labelled).min(axis=1), []
    for _ in range(25):
        expected.append(int(np.argmax(nearest)))
        nearest = np.minimum(nearest, dense(pool, pool[expected[-1:]])[:, 0])
    picks, radius = furthest_first(DivergencePoints(pool), 25, DivergencePoints(labelled), rng)
    assert picks.tolist() == expected
    assert radius == pytest.approx(nearest.max(), rel=1e-4)


# --- CoreGCN ------------------------------------------------------------------------

def test_factorised_affinity_equals_the_official_dense_adjacency():
    z = torch.rand(40, 6)
    x = torch.nn.functional.normalize(z, dim=1).double().numpy()
    s = x @ x.T - np.eye(40)
    dense = s @ np.diag(1 / s.sum(axis=0)) + np.eye(40)  # official aff_to_adj
    v = torch.randn(40, 3)
    np.testing.assert_allclose((Affinity(z) @ v).numpy(), dense @ v.double().numpy(), atol=1e-5)


def two_regions(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Region A (labelled and unlabelled points) and region B (unlabelled only)."""
    rng = np.random.default_rng(seed)
    a = np.abs(rng.normal([4, 0, 0, 0], 0.5, size=(60, 4)))
    b = np.abs(rng.normal([0, 4, 0, 0], 0.5, size=(40, 4)))
    z = np.concatenate([a, b]).astype(np.float32)
    labelled = np.arange(0, 60, 3)  # a third of region A
    in_b = np.arange(60, 100)
    return z, labelled, in_b


def test_gcn_learns_to_tell_labelled_nodes_from_an_unlabelled_region():
    z, labelled, in_b = two_regions()
    is_labelled = torch.zeros(len(z), dtype=torch.bool)
    is_labelled[labelled] = True
    probs, features = train_gcn(torch.as_tensor(z), is_labelled, seed=0)
    assert probs[labelled].min() > probs[in_b].max()
    assert probs[in_b].max() < 0.1 and features.shape == (len(z), 128 + 1)


def test_coregcn_selection_covers_the_uncovered_region():
    z, labelled, in_b = two_regions()
    ctx = context(ArrayOutputs(embeddings=z), len(z), labelled, needs={"embeddings"})
    picks = select("coregcn", ctx, 3, subset=None)
    assert picks[0] in in_b  # the farthest node from the labelled ones, in GCN features
    assert np.isin(picks, in_b).any()
    assert 0.5 < ctx.diagnostics["coregcn_separation"] <= 1 and ctx.diagnostics["cover_radius"] > 0


# --- Learning Loss ------------------------------------------------------------------

def test_ranking_loss_on_a_hand_example():
    """Pairs (0, 3) and (1, 2): the first is ordered right with gap ξ = 1 (free); the second
    is ordered wrong by 1, costing 1 + ξ. Mean over the pairs: 1."""
    predicted, target = torch.tensor([3.0, 1.0, 0.0, 2.0]), torch.tensor([5.0, 0.0, 1.0, 4.0])
    assert ranking_loss(predicted, target, margin=1.0).item() == pytest.approx(1.0)
    assert ranking_loss(predicted[:1], target[:1]).item() == 0.0


def test_default_taps_are_the_resolution_stages_or_the_embedding():
    resnet = ResNet("resnet18", 3, 10, cifar_stem=True, proj_dim=None, dropout=0.0)
    assert stage_taps(resnet, torch.zeros(1, 3, 32, 32)) == [
        ("body.4", 64), ("body.5", 128), ("body.6", 256), ("body.7", 512)]  # layer1–layer4
    assert stage_taps(SmallCNN(1, 10, width=8, embed_dim=16), torch.zeros(1, 1, 8, 8)) == [
        ("body.5", 8), ("body.9", 16)]
    assert stage_taps(MLP(5, 3, hidden=[7]), torch.zeros(1, 5)) == [("body", 7)]
    assert stage_taps(three_class_linear(), torch.zeros(1, 2)) == [("body", 2)]  # not Sequential


def noisy_band_data(n: int = 400) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Label = [x₀ > 0], except in the band |x₁| > 1 where labels are coin flips: the
    classifier's loss is high there and low elsewhere."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, size=(n, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    noisy = np.abs(x[:, 1]) > 1
    y[noisy] = rng.integers(0, 2, noisy.sum())
    return torch.as_tensor(x), torch.as_tensor(y), noisy


def test_loss_module_trained_with_the_classifier_ranks_high_loss_points_first():
    x, y, noisy = noisy_band_data()
    torch.manual_seed(0)
    model = MLP(2, 2, hidden=[32], dropout=0.0)
    addon = LossPredictionAddon({})
    cfg = TrainerConfig(epochs=30, batch_size=32, lr=1e-2, amp=False)
    train(model, TensorPool(x, y), np.arange(len(x)), "multiclass", cfg, 0,
          torch.device("cpu"), addon=addon)
    assert not any(m._forward_hooks for m in model.modules())  # detached after training
    with torch.no_grad():
        predicted = predicted_losses(model, x, addon.module, addon.tap_names).numpy()
        actual = loss_function("multiclass")(model(x), y).numpy()
    i, j = np.triu_indices(len(x), 1)
    ordered = ((predicted[i] > predicted[j]) == (actual[i] > actual[j]))[actual[i] != actual[j]]
    assert ordered.mean() > 0.7
    assert predicted[noisy].mean() > predicted[~noisy].mean()


def module_grad_norms(addon: LossPredictionAddon, model: MLP, x, y, epoch: int) -> tuple[float, float]:
    """(backbone, module) gradient norms of the add-on's loss alone at ``epoch``."""
    model.zero_grad()
    addon.module.zero_grad()
    per_example = loss_function("multiclass")(model(x), y)
    addon.extra_loss(model, per_example, epoch).backward()
    body = sum(float(p.grad.norm()) for p in model.body.parameters() if p.grad is not None)
    module = sum(float(p.grad.norm()) for p in addon.module.parameters() if p.grad is not None)
    return body, module


def test_module_gradient_stops_reaching_the_backbone_at_the_configured_epoch():
    x, y, _ = noisy_band_data(64)
    torch.manual_seed(0)
    model = MLP(2, 2, hidden=[16], dropout=0.0)
    addon = LossPredictionAddon({}, stop_grad_after=0.6)
    addon.attach(model, x[:1], TrainerConfig(epochs=10))
    assert addon.stop_epoch == 6
    before, module_before = module_grad_norms(addon, model, x, y, epoch=5)
    after, module_after = module_grad_norms(addon, model, x, y, epoch=6)
    addon.detach()
    assert before > 0 and after == 0
    assert module_before > 0 and module_after > 0


def test_module_is_recreated_with_reinit_and_carried_over_without():
    x = torch.zeros(1, 2)
    model = MLP(2, 2, hidden=[4])
    cache: dict = {}
    addon = LossPredictionAddon(cache)
    addon.attach(model, x, TrainerConfig(reinit=True))
    first = [p.detach().clone() for p in addon.parameters()]
    addon.detach()
    addon.attach(model, x, TrainerConfig(reinit=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, addon.parameters(), strict=True))
    addon.detach()
    assert CACHE_KEY not in cache
    addon.attach(model, x, TrainerConfig(reinit=False))
    with torch.no_grad():
        addon.module.out.bias.fill_(3.0)  # "training"
    addon.detach()
    resumed = LossPredictionAddon(cache)  # a new strategy object, as after a resume
    resumed.attach(model, x, TrainerConfig(reinit=False))
    assert resumed.module.out.bias.item() == 3.0
    assert any(m._forward_hooks for m in model.modules())
    resumed.detach()
    assert not any(m._forward_hooks for m in model.modules())


def test_lloss_select_needs_a_trained_module():
    ctx = context(ArrayOutputs(model=three_class_linear(), inputs=np.zeros((4, 2))), 4,
                  needs={"model", "inputs"})
    with pytest.raises(SelectionError, match="no loss-prediction module"):
        select("lloss", ctx, 2)


def test_lloss_resumed_after_a_kill_continues_with_the_checkpointed_module(make_config, tmp_path,
                                                                         monkeypatch):
    """trainer.reinit=false: the module trained in cycle 0 must reach cycle 1's training and
    selection after a kill between the two, exactly as in an uninterrupted run."""
    cfg = make_config(["strategy=lloss", "trainer.reinit=false", "trainer.epochs=2"])
    clean = {**cfg, "results_dir": str(tmp_path / "clean")}
    run_experiment(clean)

    run_until_killed(cfg, monkeypatch, training_call=2)  # during cycle 1's training
    run_experiment(cfg)

    def state(results_dir) -> dict:
        return torch.load(next(Path(results_dir).glob("*/*/state.pt")), weights_only=False)

    resumed, reference = state(cfg["results_dir"]), state(clean["results_dir"])
    assert resumed["picks"].keys() == reference["picks"].keys() >= {"cycle_0", "cycle_1"}
    for key, picks in reference["picks"].items():
        np.testing.assert_array_equal(resumed["picks"][key], picks)
    for name, weights in reference["cache"][CACHE_KEY].items():
        np.testing.assert_array_equal(resumed["cache"][CACHE_KEY][name], weights)


# --- end to end ---------------------------------------------------------------------

@pytest.mark.slow
def test_each_strategy_runs_end_to_end_through_run_py(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    proc = run_cli(["-m", "strategy=dfal,coregcn,cdal,lloss", *FAST, "budget.cycles=1",
                    "trainer.epochs=2", "backbone.width=8", "backbone.embed_dim=32",
                    f"results_dir={tmp_path}"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = pd.concat(pd.read_csv(f) for f in tmp_path.glob("*/*/rows.csv"))
    assert sorted(rows["strategy"].unique()) == ["cdal", "coregcn", "dfal", "lloss"]
    selected = rows[rows["cycle"] == 0]
    assert (selected["n_selected"] == 10).all()
    for column in ("dfal_unconverged", "cdal_radius", "coregcn_separation"):
        assert selected[column].notna().sum() == 1
