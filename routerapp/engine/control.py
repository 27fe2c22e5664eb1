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

import math
from collections.abc import Mapping

from routerapp.engine.errors import InvalidOutcome
from routerapp.engine.types import ControllerState, EngineConfig


def _check_unit(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise InvalidOutcome(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


_LOW, _HIGH = 1e-3, 1.0 - 1e-3
# Bound of the integral offset, in units of 1 - quality_target (chosen on half A, docs/engine.md).
BIAS_LIMIT = 4.0


def _logit(p: float) -> float:
    p = _LOW if p < _LOW else _HIGH if p > _HIGH else p
    return math.log(p / (1.0 - p))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def path_offsets(
    evidence: Mapping[str, Mapping[str, tuple[float, float]]], shrinkage: float = 0.0
) -> dict[str, float]:
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
    pooled_anchor = _logit((totals[anchor][1] + 0.5) / (totals[anchor][0] + 1.0))
    sums: dict[str, list[float]] = {path: [0.0, 0.0] for path in totals}
    for paths in evidence.values():
        base = paths.get(anchor)
        if base is None or base[0] <= 0.0:
            continue
        base_rate = (base[1] + 0.5) / (base[0] + 1.0)
        base_logit = _logit(base_rate)
        for path, (n, v) in paths.items():
            if path == anchor or n <= 0.0:
                continue
            weight = n * base[0] / (n + base[0])
            if shrinkage > 0.0:
                # Shrink towards the anchor's rate in this bucket (offset 0), not towards 1/2:
                # smoothing to 1/2 reads a rarely tried path as worse in every easy bucket.
                rate = (v + shrinkage * base_rate) / (n + shrinkage)
            else:
                rate = (v + 0.5) / (n + 1.0)
            sums[path][0] += weight * (_logit(rate) - base_logit)
            sums[path][1] += weight
    offsets = {}
    for path, (n, v) in totals.items():
        if path == anchor:
            offsets[path] = 0.0
        elif sums[path][1] > 0.0:
            offsets[path] = sums[path][0] / sums[path][1]
        else:
            offsets[path] = _logit((v + 0.5) / (n + 1.0)) - pooled_anchor
    return offsets


def reference_estimate(
    buckets: Mapping[str, tuple[int, float]],
    evidence: Mapping[str, Mapping[str, tuple[float, float]]],
    offsets: Mapping[str, float],
    strength: float,
) -> tuple[float, dict[str, float]]:
    """(expected total of the best fixed path over the counted outcomes, its per-bucket
    rates). Each path's rate in a bucket is its own record there, shrunk with `strength`
    pseudo-outcomes towards level[bucket] + offset[path]; the bucket's level comes from
    whichever paths were observed there. The best fixed path is the one with the highest total.
    """
    totals: dict[str, float] = dict.fromkeys(offsets, 0.0)
    rates: dict[str, dict[str, float]] = {}
    for key, (count, _) in buckets.items():
        paths = evidence.get(key, {})
        weight = 0.0
        level = 0.0
        for path, (n, v) in paths.items():
            if n > 0.0:
                level += n * (_logit((v + 0.5) / (n + 1.0)) - offsets.get(path, 0.0))
                weight += n
        level = level / weight if weight > 0.0 else 0.0
        bucket_rates = {}
        for path, offset in offsets.items():
            n, v = paths.get(path, (0.0, 0.0))
            rate = (v + strength * _sigmoid(level + offset)) / (n + strength)
            bucket_rates[path] = rate
            totals[path] += count * rate
        rates[key] = bucket_rates
    if not totals:
        return 0.0, {}
    best = max(sorted(totals), key=totals.__getitem__)
    return totals[best], {key: bucket_rates[best] for key, bucket_rates in rates.items()}


def _clip_and_integrate(deficit: float, bias: float, config: EngineConfig) -> tuple[float, float]:
    """Anti-windup clip of D, then the slow integral term.

    With the tolerance equal to (1 - quality_target) - gain x D, holding the tolerance at the
    level the goal needs, tau*, takes a standing D = -(tau* - (1 - quality_target)) / gain:
    a surplus of that many outcomes that is never spent (RouteBench: tau* ~ 0.15-0.2, gain
    0.01, so 10-15 outcomes, ~0.25 point of accuracy over 6,190 calls, ~1.5 points of strong
    share; twice that on half the data). `bias` moves by -controller_integral x D per outcome,
    so it takes over the standing offset and D returns to ~0 (a PI controller on D).
    """
    gain = config.controller_gain
    if gain <= 0.0:
        return deficit, bias
    start = 1.0 - config.quality_target + bias
    # Band of D over which the tolerance is inside [0, tolerance_max].
    low = (start - config.tolerance_max) / gain
    high = start / gain
    clipped = min(max(deficit, low), high)
    if config.controller_integral > 0.0 and clipped == deficit:
        # Conditional integration: not while the tolerance is pinned at a bound (else the
        # offset itself would wind up during a long surplus or deficit).
        bias -= config.controller_integral * clipped
        # The offset is a correction, not a second controller: it stays within
        # [-(1 - quality_target), +2 (1 - quality_target)] (tolerance offset 0 .. 3x start),
        # so a biased reference cannot ratchet it towards tolerance_max.
        base = 1.0 - config.quality_target
        bias = min(max(bias, -base), min(BIAS_LIMIT * base, config.tolerance_max - base))
    return clipped, bias


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
    evidence = state.evidence
    offsets = state.offsets
    reference_total = state.reference_total
    bias = state.bias
    if config.objective == "cost_at_quality" and chosen_path is not None:
        key = bucket or ""
        count, _ = buckets.get(key, (0, reference_quality))
        paths = dict(evidence.get(key, {}))
        n, v = paths.get(chosen_path, (0.0, 0.0))
        paths[chosen_path] = (n + 1.0, v + value)
        evidence = {**evidence, key: paths}
        offsets = path_offsets(evidence, config.offset_shrinkage)
        buckets = {**buckets, key: (count + 1, reference_quality)}
        total, rates = reference_estimate(buckets, evidence, offsets, config.backoff_strength)
        buckets = {k: (c, rates.get(k, r)) for k, (c, r) in buckets.items()}
        target = config.quality_target
        deficit += target * (total - reference_total) - value
        reference_total = total
        deficit, bias = _clip_and_integrate(deficit, bias, config)
    elif config.objective == "cost_at_quality":
        key = bucket or ""
        count, previous = buckets.get(key, (0, reference_quality))
        target = config.quality_target
        deficit += target * count * (reference_quality - previous)
        deficit += target * reference_quality - value
        deficit, bias = _clip_and_integrate(deficit, bias, config)
        buckets = {**buckets, key: (count + 1, reference_quality)}
    return ControllerState(
        deficit=deficit,
        observations=state.observations + 1,
        value_sum=state.value_sum + value,
        reference_sum=state.reference_sum + reference_quality,
        buckets=buckets,
        evidence=evidence,
        offsets=offsets,
        reference_total=reference_total,
        bias=bias,
    )
