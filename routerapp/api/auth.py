"""DRF authentication by API key (`Authorization: Bearer rk_...`)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from routerapp import errors
from routerapp.services.access import api_key_authenticate, api_key_throttle, api_key_touch


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        header = request.headers.get("Authorization", "")
        raw = header[7:].strip() if header.lower().startswith("bearer ") else None
        raw = raw or request.headers.get("X-API-Key")
        if not raw:
            return None
        try:
            key = api_key_authenticate(raw)
            api_key_throttle(key=key)
        except errors.RateLimited as error:
            # `wait` makes DRF send the Retry-After header.
            raise exceptions.Throttled(
                wait=error.extra["retry_after"], detail=error.message
            ) from None
        except errors.RouterError as error:
            raise exceptions.AuthenticationFailed(error.message) from None
        api_key_touch(key_id=key.id)
        return AnonymousUser(), key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="routerapp"'


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "routerapp.api.auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "http", "scheme": "bearer"}
