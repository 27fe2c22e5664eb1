"""The only code that talks to upstream LLMs: OpenAI-compatible chat completions via `AsyncOpenAI`.

`chat()` returns a `ProviderResult` (the OpenAI-shaped response as a dict, token counts,
latency); `chat_stream()` yields chunk dicts. Every failure surfaces as `ProviderError` with a
`retryable` verdict, so the routing service can fall back without knowing the SDK.

Clients are cached because building one costs a connection pool (and TLS handshakes on first
use). An httpx async client is bound to the event loop that first used it, so the cache is
keyed by the running loop as well as by the provider's settings: under an ASGI server there is
one loop per worker and clients are shared by every request; under `async_to_sync` or
`asyncio.run` each call may bring a new loop, and the clients of a loop go away with it:
they are closed while the loop shuts down (a parked async generator per loop, which
`asyncio.run` closes through `shutdown_asyncgens`), and the cache holds loops by weak
reference and drops closed ones, so nothing accumulates.

No Django here: callers pass plain `ProviderConfig` dataclasses.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import threading
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import openai
from openai import AsyncOpenAI, AsyncStream, DefaultAioHttpClient

from routerapp.providers.errors import ProviderError
from routerapp.providers.redaction import redact

# Used when a provider needs no key (simulator, local vLLM/Ollama): the SDK refuses to build a
# client without one, and an upstream that does want a key answers 401, mapped to `auth`.
NO_API_KEY = "no-key"
# Call options the router controls itself, never taken from `params`.
_RESERVED = {"model", "messages", "stream", "stream_options", "timeout", "extra_query"}
CHAT_COMPLETIONS = "/chat/completions"


@dataclass(frozen=True)
class ProviderConfig:
    id: int | str
    name: str
    base_url: str
    api_key: str
    timeout_seconds: float = 30.0
    max_retries: int = 0


@dataclass(frozen=True)
class ProviderResult:
    response: dict[str, Any]  # OpenAI-shaped ChatCompletion, as the upstream sent it
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float


# --------------------------------------------------------------------------- client cache

_ClientKey = tuple[int | str, str, str, float, int]


class _LoopClients(dict[_ClientKey, AsyncOpenAI]):
    """One loop's clients, plus the async generator that closes them when the loop ends."""

    closer: AsyncGenerator[None, None] | None = None


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClients] = (
    weakref.WeakKeyDictionary()
)
# Threads each running their own loop (async_to_sync, Celery) share the cache dict.
_clients_lock = threading.Lock()


def _client_key(provider: ProviderConfig) -> _ClientKey:
    # A hash, not the key itself, so a rotated key gets a new client without keeping secrets
    # in dictionary keys that might end up in a debugger or a crash dump.
    key_hash = hashlib.sha256(provider.api_key.encode()).hexdigest()[:16]
    return (
        provider.id,
        provider.base_url,
        key_hash,
        float(provider.timeout_seconds),
        int(provider.max_retries),
    )


def _timeout(seconds: float) -> openai.Timeout:
    # Connecting should be quick even when generation is slow; a dead host fails within 5 s.
    return openai.Timeout(seconds, connect=min(5.0, seconds))


def get_client(provider: ProviderConfig) -> AsyncOpenAI:
    """The cached `AsyncOpenAI` for this provider on the running event loop (created on demand)."""
    loop = asyncio.get_running_loop()
    key = _client_key(provider)
    with _clients_lock:
        for other in [other for other in _clients if other.is_closed()]:
            # Its connections died with the loop; drop them instead of waiting for GC.
            del _clients[other]
        per_loop = _clients.setdefault(loop, _LoopClients())
        client = per_loop.get(key)
        if client is None:
            client = AsyncOpenAI(
                api_key=provider.api_key or NO_API_KEY,
                base_url=provider.base_url,
                timeout=_timeout(provider.timeout_seconds),
                max_retries=provider.max_retries,
                # The SDK's aiohttp transport: about a third less CPU per call than its
                # default httpx one, whose connection pool checks every pooled socket's state
                # on each request (docs/benchmarks.md, "Gateway").
                http_client=DefaultAioHttpClient(),
            )
            per_loop[key] = client
        return client


async def _close_at_loop_shutdown(clients: _LoopClients) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        # Runs inside the loop when `asyncio.run` (uvicorn, async_to_sync) shuts down its
        # async generators, the last moment the loop can still close sockets cleanly.
        for client in list(clients.values()):
            with contextlib.suppress(Exception):
                await client.close()
        clients.clear()


