"""rank_paths: learning, objectives, exploration floor, ranking shape, determinism."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from routerapp.engine import (
    Arm,
    ControllerState,
    EngineConfig,
    allocation_shares,
    arms_observe,
    posterior_parameters,
    rank_paths,
)


def simulate(
    arms: list[Arm], quality: dict[str, float], *, config: EngineConfig, seed: int, decisions: int
) -> Counter[str]:
    """Online loop with Bernoulli outcomes; returns how often each path was chosen."""
    rng = np.random.default_rng(seed)
    chosen: Counter[str] = Counter()
    current = tuple(arms)
    for _ in range(decisions):
        path = rank_paths(current, config=config, rng=rng).order[0]
        chosen[path] += 1
        value = float(rng.random() < quality[path])
        current = arms_observe(current, path_id=path, value=value)
    return chosen


def test_converges_to_the_better_path() -> None:
    arms = [Arm(path_id="good"), Arm(path_id="bad")]
    config = EngineConfig(objective="success")
    chosen = simulate(arms, {"good": 0.8, "bad": 0.6}, config=config, seed=1, decisions=2000)
    # A 20-point gap is found within ~100 calls; over 2,000 the bad path keeps only its 1%
    # floor plus the early exploration, far below 10%.
    assert chosen["bad"] / 2000 < 0.10


def test_cost_at_quality_sends_equal_quality_traffic_to_the_cheaper_path() -> None:
    arms = [
        Arm(
            path_id="cheap",
            expected_cost=0.001,
            successes=400,
            failures=100,
            goal_successes=400,
            goal_failures=100,
        ),
        Arm(
            path_id="dear",
            expected_cost=0.010,
            successes=400,
            failures=100,
            goal_successes=400,
            goal_failures=100,
        ),
    ]
    shares = allocation_shares(
        arms, config=EngineConfig(), rng=np.random.default_rng(2), draws=20_000
    )
    # Equal posteriors: the dear path wins only when its sample beats the cheap one by more than
    # tolerance (0.05) x 0.9 normalised cost saved, ~1.4 sd of the difference: ~9% + floor.
    assert shares["cheap"] > 0.85


def test_success_objective_ignores_cost() -> None:
    arms = [
        Arm(path_id="cheap", expected_cost=0.001, successes=10, failures=90),
        Arm(path_id="dear", expected_cost=1.0, successes=90, failures=10),
    ]
    ranking = rank_paths(
        arms, config=EngineConfig(objective="success"), rng=np.random.default_rng(0)
    )
    assert ranking.order[0] == "dear"


def test_utility_trades_quality_for_cost_at_lambda() -> None:
    # 5 points better for 100x the price: worth it at lambda 0.01, not at lambda 0.5.
    arms = [
        Arm(path_id="cheap", expected_cost=0.01, successes=850, failures=150),
        Arm(path_id="dear", expected_cost=1.0, successes=900, failures=100),
    ]
    rng = np.random.default_rng(4)
    low = allocation_shares(
        arms, config=EngineConfig(objective="utility", utility_lambda=0.01), rng=rng
    )
    high = allocation_shares(
        arms, config=EngineConfig(objective="utility", utility_lambda=0.5), rng=rng
    )
    assert low["dear"] > 0.9
    assert high["cheap"] > 0.9


def test_every_path_keeps_the_exploration_floor() -> None:
    arms = [
        Arm(path_id="best", successes=1e6, failures=1),
        Arm(path_id="worst", successes=1, failures=1e6),
        Arm(path_id="worse", successes=1, failures=1e6),
    ]
    config = EngineConfig(objective="success", exploration_floor=0.05)
    rng = np.random.default_rng(5)
    counts = Counter(rank_paths(arms, config=config, rng=rng).order[0] for _ in range(10_000))
    # Floor 5%: expected exactly 5% each for the hopeless paths; binomial sd 0.22 point, so 4.3%
    # is ~3 sd below.
    assert counts["worst"] / 10_000 > 0.043
    assert counts["worse"] / 10_000 > 0.043
    shares = allocation_shares(arms, config=config, rng=rng)
    assert shares["worst"] == pytest.approx(0.05, abs=1e-9)


def test_forced_exploration_is_reported_as_the_reason() -> None:
    arms = [
        Arm(path_id="a", successes=1e6, failures=1),
        Arm(path_id="b", successes=1, failures=1e6),
    ]
    config = EngineConfig(objective="success", exploration_floor=0.5)  # eps = 1: always forced
    reasons = {
        rank_paths(arms, config=config, rng=np.random.default_rng(s)).reason for s in range(20)
    }
    assert reasons == {"exploration"}


def test_ranking_lists_every_path_with_its_sample_and_a_json_explanation() -> None:
    arms = [
        Arm(path_id=p, expected_cost=c, successes=s, failures=5, goal_successes=s, goal_failures=5)
        for p, c, s in (("a", 0.01, 5), ("b", 0.02, 9), ("c", 0.03, 1))
    ]
    ranking = rank_paths(
        arms,
        config=EngineConfig(),
        rng=np.random.default_rng(0),
        state=ControllerState(deficit=-12.5),
        bucket="complexity:simple",
    )
    assert sorted(ranking.order) == ["a", "b", "c"]
    assert set(ranking.samples) == {"a", "b", "c"}
    assert ranking.objective == "cost_at_quality"
    assert ranking.bucket == "complexity:simple"
    assert ranking.reason in {"thompson", "exploration"}
    # tolerance = (1 - 0.95) - controller_gain * (-12.5)
    gain = EngineConfig().controller_gain
    assert ranking.details["tolerance"] == pytest.approx(0.05 + 12.5 * gain)
    assert ranking.reference_quality == pytest.approx(max(ranking.details["means"].values()))
    json.dumps(ranking.details)


def test_single_path_is_ranked_alone() -> None:
    ranking = rank_paths(
        [Arm(path_id="only")],
        config=EngineConfig(objective="success"),
        rng=np.random.default_rng(0),
    )
    assert ranking.order == ("only",)
    assert ranking.reason == "only_path"


def test_same_seed_gives_the_same_ranking() -> None:
    arms = [
        Arm(path_id=str(i), expected_cost=0.01 * (i + 1), successes=i, failures=3) for i in range(5)
    ]
    first = rank_paths(arms, config=EngineConfig(), rng=np.random.default_rng(42))
    second = rank_paths(arms, config=EngineConfig(), rng=np.random.default_rng(42))
    assert first == second


def test_level_sharing_lends_the_bucket_level_plus_the_usual_gap() -> None:
    # An easy bucket: cheap 95/100 here. Dear has 1 outcome here and is 10 points better than
    # cheap elsewhere (0.80 vs 0.70). Independent backoff lends dear its pooled 0.80; level
    # sharing lends ~0.95 + the usual gap (~0.97): (1 + 1 + 5 x 0.968) / 8 ~ 0.855 vs 0.75.
    arms = [
        Arm(
            path_id="cheap",
            successes=95,
            failures=5,
            goal_successes=95 + 700,
            goal_failures=5 + 300,
        ),
        Arm(path_id="dear", successes=1, failures=0, goal_successes=1 + 800, goal_failures=200),
    ]
    # Beta(1, 1) priors, as the numbers in the comment above assume.
    independent = posterior_parameters(
        arms, config=EngineConfig(level_sharing=0.0, prior_strength=2.0)
    )
    shared = posterior_parameters(arms, config=EngineConfig(level_sharing=1.0, prior_strength=2.0))

    def mean(pair: tuple[float, float]) -> float:
        return pair[0] / (pair[0] + pair[1])

    assert mean(independent["dear"]) == pytest.approx((2 + 5 * 0.8) / 8)
    assert mean(shared["dear"]) == pytest.approx(0.855, abs=0.005)


def test_many_paths_rank_like_few_paths() -> None:
    # 20 paths take the vectorised kernel; the posterior must be the same formula.
    arms = [
        Arm(
            path_id=str(i),
            successes=i,
            failures=20 - i,
            goal_successes=2 * i,
            goal_failures=40 - 2 * i,
        )
        for i in range(20)
    ]
    config = EngineConfig(backoff_strength=10.0, level_sharing=0.0)
    params = posterior_parameters(arms, config=config)
    small = posterior_parameters(arms[:3], config=config)
    for path_id in ("0", "1", "2"):
        # Priors differ (solved among 20 vs 3 equal weights: both Beta(1, 1)); evidence equal.
        assert params[path_id] == pytest.approx(small[path_id])


def test_allocation_shares_sum_to_one() -> None:
    arms = [Arm(path_id=str(i), expected_cost=1.0 + i, successes=i, failures=2) for i in range(4)]
    shares = allocation_shares(arms, config=EngineConfig(), rng=np.random.default_rng(0))
    assert sum(shares.values()) == pytest.approx(1.0)
