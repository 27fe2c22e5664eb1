"""Plain data the engine consumes and returns: arms, configuration, rankings, controller state.

Everything here is immutable and JSON-friendly so the service can store a `Ranking.details` or
a `ControllerState.to_dict()` as-is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, get_args

from routerapp.engine.errors import InvalidConfig

Objective = Literal["success", "cost_at_quality", "utility"]
OBJECTIVES: tuple[str, ...] = get_args(Objective)

# Evidence beyond this is not a count of real calls but a bug (or an overflow upstream);
# 1e10 leaves room for ~1e9 real outcomes while rejecting 1e12.
MAX_EVIDENCE = 1e10


@dataclass(frozen=True)
class Bounds:
    """The closed range [low, high] of finite numbers the engine accepts for one quantity.

    The one definition of each range: the engine's own checks read it, and so do the model
    validators that guard what operators save (`routerapp.models.goals`), so a number that
    can be saved is a number the engine takes. Bools are not numbers here; NaN and infinities
    are never in range (`high=math.inf` means "any finite number from `low`").
    """

    low: float
    high: float

    def __contains__(self, value: object) -> bool:
        if type(value) is float:  # the common case first: checked once per call and path
            return self.low <= value <= self.high and math.isfinite(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        try:
            number = float(value)
        except OverflowError:  # an int too large for a float
            return False
        return math.isfinite(number) and self.low <= number <= self.high

    def __str__(self) -> str:
        return f"[{self.low:g}, {self.high:g}]"


EVIDENCE_BOUNDS = Bounds(0.0, MAX_EVIDENCE)
# Weights are relative shares and the prior solver clips shares below 1e-3, so a ratio past
# 1e6 expresses nothing more; the bound keeps every sum of weights finite.
WEIGHT_BOUNDS = Bounds(0.0, 1e6)
# Explicit alpha0/beta0: below 1e-3 a Beta draws exact zeros in float64 (see priors.MEAN_MIN),
# above MAX_EVIDENCE it is not a prior but a bug.
PRIOR_BOUNDS = Bounds(1e-3, MAX_EVIDENCE)
# Every number of an `EngineConfig` (objective aside); `half_life_seconds` may also be None.
CONFIG_BOUNDS: Mapping[str, Bounds] = MappingProxyType(
    {
        "quality_target": Bounds(0.0, 1.0),
        "exploration_floor": Bounds(0.0, 1.0),
        "prior_strength": Bounds(1e-3, 1e6),
        "utility_lambda": Bounds(0.0, 1e6),
        "backoff_strength": Bounds(0.0, 1e9),
        "level_sharing": Bounds(0.0, 1e9),
        "half_life_seconds": Bounds(1e-9, math.inf),
        "controller_gain": Bounds(0.0, 10.0),
        "tolerance_max": Bounds(0.0, 1e6),
    }
)

# The one set of defaults, read by `EngineConfig`, by a new goal's fields
# (`routerapp.models.goals`) and by the replay (`python -m routerapp.replay`), so the replay's
# figures describe the setting production runs.
DEFAULT_OBJECTIVE: Objective = "cost_at_quality"
DEFAULT_QUALITY_TARGET = 0.95
DEFAULT_EXPLORATION_FLOOR = 0.01
# alpha0 + beta0 of a weight-derived prior: two real outcomes weigh as much as the prior. A
# new goal had 10 and the replay 2; 10 costs ~0.6 point of accuracy at the 95% floor on
# RouteBench (the strong path looks worse early, is tried less, and the controller's reference
# is read from fewer, adaptively stopped outcomes: docs/engine.md, "Shadows and one set of
# defaults").
DEFAULT_PRIOR_STRENGTH = 2.0


@dataclass(frozen=True)
class Arm:
    """One eligible path as the engine sees it for one decision.

    `successes`/`failures` are the (decayed) evidence of the call's bucket; `goal_successes`/
    `goal_failures` the goal-wide evidence over all buckets, used for hierarchical backoff.
    When the call has no bucket the caller passes the same numbers in both.
    `alpha0`/`beta0`, when both given, replace the prior derived from `weight`.
    """

    path_id: str
    weight: float = 1.0
    expected_cost: float = 0.0
    successes: float = 0.0
    failures: float = 0.0
    goal_successes: float = 0.0
    goal_failures: float = 0.0
    alpha0: float | None = None
    beta0: float | None = None


def _check_range(name: str, value: float) -> None:
    bounds = CONFIG_BOUNDS[name]
    if value not in bounds:
        raise InvalidConfig(f"EngineConfig.{name} must be in {bounds}, got {value!r}")


@dataclass(frozen=True)
class EngineConfig:
    """Per-goal settings of the engine. Defaults are documented in docs/engine.md.

    - `prior_strength` 2.0 (`DEFAULT_PRIOR_STRENGTH`, also a new goal's default): alpha0 +
      beta0 of a weight-derived prior; equal weights give Beta(1, 1).
    - `utility_lambda` 0.1: under `utility`, paying the most expensive path instead of a free one
      must buy 10 points of success rate.
    - `backoff_strength` 5.0: pseudo-outcomes of goal-wide evidence lent to a bucket; small,
      because a bucket's own rate must take over within tens of calls (RouteBench replay:
      20 kept ~75% of calls on the strong model, 5 about 51%).
    - `level_sharing` 1.0: pseudo-outcomes shrinking a bucket's level estimate; > 0 lends a
      sparse path "this bucket's level + the path's usual offset" instead of its pooled rate
      (0 = paths backed off independently; see `posteriors.backoff_parameters`).
    - `controller_gain` 0.01 / `tolerance_max` 1.0: step and bound of the online controller
      (see `control.py`; 0.01 chosen on half A of the RouteBench split, docs/engine.md).
    """

    objective: Objective = DEFAULT_OBJECTIVE
    quality_target: float = DEFAULT_QUALITY_TARGET
    exploration_floor: float = DEFAULT_EXPLORATION_FLOOR
    prior_strength: float = DEFAULT_PRIOR_STRENGTH
    utility_lambda: float = 0.1
    backoff_strength: float = 5.0
    level_sharing: float = 1.0
    half_life_seconds: float | None = None
    controller_gain: float = 0.01
    tolerance_max: float = 1.0

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise InvalidConfig(
                f"EngineConfig.objective must be one of {', '.join(OBJECTIVES)}, "
                f"got {self.objective!r}"
            )
        _check_range("quality_target", self.quality_target)
        _check_range("exploration_floor", self.exploration_floor)
        _check_range("prior_strength", self.prior_strength)
        _check_range("utility_lambda", self.utility_lambda)
        _check_range("backoff_strength", self.backoff_strength)
        _check_range("level_sharing", self.level_sharing)
        _check_range("controller_gain", self.controller_gain)
        _check_range("tolerance_max", self.tolerance_max)
        if self.half_life_seconds is not None:
            _check_range("half_life_seconds", self.half_life_seconds)


# A new goal's engine settings, and the replay's unless its flags say otherwise.
DEFAULT_CONFIG = EngineConfig()


@dataclass(frozen=True)
class Ranking:
    """The engine's answer for one call.

    `order` holds every eligible path, best first; it is the fallback order and `order[0]` is the
    choice. `reason` is "thompson" (the objective decided), "exploration" (the exploration floor
    forced `order[0]`) or "only_path" (a single arm). `reference_quality` is the posterior mean
    success, in this call's bucket, of the path with the best goal-wide posterior mean at
    decision time (what "always use the best path" would achieve on this call); hand it back
    to `controller_observe`.
    """

    order: tuple[str, ...]
    samples: dict[str, float]
    objective: str
    bucket: str | None
    reason: str
    reference_quality: float
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def choice(self) -> str:
        return self.order[0]


@dataclass(frozen=True)
class ControllerState:
    """Online state of the cost/quality controller of one goal (global over its buckets).

    One multiplier per goal, not per bucket: the quality floor is an aggregate over all of the
    goal's traffic, and a Lagrangian relaxation of one aggregate constraint has one multiplier.
    Buckets differ through their own posteriors, not through their own tolerance.

    - `deficit`: running sum of (quality_target x reference - value), re-based whenever a
      bucket's reference estimate moves (see `control.py`); clipped to the band in which it
      still moves the tolerance (anti-windup).
    - `buckets`: per bucket ("" = goal-wide) the outcomes counted and the latest reference
      quality, so past calls are judged against the current estimate of the best path.
    - `evidence`: per bucket, per path (first outcomes, value sum), kept when the caller passes
      `chosen_path`; `offsets`: per path logit offset estimated within buckets from it;
      `reference_total`: what the controller aims at: the estimated total of the best fixed path
        over counted outcomes plus `control.REFERENCE_MARGIN_Z` standard errors of it.
    - `reference`: per bucket (observations, value sum) of the *reference* path observed on a
      random sample of calls (shadow traffic to the baseline, `controller_observe_reference`):
      unbiased evidence about the quality the floor is a fraction of.
    - `observations`, `value_sum`, `reference_sum`: plain totals for reporting.

    The tolerance itself is derived: `effective_tolerance(config)`.
    """

    deficit: float = 0.0
    observations: int = 0
    value_sum: float = 0.0
    reference_sum: float = 0.0
    buckets: Mapping[str, tuple[int, float]] = field(default_factory=dict)
    evidence: Mapping[str, Mapping[str, tuple[float, float]]] = field(default_factory=dict)
    offsets: Mapping[str, float] = field(default_factory=dict)
    reference_total: float = 0.0
    reference: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def effective_tolerance(self, config: EngineConfig) -> float:
        """Success-rate loss accepted per unit of normalised cost saved (1 / multiplier):
        starts at 1 - quality_target and shrinks while the goal runs a quality deficit."""
        start = 1.0 - config.quality_target
        tolerance = start - config.controller_gain * self.deficit
        return min(max(tolerance, 0.0), config.tolerance_max)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 4,
            "deficit": self.deficit,
            "observations": self.observations,
            "value_sum": self.value_sum,
            "reference_sum": self.reference_sum,
            "buckets": {
                key: [count, reference] for key, (count, reference) in sorted(self.buckets.items())
            },
            "evidence": {
                key: {path: [n, v] for path, (n, v) in sorted(paths.items())}
                for key, paths in sorted(self.evidence.items())
            },
            "offsets": dict(sorted(self.offsets.items())),
            "reference_total": self.reference_total,
            "reference": {key: [n, v] for key, (n, v) in sorted(self.reference.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ControllerState:
        """Inverse of `to_dict`; None or {} is the initial state. Older versions load: a
        missing key is its empty value, and version 3's `bias` (the removed integral term,
        never on in production) is ignored."""
        if not data:
            return cls()
        try:
            buckets = {
                str(key): (int(value[0]), float(value[1]))
                for key, value in dict(data.get("buckets") or {}).items()
            }
            evidence = {
                str(key): {
                    str(path): (float(pair[0]), float(pair[1]))
                    for path, pair in dict(paths).items()
                }
                for key, paths in dict(data.get("evidence") or {}).items()
            }
            offsets = {
                str(path): float(value) for path, value in dict(data.get("offsets") or {}).items()
            }
            reference = {
                str(key): (float(pair[0]), float(pair[1]))
                for key, pair in dict(data.get("reference") or {}).items()
            }
            state = cls(
                deficit=float(data.get("deficit", 0.0)),
                observations=int(data.get("observations", 0)),
                value_sum=float(data.get("value_sum", 0.0)),
                reference_sum=float(data.get("reference_sum", 0.0)),
                buckets=buckets,
                evidence=evidence,
                offsets=offsets,
                reference_total=float(data.get("reference_total", 0.0)),
                reference=reference,
            )
        except (TypeError, ValueError, IndexError, KeyError) as error:
            raise InvalidConfig(f"controller state is not valid: {data!r}") from error
        numbers = [
            state.value_sum,
            state.reference_sum,
            state.reference_total,
            *(r for _, r in buckets.values()),
            *(x for paths in evidence.values() for pair in paths.values() for x in pair),
            *(x for pair in reference.values() for x in pair),
        ]
        if (
            state.observations < 0
            or not math.isfinite(state.deficit)
            or not all(math.isfinite(x) and x >= 0 for x in numbers)
            or not all(math.isfinite(x) for x in offsets.values())
            or any(count < 0 for count, _ in buckets.values())
            # A value sum above its count is not a record of values in [0, 1].
            or any(v > n * (1.0 + 1e-9) for n, v in reference.values())
        ):
            raise InvalidConfig(f"controller state is not valid: {data!r}")
        return state
