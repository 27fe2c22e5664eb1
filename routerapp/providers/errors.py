"""The one error the provider layer raises: `ProviderError`, with a `retryable` verdict.

Callers decide on fallbacks from `retryable` alone: True means another attempt (on this or
another path) may succeed (timeouts, 429, 5xx, dropped connections, malformed answers); False
means the request itself is at fault (400/404/422) or the credentials are (401/403), so trying
another path with the same request would fail the same way.
"""

from __future__ import annotations

from typing import Any

KINDS = (
    "timeout",
    "rate_limit",
    "server_error",
    "connection",
    "bad_request",
    "auth",
    "not_found",
    "invalid_response",
)


class ProviderError(Exception):
    """An upstream call failed. `kind` is one of `KINDS`; `status_code` the HTTP status, if any."""

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        retryable: bool,
        status_code: int | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown provider error kind {kind!r}")
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.retryable = retryable
        self.status_code = status_code

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, stored in a routing decision's attempts."""
        return {
            "kind": self.kind,
            "message": self.message,
            "retryable": self.retryable,
            "status_code": self.status_code,
        }

    def __repr__(self) -> str:
        return (
            f"ProviderError(kind={self.kind!r}, retryable={self.retryable}, "
            f"status_code={self.status_code}, message={self.message!r})"
        )
