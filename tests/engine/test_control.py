"""The online controller holds an aggregate quality floor at low cost."""

from __future__ import annotations

import numpy as np
import pytest

from routerapp.engine import Arm, ControllerState, EngineConfig, controller_observe, rank_paths
from routerapp.engine.control import path_offsets, reference_estimate

# Four buckets of a synthetic goal: success rates of (cheap, dear). The best path averages
# 0.87, so a 0.95 floor asks for 0.8265; all-cheap gives only 0.7575 and all-dear costs 10x.
QUALITY = {"b0": (0.88, 0.90), "b1": (0.60, 0.90), "b2": (0.85, 0.88), "b3": (0.70, 0.80)}
BEST_MEAN = float(np.mean([max(q) for q in QUALITY.values()]))


def run_stream(
    config: EngineConfig, *, seed: int, decisions: int = 6000, tell_path: bool = False
) -> tuple[float, float]:
    """(achieved quality, cheap share) of an online stream with bandit feedback."""
    quality, cheap, _ = run_stream_state(
        config, seed=seed, decisions=decisions, tell_path=tell_path
    )
    return quality, cheap


def run_stream_state(
    config: EngineConfig, *, seed: int, decisions: int = 6000, tell_path: bool = False
) -> tuple[float, float, ControllerState]:
    """`run_stream` plus the final controller state."""
    rng = np.random.default_rng(seed)
    buckets = list(QUALITY)
    evidence = {b: np.zeros((2, 2)) for b in buckets}  # [path, (successes, failures)]
    state = ControllerState()
    total_value = 0.0
    cheap = 0
    for _ in range(decisions):
        bucket = buckets[int(rng.integers(len(buckets)))]
        goal = sum(evidence.values())
        arms = [
            Arm(
                path_id=name,
                expected_cost=cost,
                successes=evidence[bucket][i, 0],
                failures=evidence[bucket][i, 1],
                goal_successes=goal[i, 0],
                goal_failures=goal[i, 1],
            )
            for i, (name, cost) in enumerate((("cheap", 0.001), ("dear", 0.010)))
        ]
        ranking = rank_paths(arms, config=config, rng=rng, state=state, bucket=bucket)
        index = 0 if ranking.order[0] == "cheap" else 1
        value = float(rng.random() < QUALITY[bucket][index])
        evidence[bucket][index] += (value, 1.0 - value)
        state = controller_observe(
            state,
            config=config,
            value=value,
            reference_quality=ranking.reference_quality,
            bucket=bucket,
            chosen_path=ranking.order[0] if tell_path else None,
        )
        total_value += value
        cheap += index == 0
    return total_value / decisions, cheap / decisions, state


def test_quality_target_is_held_on_average_over_seeds() -> None:
    # The service always passes `chosen_path`, so the controller re-estimates the best fixed
    # path itself (within-bucket offsets). Floor 0.95 * 0.87 = 0.8265. Over ten seeds the mean
    # must reach the floor within 0.01 (the sd of a 10 x 6,000-call mean is ~0.0015 from
    # outcomes alone; the rest is the controller's own error) and no seed may fall more than
    # 0.04 below it: single runs do miss it (seeds 15-17 end near 0.79-0.81, see
    # docs/engine.md), which is why one seed proves nothing here. It must also save money.
    floor = 0.95 * BEST_MEAN
    runs = [
        run_stream(EngineConfig(quality_target=0.95), seed=seed, tell_path=True)
        for seed in range(10, 20)
    ]
    qualities = [quality for quality, _ in runs]
    assert np.mean(qualities) >= floor - 0.01
    assert min(qualities) >= floor - 0.04
    assert np.mean([cheap for _, cheap in runs]) > 0.35


def test_path_offsets_compare_paths_inside_buckets() -> None:
    # Routing sends the cheap path to the easy bucket and the dear one to the hard bucket, so
    # pooled rates (cheap 0.88, dear 0.62) rank cheap first; within each bucket dear is better.
    evidence = {
        "easy": {"cheap": (100.0, 90.0), "dear": (10.0, 10.0)},
        "hard": {"cheap": (10.0, 3.0), "dear": (100.0, 60.0)},
    }
    offsets = path_offsets(evidence)
    assert offsets["dear"] > offsets["cheap"] + 0.5
    buckets = {"easy": (110, 0.0), "hard": (110, 0.0)}
    total, rates = reference_estimate(buckets, evidence, offsets, 5.0)
    # The best fixed path is dear: ~0.97 on easy and ~0.6 on hard.
    assert rates["easy"] > 0.9
    assert 0.55 < rates["hard"] < 0.65
    assert total == pytest.approx(110 * (rates["easy"] + rates["hard"]))


