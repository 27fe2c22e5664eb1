"""Weights are priors: with no data, Thompson allocation reproduces the weights."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from routerapp.engine import Arm, EngineConfig, priors_from_weights, rank_paths
from routerapp.engine.priors import win_probabilities


def measured_shares(weights: list[float], *, seed: int, decisions: int = 10_000) -> list[float]:
    arms = [Arm(path_id=f"p{i}", weight=w) for i, w in enumerate(weights)]
    config = EngineConfig(objective="success")
    rng = np.random.default_rng(seed)
    counts = Counter(rank_paths(arms, config=config, rng=rng).order[0] for _ in range(decisions))
    return [counts[f"p{i}"] / decisions for i in range(len(weights))]


@pytest.mark.parametrize(
    "weights",
    [[1, 1], [3, 1], [0.5, 0.3, 0.2], [0.7, 0.2, 0.1], [1, 2, 3, 4, 5], [5, 1, 1, 1]],
)
def test_allocation_matches_weights_with_no_data(weights: list[float]) -> None:
    shares = measured_shares(weights, seed=7)
    expected = np.asarray(weights) / sum(weights)
    # 2 points is the bound; binomial sd over 10,000 decisions is <= 0.5 point, so the
    # bound is ~4 sd plus the solver's 0.02-point error.
    assert np.max(np.abs(np.asarray(shares) - expected)) < 0.02


def test_equal_weights_give_the_uniform_prior() -> None:
    assert priors_from_weights([2, 2, 2], strength=2.0) == [(1.0, 1.0)] * 3


def test_priors_keep_the_requested_strength() -> None:
    for alpha0, beta0 in priors_from_weights([0.6, 0.3, 0.1], strength=5.0):
        assert alpha0 + beta0 == pytest.approx(5.0)


def test_solved_priors_reproduce_the_weights_by_quadrature() -> None:
    weights = [0.6, 0.25, 0.1, 0.05]
    priors = priors_from_weights(weights, strength=2.0)
    means = [alpha / (alpha + beta) for alpha, beta in priors]
    assert win_probabilities(means, 2.0) == pytest.approx(weights, abs=1e-3)


def test_heavier_weight_gets_a_more_optimistic_prior() -> None:
    (a_heavy, b_heavy), (a_light, b_light) = priors_from_weights([0.8, 0.2], strength=2.0)
    assert a_heavy / (a_heavy + b_heavy) > a_light / (a_light + b_light)


def test_explicit_prior_overrides_the_weight() -> None:
    # Same weight, but an explicit Beta(90, 10) vs the weight-derived Beta(1, 1): the explicit
    # path wins ~all decisions (P(Beta(1,1) > Beta(90,10)) ~ 10%).
    arms = [Arm(path_id="a", weight=1.0, alpha0=90.0, beta0=10.0), Arm(path_id="b", weight=1.0)]
    rng = np.random.default_rng(3)
    config = EngineConfig(objective="success", exploration_floor=0.0)
    wins = sum(rank_paths(arms, config=config, rng=rng).order[0] == "a" for _ in range(2000))
    assert wins / 2000 > 0.85


@pytest.mark.parametrize("strength", [2.0, 10.0, 50.0])
def test_solved_priors_reproduce_the_weights_at_every_strength(strength: float) -> None:
    # At strength 10 (the default) the fixed step used to oscillate: weights 1..5 ended 9
    # points off. The quadrature shares of the solved priors must match the targets.
    weights = [1.0, 2.0, 3.0, 4.0, 5.0]
    priors = priors_from_weights(weights, strength=strength)
    means = [alpha / (alpha + beta) for alpha, beta in priors]
    expected = np.asarray(weights) / sum(weights)
    assert win_probabilities(means, strength) == pytest.approx(expected.tolist(), abs=1e-3)
