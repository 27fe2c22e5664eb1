from __future__ import annotations

import pytest

from routerapp.providers.errors import ProviderError


def test_to_dict_holds_everything_a_decision_attempt_stores() -> None:
    error = ProviderError("simulator: HTTP 429", kind="rate_limit", retryable=True, status_code=429)

    assert error.to_dict() == {
        "kind": "rate_limit",
        "message": "simulator: HTTP 429",
        "retryable": True,
        "status_code": 429,
    }
    assert str(error) == "simulator: HTTP 429"


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown provider error kind"):
        ProviderError("x", kind="oops", retryable=False)
