"""JSON errors on /v1 and /api/v1 in every mode, DEBUG included.

Django answers an exception a view lets escape, an unknown URL or a refused method with an HTML
page; under DEBUG that page carries the stack trace, local variables, settings and the URL conf.
Machine clients must get their interface's JSON instead, without any of that: OpenAI-style
`{"error": {...}}` on /v1, DRF-style `{"detail": ...}` on /api/v1. Django has already logged the
exception with its traceback (logger `django.request`) by the time this middleware sees the
page, so the replacement only has to drop it.

DRF's own error responses (JSON, or the browsable API's HTML for a browser) pass unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework.response import Response as DrfResponse

OPENAI_PREFIX = "/v1/"
DRF_PREFIX = "/api/v1/"
SERVER_ERROR_MESSAGE = "Internal server error: the server logged it; nothing more is returned."


def json_error(request: HttpRequest, status: int) -> JsonResponse:
    """The JSON error of `status` in the shape of the interface `request` addresses."""
    if status >= 500:
        message = SERVER_ERROR_MESSAGE
    else:
        message = f"{HTTPStatus(status).phrase}: {request.method} {request.path}"
    if request.path.startswith(OPENAI_PREFIX):
        error_type = "server_error" if status >= 500 else "invalid_request_error"
        body: dict[str, Any] = {
            "error": {"type": error_type, "message": message, "param": None, "code": None}
        }
    else:
        body = {"detail": message}
    return JsonResponse(body, status=status)


def _needs_json(request: HttpRequest, response: HttpResponse) -> bool:
    if not request.path.startswith((OPENAI_PREFIX, DRF_PREFIX)) or response.status_code < 400:
        return False
    if isinstance(response, DrfResponse):
        return False
    return not response.get("Content-Type", "").startswith("application/json")


class JsonErrorsMiddleware:
    """Replaces a non-JSON error page on /v1 and /api/v1 by the interface's JSON error."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def _as_json(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if not _needs_json(request, response):
            return response
        replacement = json_error(request, response.status_code)
        if response.has_header("Allow"):  # a 405 says which methods would do
            replacement["Allow"] = response["Allow"]
        return replacement

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self._acall(request)
        return self._as_json(request, self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        return self._as_json(request, await self.get_response(request))
