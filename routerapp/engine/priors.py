"""Weights are priors: turn traffic shares into Beta priors that reproduce them.

A path's weight is the share of traffic it should get before any outcome exists. With the
`success` objective, Thompson sampling sends a call to the path whose sampled success is the
highest, so the share of path i is P(i wins) = integral of f_i(x) * prod_{j != i} F_j(x) dx over
independent Beta(m_j * k, (1 - m_j) * k) priors of strength k. That share is not linear in the
means m, so the means are solved for numerically:

1. Targets: normalised weights. When the exploration floor mixes in uniform picks with
   probability eps, the Thompson part must deliver (w_i - eps/N) / (1 - eps) so the total is w_i
   (weights under the floor end at the floor).
2. Fixed point on the logits of the means: logit m_i += step (log target_i - log P(i wins))
   (step 0.8, halved on every overshoot), with
   P(i wins) computed by deterministic quadrature (a Stieltjes sum on exact Beta CDFs over a
   cosine-spaced grid, so endpoint singularities of small-shape Betas cost nothing).
3. The result is cached by (targets, strength): the service asks for the same goal's priors on
   every call.

Equal weights skip the solver: every mean is 0.5 (Beta(1, 1) at the default strength 2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from routerapp.engine.distributions import beta_cdf_array
from routerapp.engine.errors import InvalidConfig, InvalidWeight
from routerapp.engine.types import WEIGHT_BOUNDS

# Means are kept inside (MEAN_MIN, 1 - MEAN_MIN): a Beta(0.002, 1.998) draws exact zeros in
# float64, which would turn the argmax into a tie-break rule instead of a probability.
MEAN_MIN = 0.002
_GRID = 0.5 * (1.0 - np.cos(np.pi * np.linspace(0.0, 1.0, 801)))
_SHARE_MIN = 1e-3


def win_probabilities(means: Sequence[float], strength: float) -> list[float]:
    """P(arm i has the highest sample) for Beta(m_i * k, (1 - m_i) * k) priors, by quadrature."""
    mean_array = np.asarray(means, dtype=float)
    alpha, beta = mean_array * strength, (1.0 - mean_array) * strength
    cdf = beta_cdf_array(_GRID[None, :], alpha[:, None], beta[:, None])
    increments = np.diff(cdf, axis=1)
    middle = 0.5 * (cdf[:, 1:] + cdf[:, :-1])
    # prod_{j != i} F_j without dividing by F_i (which is 0 near x = 0): prefix x suffix products.
    ones = np.ones((1, middle.shape[1]))
    prefix = np.cumprod(np.vstack([ones, middle[:-1]]), axis=0)
    suffix = np.cumprod(np.vstack([ones, middle[::-1][:-1]]), axis=0)[::-1]
    shares = np.sum(increments * prefix * suffix, axis=1)
    return [float(x) for x in shares / shares.sum()]


@lru_cache(maxsize=1024)
def _solve_means(targets: tuple[float, ...], strength: float) -> tuple[float, ...]:
    count = len(targets)
    if count == 1 or max(targets) - min(targets) < 1e-12:
        return (0.5,) * count
    target = np.asarray(targets)
    limit = math.log((1.0 - MEAN_MIN) / MEAN_MIN)
    # Start from the target shares' log-ratios; the loop converges in tens of steps.
    logits = np.clip(np.log(target) - np.log(target).mean(), -limit, limit)
    best_logits, best_error, best_shares = logits, math.inf, target
    step = 0.8
    for _ in range(300):
        means = 1.0 / (1.0 + np.exp(-logits))
        shares = np.maximum(np.asarray(win_probabilities(list(means), strength)), 1e-12)
        error = float(np.max(np.abs(shares - target)))
        if error < best_error:
            best_logits, best_error, best_shares = logits, error, shares
        else:
            # Overshoot: with stronger priors the shares react more to the logits, and a fixed
            # step oscillates (strength 10, weights 1..5 ended 9 points off). Step back, halve.
            step *= 0.5
        if error < 2e-4:
            break
        logits = best_logits + step * (np.log(target) - np.log(best_shares))
        logits = np.clip(logits - logits.mean(), -limit, limit)
    return tuple(float(1.0 / (1.0 + math.exp(-x))) for x in best_logits)


def check_weights(weights: Sequence[float], names: Sequence[str] | None = None) -> list[float]:
    """Validated weights as floats; raises InvalidWeight naming the bad path."""
    values = []
    for index, weight in enumerate(weights):
        name = names[index] if names is not None else f"#{index}"
        if weight not in WEIGHT_BOUNDS:
            raise InvalidWeight(f"weight of path {name} must be in {WEIGHT_BOUNDS}, got {weight!r}")
        values.append(float(weight))
    if values and sum(values) <= 0.0:
        raise InvalidWeight("all weights are zero: at least one path needs a positive weight")
    return values


def target_shares(weights: Sequence[float], *, exploration_floor: float) -> tuple[float, ...]:
    """Shares the Thompson part must deliver so that, mixed with the floor, the total is w."""
    total = sum(weights)
    count = len(weights)
    epsilon = min(1.0, exploration_floor * count) if count > 1 else 0.0
    if epsilon >= 1.0:
        return (1.0 / count,) * count
    raw = [max((w / total - epsilon / count) / (1.0 - epsilon), _SHARE_MIN) for w in weights]
    raw_total = sum(raw)
    # Rounding keeps the cache key stable across float noise in stored weights.
    return tuple(round(r / raw_total, 6) for r in raw)


def prior_means(
    weights: Sequence[float], *, strength: float, exploration_floor: float = 0.0
) -> tuple[float, ...]:
    if not (math.isfinite(strength) and strength > 0.0):
        raise InvalidConfig(f"prior strength must be a positive number, got {strength!r}")
    values = check_weights(weights)
    if not values:
        return ()
    return _solve_means(target_shares(values, exploration_floor=exploration_floor), float(strength))


def priors_from_weights(
    weights: Sequence[float], *, strength: float, exploration_floor: float = 0.0
) -> list[tuple[float, float]]:
    """Beta priors (alpha0, beta0) with alpha0 + beta0 = strength whose Thompson shares under the
    `success` objective equal the normalised weights (with `exploration_floor`, the shares after
    the floor's uniform mixing do).

    >>> priors_from_weights([1, 1], strength=2.0)
    [(1.0, 1.0), (1.0, 1.0)]
    """
    means = prior_means(weights, strength=strength, exploration_floor=exploration_floor)
    return [(m * strength, (1.0 - m) * strength) for m in means]
