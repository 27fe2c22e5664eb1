"""Project middleware: refusing unsafe URLs (UrlTextMiddleware), WhiteNoise made
async-capable (StaticFilesMiddleware), and django-csp without thread hops
(ContentSecurityPolicyMiddleware).

Both are sync- and async-capable. Why that matters: WhiteNoise's middleware is synchronous
only, and one sync middleware in the chain makes Django run the whole chain in a thread per
request and call the async completion view back through `async_to_sync`, so every in-flight
upstream call would hold a thread. The WhiteNoise wrapper serves static files exactly as
WhiteNoise does and passes every other request straight through, in the caller's mode.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from csp.middleware import CSPMiddleware
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseBase,
    JsonResponse,
)
from whitenoise.middleware import WhiteNoiseMiddleware

from routerapp.api.openai_errors import openai_error
from routerapp.errors import InvalidRequest
from routerapp.input_safety import unsafe_character


class StaticFilesMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.whitenoise = WhiteNoiseMiddleware(get_response)
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def _static_file(self, request: HttpRequest) -> Any:
        if self.whitenoise.autorefresh:
            return self.whitenoise.find_file(request.path_info)
        return self.whitenoise.files.get(request.path_info)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self._acall(request)
        static_file = self._static_file(request)
        if static_file is not None:
            return self.whitenoise.serve(static_file, request)
        return self.get_response(request)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(self.whitenoise.static_prefix):
            static_file = await sync_to_async(self._static_file)(request)
            if static_file is not None:
                return await sync_to_async(self.whitenoise.serve)(static_file, request)
        return await self.get_response(request)


def url_refusal(request: HttpRequest) -> tuple[str | None, str] | None:
    """(query parameter or None, reason) when the path or query string holds a character no
    view can use (a NUL from `%00`: PostgreSQL refuses it in any query), else None."""
    reason = unsafe_character(request.path)
    if reason:
        return None, f"The URL path: {reason}"
    for name, values in request.GET.lists():
        reason = unsafe_character(name)
        if reason:
            return None, f"A query parameter name: {reason}"
        for value in values:
            reason = unsafe_character(value)
            if reason:
                return name, reason
    return None


def url_refusal_response(request: HttpRequest, param: str | None, reason: str) -> HttpResponse:
    """The 400 in each interface's own error shape."""
    if request.path.startswith("/api/"):
        return JsonResponse({param: [reason]} if param else {"detail": reason}, status=400)
    if request.path.startswith("/v1/"):
        return openai_error(InvalidRequest(reason, param=param))
    text = f"Bad request: {f'parameter {param!r}: ' if param else ''}{reason}"
    return HttpResponseBadRequest(text, content_type="text/plain; charset=utf-8")


class UrlTextMiddleware:
    """Answers 400 before any view runs when the URL holds a NUL, whichever view it names."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def _refuse(self, request: HttpRequest) -> HttpResponse | None:
        refusal = url_refusal(request)
        return url_refusal_response(request, *refusal) if refusal else None

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self._acall(request)
        return self._refuse(request) or self.get_response(request)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        return self._refuse(request) or await self.get_response(request)


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware without its thread hops in async mode.

    Django's MiddlewareMixin runs process_request/process_response through `sync_to_async`
    (one shared thread) for every async request, /v1 included. Here both only build a header
    string, no I/O, so they run on the event loop.
    """

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        self.process_request(request)
        # In async mode (the only caller of __acall__) the next handler is a coroutine function.
        response = await cast(Awaitable[HttpResponseBase], self.get_response(request))
        return self.process_response(request, response)