def test_offsets_read_a_rarely_tried_path_as_worse_in_easy_buckets() -> None:
    # Easy buckets: the cheap path is right 45 times out of 50, the dear one once out of once.
    # Smoothing towards 1/2 makes one success out of one (0.75) look worse than 0.9: the
    # early negative offsets behind the collapse mode of docs/engine.md.
    easy = {f"b{i}": {"cheap": (50.0, 45.0), "dear": (1.0, 1.0)} for i in range(6)}
    assert path_offsets(easy)["dear"] < 0.0


def test_ranking_takes_the_best_path_from_the_controller_offsets() -> None:
    arms = [
        Arm(
            path_id="cheap",
            expected_cost=1.0,
            successes=3,
            failures=7,
            goal_successes=93,
            goal_failures=17,
        ),
        Arm(
            path_id="dear",
            expected_cost=10.0,
            successes=60,
            failures=40,
            goal_successes=70,
            goal_failures=40,
        ),
    ]
    state = ControllerState(offsets={"cheap": 0.0, "dear": 1.2})
    ranking = rank_paths(
        arms, config=EngineConfig(), rng=np.random.default_rng(0), state=state, bucket="hard"
    )
    assert ranking.reference_quality == pytest.approx(ranking.details["means"]["dear"])
    plain = rank_paths(arms, config=EngineConfig(), rng=np.random.default_rng(0), bucket="hard")
    assert plain.reference_quality == pytest.approx(plain.details["means"]["cheap"])


def test_a_fixed_generous_tolerance_misses_the_floor() -> None:
    # Without the controller (gain 0) a tolerance of 0.5 sends nearly everything cheap and
    # ends near 0.76, far under the floor: this is why the tolerance is steered online.
    config = EngineConfig(quality_target=0.5, controller_gain=0.0)
    quality, _ = run_stream(config, seed=11, decisions=3000)
    assert quality < 0.95 * BEST_MEAN - 0.03


def test_deficit_shrinks_the_tolerance_and_surplus_grows_it() -> None:
    config = EngineConfig(quality_target=0.95)
    start = ControllerState()
    worse = controller_observe(start, config=config, value=0.0, reference_quality=0.9)
    better = controller_observe(start, config=config, value=1.0, reference_quality=0.9)
    assert worse.effective_tolerance(config) < start.effective_tolerance(config)
    assert better.effective_tolerance(config) > start.effective_tolerance(config)


def test_past_outcomes_are_judged_against_the_latest_reference() -> None:
    # 10 outcomes of 0.9 judged against a reference of 0.5 look like a surplus; once the bucket's
    # best path is known to be 1.0, the same outcomes are re-based to a deficit.
    config = EngineConfig(quality_target=1.0, controller_gain=0.0)
    state = ControllerState()
    for _ in range(10):
        state = controller_observe(
            state, config=config, value=0.9, reference_quality=0.5, bucket="b"
        )
    assert state.deficit == pytest.approx(10 * (0.5 - 0.9))
    state = controller_observe(state, config=config, value=1.0, reference_quality=1.0, bucket="b")
    assert state.deficit == pytest.approx(11 * 1.0 - (9.0 + 1.0))


def test_deficit_is_clipped_so_a_long_surplus_cannot_be_spent_later() -> None:
    config = EngineConfig(quality_target=0.9, controller_gain=0.01, tolerance_max=0.5)
    state = ControllerState()
    for _ in range(1000):
        state = controller_observe(state, config=config, value=1.0, reference_quality=0.5)
    assert state.effective_tolerance(config) == pytest.approx(0.5)
    assert state.deficit == pytest.approx((0.1 - 0.5) / 0.01)


def test_initial_tolerance_is_one_minus_the_target() -> None:
    config = EngineConfig(quality_target=0.9)
    assert ControllerState.from_dict(None).effective_tolerance(config) == pytest.approx(0.1)
    assert ControllerState.from_dict({}) == ControllerState()


def test_controller_state_round_trips_through_json() -> None:
    import json

    state = ControllerState(
        deficit=-3.5,
        observations=12,
        value_sum=9.5,
        reference_sum=10.1,
        buckets={"": (2, 0.8), "task_type:code": (10, 0.9)},
        evidence={"task_type:code": {"1": (6.0, 5.0), "2": (4.0, 2.5)}},
        offsets={"1": 0.0, "2": -0.7},
        reference_total=9.2,
        reference={"task_type:code": (3.0, 2.0)},
    )
    assert ControllerState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


def test_other_objectives_only_count_outcomes() -> None:
    state = controller_observe(
        ControllerState(),
        config=EngineConfig(objective="success"),
        value=1.0,
        reference_quality=0.8,
    )
    assert state.deficit == 0.0
    assert state.observations == 1
