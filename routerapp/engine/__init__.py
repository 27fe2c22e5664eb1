"""The Thompson engine: a pure (standard library + numpy) package; no Django, DRF or Celery.

Public surface:

- data: `Arm`, `EngineConfig`, `Ranking`, `ControllerState`, `Objective`
- bounds of every number it accepts: `Bounds`, `WEIGHT_BOUNDS`, `PRIOR_BOUNDS`,
  `EVIDENCE_BOUNDS`, `CONFIG_BOUNDS` (read by the model validators too)
- decisions: `rank_paths`, `arm_check`, `allocation_shares`, `posterior_parameters`
- evidence: `outcome_delta`, `decay_factor`, `decay`, `arms_observe`
- priors and summaries: `priors_from_weights`, `posterior_summary`
- control: `controller_observe`, `controller_observe_reference` (shadow observations of
  the baseline)
- defaults shared with the goal model and the replay: `DEFAULT_CONFIG`,
  `DEFAULT_PRIOR_STRENGTH`, ...
- errors: `EngineError` and its subclasses

See docs/engine.md for the model behind each piece.
"""

from __future__ import annotations

from routerapp.engine.control import controller_observe, controller_observe_reference
from routerapp.engine.distributions import beta_cdf, beta_quantile, posterior_summary
from routerapp.engine.errors import (
    DuplicatePath,
    EngineError,
    InvalidConfig,
    InvalidCost,
    InvalidEvidence,
    InvalidOutcome,
    InvalidWeight,
    NoEligiblePaths,
    UnknownPath,
)
from routerapp.engine.posteriors import decay, decay_factor, outcome_delta
from routerapp.engine.priors import priors_from_weights
from routerapp.engine.thompson import (
    allocation_shares,
    arm_check,
    arms_observe,
    posterior_parameters,
    rank_paths,
)
from routerapp.engine.types import (
    CONFIG_BOUNDS,
    DEFAULT_CONFIG,
    DEFAULT_EXPLORATION_FLOOR,
    DEFAULT_OBJECTIVE,
    DEFAULT_PRIOR_STRENGTH,
    DEFAULT_QUALITY_TARGET,
    EVIDENCE_BOUNDS,
    MAX_EVIDENCE,
    PRIOR_BOUNDS,
    WEIGHT_BOUNDS,
    Arm,
    Bounds,
    ControllerState,
    EngineConfig,
    Objective,
    Ranking,
)

__all__ = [
    "CONFIG_BOUNDS",
    "DEFAULT_CONFIG",
    "DEFAULT_EXPLORATION_FLOOR",
    "DEFAULT_OBJECTIVE",
    "DEFAULT_PRIOR_STRENGTH",
    "DEFAULT_QUALITY_TARGET",
    "EVIDENCE_BOUNDS",
    "MAX_EVIDENCE",
    "PRIOR_BOUNDS",
    "WEIGHT_BOUNDS",
    "Arm",
    "Bounds",
    "ControllerState",
    "DuplicatePath",
    "EngineConfig",
    "EngineError",
    "InvalidConfig",
    "InvalidCost",
    "InvalidEvidence",
    "InvalidOutcome",
    "InvalidWeight",
    "NoEligiblePaths",
    "Objective",
    "Ranking",
    "UnknownPath",
    "allocation_shares",
    "arm_check",
    "arms_observe",
    "beta_cdf",
    "beta_quantile",
    "controller_observe",
    "controller_observe_reference",
    "decay",
    "decay_factor",
    "outcome_delta",
    "posterior_parameters",
    "posterior_summary",
    "priors_from_weights",
    "rank_paths",
]
