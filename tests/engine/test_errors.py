"""Every bad input of issue #2 item 10 raises a typed, clear EngineError, never a NaN decision."""

from __future__ import annotations

import math

import numpy as np
import pytest

from routerapp.engine import (
    Arm,
    ControllerState,
    DuplicatePath,
    EngineConfig,
    EngineError,
    InvalidConfig,
    InvalidCost,
    InvalidEvidence,
    InvalidOutcome,
    InvalidWeight,
    NoEligiblePaths,
    UnknownPath,
    arms_observe,
    controller_observe,
    decay_factor,
    outcome_delta,
    posterior_summary,
    priors_from_weights,
    rank_paths,
)

PRICED = EngineConfig(objective="cost_at_quality")
SUCCESS = EngineConfig(objective="success")


def rank(arms: list[Arm], config: EngineConfig = SUCCESS) -> object:
    return rank_paths(arms, config=config, rng=np.random.default_rng(0))


def test_no_paths_is_rejected() -> None:
    with pytest.raises(NoEligiblePaths, match="no eligible paths"):
        rank([])


@pytest.mark.parametrize("weight", [-1.0, math.nan, math.inf, 10**400])
@pytest.mark.parametrize("paths", [2, 33])  # the plain-float and the numpy kernel
def test_bad_weight_is_rejected_naming_the_path(weight: float, paths: int) -> None:
    others = [Arm(path_id=f"p{i}") for i in range(paths - 1)]
    with pytest.raises(InvalidWeight, match="path b"):
        rank([*others, Arm(path_id="b", weight=weight)])


def test_all_zero_weights_are_rejected() -> None:
    with pytest.raises(InvalidWeight, match="all weights are zero"):
        rank([Arm(path_id="a", weight=0.0), Arm(path_id="b", weight=0.0)])
    with pytest.raises(InvalidWeight):
        priors_from_weights([0, 0], strength=2.0)


def test_one_zero_weight_among_positive_ones_is_fine() -> None:
    ranking = rank_paths(
        [Arm(path_id="a", weight=0.0), Arm(path_id="b")],
        config=SUCCESS,
        rng=np.random.default_rng(0),
    )
    assert set(ranking.order) == {"a", "b"}


@pytest.mark.parametrize("value", [-0.1, 1.5, math.nan])
def test_outcome_outside_unit_interval_is_rejected(value: float) -> None:
    with pytest.raises(InvalidOutcome, match="outcome value"):
        outcome_delta(value)
    with pytest.raises(InvalidOutcome):
        outcome_delta(0.5, previous=value)
    with pytest.raises(InvalidOutcome):
        controller_observe(ControllerState(), config=PRICED, value=value, reference_quality=0.5)


def test_reference_quality_outside_unit_interval_is_rejected() -> None:
    with pytest.raises(InvalidOutcome, match="reference_quality"):
        controller_observe(ControllerState(), config=PRICED, value=1.0, reference_quality=2.0)


def test_unknown_path_is_rejected_listing_the_known_ones() -> None:
    with pytest.raises(UnknownPath, match="'zzz'.*a, b"):
        arms_observe([Arm(path_id="a"), Arm(path_id="b")], path_id="zzz", value=1.0)


def test_duplicate_path_is_rejected() -> None:
    with pytest.raises(DuplicatePath, match="path a"):
        rank([Arm(path_id="a"), Arm(path_id="a")])


@pytest.mark.parametrize("field", ["successes", "failures", "goal_successes", "goal_failures"])
@pytest.mark.parametrize("count", [1e12, -1.0, math.nan, math.inf, 10**400])
def test_absurd_counts_are_rejected(field: str, count: float) -> None:
    with pytest.raises(InvalidEvidence, match=f"{field} of path b"):
        rank([Arm(path_id="a"), Arm(path_id="b", **{field: count})])


def test_all_zero_prices_are_rejected_under_a_cost_aware_objective() -> None:
    arms = [Arm(path_id="a"), Arm(path_id="b")]
    for objective in ("cost_at_quality", "utility"):
        with pytest.raises(InvalidCost, match="every expected cost is zero"):
            rank(arms, EngineConfig(objective=objective))
    rank(arms, SUCCESS)  # success does not need prices


def test_one_free_path_among_priced_ones_is_fine() -> None:
    ranking = rank([Arm(path_id="free"), Arm(path_id="paid", expected_cost=0.01)], PRICED)
    assert set(ranking.order) == {"free", "paid"}


@pytest.mark.parametrize("cost", [-0.01, math.nan, math.inf])
def test_bad_cost_is_rejected_under_any_objective(cost: float) -> None:
    for config in (PRICED, SUCCESS):
        with pytest.raises(InvalidCost, match="path b"):
            rank(
                [Arm(path_id="a", expected_cost=1.0), Arm(path_id="b", expected_cost=cost)], config
            )


@pytest.mark.parametrize(
    ("alpha0", "beta0"), [(0.0, 1.0), (-1.0, 1.0), (math.nan, 1.0), (1.0, None), (1e12, 1.0)]
)
def test_bad_explicit_prior_is_rejected(alpha0: float, beta0: float | None) -> None:
    with pytest.raises(InvalidEvidence, match="path a"):
        rank([Arm(path_id="a", alpha0=alpha0, beta0=beta0)])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"objective": "cheapest"},
        {"quality_target": 1.5},
        {"exploration_floor": -0.1},
        {"prior_strength": 0.0},
        {"backoff_strength": math.nan},
        {"half_life_seconds": 0.0},
    ],
)
def test_bad_config_is_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidConfig):
        EngineConfig(**kwargs)  # type: ignore[arg-type]


def test_bad_half_life_is_rejected() -> None:
    with pytest.raises(InvalidConfig, match="half_life_seconds"):
        decay_factor(half_life_seconds=-5, elapsed_seconds=1)


def test_bad_posterior_parameters_are_rejected() -> None:
    with pytest.raises(InvalidEvidence, match="alpha"):
        posterior_summary(0.0, 1.0)
    with pytest.raises(InvalidEvidence, match="beta"):
        posterior_summary(1.0, 1e12)


def test_corrupt_controller_state_is_rejected() -> None:
    with pytest.raises(InvalidConfig):
        ControllerState.from_dict({"deficit": "lots"})
    with pytest.raises(InvalidConfig):
        ControllerState.from_dict({"deficit": math.nan})


def test_every_engine_error_is_a_value_error() -> None:
    assert issubclass(EngineError, ValueError)
    for error in (
        NoEligiblePaths,
        InvalidWeight,
        InvalidOutcome,
        InvalidEvidence,
        InvalidCost,
        UnknownPath,
        DuplicatePath,
        InvalidConfig,
    ):
        assert issubclass(error, EngineError)
