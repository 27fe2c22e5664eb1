"""Page access: every page needs a signed-in user; actions need a role (routerapp.roles)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from routerapp.roles import user_can

View = Callable[..., HttpResponse]


def role_required(action: str) -> Callable[[View], View]:
    """Anonymous users go to the sign-in page; signed-in users without the role get 403.

    The same check guards GET and POST, so a POST forged by a role that never saw the form is
    refused too.
    """

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not user_can(request.user, action):
                raise PermissionDenied(f"Your role may not {action}.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
