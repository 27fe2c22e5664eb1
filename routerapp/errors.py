"""Domain errors raised by services; the API layers map them to HTTP. No Django imports."""

from __future__ import annotations

from typing import Any


class RouterError(Exception):
    """Base error: `status` is the HTTP status the interfaces answer with, `type` the OpenAI-style
    error type, `extra` any JSON-serialisable facts worth returning (e.g. the attempts made)."""

    status = 400
    type = "invalid_request_error"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class InvalidRequest(RouterError):
    status = 400


class AuthenticationFailed(RouterError):
    status = 401
    type = "authentication_error"


class PermissionDenied(RouterError):
    status = 403
    type = "permission_error"


class NotFound(RouterError):
    status = 404
    type = "not_found_error"


class PayloadTooLarge(RouterError):
    status = 413


class RateLimited(RouterError):
    status = 429
    type = "rate_limit_error"


class UpstreamFailed(RouterError):
    """Every path of the goal failed; `extra["attempts"]` lists what was tried."""

    status = 502
    type = "upstream_error"


class ConfigurationError(RouterError):
    """The goal cannot route as configured (no enabled path, missing price ...)."""

    status = 409
    type = "configuration_error"


class MethodNotAllowed(RouterError):
    """An HTTP method the endpoint does not serve; `extra["allow"]` lists the ones it does."""

    status = 405
