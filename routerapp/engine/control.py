"""Online controller of the cost/quality trade-off for `cost_at_quality`.

The operator asks that the traffic the goal routes reaches `quality_target` x the success rate
of the best path (e.g. 95%). A fixed per-decision tolerance cannot promise that aggregate: how
much quality a tolerance costs depends on how far apart the paths are, which is what is being
learned. So the tolerance is the inverse Lagrange multiplier of the aggregate constraint and is
driven by the accumulated quality deficit (an integral controller / dual ascent):

    D        = sum over outcomes of (quality_target * reference_b - value)
    tolerance = clip((1 - quality_target) - gain * D, 0, tolerance_max)

`reference_b` is the best path's posterior mean in the outcome's bucket. Early estimates of it
are poor (priors, little data), so D is judged against the *latest* estimate: when bucket b's
reference moves from r to r', the n_b outcomes already counted there are re-based by
quality_target * n_b * (r' - r). D is clipped to the band where the tolerance is not at a bound
(anti-windup), so a long surplus cannot buy an equally long deficit later.

A positive D means the goal's traffic ran below the floor: the tolerance shrinks and more
traffic goes to the better (dearer) paths until D stops growing.
"""

from __future__ import annotations

from routerapp.engine.errors import InvalidOutcome
from routerapp.engine.types import ControllerState, EngineConfig


def _check_unit(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise InvalidOutcome(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def controller_observe(
    state: ControllerState,
    *,
    config: EngineConfig,
    value: float,
    reference_quality: float,
    bucket: str | None = None,
    chosen_path: str | None = None,
) -> ControllerState:
    """State after one first outcome of a decision taken with `Ranking.reference_quality`.

    `bucket` keys the reference re-basing (None = goal-wide); the multiplier itself is global to
    the goal (see `ControllerState`). `chosen_path` is accepted for the caller's convenience and
    future diagnostics. Objectives other than `cost_at_quality` only update the totals.
    """
    value = _check_unit("outcome value", value)
    reference_quality = _check_unit("reference_quality", reference_quality)
    deficit = state.deficit
    buckets = state.buckets
    if config.objective == "cost_at_quality":
        key = bucket or ""
        count, previous = buckets.get(key, (0, reference_quality))
        target = config.quality_target
        deficit += target * count * (reference_quality - previous)
        deficit += target * reference_quality - value
        if config.controller_gain > 0.0:
            start = 1.0 - target
            # Band of D over which the tolerance is inside [0, tolerance_max].
            low = (start - config.tolerance_max) / config.controller_gain
            high = start / config.controller_gain
            deficit = min(max(deficit, low), high)
        buckets = {**buckets, key: (count + 1, reference_quality)}
    return ControllerState(
        deficit=deficit,
        observations=state.observations + 1,
        value_sum=state.value_sum + value,
        reference_sum=state.reference_sum + reference_quality,
        buckets=buckets,
    )
