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

The reference estimate is read from the engine's own traffic, which is adaptive: the dear path
is tried least where it looks worst, so its rate there rests on few, adaptively stopped
outcomes (biased low). Shadow traffic, the baseline path called on a random sample of the
calls it did not serve, gives unbiased observations of the reference in each bucket;
`controller_observe_reference` adds them to the reference path's own record there.
What remains uncertain is the reference's rate on the calls it did not serve; the controller
aims at the estimate plus `REFERENCE_MARGIN_Z` standard errors of it (`reference_aim`), so
the floor is held against an upper bound that tightens as evidence accumulates, and
`reference_total` in the state is that aim.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from routerapp.engine.errors import InvalidOutcome
from routerapp.engine.posteriors import logit, sigmoid
from routerapp.engine.types import ControllerState, EngineConfig


def _check_unit(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise InvalidOutcome(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def path_offsets(evidence: Mapping[str, Mapping[str, tuple[float, float]]]) -> dict[str, float]:
    """Logit offset of each path's success rate, estimated *within* buckets (additive model
    logit p[path, bucket] = level[bucket] + offset[path]).

    Pooled goal-wide rates are biased by the routing itself (the dear path is sent to the hard
    buckets, the cheap one to the easy ones); comparing paths inside the same bucket is not.
    Offsets are relative to the most observed path (0.0); a path never seen in a bucket shared
    with it falls back to the pooled comparison.
    """
    totals: dict[str, list[float]] = {}
    for paths in evidence.values():
        for path, (n, v) in paths.items():
            total = totals.setdefault(path, [0.0, 0.0])
            total[0] += n
            total[1] += v
    if not totals:
        return {}
    anchor = max(sorted(totals), key=lambda path: totals[path][0])
    pooled_anchor = logit((totals[anchor][1] + 0.5) / (totals[anchor][0] + 1.0))
    sums: dict[str, list[float]] = {path: [0.0, 0.0] for path in totals}
    for paths in evidence.values():
        base = paths.get(anchor)
        if base is None or base[0] <= 0.0:
            continue
        base_logit = logit((base[1] + 0.5) / (base[0] + 1.0))
        for path, (n, v) in paths.items():
            if path == anchor or n <= 0.0:
                continue
            weight = n * base[0] / (n + base[0])
            sums[path][0] += weight * (logit((v + 0.5) / (n + 1.0)) - base_logit)
            sums[path][1] += weight
    offsets = {}
    for path, (n, v) in totals.items():
        if path == anchor:
            offsets[path] = 0.0
        elif sums[path][1] > 0.0:
            offsets[path] = sums[path][0] / sums[path][1]
        else:
            offsets[path] = logit((v + 0.5) / (n + 1.0)) - pooled_anchor
    return offsets


def _bucket_rates(
    paths: Mapping[str, tuple[float, float]], offsets: Mapping[str, float], strength: float
) -> dict[str, float]:
    """Each path's rate in one bucket: its own record there, shrunk with `strength`
    pseudo-outcomes towards level[bucket] + offset[path]; the level comes from whichever paths
    were observed in the bucket."""
    weight = 0.0
    level = 0.0
    for path, (n, v) in paths.items():
        if n > 0.0:
            level += n * (logit((v + 0.5) / (n + 1.0)) - offsets.get(path, 0.0))
            weight += n
    level = level / weight if weight > 0.0 else 0.0
    rates = {}
    for path, offset in offsets.items():
        n, v = paths.get(path, (0.0, 0.0))
        rates[path] = (v + strength * sigmoid(level + offset)) / (n + strength)
    return rates


# Standard errors of the reference estimate the controller adds to it (`reference_aim`):
# chosen on the 20-seed replays of dev and its two halves (docs/engine.md, "Shadows and one
# set of defaults"); 0.3 holds the floor on all three at <= 53% strong on dev, 0.4-0.5 cost
# dev ~1 point more strong share than the target allows.
REFERENCE_MARGIN_Z = 0.3


def _estimate(
    buckets: Mapping[str, tuple[int, float]],
    evidence: Mapping[str, Mapping[str, tuple[float, float]]],
    offsets: Mapping[str, float],
    strength: float,
    reference: Mapping[str, tuple[float, float]] | None,
) -> tuple[float, dict[str, float], str | None]:
    totals: dict[str, float] = dict.fromkeys(offsets, 0.0)
    rates: dict[str, dict[str, float]] = {}
    for key, (count, _) in buckets.items():
        bucket_rates = _bucket_rates(evidence.get(key, {}), offsets, strength)
        for path, rate in bucket_rates.items():
            totals[path] += count * rate
        rates[key] = bucket_rates
    if not totals:
        return 0.0, {}, None
    best = max(sorted(totals), key=totals.__getitem__)
    best_rates = {key: bucket_rates[best] for key, bucket_rates in rates.items()}
    if not reference:
        return totals[best], best_rates, best
    total = 0.0
    for key, (count, _) in buckets.items():
        extra_n, extra_v = reference.get(key, (0.0, 0.0))
        if extra_n > 0.0:
            # The shrinkage target is unchanged; the sample adds to the best path's record.
            n, v = evidence.get(key, {}).get(best, (0.0, 0.0))
            prior = best_rates[key] * (n + strength) - v  # = strength x shrinkage target
            best_rates[key] = (v + extra_v + prior) / (n + extra_n + strength)
        total += count * best_rates[key]
    return total, best_rates, best


def reference_estimate(
    buckets: Mapping[str, tuple[int, float]],
    evidence: Mapping[str, Mapping[str, tuple[float, float]]],
    offsets: Mapping[str, float],
    strength: float,
    reference: Mapping[str, tuple[float, float]] | None = None,
) -> tuple[float, dict[str, float]]:
    """(expected total of the best fixed path over the counted outcomes, its per-bucket
    rates). The best fixed path is the one with the highest total of `_bucket_rates`.

    `reference` holds per bucket (observations, value sum) of the reference path on a random
    sample of calls (shadows): they join the best path's own record in the bucket, so where
    the engine rarely sends it (and its record is short and adaptively stopped) the sample
    carries the estimate.
    """
    total, rates, _ = _estimate(buckets, evidence, offsets, strength, reference)
    return total, rates


def _unserved_variance(
    buckets: Mapping[str, tuple[int, float]],
    evidence: Mapping[str, Mapping[str, tuple[float, float]]],
    reference: Mapping[str, tuple[float, float]] | None,
    rates: Mapping[str, float],
    best: str,
    strength: float,
) -> float:
    variance = 0.0
    for key, (count, _) in buckets.items():
        n, _ = evidence.get(key, {}).get(best, (0.0, 0.0))
        shadows, _ = (reference or {}).get(key, (0.0, 0.0))
        rate = rates[key]
        unserved = max(count - n, 0.0)
        variance += unserved**2 * rate * (1.0 - rate) / max(n + shadows + strength, 1e-9)
    return variance


def reference_standard_error(
    buckets: Mapping[str, tuple[int, float]],
    evidence: Mapping[str, Mapping[str, tuple[float, float]]],
    offsets: Mapping[str, float],
    strength: float,
    reference: Mapping[str, tuple[float, float]] | None = None,
) -> float:
    """Standard error of `reference_estimate`'s total, from its decomposition per bucket:
    the c calls of a bucket split into the n the best path served, counted at their observed
    values (nothing to estimate), and the c - n others (downgraded), at a rate resting on the
    n own outcomes, the shadows (an unbiased sample of exactly those calls) and `strength`
    pseudo-outcomes: Var = sum over buckets of (c - n)^2 x r (1 - r) / (n + shadows +
    strength). Large where the best path was rarely sent and few shadows came back."""
    _, rates, best = _estimate(buckets, evidence, offsets, strength, reference)
    if best is None:
        return 0.0
    return float(_unserved_variance(buckets, evidence, reference, rates, best, strength) ** 0.5)


def reference_aim(
    buckets: Mapping[str, tuple[int, float]],
    evidence: Mapping[str, Mapping[str, tuple[float, float]]],
    offsets: Mapping[str, float],
    strength: float,
    reference: Mapping[str, tuple[float, float]] | None = None,
) -> tuple[float, dict[str, float]]:
    """(total the controller holds the floor against, per-bucket rates of the estimate): the
    estimate plus `REFERENCE_MARGIN_Z` standard errors (`reference_standard_error`). The
    estimate from adaptive traffic is biased low where the best path was tried least, which
    is exactly where its standard error is large; aiming at an upper bound holds the floor
    there, with a margin that shrinks as own outcomes and shadows accumulate."""
    total, rates, best = _estimate(buckets, evidence, offsets, strength, reference)
    if best is None:
        return total, rates
    variance = _unserved_variance(buckets, evidence, reference, rates, best, strength)
    return total + REFERENCE_MARGIN_Z * variance**0.5, rates


def _clip(deficit: float, config: EngineConfig) -> float:
    """Anti-windup: D within the band over which the tolerance is inside [0, tolerance_max]."""
    gain = config.controller_gain
    if gain <= 0.0:
        return deficit
    start = 1.0 - config.quality_target
    return min(max(deficit, (start - config.tolerance_max) / gain), start / gain)


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
    the goal (see `ControllerState`). With `chosen_path` (the service and the replay pass it)
    the reference is the model-based estimate of the best fixed path (`reference_estimate`);
    without it, `reference_quality` itself. Objectives other than `cost_at_quality` only update
    the totals.
    """
    value = _check_unit("outcome value", value)
    reference_quality = _check_unit("reference_quality", reference_quality)
    deficit = state.deficit
    buckets = state.buckets
    evidence = state.evidence
    offsets = state.offsets
    reference_total = state.reference_total
    target = config.quality_target
    key = bucket or ""
    if config.objective == "cost_at_quality" and chosen_path is not None:
        count, _ = buckets.get(key, (0, reference_quality))
        paths = dict(evidence.get(key, {}))
        n, v = paths.get(chosen_path, (0.0, 0.0))
        paths[chosen_path] = (n + 1.0, v + value)
        evidence = {**evidence, key: paths}
        offsets = path_offsets(evidence)
        buckets = {**buckets, key: (count + 1, reference_quality)}
        total, rates = reference_aim(
            buckets, evidence, offsets, config.backoff_strength, state.reference
        )
        buckets = {k: (c, rates.get(k, r)) for k, (c, r) in buckets.items()}
        deficit = _clip(deficit + target * (total - reference_total) - value, config)
        reference_total = total
    elif config.objective == "cost_at_quality":
        count, previous = buckets.get(key, (0, reference_quality))
        deficit += target * count * (reference_quality - previous)
        deficit = _clip(deficit + target * reference_quality - value, config)
        buckets = {**buckets, key: (count + 1, reference_quality)}
    return replace(
        state,
        deficit=deficit,
        observations=state.observations + 1,
        value_sum=state.value_sum + value,
        reference_sum=state.reference_sum + reference_quality,
        buckets=buckets,
        evidence=evidence,
        offsets=offsets,
        reference_total=reference_total,
    )


def controller_observe_reference(
    state: ControllerState, *, value: float, config: EngineConfig, bucket: str | None = None
) -> ControllerState:
    """State after one unbiased observation `value` in [0, 1] of the reference (baseline)
    path's success on a call of `bucket`, drawn at random among the goal's calls (a shadow
    call to the baseline). It is not an outcome of the goal's traffic: nothing is counted
    towards the floor, but the reference total is re-estimated and D re-based by
    quality_target x the change.

    Only `cost_at_quality` keeps it (like the path records), and only the model-based
    reference (`controller_observe` got `chosen_path`, as the service and the replay pass it)
    reads it: before the first such outcome, or with the fallback reference, the observation
    is kept and D does not move.
    """
    value = _check_unit("reference observation", value)
    if config.objective != "cost_at_quality":
        return state
    key = bucket or ""
    n, v = state.reference.get(key, (0.0, 0.0))
    reference = {**state.reference, key: (n + 1.0, v + value)}
    if not state.offsets:
        return replace(state, reference=reference)
    total, rates = reference_aim(
        state.buckets, state.evidence, state.offsets, config.backoff_strength, reference
    )
    deficit = _clip(state.deficit + config.quality_target * (total - state.reference_total), config)
    return replace(
        state,
        deficit=deficit,
        buckets={k: (c, rates.get(k, r)) for k, (c, r) in state.buckets.items()},
        reference_total=total,
        reference=reference,
    )
