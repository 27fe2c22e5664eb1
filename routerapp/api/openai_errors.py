"""OpenAI-style JSON errors for /v1: {"error": {"type", "message", "param", "code", ...}}."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase

from routerapp.errors import MethodNotAllowed, RouterError

AsyncView = Callable[..., Coroutine[Any, Any, HttpResponseBase]]


def openai_error(error: RouterError) -> JsonResponse:
    body: dict[str, Any] = {
        "type": error.type,
        "message": error.message,
        "param": error.extra.get("param"),
        "code": type(error).__name__,
    }
    body.update({key: value for key, value in error.extra.items() if key != "param"})
    response = JsonResponse({"error": body}, status=error.status)
    if "request_id" in error.extra:
        response["X-Router-Request-Id"] = error.extra["request_id"]
    if "retry_after" in error.extra:  # a 429: the OpenAI SDKs wait this long before retrying
        response["Retry-After"] = str(error.extra["retry_after"])
    return response


def openai_methods(*methods: str) -> Callable[[AsyncView], AsyncView]:
    """Like Django's `require_http_methods` for an async /v1 view, but another method gets an
    OpenAI-style JSON 405 with an `Allow` header instead of an empty HTML page."""

    def decorator(view: AsyncView) -> AsyncView:
        @wraps(view)
        async def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method in methods:
                return await view(request, *args, **kwargs)
            response = openai_error(
                MethodNotAllowed(
                    f"Method {request.method} is not allowed on {request.path}; "
                    f"use {' or '.join(methods)}."
                )
            )
            response["Allow"] = ", ".join(methods)
            return response

        return checked

    return decorator
