"""OpenAI-style JSON errors for /v1: {"error": {"type", "message", "param", "code", ...}}."""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse

from routerapp.errors import RouterError


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
    return response
