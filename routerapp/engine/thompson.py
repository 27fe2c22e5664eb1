"""Thompson sampling over the eligible paths of one call: `rank_paths` and friends.

One decision:
1. Posterior per path: the prior (from the weights, or explicit alpha0/beta0) plus the
   bucket's evidence plus what the goal's other buckets lend (`posteriors.backoff_parameters`).
2. One Beta draw per path from the caller's `numpy.random.Generator`.
3. Score per the objective (`objectives.py`) and sort: the order is the fallback order.
4. Exploration floor: with probability eps = min(1, floor * N) a uniformly drawn path is put
   first (reason "exploration"), so every path keeps at least `floor` of the traffic.

`Ranking.reference_quality` is the success rate, in this call's bucket, of the path that is
best goal-wide: the expected quality of "always use the best path" for this call, which is
what the `cost_at_quality` floor is a fraction of.

Arms' numbers are checked once per call as plain floats, priors are cached, and the posterior
is one vectorised computation over the paths (`backoff_parameters`, the only implementation of
it), so a decision costs a few tens of microseconds (see bench/engine.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from operator import attrgetter
from typing import Any, cast

import numpy as np

from routerapp.engine.errors import (
    DuplicatePath,
    EngineError,
    InvalidCost,
    InvalidEvidence,
    InvalidWeight,
    NoEligiblePaths,
    UnknownPath,
)
from routerapp.engine.objectives import COST_AWARE, normalised_costs, score_matrix, scores
from routerapp.engine.posteriors import backoff_parameters, outcome_delta
from routerapp.engine.priors import check_weights, prior_means
from routerapp.engine.types import (
    EVIDENCE_BOUNDS,
    PRIOR_BOUNDS,
    WEIGHT_BOUNDS,
    Arm,
    Bounds,
    ControllerState,
    EngineConfig,
    Ranking,
)

_NUMBERS = attrgetter(
    "weight", "expected_cost", "successes", "failures", "goal_successes", "goal_failures"
)
_EVIDENCE_NAMES = ("successes", "failures", "goal_successes", "goal_failures")
_FLOAT_MAX = float(np.finfo(float).max)
_COST_BOUNDS = Bounds(0.0, _FLOAT_MAX)  # costs are computed, not set: any finite amount


class _Prepared:
    """Validated posteriors of one call's arms as plain lists (built once per call)."""

    __slots__ = ("ids", "alpha", "beta", "best", "costs", "normalised", "epsilon")

    def __init__(
        self,
        ids: list[str],
        alpha: list[float],
        beta: list[float],
        best: int,
        costs: list[float],
        normalised: list[float] | None,
        epsilon: float,
    ) -> None:
        self.ids = ids
        self.alpha = alpha
        self.beta = beta
        self.best = best  # index of the goal-wide best path (highest goal posterior mean)
        self.costs = costs
        self.normalised = normalised
        self.epsilon = epsilon


def _number_problem(arm: Arm) -> EngineError | None:
    """The error for the first out-of-range number among the arm's weight, cost and evidence."""
    if arm.weight not in WEIGHT_BOUNDS:
        return InvalidWeight(
            f"weight of path {arm.path_id} must be in {WEIGHT_BOUNDS}, got {arm.weight!r}"
        )
    if arm.expected_cost not in _COST_BOUNDS:
        return InvalidCost(
            f"expected_cost of path {arm.path_id} must be finite and >= 0, "
            f"got {arm.expected_cost!r}"
        )
    for name in _EVIDENCE_NAMES:
        count = getattr(arm, name)
        if count not in EVIDENCE_BOUNDS:
            return InvalidEvidence(
                f"{name} of path {arm.path_id} must be in {EVIDENCE_BOUNDS}, got {count!r}"
            )
    return None


def _prior_problem(path_id: str, alpha: object, beta: object) -> EngineError | None:
    """The error for an explicit prior (alpha0, beta0) out of range or half given."""
    if alpha is None and beta is None:
        return None
    if alpha is None or beta is None:
        return InvalidEvidence(
            f"path {path_id} sets only one of alpha0/beta0; give both or neither"
        )
    for name, value in (("alpha0", alpha), ("beta0", beta)):
        if value not in PRIOR_BOUNDS:
            return InvalidEvidence(
                f"{name} of path {path_id} must be in {PRIOR_BOUNDS}, got {value!r}"
            )
    return None


def _raise_for_bad_numbers(arms: Sequence[Arm]) -> None:
    """Slow path, only on error: find the first bad field and say which path it belongs to."""
    for arm in arms:
        problem = _number_problem(arm)
        if problem is not None:
            raise problem
    raise InvalidEvidence("arms hold a value that is not a number")  # pragma: no cover


