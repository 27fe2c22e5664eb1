from routerapp.models.access import ApiKey, AuditLog
from routerapp.models.catalog import ModelPrice, Provider
from routerapp.models.goals import Goal, Path
from routerapp.models.learning import GOAL_WIDE, ControllerObservation, Posterior
from routerapp.models.traffic import HourlyRollup, Outcome, RoutingDecision

__all__ = [
    "GOAL_WIDE",
    "ApiKey",
    "AuditLog",
    "ControllerObservation",
    "Goal",
    "HourlyRollup",
    "ModelPrice",
    "Outcome",
    "Path",
    "Posterior",
    "Provider",
    "RoutingDecision",
]
