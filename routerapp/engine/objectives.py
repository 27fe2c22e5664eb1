"""Objectives: turn sampled success rates and expected costs into scores (higher is better).

- `success`: the sample itself (Kalibr's behaviour).
- `utility`: sample - lambda * normalised cost.
- `cost_at_quality`: sample - tolerance * normalised cost, the Lagrangian relaxation of
  "minimise cost subject to quality >= target * best": tolerance is the inverse of the Lagrange
  multiplier, i.e. the success-rate loss accepted per unit of normalised cost saved, and the
  controller (`control.py`) moves it online so the aggregate floor holds. A cheaper path wins
  when its sampled quality loss is below tolerance x the (normalised) cost it saves.

Costs are normalised by the most expensive eligible path of the decision, so scores are
scale-free (USD per call or per million tokens give the same decision).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from routerapp.engine.errors import InvalidCost

COST_AWARE = frozenset({"cost_at_quality", "utility"})


def normalised_costs(costs: list[float], path_ids: list[str]) -> list[float]:
    """Costs divided by the highest; all-zero costs cannot be traded against quality."""
    highest = max(costs)
    if highest <= 0.0:
        raise InvalidCost(
            f"every expected cost is zero (paths {', '.join(path_ids)}): a cost-aware objective "
            "needs prices; use objective 'success' or set prices"
        )
    return [cost / highest for cost in costs]


def scores(
    samples: list[float], normalised: list[float] | None, *, trade_off: float
) -> list[float]:
    """Score of each path for one decision (plain floats: a handful of paths per call)."""
    if normalised is None:
        return samples
    return [sample - trade_off * cost for sample, cost in zip(samples, normalised, strict=True)]


def score_matrix(
    samples: NDArray[np.float64], normalised: list[float] | None, *, trade_off: float
) -> NDArray[np.float64]:
    """`scores` for a draws x paths matrix of samples (Monte Carlo allocation)."""
    if normalised is None:
        return samples
    return samples - trade_off * np.asarray(normalised)
