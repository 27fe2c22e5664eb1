"""/v1 served straight from the ASGI server to its async views, past Django's middleware chain.

Why: on an async request Django runs every `MiddlewareMixin` middleware's `process_request` and
`process_response` through `sync_to_async`, and sends `request_started`/`request_finished`
to their synchronous receivers the same way: about 16 thread hops per /v1 call with this
project's middleware, all through one shared thread per process, for sessions, CSRF, users,
messages and sign-in throttling that /v1 (API keys, no cookies) never uses. Measured with
`bench/gateway.py --profile` (docs/benchmarks.md), those hops were the largest share of a call.

What /v1 keeps, done here on the event loop (header work, no I/O):
- the checks before a view: the Host header against ALLOWED_HOSTS, the HTTPS redirect when
  configured, no NUL or lone surrogate in the URL;
- the security headers (SecurityMiddleware: nosniff, referrer and opener policy, HSTS over
  HTTPS; X-Frame-Options), and for these JSON answers the constant Content-Security-Policy
  OWASP recommends for APIs (`default-src 'none'; frame-ancestors 'none'`: a JSON document
  loads and runs nothing) instead of the pages' policy, which django-csp builds anew for
  every response (a tenth of a call's CPU here);
- an OpenAI-style JSON error for anything that escapes a view (logged with its traceback as
  Django logs it).
No request signals: nothing on the event loop thread holds a DB connection to close; the views'
DB work runs on the pool (`routerapp/dbwork.py`), whose units open and close their own.
Every other path goes to Django's ASGI application unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from django.core.exceptions import DisallowedHost, RequestAborted
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
from django.utils.log import log_response

from routerapp.api.completions import chat_completions, models_list
from routerapp.api.json_errors import json_error
from routerapp.middleware import url_refusal, url_refusal_response

# The ASGI types as django-stubs spells them for ASGIHandler.
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]
View = Callable[[HttpRequest], Awaitable[HttpResponseBase]]

VIEWS: dict[str, View] = {"/v1/chat/completions": chat_completions, "/v1/models": models_list}
API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"

security_logger = logging.getLogger("django.security.DisallowedHost")


async def _no_response(request: HttpRequest) -> HttpResponseBase:
    raise AssertionError("only the middlewares' process_* methods are used here")


class V1Handler(ASGIHandler):
    """Django's ASGI handler for the /v1 views alone: the same request parsing, disconnect
    handling and response sending, with the middleware work listed above done inline."""

    def __init__(self) -> None:
        BaseHandler.__init__(self)  # no middleware chain (the module docstring says why)
        self.security = SecurityMiddleware(_no_response)
        self.frame_options = XFrameOptionsMiddleware(_no_response)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.handle(scope, receive, send)

    def _refusal(self, request: HttpRequest) -> HttpResponseBase | None:
        try:
            request.get_host()
        except DisallowedHost as error:
            security_logger.error(str(error))
            return json_error(request, 400)
        redirect = self.security.process_request(request)
        if redirect is not None:
            return redirect
        refused = url_refusal(request)
        return url_refusal_response(request, *refused) if refused else None

    async def _respond(self, view: View, request: HttpRequest) -> HttpResponseBase:
        try:
            response = self._refusal(request)
            if response is None:
                response = await view(request)
        except Exception as error:
            response = json_error(request, 500)
            log_response(
                "%s: %s",
                response.reason_phrase,
                request.path,
                response=response,
                request=request,
                exception=error,
            )
        # The stubs say HttpResponse; it only sets headers, which a streamed answer has too.
        response = self.security.process_response(request, response)  # type: ignore[arg-type]
        response = self.frame_options.process_response(request, response)
        response["Content-Security-Policy"] = API_CONTENT_SECURITY_POLICY
        return response

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            body_file.close()
            assert error_response is not None  # create_request returns one or the other
            await self.send_response(error_response, send)
            return
        view = VIEWS[v1_path(scope) or ""]

        async def respond() -> None:
            response = await self._respond(view, request)
            with contextlib.suppress(asyncio.CancelledError):  # the client went away meanwhile
                await self.send_response(response, send)

        # As Django does: a client that disconnects while its call is in flight cancels it.
        tasks = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(respond()),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RequestAborted):
                await task
        body_file.close()


def v1_path(scope: Scope) -> str | None:
    """The /v1 path this handler serves, or None for any other request."""
    if scope["type"] != "http":
        return None
    path = str(scope["path"])
    root = str(scope.get("root_path") or "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path if path in VIEWS else None


def v1_first(django_application: AsgiApp) -> AsgiApp:
    """An ASGI application serving /v1 with `V1Handler` and the rest with Django."""
    handler = V1Handler()

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        if v1_path(scope) is not None:
            await handler(scope, receive, send)
        else:
            await django_application(scope, receive, send)

    return application