def arm_check(arm: Arm) -> None:
    """Raise the `EngineError` that `rank_paths` would raise for this arm's own numbers
    (weight, expected cost, evidence, explicit prior), or return if they are all in range.

    Lets a caller leave out a path whose stored numbers the engine refuses and rank the others
    instead of failing the whole call. What only the set of arms decides (every weight zero,
    duplicate ids) is still raised by `rank_paths`.
    """
    problem = _number_problem(arm) or _prior_problem(arm.path_id, arm.alpha0, arm.beta0)
    if problem is not None:
        raise problem


@lru_cache(maxsize=4096)
def _prior_pairs(
    ids: tuple[str, ...],
    weights: tuple[float, ...],
    explicit: tuple[tuple[float | None, float | None], ...],
    strength: float,
    floor: float,
) -> tuple[tuple[float, float], ...]:
    """(alpha0, beta0) per path. Weight-derived priors are solved among the paths without an
    explicit prior, so their shares follow their weights."""
    pairs: list[tuple[float, float]] = [(0.0, 0.0)] * len(ids)
    derived = []
    for index, (path_id, (alpha, beta)) in enumerate(zip(ids, explicit, strict=True)):
        if alpha is None and beta is None:
            derived.append(index)
            continue
        problem = _prior_problem(path_id, alpha, beta)
        if problem is not None:
            raise problem
        # Both given and in range: _prior_problem refuses a half-given prior.
        pairs[index] = (float(cast(float, alpha)), float(cast(float, beta)))
    if derived:
        derived_weights = check_weights([weights[i] for i in derived], [ids[i] for i in derived])
        means = prior_means(derived_weights, strength=strength, exploration_floor=floor)
        for index, mean in zip(derived, means, strict=True):
            pairs[index] = (float(mean) * strength, (1.0 - float(mean)) * strength)
    return tuple(pairs)


def _checked_rows(rows: list[tuple[Any, ...]], arms: Sequence[Arm]) -> list[tuple[float, ...]]:
    """The arms' numbers as floats, each checked in one chained comparison (NaN fails both
    bounds, inf the upper one); a bad one goes to the slow path that names it."""
    heaviest, top, most = WEIGHT_BOUNDS.high, _FLOAT_MAX, EVIDENCE_BOUNDS.high
    try:
        numbers: list[tuple[float, ...]] = [
            (float(w), float(c), float(s), float(f), float(gs), float(gf))
            for w, c, s, f, gs, gf in rows
        ]
    except (TypeError, ValueError, OverflowError):
        _raise_for_bad_numbers(arms)
    for w, c, s, f, gs, gf in numbers:
        if not (
            0.0 <= w <= heaviest
            and 0.0 <= c <= top
            and 0.0 <= s <= most
            and 0.0 <= f <= most
            and 0.0 <= gs <= most
            and 0.0 <= gf <= most
        ):
            _raise_for_bad_numbers(arms)
    return numbers


def _prepare(
    arms: Sequence[Arm], config: EngineConfig, state: ControllerState | None = None
) -> _Prepared:
    count = len(arms)
    if count == 0:
        raise NoEligiblePaths("no eligible paths: rank_paths needs at least one arm")
    ids = [arm.path_id for arm in arms]
    if len(set(ids)) != count:
        duplicate = next(i for i in ids if ids.count(i) > 1)  # the error path only: O(n^2) is fine
        raise DuplicatePath(f"path {duplicate} appears more than once among the arms")
    rows = [_NUMBERS(arm) for arm in arms]
    explicit = tuple([(arm.alpha0, arm.beta0) for arm in arms])
    floor = config.exploration_floor
    known = state.offsets if state is not None else None
    offsets = [known[i] for i in ids] if known and all(i in known for i in ids) else None
    numbers = _checked_rows(rows, arms)
    prior = _prior_pairs(
        tuple(ids), tuple([row[0] for row in numbers]), explicit, config.prior_strength, floor
    )
    posterior = backoff_parameters(
        prior,
        [(row[2], row[3]) for row in numbers],
        [(row[4], row[5]) for row in numbers],
        config.backoff_strength,
        config.level_sharing,
        offsets,
    )
    alpha = [a for a, _ in posterior]
    beta = [b for _, b in posterior]
    costs = [row[1] for row in numbers]
    normalised = normalised_costs(costs, ids) if config.objective in COST_AWARE else None
    epsilon = min(1.0, floor * count) if count > 1 else 0.0
    # The goal-wide best path defines the quality reference: prior plus all of the goal's
    # evidence, so a bucket's luck does not change which path is "the best path".
    ranks = (
        offsets
        if offsets is not None
        else [
            (a0 + row[4]) / ((a0 + row[4]) + (b0 + row[5]))
            for (a0, b0), row in zip(prior, numbers, strict=True)
        ]
    )
    best = max(range(count), key=ranks.__getitem__)
    return _Prepared(ids, alpha, beta, best, costs, normalised, epsilon)


