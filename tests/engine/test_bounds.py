"""The engine's ranges are defined once (`Bounds`) and enforced by its checks; `arm_check` tells
one arm's out-of-range numbers apart so a caller can leave that path out."""

from __future__ import annotations

import math

import numpy as np
import pytest

from routerapp.engine import (
    CONFIG_BOUNDS,
    MAX_EVIDENCE,
    PRIOR_BOUNDS,
    WEIGHT_BOUNDS,
    Arm,
    Bounds,
    EngineConfig,
    InvalidConfig,
    InvalidEvidence,
    InvalidWeight,
    arm_check,
    decay_factor,
    rank_paths,
)


@pytest.mark.parametrize("value", [0.0, 0.5, 1, 1.0])
def test_a_bound_holds_finite_numbers_in_its_closed_range(value: float) -> None:
    assert value in Bounds(0.0, 1.0)


@pytest.mark.parametrize("value", [-0.1, 1.01, math.nan, math.inf, True, "0.5", None, 10**400])
def test_a_bound_refuses_everything_else(value: object) -> None:
    assert value not in Bounds(0.0, 1.0)


def test_an_open_ended_bound_still_refuses_infinity() -> None:
    half_life = CONFIG_BOUNDS["half_life_seconds"]
    assert 1e30 in half_life
    assert math.inf not in half_life
    with pytest.raises(InvalidConfig):
        EngineConfig(half_life_seconds=math.inf)
    with pytest.raises(InvalidConfig):
        decay_factor(half_life_seconds=math.inf, elapsed_seconds=1.0)


def test_arm_check_names_the_field_of_a_1e23_prior() -> None:
    with pytest.raises(InvalidEvidence, match=r"alpha0 of path a must be in \[0\.001, 1e\+10\]"):
        arm_check(Arm(path_id="a", alpha0=1e23, beta0=1.0))


@pytest.mark.parametrize(
    ("arm", "error"),
    [
        (Arm(path_id="a", weight=WEIGHT_BOUNDS.high * 10), InvalidWeight),
        (Arm(path_id="a", alpha0=1.0), InvalidEvidence),
        (Arm(path_id="a", alpha0=PRIOR_BOUNDS.low / 10, beta0=1.0), InvalidEvidence),
        (Arm(path_id="a", successes=MAX_EVIDENCE * 10), InvalidEvidence),
    ],
)
def test_arm_check_raises_what_rank_paths_raises(arm: Arm, error: type[Exception]) -> None:
    with pytest.raises(error):
        arm_check(arm)
    with pytest.raises(error):
        rank_paths(
            [arm, Arm(path_id="b")],
            config=EngineConfig(objective="success"),
            rng=np.random.default_rng(0),
        )


def test_arm_check_accepts_the_edges_of_every_range() -> None:
    arm_check(
        Arm(
            path_id="a",
            weight=WEIGHT_BOUNDS.high,
            alpha0=PRIOR_BOUNDS.low,
            beta0=PRIOR_BOUNDS.high,
            successes=MAX_EVIDENCE,
        )
    )
    arm_check(Arm(path_id="b", weight=0.0))
