"""`chat()` / `chat_stream()` through the real AsyncOpenAI client against the simulator."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import pytest

from routerapp.providers import client
from routerapp.providers.client import ProviderConfig, chat, chat_stream
from routerapp.providers.errors import ProviderError

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def test_success_is_mapped_to_an_openai_shaped_result(provider: ProviderConfig, run: Any) -> None:
    result = run(lambda: chat(provider, model="gpt-4o", messages=QUESTION))

    response = result.response
    assert response["id"].startswith("chatcmpl-sim-")
    assert response["object"] == "chat.completion"
    assert response["model"] == "gpt-4o"
    assert response["system_fingerprint"] == "routerapp-simulator"
    choice = response["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["finish_reason"] in ("stop", "length")
    assert result.prompt_tokens == response["usage"]["prompt_tokens"] > 0
    assert result.completion_tokens == response["usage"]["completion_tokens"] > 0
    assert result.latency_ms > 0


def test_params_reach_the_upstream(provider: ProviderConfig, run: Any) -> None:
    long_question = [{"role": "user", "content": "Explain how HTTP caching works for web apps."}]

    result = run(
        lambda: chat(
            provider,
            model="gpt-4o",
            messages=long_question,
            params={"max_tokens": 5, "temperature": 0.0},
        )
    )

    # The simulator honours max_tokens: proof the typed argument was sent.
    assert result.response["choices"][0]["finish_reason"] == "length"
    assert result.completion_tokens <= 5


def test_params_go_in_the_body_with_extra_body_merged_and_nones_dropped() -> None:
    body, headers = client.request_body(
        "gpt-4o",
        QUESTION,
        {
            "temperature": 0.2,
            "max_tokens": None,
            "top_k": 40,
            "extra_body": {"repetition_penalty": 1.1, "temperature": 0.3},
            "extra_headers": {"X-Tenant": "blue"},
            "stream": True,
            "model": "ignored",
        },
    )

    assert body == {
        "temperature": 0.3,
        "top_k": 40,
        "repetition_penalty": 1.1,
        "model": "gpt-4o",
        "messages": QUESTION,
    }
    assert headers == {"X-Tenant": "blue"}


def test_unknown_params_do_not_break_the_call(provider: ProviderConfig, run: Any) -> None:
    result = run(
        lambda: chat(
            provider,
            model="gpt-4o",
            messages=QUESTION,
            params={"top_k": 40, "response_format": {"type": "text"}},
        )
    )

    assert result.response["choices"]


@pytest.mark.parametrize(
    ("fault", "kind", "retryable", "status_code"),
    [
        ("fail-500", "server_error", True, 500),
        ("fail-503", "server_error", True, 503),
        ("fail-429", "rate_limit", True, 429),
        ("fail-400", "bad_request", False, 400),
        ("fail-422", "bad_request", False, 422),
        ("fail-401", "auth", False, 401),
        ("fail-403", "auth", False, 403),
        ("fail-404", "not_found", False, 404),
    ],
)
def test_http_errors_are_mapped(
    provider: ProviderConfig, run: Any, fault: str, kind: str, retryable: bool, status_code: int
) -> None:
    with pytest.raises(ProviderError) as caught:
        run(lambda: chat(provider, model=f"{fault}/gpt-4o", messages=QUESTION))

    error = caught.value
    assert (error.kind, error.retryable, error.status_code) == (kind, retryable, status_code)
    assert error.message.startswith("simulator: HTTP")


def test_slow_upstream_times_out_as_retryable(provider: ProviderConfig, run: Any) -> None:
    impatient = dataclasses.replace(provider, timeout_seconds=0.5)
    started = time.monotonic()

    with pytest.raises(ProviderError) as caught:
        run(lambda: chat(impatient, model="slow-2/gpt-4o", messages=QUESTION))

    assert (caught.value.kind, caught.value.retryable) == ("timeout", True)
    assert time.monotonic() - started < 1.5  # gave up at the timeout, not after the 2 s


def test_invalid_json_is_a_retryable_invalid_response(provider: ProviderConfig, run: Any) -> None:
    with pytest.raises(ProviderError) as caught:
        run(lambda: chat(provider, model="garbage/gpt-4o", messages=QUESTION))

    assert (caught.value.kind, caught.value.retryable) == ("invalid_response", True)


def test_response_without_choices_is_a_retryable_invalid_response(
    provider: ProviderConfig, run: Any
) -> None:
    with pytest.raises(ProviderError) as caught:
        run(lambda: chat(provider, model="no-choices/gpt-4o", messages=QUESTION))

    assert (caught.value.kind, caught.value.retryable) == ("invalid_response", True)


def test_missing_usage_is_estimated_from_characters(provider: ProviderConfig, run: Any) -> None:
    with_usage = run(lambda: chat(provider, model="gpt-4o", messages=QUESTION))
    without = run(lambda: chat(provider, model="no-usage/gpt-4o", messages=QUESTION))

    assert "usage" not in without.response
    content = without.response["choices"][0]["message"]["content"]
    assert without.completion_tokens == max(1, -(-len(content) // 4))
    assert without.prompt_tokens == with_usage.prompt_tokens  # same chars/4 + 3 per message


def test_unreachable_host_is_a_retryable_connection_error(run: Any) -> None:
    nowhere = ProviderConfig(
        id="down", name="down", base_url="http://127.0.0.1:9/v1", api_key="k", timeout_seconds=2.0
    )

    with pytest.raises(ProviderError) as caught:
        run(lambda: chat(nowhere, model="gpt-4o", messages=QUESTION))

    assert (caught.value.kind, caught.value.retryable) == ("connection", True)


# --------------------------------------------------------------------------- streaming


async def _collect(provider: ProviderConfig, model: str) -> list[dict[str, Any]]:
    return [chunk async for chunk in chat_stream(provider, model=model, messages=QUESTION)]


def test_stream_yields_chunks_then_usage(provider: ProviderConfig, run: Any) -> None:
    chunks = run(lambda: _collect(provider, "gpt-4o"))
    whole = run(lambda: chat(provider, model="gpt-4o", messages=QUESTION))

    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(
        chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks if chunk["choices"]
    )
    # Same request, same answer, streamed or not.
    assert text == whole.response["choices"][0]["message"]["content"]
    finals = [
        chunk for chunk in chunks if chunk["choices"] and chunk["choices"][0].get("finish_reason")
    ]
    assert len(finals) == 1
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] == whole.prompt_tokens + whole.completion_tokens


@pytest.mark.parametrize(
    ("model", "kind"),
    [
        ("fail-500/gpt-4o", "server_error"),
        ("fail-429/gpt-4o", "rate_limit"),
        ("garbage/gpt-4o", "invalid_response"),
    ],
)
def test_stream_failing_before_first_chunk_raises_on_first_chunk(
    provider: ProviderConfig, run: Any, model: str, kind: str
) -> None:
    async def first_chunk() -> dict[str, Any]:
        stream = chat_stream(provider, model=model, messages=QUESTION)
        try:
            return await anext(stream)
        finally:
            await stream.aclose()

    with pytest.raises(ProviderError) as caught:
        run(first_chunk)

    assert caught.value.kind == kind
    assert caught.value.retryable


def test_stream_closed_early_is_fine(provider: ProviderConfig, run: Any) -> None:
    async def read_one() -> dict[str, Any]:
        stream = chat_stream(provider, model="gpt-4o", messages=QUESTION)
        first = await anext(stream)
        await stream.aclose()
        return first

    assert run(read_one)["choices"][0]["delta"]["role"] == "assistant"


# --------------------------------------------------------------------------- client cache


def test_client_is_reused_within_one_event_loop(provider: ProviderConfig, run: Any) -> None:
    # Counts are relative: servers started by other tests keep their own loops' clients.
    before = client.cached_client_count()

    async def two_calls() -> tuple[Any, Any, int]:
        first = client.get_client(provider)
        await asyncio.gather(*(chat(provider, model="gpt-4o", messages=QUESTION) for _ in range(3)))
        return first, client.get_client(provider), client.cached_client_count()

    first, second, count = run(two_calls)

    assert first is second
    assert count == before + 1


def test_changed_settings_get_their_own_client(provider: ProviderConfig, run: Any) -> None:
    async def clients() -> list[Any]:
        return [
            client.get_client(provider),
            client.get_client(dataclasses.replace(provider, api_key="rotated")),
            client.get_client(dataclasses.replace(provider, timeout_seconds=9.0)),
            client.get_client(dataclasses.replace(provider, id="other")),
        ]

    assert len({id(c) for c in run(clients)}) == 4


def test_client_is_not_reused_across_event_loops(provider: ProviderConfig) -> None:
    seen: list[Any] = []
    before = client.cached_client_count()

    async def remember() -> None:
        seen.append(client.get_client(provider))
        await chat(provider, model="gpt-4o", messages=QUESTION)

    # No aclose_clients(): the cache must clean up after each loop by itself.
    asyncio.run(remember())
    asyncio.run(remember())

    assert seen[0] is not seen[1]
    # asyncio.run (like async_to_sync and uvicorn) closed each loop's clients at its shutdown.
    assert seen[0].is_closed()
    assert seen[1].is_closed()
    assert client.cached_client_count() == before


def test_clients_of_a_loop_closed_abruptly_are_dropped(provider: ProviderConfig) -> None:
    before = client.cached_client_count()

    async def cache_one() -> None:
        client.get_client(provider)

    loop = asyncio.new_event_loop()
    loop.run_until_complete(cache_one())  # no shutdown_asyncgens: nothing closes the client
    assert client.cached_client_count() == before + 1
    loop.close()

    asyncio.run(cache_one())

    assert client.cached_client_count() == before  # the dead loop's entry was pruned


def test_timeouts_are_always_set(provider: ProviderConfig, run: Any) -> None:
    slow = dataclasses.replace(provider, timeout_seconds=120.0)
    quick = dataclasses.replace(provider, timeout_seconds=2.0)

    async def timeouts() -> list[Any]:
        return [client.get_client(slow).timeout, client.get_client(quick).timeout]

    slow_timeout, quick_timeout = run(timeouts)
    assert (slow_timeout.read, slow_timeout.connect) == (120.0, 5.0)
    assert (quick_timeout.read, quick_timeout.connect) == (2.0, 2.0)


def test_chat_needs_no_event_loop_of_its_own(provider: ProviderConfig) -> None:
    # The shape Django's async_to_sync gives a sync caller: a new loop per call.
    call: Callable[[], Any] = lambda: chat(provider, model="gpt-4o-mini", messages=QUESTION)  # noqa: E731
    answers = {asyncio.run(call()).response["choices"][0]["message"]["content"] for _ in range(3)}
    client.close_clients()

    assert len(answers) == 1
