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

Arms' numbers are checked once per call as plain floats and priors are cached; up to `_SMALL`
paths the posterior is plain float arithmetic, above it numpy vectorises over paths, so a
decision costs a few tens of microseconds (see bench/engine.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from operator import attrgetter
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

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
_SMALL = 32  # up to here plain floats beat numpy (bench/engine.py)
_LOW, _HIGH = 1e-3, 1.0 - 1e-3  # rates are clipped here before taking logits


class _Prepared:
    """Validated posteriors of one call's arms as plain lists (built once per call)."""

    __slots__ = (
        "ids",
        "alpha",
        "beta",
        "best",
        "costs",
        "normalised",
        "epsilon",
        "reference_outcomes",
        "fewest_outcomes",
    )

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
        self.reference_outcomes = 0.0  # bucket outcomes of the reference path
        self.fewest_outcomes = 0.0  # bucket outcomes of the least tried path


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
def _prior_array(
    ids: tuple[str, ...],
    weights: tuple[float, ...],
    explicit: tuple[tuple[float | None, float | None], ...],
    strength: float,
    floor: float,
) -> tuple[NDArray[np.float64], tuple[tuple[float, float], ...]]:
    """(alpha0, beta0) per path, as an (n, 2) array and as float pairs. Weight-derived priors
    are solved among the paths without an explicit prior, so their shares follow their weights.
    """
    alpha0 = np.empty(len(ids))
    beta0 = np.empty(len(ids))
    derived = []
    for index, (path_id, (alpha, beta)) in enumerate(zip(ids, explicit, strict=True)):
        if alpha is None and beta is None:
            derived.append(index)
            continue
        problem = _prior_problem(path_id, alpha, beta)
        if problem is not None:
            raise problem
        # Both given and in range: _prior_problem refuses a half-given prior.
        alpha0[index], beta0[index] = cast(float, alpha), cast(float, beta)
    if derived:
        derived_weights = check_weights([weights[i] for i in derived], [ids[i] for i in derived])
        means = prior_means(derived_weights, strength=strength, exploration_floor=floor)
        for index, mean in zip(derived, means, strict=True):
            alpha0[index], beta0[index] = mean * strength, (1.0 - mean) * strength
    prior = np.column_stack((alpha0, beta0))
    prior.setflags(write=False)  # cached and shared between calls
    return prior, tuple(zip(alpha0.tolist(), beta0.tolist(), strict=True))


def _posterior_small(
    rows: list[tuple[float, ...]],
    prior: tuple[tuple[float, float], ...],
    strength: float,
    level_sharing: float = 0.0,
    offsets: list[float] | None = None,
) -> tuple[list[float], list[float]]:
    """`backoff_parameters` in plain floats: for a handful of paths numpy's per-operation
    overhead (~1 us per ufunc) dominates the arithmetic. Tests check both agree."""
    others = []
    levels: list[float] = []
    weights = []
    for _, _, successes, failures, goal_successes, goal_failures in rows:
        other_successes = goal_successes - successes
        other_successes = other_successes if other_successes > 0.0 else 0.0
        other_failures = goal_failures - failures
        other_failures = other_failures if other_failures > 0.0 else 0.0
        other_total = other_successes + other_failures
        others.append((other_successes, other_failures, other_total))
        own = successes + failures
        if level_sharing > 0.0 and own > 0.0 and other_total > 0.0:
            rate = other_successes / other_total
            rate = _LOW if rate < _LOW else _HIGH if rate > _HIGH else rate
            shrunk = (successes + level_sharing * rate) / (own + level_sharing)
            shrunk = _LOW if shrunk < _LOW else _HIGH if shrunk > _HIGH else shrunk
            base = math.log(rate / (1.0 - rate)) if offsets is None else offsets[len(levels)]
            levels.append(own * (math.log(shrunk / (1.0 - shrunk)) - base))
            weights.append(own)
        else:
            levels.append(0.0)
            weights.append(0.0)
    total_level = sum(levels)
    total_weight = sum(weights)
    alpha, beta = [], []
    for index, (
        (successes, failures),
        (other_successes, _, other_total),
        own_level,
        weight,
        (alpha0, beta0),
    ) in enumerate(zip(((r[2], r[3]) for r in rows), others, levels, weights, prior, strict=True)):
        if other_total <= 0.0:
            alpha.append(alpha0 + successes)
            beta.append(beta0 + failures)
            continue
        lent = strength if strength < other_total else other_total
        rate = other_successes / other_total
        rest = total_weight - weight
        if rest > 0.0:
            # Leave-one-out level of the bucket from the other paths' evidence (logit scale).
            level = (total_level - own_level) / rest
            if offsets is None:
                rate = _LOW if rate < _LOW else _HIGH if rate > _HIGH else rate
                base = math.log(rate / (1.0 - rate))
            else:
                base = offsets[index]
            rate = 1.0 / (1.0 + math.exp(-(base + level)))
        alpha.append(alpha0 + successes + lent * rate)
        beta.append(beta0 + failures + lent * (1.0 - rate))
    return alpha, beta


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
    prior, prior_rows = _prior_array(
        tuple(ids), tuple([row[0] for row in numbers]), explicit, config.prior_strength, floor
    )
    if count <= _SMALL:
        # Plain floats: for a handful of paths numpy's per-call overhead is most of the cost.
        alpha, beta = _posterior_small(
            numbers, prior_rows, config.backoff_strength, config.level_sharing, offsets
        )
    else:
        array = np.array(numbers)
        posterior = backoff_parameters(
            prior,
            array[:, 2:4],
            array[:, 4:6],
            config.backoff_strength,
            config.level_sharing,
            None if offsets is None else np.array(offsets),
        )
        alpha, beta = posterior[:, 0].tolist(), posterior[:, 1].tolist()
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
            for (a0, b0), row in zip(prior_rows, numbers, strict=True)
        ]
    )
    best = max(range(count), key=ranks.__getitem__)
    own = [row[2] + row[3] for row in numbers]
    prepared = _Prepared(ids, alpha, beta, best, costs, normalised, epsilon)
    prepared.reference_outcomes = own[best]
    prepared.fewest_outcomes = min(own)
    return prepared


def _draw(rng: np.random.Generator, alpha: list[float], beta: list[float]) -> list[float]:
    # For a handful of paths numpy's broadcasting overhead (~8 us per call) exceeds scalar
    # draws (~0.6 us each); both consume the generator identically, so the values are the same.
    if len(alpha) <= _SMALL:
        draw = rng.beta
        return [draw(a, b) for a, b in zip(alpha, beta, strict=True)]
    return rng.beta(alpha, beta).tolist()


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
    samples = _draw(rng, prepared.alpha, prepared.beta)
    means = [a / (a + b) for a, b in zip(prepared.alpha, prepared.beta, strict=True)]
    scale = config.sample_scale
    if scale != 1.0 and prepared.fewest_outcomes >= config.temper_after:
        samples = [m + scale * (x - m) for m, x in zip(means, samples, strict=True)]
    trade_off = _trade_off(config, state)
    normalised = prepared.normalised
    score = scores(samples, normalised, trade_off=trade_off)
    order = sorted(range(count), key=score.__getitem__, reverse=True)
    # Always draw the exploration coin so the stream of draws does not depend on the outcome.
    coin = rng.random()
    forced = None
    if coin < prepared.epsilon:
        forced = int(rng.integers(count))
    elif count > 1 and prepared.reference_outcomes < config.reference_min_outcomes:
        # Keep sampling the reference path in a bucket until it has a few outcomes there, so
        # its within-bucket offset cannot be read from one or two lucky/unlucky calls.
        forced = prepared.best
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
