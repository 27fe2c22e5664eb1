"""API keys need a scope, web users need a role (routerapp.roles); a key with an owner also
needs its owner's role (a key acts for its owner: its rights are its scopes intersected with
the owner's role); goal-restricted keys do not manage keys."""

from __future__ import annotations

from typing import Any

from rest_framework import permissions
from rest_framework.request import Request

from routerapp.models import ApiKey
from routerapp.roles import user_can
from routerapp.selectors.goals import goal_ids_visible

SAFE = permissions.SAFE_METHODS


# The application's own traffic: a key of these scopes needs an active owner, not a role (a
# service account's owner may be a viewer).
TRAFFIC_SCOPES = frozenset({ApiKey.Scope.COMPLETIONS, ApiKey.Scope.OUTCOMES})


def key_refusal(key: ApiKey, *, scope: str, role: str) -> str | None:
    """Why `key` may not act with `scope` where a user needs `role`; None when it may.

    A key without an owner (made before keys had one, or by `create_api_key` without
    `--user`) keeps its scopes; it cannot propose or approve changes, which need a user
    (services/governance.py)."""
    if not key.has_scope(scope):
        return f"This API key lacks the '{scope}' scope."
    owner = key.created_by
    if owner is None:
        return None
    if not owner.is_active:
        return "This API key's owner is deactivated."
    if scope in TRAFFIC_SCOPES or user_can(owner, role):
        return None
    return f"This API key acts for {owner.get_username()}, whose role may not {role}."


class RoleOrScopePermission(permissions.BasePermission):
    """Views set `read_scope`/`write_scope` (API keys) and `read_role`/`write_role` (users)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        safe = request.method in SAFE
        role = getattr(view, "read_role" if safe else "write_role", "admin")
        if isinstance(request.auth, ApiKey):
            scope = getattr(view, "read_scope" if safe else "write_scope", ApiKey.Scope.ADMIN)
            refusal = key_refusal(request.auth, scope=scope, role=role)
            if refusal:
                self.message = refusal
            return refusal is None
        return user_can(request.user, role)


def request_actor(request: Request) -> Any:
    """The user a request acts for: the signed-in user, or the owner of its API key (None for
    a key without one)."""
    if isinstance(request.auth, ApiKey):
        return request.auth.created_by
    return request.user if request.user.is_authenticated else None


def request_api_key(request: Request) -> ApiKey | None:
    """The API key the request authenticated with; None for a signed-in user."""
    return request.auth if isinstance(request.auth, ApiKey) else None


class EveryGoalKeyPermission(permissions.BasePermission):
    """Only a key that sees every goal (or a user) may manage API keys: a key restricted to
    some goals would otherwise read other goals' keys, or mint itself a key for every goal."""

    message = "A key restricted to some goals cannot manage API keys."

    def has_permission(self, request: Request, view: Any) -> bool:
        return goal_ids_visible(api_key=request_api_key(request)) is None
