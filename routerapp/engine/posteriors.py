"""Evidence bookkeeping: outcome deltas, time decay and the hierarchical bucket posterior.

Each (path, bucket) holds Beta(alpha0 + successes, beta0 + failures). An outcome v in [0, 1]
adds v to successes and 1 - v to failures; a corrected outcome moves the counts by the
difference, so reporting the same value twice changes nothing.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

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


def backoff_parameters(
    prior: NDArray[np.float64],
    bucket: NDArray[np.float64],
    goal: NDArray[np.float64],
    strength: float,
    level_sharing: float = 0.0,
    offsets: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """Bucket posterior with hierarchical backoff, vectorised over paths.

    Each array argument is an (n_paths, 2) array of (alpha-like, beta-like) columns: the prior
    (alpha0, beta0), the bucket's (successes, failures) and the goal-wide (successes,
    failures). The evidence of the goal's other buckets (goal-wide minus this bucket's own) is
    lent to the bucket as at most `strength` pseudo-outcomes:

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
    """
    other = np.maximum(goal - bucket, 0.0)
    other_total = other.sum(axis=1)
    lent = np.minimum(other_total, strength)
    rate = other[:, 0] / np.maximum(other_total, 1e-300)
    if level_sharing > 0.0:
        own = bucket.sum(axis=1)
        clipped = np.minimum(np.maximum(rate, _LOW), _HIGH)
        base = (
            np.log(clipped / (1.0 - clipped))
            if offsets is None
            else np.asarray(offsets, dtype=float)
        )
        usable = (own > 0.0) & (other_total > 0.0)
        shrunk = np.minimum(
            np.maximum((bucket[:, 0] + level_sharing * clipped) / (own + level_sharing), _LOW),
            _HIGH,
        )
        weights = np.where(usable, own, 0.0)
        levels = np.where(usable, own * (np.log(shrunk / (1.0 - shrunk)) - base), 0.0)
        rest = weights.sum() - weights
        level = (levels.sum() - levels) / np.where(rest > 0.0, rest, 1.0)
        shared = 1.0 / (1.0 + np.exp(-(base + level)))
        rate = np.where(rest > 0.0, shared, rate)
    rate = np.where(other_total > 0.0, rate, 0.0)
    parameters = prior + bucket
    parameters[:, 0] += lent * rate
    parameters[:, 1] += lent * (1.0 - rate)
    return parameters
