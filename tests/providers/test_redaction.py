"""Upstream error text is scrubbed of secrets and capped before anyone stores or shows it.

No Django: the pure function, then `chat()` against a capture server that echoes the
Authorization header in a 401, as OpenAI and many proxies do."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from routerapp.providers.client import ProviderConfig, chat, chat_stream
from routerapp.providers.errors import ProviderError
from routerapp.providers.redaction import MAX_ERROR_CHARS, REDACTED, redact
from tests.capture import CaptureUpstream, capture_upstream

QUESTION = [{"role": "user", "content": "hello"}]


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Incorrect API key provided: Bearer sk-PLANTED-SECRET-123456", "sk-PLANTED-SECRET-123456"),
        ("Incorrect API key provided: sk-proj-AbCdEf0123456789xyz.", "sk-proj-AbCdEf0123456789xyz"),
        ("authorization: bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "eyJhbGciOiJIUzI1NiJ9"),
        ("masked key sk-PLANTE**********3456 refused", "sk-PLANTE"),
        ("router key rk_ab12cd34_0123456789abcdef leaked", "rk_ab12cd34_0123456789abcdef"),
    ],
)
def test_token_shaped_secrets_are_redacted(text: str, secret: str) -> None:
    cleaned = redact(text)
    assert secret not in cleaned
    assert REDACTED in cleaned


def test_the_providers_own_key_is_redacted_whatever_its_shape() -> None:
    key = "azure-0f9e8d7c6b5a4f3e2d1c"
    cleaned = redact(f"key {key} is not valid for this deployment", secrets=[key])
    assert cleaned == f"key {REDACTED} is not valid for this deployment"


def test_placeholders_and_plain_words_are_left_alone() -> None:
    text = "HTTP 400: model 'gpt-4o' does not support 'sk' or tasks; key no-key"
    assert redact(text, secrets=["no-key", ""]) == text


def test_the_text_is_capped_after_redacting() -> None:
    key = "sk-" + "A" * 40
    cleaned = redact("x" * (MAX_ERROR_CHARS - 10) + " " + key)
    assert len(cleaned) == MAX_ERROR_CHARS
    assert "AAAA" not in cleaned
    assert cleaned.endswith("…")


@pytest.fixture
def echoing_upstream() -> Iterator[CaptureUpstream]:
    with capture_upstream() as upstream:
        upstream.status = 401
        yield upstream


def _provider(upstream: CaptureUpstream, key: str) -> ProviderConfig:
    return ProviderConfig(id="cap", name="capture", base_url=upstream.url, api_key=key)


def test_an_upstream_401_echoing_the_key_becomes_a_clean_provider_error(
    echoing_upstream: CaptureUpstream, run: Any
) -> None:
    provider = _provider(echoing_upstream, "sk-PLANTED-SECRET-123456")

    with pytest.raises(ProviderError) as caught:
        run(lambda: chat(provider, model="m", messages=QUESTION))

    assert echoing_upstream.authorizations == ["Bearer sk-PLANTED-SECRET-123456"]
    error = caught.value
    assert error.kind == "auth"
    assert error.message == "capture: HTTP 401: Incorrect API key provided: Bearer [redacted]"
    assert "PLANTED" not in str(error.to_dict())
    assert "PLANTED" not in str(error)
    assert "PLANTED" not in repr(error)


def test_a_streamed_call_is_redacted_too(echoing_upstream: CaptureUpstream, run: Any) -> None:
    echoing_upstream.error_text = "bad key {authorization} " + "padding " * 200
    provider = _provider(echoing_upstream, "opaque-planted-key-0123")

    async def first_chunk() -> Any:
        return await chat_stream(provider, model="m", messages=QUESTION).__anext__()

    with pytest.raises(ProviderError) as caught:
        run(first_chunk)

    assert "opaque-planted-key" not in caught.value.message
    assert len(caught.value.message) <= MAX_ERROR_CHARS
