"""Streamed completions (`stream: true`): the same plan, fallback and record as
`routing.completion_create`, with the answer relayed as server-sent events."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from routerapp.dbwork import run_db
from routerapp.providers.client import ProviderResult, estimate_prompt_tokens, estimate_tokens
from routerapp.providers.errors import ProviderError
from routerapp.selectors.catalog_cache import ApiKeyRecord, GoalRoute
from routerapp.services.routing import (
    Attempt,
    ExecutionResult,
    PathPlan,
    RoutePlan,
    completion_record,
    route_execute,
    route_plan_async,
    router_facts,
    upstream_failure,
)


def assemble_stream(chunks: list[dict[str, Any]], plan: RoutePlan) -> ProviderResult:
    """A ChatCompletion-shaped dict from streamed chunks, so a stream is costed and judged
    exactly like a non-streamed answer."""
    content: list[str] = []
    finish_reason = None
    usage: dict[str, Any] = {}
    head: dict[str, Any] = chunks[0] if chunks else {}
    for chunk in chunks:
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                content.append(str(delta["content"]))
            finish_reason = choice.get("finish_reason") or finish_reason
        usage = chunk.get("usage") or usage
    text = "".join(content)
    response = {
        "id": head.get("id"),
        "object": "chat.completion",
        "created": head.get("created"),
        "model": head.get("model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish_reason,
            }
        ],
        "usage": usage,
    }
    prompt_tokens = usage.get("prompt_tokens") or estimate_prompt_tokens(plan.messages)
    completion_tokens = usage.get("completion_tokens") or estimate_tokens(text)
    return ProviderResult(
        response=response,
        prompt_tokens=int(prompt_tokens),
        completion_tokens=int(completion_tokens),
        latency_ms=0.0,
    )


def _sse(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


async def completion_stream(
    *,
    goal: GoalRoute,
    api_key: ApiKeyRecord | None,
    messages: list[dict[str, Any]],
    metadata: dict[str, Any] | None = None,
    passthrough: dict[str, Any] | None = None,
) -> tuple[RoutePlan, PathPlan, AsyncIterator[bytes]]:
    """Like `completion_create`, streamed: returns the plan, the answering path and an iterator
    of server-sent events. The decision is recorded when the stream ends (also when the client
    goes away early); the last event before `[DONE]` carries usage and the `router` object."""
    plan = await route_plan_async(
        goal=goal,
        api_key=api_key,
        messages=messages,
        metadata=metadata,
        passthrough=passthrough or {},
    )
    execution = await route_execute(plan, stream=True)
    if execution.chunks is None or execution.path is None or execution.first_chunk is None:
        decision, _ = await run_db(completion_record, plan=plan, execution=execution)
        raise upstream_failure(decision)
    return plan, execution.path, _stream_events(plan, execution)


async def _stream_events(plan: RoutePlan, execution: ExecutionResult) -> AsyncIterator[bytes]:
    assert execution.chunks is not None
    assert execution.first_chunk is not None
    assert execution.path is not None
    started = time.perf_counter()
    collected = [execution.first_chunk]
    usage_chunk: dict[str, Any] | None = None
    finished = False
    try:
        if execution.first_chunk.get("choices"):
            yield _sse(execution.first_chunk)
        async for chunk in execution.chunks:
            collected.append(chunk)
            if chunk.get("usage") and not chunk.get("choices"):
                usage_chunk = chunk  # sent last, with the router facts added
                continue
            yield _sse(chunk)
        finished = True
    except ProviderError as error:
        execution.attempts.append(Attempt.failure(execution.path, error.to_dict(), 0.0))
        yield _sse({"error": {"type": "upstream_error", "message": error.message}})
    finally:
        execution.latency_ms += (time.perf_counter() - started) * 1000
        execution.result = assemble_stream(collected, plan)
        if not finished:
            # The client left or upstream broke: still record what was answered and paid for.
            await run_db(completion_record, plan=plan, execution=execution)
    if finished:
        decision, _ = await run_db(completion_record, plan=plan, execution=execution)
        last = dict(
            usage_chunk
            or {
                "id": execution.first_chunk.get("id"),
                "object": "chat.completion.chunk",
                "choices": [],
            }
        )
        last["router"] = router_facts(plan, decision, execution.path)
        yield _sse(last)
        yield _sse("[DONE]")
