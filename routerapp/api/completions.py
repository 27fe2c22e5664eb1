"""POST /v1/chat/completions: the OpenAI-compatible entry point (async; DESIGN §4).

A plain async Django view rather than DRF (DRF views are synchronous): under ASGI one process
keeps hundreds of upstream calls in flight. The key, the goal, its paths and what it learned
come from this process's snapshots (selectors/catalog_cache.py), so with warm caches nothing
before the upstream call touches the database; the rate limit is one Redis count on the DB
pool, and the call is recorded there once it is answered. The upstream call holds no DB
connection.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from routerapp.api.completion_request import GOAL_MODEL_PREFIX, completion_request_parse
from routerapp.api.openai_errors import openai_error, openai_methods
from routerapp.errors import PayloadTooLarge, RouterError
from routerapp.models import ApiKey
from routerapp.selectors.catalog_cache import ApiKeyRecord, catalog_aget
from routerapp.services import routing, streaming
from routerapp.services.access import (
    api_key_authenticate_cached,
    api_key_check,
    api_key_throttle_async,
)


def bearer_token(request: HttpRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("X-API-Key") or None


def read_body(request: HttpRequest) -> bytes:
    """The raw body, refused past MAX_REQUEST_BYTES before it is read when the length is known."""
    declared = request.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > settings.MAX_REQUEST_BYTES:
        raise PayloadTooLarge(f"Request body over {settings.MAX_REQUEST_BYTES} bytes.")
    try:
        raw = request.body
    except RequestDataTooBig:
        raise PayloadTooLarge(f"Request body over {settings.MAX_REQUEST_BYTES} bytes.") from None
    if len(raw) > settings.MAX_REQUEST_BYTES:
        raise PayloadTooLarge(f"Request body over {settings.MAX_REQUEST_BYTES} bytes.")
    return raw


async def _authenticate(raw_key: str | None) -> ApiKeyRecord:
    # Before the body is judged: a caller without a valid key learns nothing about the goals,
    # and rejected bodies still count against the rate limit.
    key = await api_key_authenticate_cached(raw_key)
    api_key_check(key=key, scope=ApiKey.Scope.COMPLETIONS)
    await api_key_throttle_async(key=key)
    return key


@csrf_exempt
@openai_methods("POST")
async def chat_completions(request: HttpRequest) -> HttpResponseBase:
    try:
        raw = read_body(request)
        key = await _authenticate(bearer_token(request))
        # Judged whole before any row is written or any upstream is called.
        completion = completion_request_parse(raw, goal_header=request.headers.get("X-Router-Goal"))
        goal = (await catalog_aget()).goal(completion.goal)
        api_key_check(key=key, scope=ApiKey.Scope.COMPLETIONS, goal=goal)
        if completion.stream:
            plan, path, events = await streaming.completion_stream(
                goal=goal,
                api_key=key,
                messages=completion.messages,
                metadata=completion.metadata,
                passthrough=completion.passthrough,
            )
            streamed = StreamingHttpResponse(events, content_type="text/event-stream")
            streamed["Cache-Control"] = "no-cache"
            streamed["X-Router-Request-Id"] = plan.request_id
            streamed["X-Router-Path"] = path.name
            return streamed
        plan, execution, decision = await routing.completion_create(
            goal=goal,
            api_key=key,
            messages=completion.messages,
            metadata=completion.metadata,
            passthrough=completion.passthrough,
        )
    except RouterError as error:
        return openai_error(error)
    assert execution.result is not None
    assert execution.path is not None
    response = dict(execution.result.response)
    facts = routing.router_facts(plan, decision, execution.path)
    response["router"] = facts
    reply = JsonResponse(response)
    reply["X-Router-Request-Id"] = decision.request_id
    reply["X-Router-Path"] = execution.path.name
    reply["X-Router-Cost-USD"] = f"{decision.cost:.8f}"
    return reply


@openai_methods("GET")
async def models_list(request: HttpRequest) -> HttpResponse:
    """GET /v1/models: the goals this key may call, as OpenAI model ids `goal/<slug>`."""
    try:
        key = await api_key_authenticate_cached(bearer_token(request))
        catalog = await catalog_aget()
    except RouterError as error:
        return openai_error(error)
    data = [
        {
            "id": f"{GOAL_MODEL_PREFIX}{goal.slug}",
            "object": "model",
            "owned_by": "routerapp",
            "created": int(goal.created_at.timestamp()),
        }
        for goal in catalog.goals_visible(key)
    ]
    return JsonResponse({"object": "list", "data": data})
