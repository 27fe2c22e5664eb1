"""Outcome deltas, decay and hierarchical backoff."""

from __future__ import annotations

import numpy as np
import pytest

from routerapp.engine import (
    Arm,
    EngineConfig,
    allocation_shares,
    decay,
    decay_factor,
    outcome_delta,
    posterior_parameters,
)


def test_an_outcome_adds_its_value_to_successes_and_the_rest_to_failures() -> None:
    assert outcome_delta(0.75) == (0.75, 0.25)
    assert outcome_delta(1.0) == (1.0, 0.0)


def test_replacing_an_outcome_moves_the_counts_by_the_difference() -> None:
    assert outcome_delta(1.0, previous=0.0) == (1.0, -1.0)
    assert outcome_delta(0.25, previous=0.75) == (-0.5, 0.5)


def test_reporting_the_same_outcome_twice_changes_nothing() -> None:
    assert outcome_delta(0.6, previous=0.6) == (0.0, 0.0)


def test_evidence_halves_after_one_half_life() -> None:
    assert decay_factor(half_life_seconds=3600, elapsed_seconds=3600) == pytest.approx(0.5)
    assert decay((8.0, 4.0), half_life_seconds=60, elapsed_seconds=120) == pytest.approx((2.0, 1.0))


def test_no_half_life_means_no_decay() -> None:
    assert decay_factor(half_life_seconds=None, elapsed_seconds=1e9) == 1.0


def test_decay_in_steps_equals_decay_at_once() -> None:
    once = decay((10.0, 5.0), half_life_seconds=100, elapsed_seconds=250)
    step = decay((10.0, 5.0), half_life_seconds=100, elapsed_seconds=100)
    twice = decay(step, half_life_seconds=100, elapsed_seconds=150)
    assert twice == pytest.approx(once)


def test_clock_skew_does_not_grow_evidence() -> None:
    assert decay_factor(half_life_seconds=10, elapsed_seconds=-5) == 1.0


def test_decay_forgets_an_old_winner() -> None:
    # "old" was great long ago; "new" is a bit worse but recent. Without decay the old evidence
    # keeps "old" first; after 10 half-lives it weighs 1/1024 and "new" takes over.
    old, new = (900.0, 100.0), (85.0, 15.0)
    config = EngineConfig(objective="success", exploration_floor=0.0)

    def share_of_new(elapsed: float) -> float:
        s, f = decay(old, half_life_seconds=86_400, elapsed_seconds=elapsed)
        arms = [
            Arm(path_id="old", successes=s, failures=f, goal_successes=s, goal_failures=f),
            Arm(
                path_id="new",
                successes=new[0],
                failures=new[1],
                goal_successes=new[0],
                goal_failures=new[1],
            ),
        ]
        return allocation_shares(arms, config=config, rng=np.random.default_rng(0))["new"]

    assert share_of_new(0.0) < 0.1
    assert share_of_new(10 * 86_400) > 0.6


def test_sparse_bucket_backs_off_to_the_goal_posterior() -> None:
    # 2 outcomes in the bucket (both failures), 1,000 goal-wide at 80%: the bucket's mean stays
    # near the goal rate (0.8 * 20 / (2 + 2 + 20) ~ 0.67) instead of its own 1/4.
    arm = Arm(path_id="p", successes=0, failures=2, goal_successes=800, goal_failures=202)
    config = EngineConfig(backoff_strength=20.0, prior_strength=2.0)  # prior Beta(1, 1)
    alpha, beta = posterior_parameters([arm], config=config)["p"]
    assert alpha / (alpha + beta) == pytest.approx((1 + 16) / (1 + 2 + 1 + 20), abs=1e-9)
    assert alpha / (alpha + beta) > 0.6


def test_rich_bucket_stands_on_its_own() -> None:
    # 2,000 outcomes at 30% in the bucket; the other buckets' 80% lends only 20 pseudo-outcomes.
    arm = Arm(path_id="p", successes=600, failures=1400, goal_successes=4600, goal_failures=2400)
    alpha, beta = posterior_parameters([arm], config=EngineConfig(backoff_strength=20.0))["p"]
    assert alpha / (alpha + beta) == pytest.approx(0.30, abs=0.01)


def test_goal_wide_call_borrows_nothing() -> None:
    arm = Arm(path_id="p", successes=3, failures=1, goal_successes=3, goal_failures=1)
    # The default prior (strength 2, one path: Beta(1, 1)) plus the bucket's own evidence.
    assert posterior_parameters([arm], config=EngineConfig())["p"] == (4.0, 2.0)
