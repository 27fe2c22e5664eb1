"""One permission class: API keys need a scope, web users need a role (routerapp.roles)."""

from __future__ import annotations

from typing import Any

from rest_framework import permissions
from rest_framework.request import Request

from routerapp.models import ApiKey
from routerapp.roles import user_can

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
