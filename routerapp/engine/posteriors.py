"""Evidence bookkeeping: outcome deltas, time decay and the hierarchical bucket posterior.

Each (path, bucket) holds Beta(alpha0 + successes, beta0 + failures). An outcome v in [0, 1]
adds v to successes and 1 - v to failures; a corrected outcome moves the counts by the
difference, so reporting the same value twice changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from routerapp.engine.errors import InvalidConfig, InvalidEvidence, InvalidOutcome
from routerapp.engine.types import CONFIG_BOUNDS

_LOW, _HIGH = 1e-3, 1.0 - 1e-3  # rates are clipped here before taking logits
_HALF_LIFE = CONFIG_BOUNDS["half_life_seconds"]


def _check_outcome(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise InvalidOutcome(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def outcome_delta(value: float, previous: float | None = None) -> tuple[float, float]:
    """(d_successes, d_failures) to add to a posterior for an outcome.

    A first outcome v gives (v, 1 - v); replacing an earlier outcome p by v gives (v - p, p - v),
    so the posterior ends where a single report of v would have left it.

    >>> outcome_delta(0.75)
    (0.75, 0.25)
    >>> outcome_delta(1.0, previous=0.0)
    (1.0, -1.0)
    """
    value = _check_outcome("outcome value", value)
    if previous is None:
        return value, 1.0 - value
    previous = _check_outcome("previous outcome value", previous)
    return value - previous, previous - value


def decay_factor(*, half_life_seconds: float | None, elapsed_seconds: float) -> float:
    """Weight left on evidence after `elapsed_seconds`: 0.5 ** (elapsed / half_life).

    None means no decay (1.0). Negative elapsed time (clock skew between hosts) counts as 0.
    The same formula as one SQL UPDATE (PostgreSQL), applied before adding a new outcome:

        UPDATE posterior SET
          successes = successes * power(0.5, extract(epoch from now() - updated_at) / :half_life),
          failures  = failures  * power(0.5, extract(epoch from now() - updated_at) / :half_life),
          updated_at = now()
    """
    if half_life_seconds is None:
        return 1.0
    if half_life_seconds not in _HALF_LIFE:
        raise InvalidConfig(
            f"half_life_seconds must be None or in {_HALF_LIFE}, got {half_life_seconds!r}"
        )
    if not isinstance(elapsed_seconds, int | float) or math.isnan(elapsed_seconds):
        raise InvalidConfig(f"elapsed_seconds must be a number, got {elapsed_seconds!r}")
    return float(0.5 ** (max(float(elapsed_seconds), 0.0) / half_life_seconds))


def decay(
    evidence: tuple[float, float], *, half_life_seconds: float | None, elapsed_seconds: float
) -> tuple[float, float]:
    """(successes, failures) decayed by `decay_factor`; decay is multiplicative, so applying it
    in several steps equals applying it once over the total elapsed time."""
    successes, failures = evidence
    for name, count in (("successes", successes), ("failures", failures)):
        if not (isinstance(count, int | float) and math.isfinite(count) and count >= 0.0):
            raise InvalidEvidence(f"{name} must be a finite number >= 0, got {count!r}")
    factor = decay_factor(half_life_seconds=half_life_seconds, elapsed_seconds=elapsed_seconds)
    return successes * factor, failures * factor


def logit(p: float) -> float:
    """log(p / (1 - p)) of p clipped to [1e-3, 1 - 1e-3] (a rate of 0 or 1 has no logit)."""
    p = _LOW if p < _LOW else _HIGH if p > _HIGH else p
    return math.log(p / (1.0 - p))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def backoff_parameters(
    prior: Sequence[tuple[float, float]],
    bucket: Sequence[tuple[float, float]],
    goal: Sequence[tuple[float, float]],
    strength: float,
    level_sharing: float = 0.0,
    offsets: Sequence[float] | None = None,
) -> list[tuple[float, float]]:
    """Bucket posterior (alpha, beta) of each path, with hierarchical backoff.

    Per path: the prior (alpha0, beta0), the bucket's (successes, failures) and the goal-wide
    (successes, failures). The evidence of the goal's other buckets (goal-wide minus this
    bucket's own) is lent to the bucket as at most `strength` pseudo-outcomes:

        alpha = alpha0 + s + lent * q,   beta = beta0 + f + lent * (1 - q),
        lent = min(strength, n_other)

    With `level_sharing` = 0, q is the path's own rate in the other buckets (paths backed off
    independently). With `level_sharing` = a > 0 the paths are correlated through the bucket's
    level (logit p[path, bucket] = level[bucket] + offset[path]): q = sigmoid(offset_i +
    level_b), where level_b is read, leave-one-out, from the *other* paths' evidence in the
    bucket (each shrunk by `a` pseudo-outcomes towards its other-bucket rate), weighted by
    their outcome counts. `offsets` are the paths' logit offsets (the controller's within-bucket
    estimates); None uses the logits of the other-bucket rates. So what is lent to a sparse
    path is "this bucket's level plus the path's usual difference", and the difference between
    paths, not each path's level, shrinks towards the goal's.

    Plain floats: a call ranks a handful of paths, where numpy's per-operation overhead
    would cost more than the arithmetic.
    """
    others = []  # (other-bucket rate, its outcome count) per path
    for (successes, failures), (goal_successes, goal_failures) in zip(bucket, goal, strict=True):
        other_successes = max(goal_successes - successes, 0.0)
        other_total = other_successes + max(goal_failures - failures, 0.0)
        others.append((other_successes / other_total if other_total > 0.0 else 0.0, other_total))
    lent_rates = [rate for rate, _ in others]
    if level_sharing > 0.0:
        bases = (
            [logit(rate) for rate, _ in others] if offsets is None else [float(o) for o in offsets]
        )
        # Each path's evidence in the bucket read as a level: its shrunk logit minus its offset.
        levels, weights = [], []
        for (successes, failures), (rate, other_total), base in zip(
            bucket, others, bases, strict=True
        ):
            own = successes + failures
            if own > 0.0 and other_total > 0.0:
                clipped = _LOW if rate < _LOW else _HIGH if rate > _HIGH else rate
                shrunk = (successes + level_sharing * clipped) / (own + level_sharing)
                levels.append(own * (logit(shrunk) - base))
                weights.append(own)
            else:
                levels.append(0.0)
                weights.append(0.0)
        total_level, total_weight = sum(levels), sum(weights)
        for index, base in enumerate(bases):
            rest = total_weight - weights[index]
            if rest > 0.0:  # leave-one-out: the bucket's level from the other paths
                level = (total_level - levels[index]) / rest
                lent_rates[index] = sigmoid(base + level)
    parameters = []
    for (alpha0, beta0), (successes, failures), (_, other_total), rate in zip(
        prior, bucket, others, lent_rates, strict=True
    ):
        lent = min(strength, other_total)
        parameters.append(
            (alpha0 + successes + lent * rate, beta0 + failures + lent * (1.0 - rate))
        )
    return parameters
