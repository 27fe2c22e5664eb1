from routerapp.models.access import ApiKey, AuditLog
from routerapp.models.catalog import ModelPrice, Provider
from routerapp.models.goals import Goal, Path
from routerapp.models.governance import ChangeRequest, ChangeRequestComment, GoalVersion
from routerapp.models.learning import GOAL_WIDE, ControllerObservation, Posterior
from routerapp.models.traffic import (
    HourlyRollup,
    Outcome,
    RegretRollup,
    RoutingDecision,
    ShadowComparison,
)

__all__ = [
    "GOAL_WIDE",
    "ApiKey",
    "AuditLog",
    "ChangeRequest",
    "ChangeRequestComment",
    "ControllerObservation",
    "Goal",
    "GoalVersion",
    "HourlyRollup",
    "ModelPrice",
    "Outcome",
    "Path",
    "Posterior",
    "Provider",
    "RegretRollup",
    "RoutingDecision",
    "ShadowComparison",
]
