"""Shadow observations of the baseline: `controller_observe_reference` (issue 11)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from routerapp.engine import (
    ControllerState,
    EngineConfig,
    InvalidConfig,
    InvalidOutcome,
    controller_observe,
    controller_observe_reference,
)
from routerapp.engine.control import (
    REFERENCE_MARGIN_Z,
    path_offsets,
    reference_estimate,
    reference_standard_error,
)

CONFIG = EngineConfig(quality_target=0.95)


def routed(outcomes: list[tuple[str, str, float]]) -> ControllerState:
    """The controller after first outcomes (bucket, chosen path, value) of routed calls."""
    state = ControllerState()
    for bucket, path, value in outcomes:
        state = controller_observe(
            state,
            config=CONFIG,
            value=value,
            reference_quality=0.5,
            bucket=bucket,
            chosen_path=path,
        )
    return state


def unlucky_dear() -> ControllerState:
    # Bucket "a": both paths well observed, dear 0.9 vs cheap 0.7 (dear is the best path).
    # Bucket "b": cheap 40 of 50; dear tried twice and failed both times (adaptive stopping:
    # an unlucky start is why it was not tried again), so its rate there is read low.
    outcomes = [("a", "cheap", float(i % 10 < 7)) for i in range(100)]
    outcomes += [("a", "dear", float(i % 10 < 9)) for i in range(100)]
    outcomes += [("b", "cheap", float(i % 5 < 4)) for i in range(50)]
    outcomes += [("b", "dear", 0.0), ("b", "dear", 0.0)]
    return routed(outcomes)


def test_shadow_observations_raise_a_reference_read_low_from_unlucky_calls() -> None:
    state = unlucky_dear()
    _, rates = reference_estimate(
        state.buckets, state.evidence, state.offsets, CONFIG.backoff_strength
    )
    low = rates["b"]
    assert low < 0.75  # below cheap's 0.8 in the bucket, though dear is ~2 logits better
    for _ in range(20):  # 20 shadows in "b": the baseline was right 19 times
        state = controller_observe_reference(state, value=1.0, config=CONFIG, bucket="b")
    state = controller_observe_reference(state, value=0.0, config=CONFIG, bucket="b")
    assert state.reference["b"] == (21.0, 20.0)
    rate = state.buckets["b"][1]
    assert rate > low + 0.1
    # The 21 observations join dear's own 2 in the bucket, shrunk towards the same target.
    n, v = state.evidence["b"]["dear"]
    target = (low * (n + CONFIG.backoff_strength) - v) / CONFIG.backoff_strength
    assert rate == pytest.approx(
        (v + 20.0 + CONFIG.backoff_strength * target) / (n + 21.0 + CONFIG.backoff_strength)
    )


def test_a_reference_observation_re_bases_the_deficit_and_counts_no_outcome() -> None:
    state = unlucky_dear()
    after = controller_observe_reference(state, value=1.0, config=CONFIG, bucket="b")
    assert after.reference_total > state.reference_total
    assert after.deficit == pytest.approx(
        state.deficit + CONFIG.quality_target * (after.reference_total - state.reference_total)
    )
    assert after.observations == state.observations
    assert after.value_sum == state.value_sum
    assert after.evidence == state.evidence
    assert after.buckets["b"][0] == state.buckets["b"][0]
    # A deficit means a smaller tolerance: more traffic to the dear path.
    assert after.effective_tolerance(CONFIG) < state.effective_tolerance(CONFIG)


def test_later_outcomes_keep_reading_the_reference_observations() -> None:
    state = unlucky_dear()
    shadowed = state
    for _ in range(10):
        shadowed = controller_observe_reference(shadowed, value=1.0, config=CONFIG, bucket="b")
    extra = [("b", "cheap", 1.0)] * 5
    plain = state
    for bucket, path, value in extra:
        plain = controller_observe(
            plain,
            config=CONFIG,
            value=value,
            reference_quality=0.5,
            bucket=bucket,
            chosen_path=path,
        )
        shadowed = controller_observe(
            shadowed,
            config=CONFIG,
            value=value,
            reference_quality=0.5,
            bucket=bucket,
            chosen_path=path,
        )
    assert shadowed.reference == {"b": (10.0, 10.0)}
    assert shadowed.reference_total > plain.reference_total


def test_observations_before_any_routed_outcome_are_kept_for_later() -> None:
    state = controller_observe_reference(ControllerState(), value=1.0, config=CONFIG, bucket="b")
    assert state.reference == {"b": (1.0, 1.0)}
    assert state.deficit == 0.0
    assert state.reference_total == 0.0


def test_other_objectives_ignore_reference_observations() -> None:
    state = unlucky_dear()
    for objective in ("success", "utility"):
        config = EngineConfig(objective=objective)  # type: ignore[arg-type]
        assert controller_observe_reference(state, value=1.0, config=config, bucket="b") is state


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan"), True, "1"])
def test_reference_observation_outside_the_unit_interval_is_refused(value: object) -> None:
    with pytest.raises(InvalidOutcome):
        controller_observe_reference(
            ControllerState(),
            value=value,  # type: ignore[arg-type]
            config=CONFIG,
        )


def test_state_with_reference_evidence_round_trips_and_old_versions_load() -> None:
    state = ControllerState.from_dict({})
    state = controller_observe_reference(unlucky_dear(), value=1.0, config=CONFIG, bucket="b")
    assert ControllerState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    # Version 3 (before shadows): no `reference`, and the removed integral term's `bias`.
    old = {key: value for key, value in state.to_dict().items() if key != "reference"}
    old.update(version=3, bias=0.0)
    loaded = ControllerState.from_dict(old)
    assert loaded.reference == {}
    assert loaded.deficit == state.deficit
    with pytest.raises(InvalidConfig):
        ControllerState.from_dict({**state.to_dict(), "reference": {"b": [1.0, 2.0]}})
    with pytest.raises(InvalidConfig):
        ControllerState.from_dict({**state.to_dict(), "reference": {"b": [-1.0, 0.0]}})


def test_shadows_bring_the_reference_estimate_to_the_truth_on_a_stream() -> None:
    # 30 buckets; the dear path is 0.1 better everywhere. Routing sends the dear path rarely
    # (10%) and from an adaptively stopped start; shadows sample the dear path on 5% of the
    # cheap calls. With them the reference total ends closer to the truth on every seed.
    errors_plain, errors_shadow = [], []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        levels = rng.uniform(0.4, 0.85, size=30)
        plain = shadowed = ControllerState()
        truth = 0.0
        for _ in range(3000):
            b = int(rng.integers(30))
            cheap_rate, dear_rate = levels[b], levels[b] + 0.1
            truth += dear_rate
            dear = rng.random() < 0.1
            value = float(rng.random() < (dear_rate if dear else cheap_rate))
            kwargs = {"value": value, "reference_quality": 0.5, "bucket": f"b{b}"}
            path = "dear" if dear else "cheap"
            plain = controller_observe(plain, config=CONFIG, chosen_path=path, **kwargs)
            shadowed = controller_observe(shadowed, config=CONFIG, chosen_path=path, **kwargs)
            if not dear and rng.random() < 0.05:
                shadowed = controller_observe_reference(
                    shadowed,
                    value=float(rng.random() < dear_rate),
                    config=CONFIG,
                    bucket=f"b{b}",
                )
        errors_plain.append(abs(plain.reference_total - truth))
        errors_shadow.append(abs(shadowed.reference_total - truth))
    assert np.mean(errors_shadow) < np.mean(errors_plain)


def test_path_offsets_ignore_reference_evidence() -> None:
    # The reference record is not a path's record: offsets come from routed outcomes only.
    state = controller_observe_reference(unlucky_dear(), value=1.0, config=CONFIG, bucket="b")
    assert path_offsets(state.evidence) == state.offsets


def estimate_and_error(state: ControllerState) -> tuple[float, float, dict[str, float]]:
    inputs = (state.buckets, state.evidence, state.offsets, CONFIG.backoff_strength)
    total, rates = reference_estimate(*inputs, state.reference)
    return total, reference_standard_error(*inputs, state.reference), rates


def test_the_controller_aims_at_the_estimate_plus_its_standard_error() -> None:
    # Decomposition per bucket: the calls dear served count at their values; only the others
    # (a: 200 - 100, b: 52 - 2) are estimated, from n own outcomes + shadows + backoff.
    state = unlucky_dear()
    total, error, rates = estimate_and_error(state)
    strength = CONFIG.backoff_strength
    by_hand = 100**2 * rates["a"] * (1 - rates["a"]) / (100 + strength)
    by_hand += 50**2 * rates["b"] * (1 - rates["b"]) / (2 + strength)
    assert error == pytest.approx(by_hand**0.5)
    assert REFERENCE_MARGIN_Z > 0.0
    assert state.reference_total == pytest.approx(total + REFERENCE_MARGIN_Z * error)


def test_the_margin_shrinks_with_shadows_and_vanishes_when_the_best_path_served_all() -> None:
    state = unlucky_dear()
    _, before, _ = estimate_and_error(state)
    for _ in range(20):
        state = controller_observe_reference(state, value=1.0, config=CONFIG, bucket="b")
    _, after, _ = estimate_and_error(state)
    assert after < before
    # Only the best path served: its total is observed, nothing is left to estimate.
    served = routed([("a", "dear", float(i % 4 > 0)) for i in range(40)])
    total, error, _ = estimate_and_error(served)
    assert error == 0.0
    assert served.reference_total == pytest.approx(total) == pytest.approx(30.0, abs=0.5)
