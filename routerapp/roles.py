"""Web roles (Django groups) and what each may do; shared by the API and the pages."""

from __future__ import annotations

from typing import Any

VIEWER, OPERATOR, APPROVER, ADMIN = "viewer", "operator", "approver", "admin"
ROLES = (VIEWER, OPERATOR, APPROVER, ADMIN)

# action -> groups allowed (superusers may do everything)
ALLOWED = {
    "view": {VIEWER, OPERATOR, APPROVER, ADMIN},
    "operate": {OPERATOR, ADMIN},  # edit goals and paths (on existing providers); playground
    "approve": {APPROVER, ADMIN},
    "review": {OPERATOR, APPROVER, ADMIN},  # comment on change requests
    "admin": {ADMIN},  # providers and their keys, prices, API keys, users
}


def user_groups(user: Any) -> set[str]:
    cached = getattr(user, "_routerapp_groups", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True)) if user.is_authenticated else set()
        user._routerapp_groups = cached
    return cached


def user_can(user: Any, action: str) -> bool:
    if not user or not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return bool(user_groups(user) & ALLOWED[action])