async def _client_for(provider: ProviderConfig) -> AsyncOpenAI:
    client = get_client(provider)
    closer = None
    with _clients_lock:
        per_loop = _clients.get(asyncio.get_running_loop())
        if per_loop is not None and per_loop.closer is None:
            closer = per_loop.closer = _close_at_loop_shutdown(per_loop)
    if closer is not None:
        # Starting it registers it with this loop; the cache's reference keeps it alive.
        await anext(closer)
    return client


async def aclose_clients() -> None:
    """Close the running loop's clients now (e.g. in an ASGI lifespan shutdown). Other loops'
    clients are left to their own loops, which alone may close them."""
    with _clients_lock:
        mine = _clients.pop(asyncio.get_running_loop(), None)
    for client in list((mine or {}).values()):
        await client.close()


def close_clients() -> None:
    """Forget every cached client (sync contexts, tests). Their sockets close when collected;
    use `aclose_clients()` inside a running loop to close them cleanly."""
    with _clients_lock:
        _clients.clear()


def cached_client_count() -> int:
    with _clients_lock:
        return sum(len(per_loop) for per_loop in _clients.values())


# --------------------------------------------------------------------------- parameters


def request_body(
    model: str, messages: list[dict[str, Any]], params: Mapping[str, Any] | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The JSON body and the extra headers of a chat completion request.

    `params` go into the body as they are, with the mapping under `extra_body` merged over
    them (as the SDK merges `extra_body`) and `extra_headers` sent as headers. None values are
    dropped (some upstreams refuse JSON null); the router's own fields (`_RESERVED`) are never
    taken from `params`.
    """
    body: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    headers: dict[str, str] = {}
    for name, value in (params or {}).items():
        if value is None or name in _RESERVED:
            continue
        if name == "extra_body" and isinstance(value, Mapping):
            extra.update(value)
        elif name == "extra_headers" and isinstance(value, Mapping):
            headers.update({str(key): str(item) for key, item in value.items()})
        else:
            body[name] = value
    body.update(extra)
    body["model"], body["messages"] = model, messages
    return body, headers


# --------------------------------------------------------------------------- errors


def _error_from(exc: BaseException, provider: ProviderConfig) -> ProviderError:
    """The one place an upstream failure becomes a `ProviderError`: its text is redacted here
    (the provider's key, bearer and key-shaped tokens) and capped, because it is stored in the
    decision and returned in the caller's 502 body."""
    message, kind, retryable, status = _classify(exc, provider)
    return ProviderError(
        redact(f"{provider.name}: {message}", secrets=(provider.api_key,)),
        kind=kind,
        retryable=retryable,
        status_code=status,
    )


def _classify(exc: BaseException, provider: ProviderConfig) -> tuple[str, str, bool, int | None]:
    """(message, kind, retryable, HTTP status) of an upstream failure."""
    # APITimeoutError subclasses APIConnectionError, so it must be tested first.
    if isinstance(exc, openai.APITimeoutError) and not _refused_or_dropped(exc):
        return f"timed out after {provider.timeout_seconds:g}s", "timeout", True, None
    if isinstance(exc, openai.APITimeoutError):
        return f"connection failed: {exc.__cause__ or exc}", "connection", True, None
    if isinstance(exc, openai.APIConnectionError):
        return exc.message, "connection", True, None
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        # The SDK's message repeats the status; the upstream's own error message reads better.
        body = exc.body if isinstance(exc.body, Mapping) else {}
        detail = body.get("message") if isinstance(body.get("message"), str) else exc.message
        message = f"HTTP {status}: {detail}"
        if status == 429:
            return message, "rate_limit", True, status
        if status >= 500:
            return message, "server_error", True, status
        if status == 408:
            return message, "timeout", True, status
        if status in (401, 403):
            return message, "auth", False, status
        if status == 404:
            return message, "not_found", False, status
        return message, "bad_request", False, status
    if isinstance(exc, openai.APIResponseValidationError | ValueError):
        # Unparseable or mis-shaped body (JSONDecodeError and pydantic errors are ValueErrors):
        # a glitch of this upstream, another attempt may get a proper answer.
        return f"invalid response: {exc}", "invalid_response", True, None
    if isinstance(exc, openai.APIError):
        return exc.message, "server_error", True, None
    return str(exc), "bad_request", False, None


def _refused_or_dropped(exc: BaseException) -> bool:
    """A connection refused, reset or closed that the SDK's aiohttp transport reports as a
    connect *timeout* (it maps every aiohttp connection error to one): the aiohttp error it
    was raised from says which it was."""
    cause = exc.__cause__
    while cause is not None:
        if isinstance(cause, aiohttp.ClientConnectionError) and not isinstance(cause, TimeoutError):
            return True
        cause = cause.__cause__
    return False


# Exceptions that mean "the upstream call failed" rather than a bug in our code.
_UPSTREAM_ERRORS = (openai.OpenAIError, ValueError)


# --------------------------------------------------------------------------- tokens


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multi-part content: count the text parts
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return ""


def estimate_tokens(text: str) -> int:
    """The usual rough rule (about 4 characters per token), for upstreams that omit usage."""
    return max(1, math.ceil(len(text) / 4)) if text else 0


def estimate_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    return sum(estimate_tokens(_text_of(message.get("content"))) + 3 for message in messages)


def _completion_text(response: Mapping[str, Any]) -> str:
    parts: list[str] = []
    for choice in response.get("choices") or []:
        message = choice.get("message") or choice.get("delta") or {}
        parts.append(_text_of(message.get("content")))
        for call in message.get("tool_calls") or []:
            parts.append(str((call.get("function") or {}).get("arguments", "")))
    return "".join(parts)


def _usage(response: Mapping[str, Any], messages: list[dict[str, Any]]) -> tuple[int, int]:
    usage = response.get("usage") or {}
    prompt = usage.get("prompt_tokens")
    completion = usage.get("completion_tokens")
    if not isinstance(prompt, int):
        prompt = estimate_prompt_tokens(messages)
    if not isinstance(completion, int):
        completion = estimate_tokens(_completion_text(response))
    return prompt, completion


# --------------------------------------------------------------------------- calls


def _json_object(data: object) -> dict[str, Any]:
    if isinstance(data, dict):
        return data
    raise ValueError(f"expected a JSON object, got {type(data).__name__}")


async def chat(
    provider: ProviderConfig,
    *,
    model: str,
    messages: list[dict[str, Any]],
    params: Mapping[str, Any] | None = None,
) -> ProviderResult:
    """One non-streaming chat completion. Raises `ProviderError` on any upstream failure.

    `params` are OpenAI request fields (temperature, max_tokens, response_format, tools ...),
    sent in the JSON body as given (`request_body`). The SDK's generic `post` sends it and
    returns the upstream's JSON as it came (`cast_to=object`): its client, retries, timeouts
    and errors, without re-validating our already validated request against its typed
    parameters or building and dumping response models (about half of its CPU per call).
    """
    client = await _client_for(provider)
    body, headers = request_body(model, messages, params)
    started = time.perf_counter()
    try:
        response = _json_object(
            await client.post(
                CHAT_COMPLETIONS, body=body, cast_to=object, options={"headers": headers}
            )
        )
    except _UPSTREAM_ERRORS as exc:
        raise _error_from(exc, provider) from exc
    latency_ms = (time.perf_counter() - started) * 1000
    if not response.get("choices"):
        raise ProviderError(
            f"{provider.name}: response has no choices", kind="invalid_response", retryable=True
        )
    prompt_tokens, completion_tokens = _usage(response, messages)
    return ProviderResult(
        response=response,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        latency_ms=latency_ms,
    )


async def chat_stream(
    provider: ProviderConfig,
    *,
    model: str,
    messages: list[dict[str, Any]],
    params: Mapping[str, Any] | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Stream a chat completion as OpenAI chunk dicts; the last chunk carries `usage` when the
    upstream supports `stream_options.include_usage` (asked for always, so costs can be billed).

    An async generator: nothing is sent until the first `__anext__()`, and an upstream that
    fails before its first chunk raises `ProviderError` there, so a caller can fall back
    before it has sent anything to its own client. Failures mid-stream raise `ProviderError`
    too. Closing the generator early closes the upstream connection.
    """
    client = await _client_for(provider)
    body, headers = request_body(model, messages, params)
    stream_options = dict((params or {}).get("stream_options") or {})
    stream_options["include_usage"] = True
    body.update(stream=True, stream_options=stream_options)
    try:
        stream = await client.post(
            CHAT_COMPLETIONS,
            body=body,
            cast_to=object,
            options={"headers": headers},
            stream=True,
            stream_cls=AsyncStream[object],
        )
    except _UPSTREAM_ERRORS as exc:
        raise _error_from(exc, provider) from exc
    received = 0
    try:
        iterator = stream.__aiter__()
        while True:
            try:
                as_dict = _json_object(await iterator.__anext__())
            except StopAsyncIteration:
                break
            except _UPSTREAM_ERRORS as exc:
                raise _error_from(exc, provider) from exc
            received += 1
            yield as_dict
    finally:
        await stream.close()
    if not received:
        raise ProviderError(
            f"{provider.name}: stream ended without a chunk",
            kind="invalid_response",
            retryable=True,
        )
