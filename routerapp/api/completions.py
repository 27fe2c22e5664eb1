"""POST /v1/chat/completions: the OpenAI-compatible entry point (async; DESIGN §4).

A plain async Django view rather than DRF (DRF views are synchronous): under ASGI one process
keeps hundreds of upstream calls in flight. DB work runs in `sync_to_async` around the
services; the upstream call does not hold a DB connection.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from routerapp.api.openai_errors import openai_error
from routerapp.dbwork import run_db
from routerapp.errors import InvalidRequest, PayloadTooLarge, RouterError
from routerapp.models import ApiKey, Goal
from routerapp.selectors.goals import goal_get, goal_list_visible
from routerapp.services import routing, streaming
from routerapp.services.access import (
    api_key_authenticate,
    api_key_check,
    api_key_throttle,
    api_key_touch,
)

GOAL_MODEL_PREFIX = "goal/"


def bearer_token(request: HttpRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("X-API-Key") or None


def parse_body(request: HttpRequest) -> dict[str, Any]:
    declared = request.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > settings.MAX_REQUEST_BYTES:
        raise PayloadTooLarge(f"Request body over {settings.MAX_REQUEST_BYTES} bytes.")
    try:
        raw = request.body
    except RequestDataTooBig:
        raise PayloadTooLarge(f"Request body over {settings.MAX_REQUEST_BYTES} bytes.") from None
    if len(raw) > settings.MAX_REQUEST_BYTES:
        raise PayloadTooLarge(f"Request body over {settings.MAX_REQUEST_BYTES} bytes.")
    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidRequest(f"The body is not valid JSON: {error}.") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object.")
    return body


def validate_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if messages is None:
        raise InvalidRequest("Missing required parameter: 'messages'.", param="messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array.", param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequest(
                f"messages[{index}] must be an object.", param=f"messages[{index}]"
            )
        if not isinstance(message.get("role"), str):
            raise InvalidRequest(
                f"messages[{index}].role must be a string.", param=f"messages[{index}].role"
            )
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise InvalidRequest(
                f"messages[{index}].content must be a string or an array of parts.",
                param=f"messages[{index}].content",
            )
    return messages


def goal_slug_from(request: HttpRequest, body: dict[str, Any]) -> str:
    model = body.get("model")
    if isinstance(model, str) and model.startswith(GOAL_MODEL_PREFIX):
        return model[len(GOAL_MODEL_PREFIX) :]
    header = request.headers.get("X-Router-Goal")
    if header:
        return header
    goal = body.get("goal")
    if isinstance(goal, str) and goal:
        return goal
    raise InvalidRequest(
        "Name a goal: model 'goal/<slug>', the X-Router-Goal header, or a 'goal' field.",
        param="model",
    )


def _authenticate(raw_key: str | None) -> ApiKey:
    # Before the body is judged: a caller without a valid key learns nothing about the goals,
    # and rejected bodies still count against the rate limit.
    key = api_key_authenticate(raw_key)
    api_key_check(key=key, scope=ApiKey.Scope.COMPLETIONS)
    api_key_throttle(key=key)
    api_key_touch(key=key)
    return key


def _goal_for(key: ApiKey, slug: str) -> Goal:
    goal = goal_get(slug=slug)
    api_key_check(key=key, scope=ApiKey.Scope.COMPLETIONS, goal=goal)
    return goal


@csrf_exempt
@require_POST
async def chat_completions(request: HttpRequest) -> HttpResponse:
    try:
        body = parse_body(request)
        key = await run_db(_authenticate, bearer_token(request))
        messages = validate_messages(body)
        goal = await run_db(_goal_for, key, goal_slug_from(request, body))
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise InvalidRequest("'metadata' must be an object.", param="metadata")
        passthrough = {k: v for k, v in body.items() if k not in routing.ROUTER_FIELDS}
        if body.get("stream"):
            plan, path, events = await streaming.completion_stream(
                goal=goal,
                api_key=key,
                messages=messages,
                metadata=metadata,
                passthrough=passthrough,
            )
            streamed = StreamingHttpResponse(events, content_type="text/event-stream")
            streamed["Cache-Control"] = "no-cache"
            streamed["X-Router-Request-Id"] = plan.request_id
            streamed["X-Router-Path"] = path.name
            return streamed
        plan, execution, decision = await routing.completion_create(
            goal=goal, api_key=key, messages=messages, metadata=metadata, passthrough=passthrough
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


def _models(raw_key: str | None) -> list[dict[str, Any]]:
    key = api_key_authenticate(raw_key)
    return [
        {
            "id": f"{GOAL_MODEL_PREFIX}{goal.slug}",
            "object": "model",
            "owned_by": "routerapp",
            "created": int(goal.created_at.timestamp()),
        }
        for goal in goal_list_visible(api_key=key)
    ]


@require_GET
async def models_list(request: HttpRequest) -> HttpResponse:
    """GET /v1/models: the goals this key may call, as OpenAI model ids `goal/<slug>`."""
    try:
        data = await run_db(_models, bearer_token(request))
    except RouterError as error:
        return openai_error(error)
    return JsonResponse({"object": "list", "data": data})