def _trade_off(config: EngineConfig, state: ControllerState | None) -> float:
    if config.objective == "utility":
        return config.utility_lambda
    if config.objective == "cost_at_quality":
        return (state or ControllerState()).effective_tolerance(config)
    return 0.0


def rank_paths(
    arms: Sequence[Arm],
    *,
    config: EngineConfig,
    rng: np.random.Generator,
    state: ControllerState | None = None,
    bucket: str | None = None,
) -> Ranking:
    """Rank every eligible path for one call; `order[0]` is the choice, the rest the fallbacks.

    Every random draw comes from `rng`. `state` is the goal's controller state (only
    `cost_at_quality` reads it; None = initial). Raises an `EngineError` subclass on bad input.
    """
    prepared = _prepare(arms, config, state)
    ids = prepared.ids
    count = len(ids)
    # Scalar draws: for a handful of paths one broadcasting call costs more than a loop.
    draw = rng.beta
    samples = [draw(a, b) for a, b in zip(prepared.alpha, prepared.beta, strict=True)]
    means = [a / (a + b) for a, b in zip(prepared.alpha, prepared.beta, strict=True)]
    trade_off = _trade_off(config, state)
    normalised = prepared.normalised
    score = scores(samples, normalised, trade_off=trade_off)
    order = sorted(range(count), key=score.__getitem__, reverse=True)
    # Always draw the exploration coin so the stream of draws does not depend on the outcome.
    forced = int(rng.integers(count)) if rng.random() < prepared.epsilon else None
    if forced is not None:
        order.remove(forced)
        order.insert(0, forced)
    if count == 1:
        reason = "only_path"
    elif forced is not None:
        reason = "exploration"
    else:
        reason = "thompson"
    details: dict[str, Any] = {
        "means": dict(zip(ids, means, strict=True)),
        "costs": dict(zip(ids, prepared.costs, strict=True)),
        "exploration_probability": prepared.epsilon,
    }
    if normalised is not None:
        details["scores"] = dict(zip(ids, score, strict=True))
        if config.objective == "utility":
            details["utility_lambda"] = trade_off
        else:
            details["tolerance"] = trade_off
            details["quality_target"] = config.quality_target
    return Ranking(
        order=tuple([ids[i] for i in order]),
        samples=dict(zip(ids, samples, strict=True)),
        objective=config.objective,
        bucket=bucket,
        reason=reason,
        reference_quality=means[prepared.best],
        details=details,
    )


def allocation_shares(
    arms: Sequence[Arm],
    *,
    config: EngineConfig,
    rng: np.random.Generator,
    state: ControllerState | None = None,
    bucket: str | None = None,
    draws: int = 2000,
) -> dict[str, float]:
    """Share of calls each path would get right now (`order[0]` of `rank_paths`), estimated by
    `draws` vectorised Monte Carlo decisions; the exploration floor is mixed in exactly."""
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    prepared = _prepare(arms, config, state)
    count = len(prepared.ids)
    samples = rng.beta(prepared.alpha, prepared.beta, size=(draws, count))
    score = score_matrix(samples, prepared.normalised, trade_off=_trade_off(config, state))
    wins = np.bincount(np.argmax(score, axis=1), minlength=count) / draws
    shares = prepared.epsilon / count + (1.0 - prepared.epsilon) * wins
    return dict(zip(prepared.ids, shares.tolist(), strict=True))


def posterior_parameters(
    arms: Sequence[Arm], *, config: EngineConfig
) -> dict[str, tuple[float, float]]:
    """(alpha, beta) of each path exactly as `rank_paths` samples them (prior, floor-adjusted
    weight prior, bucket evidence and backoff included), e.g. for `posterior_summary`."""
    prepared = _prepare(arms, replace(config, objective="success"))
    return {
        path_id: (alpha, beta)
        for path_id, alpha, beta in zip(prepared.ids, prepared.alpha, prepared.beta, strict=True)
    }


def arms_observe(
    arms: Sequence[Arm], *, path_id: str, value: float, previous: float | None = None
) -> tuple[Arm, ...]:
    """Arms after an outcome of `path_id` (added to its bucket and goal-wide evidence)."""
    if not any(arm.path_id == path_id for arm in arms):
        known = ", ".join(arm.path_id for arm in arms)
        raise UnknownPath(f"unknown path {path_id!r}; the arms are: {known}")
    d_successes, d_failures = outcome_delta(value, previous)
    return tuple(
        replace(
            arm,
            successes=max(arm.successes + d_successes, 0.0),
            failures=max(arm.failures + d_failures, 0.0),
            goal_successes=max(arm.goal_successes + d_successes, 0.0),
            goal_failures=max(arm.goal_failures + d_failures, 0.0),
        )
        if arm.path_id == path_id
        else arm
        for arm in arms
    )
