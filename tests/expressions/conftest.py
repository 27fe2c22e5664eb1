"""Expression tests run without Django; `completion` is a real-looking ChatCompletion (the
shape `openai`'s `ChatCompletion.model_dump()` returns)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _reset_circuit_breaker() -> None:
    # Shadows the root conftest's autouse fixture, which imports a Django-side service;
    # expressions are pure and must be testable without Django.
    return None


@pytest.fixture
def completion() -> dict[str, Any]:
    return {
        "id": "chatcmpl-9x2Kq7ZfJ3bW1",
        "object": "chat.completion",
        "created": 1732262400,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Refunds are issued within 5 business days.",
                    "refusal": None,
                    "tool_calls": None,
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 31, "completion_tokens": 9, "total_tokens": 40},
        "system_fingerprint": "fp_0ba0d124f1",
    }
