"""Small statistics shared by reports, alerts and projections. PURE (standard library only)."""

from __future__ import annotations

import math

Z_95 = 1.959963984540054  # two-sided 95%


def wilson_interval(successes: float, trials: float, *, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a rate (successes / trials); (0, 1) when there are no trials.

    Preferred to the normal approximation because regret rates sit near 0, where that one
    goes negative and is far too narrow.

    >>> tuple(round(x, 4) for x in wilson_interval(3, 100))
    (0.0103, 0.0845)
    """
    if trials < 0 or successes < 0 or successes > trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} / {trials}")
    if trials == 0:
        return 0.0, 1.0
    rate = successes / trials
    z2 = z * z
    centre = (rate + z2 / (2 * trials)) / (1 + z2 / trials)
    half = (
        z * math.sqrt(rate * (1 - rate) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    )
    return max(0.0, centre - half), min(1.0, centre + half)
