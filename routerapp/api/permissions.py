"""API keys need a scope, web users need a role (routerapp.roles); goal-restricted keys do
not manage keys."""

from __future__ import annotations

from typing import Any

from rest_framework import permissions
from rest_framework.request import Request

from routerapp.models import ApiKey
from routerapp.roles import user_can
from routerapp.selectors.goals import goal_ids_visible

SAFE = permissions.SAFE_METHODS


class RoleOrScopePermission(permissions.BasePermission):
    """Views set `read_scope`/`write_scope` (API keys) and `read_role`/`write_role` (users)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        safe = request.method in SAFE
        if isinstance(request.auth, ApiKey):
            scope = getattr(view, "read_scope" if safe else "write_scope", ApiKey.Scope.ADMIN)
            return request.auth.has_scope(scope)
        role = getattr(view, "read_role" if safe else "write_role", "admin")
        return user_can(request.user, role)


def request_api_key(request: Request) -> ApiKey | None:
    """The API key the request authenticated with; None for a signed-in user."""
    return request.auth if isinstance(request.auth, ApiKey) else None


class EveryGoalKeyPermission(permissions.BasePermission):
    """Only a key that sees every goal (or a user) may manage API keys: a key restricted to
    some goals would otherwise read other goals' keys, or mint itself a key for every goal."""

    message = "A key restricted to some goals cannot manage API keys."

    def has_permission(self, request: Request, view: Any) -> bool:
        return goal_ids_visible(api_key=request_api_key(request)) is None
