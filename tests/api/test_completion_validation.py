"""Hostile and careless bodies on /v1/chat/completions are judged before anything is stored or
sent upstream: 400 with the offending `param`, no decision, and the upstream never called.

The goal's paths point at a capture server on 127.0.0.1 that answers every call with a
completion and records it, so "never called" is observed, not assumed. The main cases go over
real HTTP with the real openai client; the many small ones use Django's test client.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from django.test import Client

from routerapp.models import Provider, RoutingDecision
from tests.builders import make_api_key, make_goal, make_provider
from tests.capture import CaptureUpstream, capture_upstream

MESSAGES = [{"role": "user", "content": "Is this spam? 'You won a free cruise, click now!'"}]
VALID = {"model": "goal/guarded", "messages": MESSAGES}


@pytest.fixture
def upstream() -> Iterator[CaptureUpstream]:
    with capture_upstream() as server:
        yield server


@pytest.fixture
def key(upstream: CaptureUpstream, transactional_db: None) -> str:
    """A completions key for goal `guarded`, whose two paths both call the capture server."""
    provider = make_provider(
        name="capture", kind=Provider.Kind.OPENAI_COMPATIBLE, base_url=upstream.url
    )
    make_goal(slug="guarded", provider=provider, priced=False)
    return make_api_key()[1]


def post_raw(body: bytes, key: str, **headers: str) -> Any:
    return Client().post(
        "/v1/chat/completions",
        data=body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
        **headers,
    )


def assert_refused(response: Any, param: str | None, upstream: CaptureUpstream) -> None:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param, error
    assert not RoutingDecision.objects.exists()
    assert upstream.requests == []


def error_of(exception: openai.APIStatusError) -> dict[str, Any]:
    """The `error` object of an OpenAI-style error body, as the openai client parsed it."""
    body = exception.body
    assert isinstance(body, dict)
    return body


def with_fields(**fields: Any) -> bytes:
    return json.dumps({**VALID, **fields}).encode()


def with_message(**message: Any) -> bytes:
    return json.dumps(
        {**VALID, "messages": [{"role": "user", "content": "hi", **message}]}
    ).encode()


def test_a_valid_body_reaches_the_upstream_with_only_allow_listed_fields(
    key: str, upstream: CaptureUpstream
) -> None:
    """The control case: the capture server does see calls, and only forwarded fields."""
    body = with_fields(
        temperature=0.2, max_tokens=5, metadata={"tier": "free", "score": 3, "vip": True}, n=1
    )
    response = post_raw(body, key)
    assert response.status_code == 200, response.content
    assert len(upstream.requests) == 1
    sent = upstream.requests[0]
    assert sent["temperature"] == 0.2
    assert sent["max_tokens"] == 5
    assert "metadata" not in sent  # steers routing, never forwarded
    assert "n" not in sent
    assert RoutingDecision.objects.count() == 1


# --------------------------------------------------------------------------- NUL and surrogates


@pytest.mark.parametrize("bad", ["\\u0000", "\\ud800", "\\udfff"], ids=["nul", "high", "low"])
@pytest.mark.parametrize(
    ("template", "param"),
    [
        ('{"model": "goal/guarded%s", "messages": [{"role": "user", "content": "hi"}]}', "model"),
        ('{"model": "goal/guarded", "messages": [{"role": "us%ser", "content": "hi"}]}',
         "messages[0].role"),
        ('{"model": "goal/guarded", "messages": [{"role": "user", "content": "a%sb"}]}',
         "messages[0].content"),
        ('{"model": "goal/guarded", "messages": [{"role": "user", "content": '
         '[{"type": "text", "text": "a%sb"}]}]}', "messages[0].content[0].text"),
        ('{"model": "goal/guarded", "messages": [{"role": "user", "content": "hi"}], '
         '"metadata": {"tier": "a%sb"}}', "metadata.tier"),
        ('{"model": "goal/guarded", "messages": [{"role": "user", "content": "hi"}], '
         '"metadata": {"ti%ser": "free"}}', "metadata"),
        ('{"model": "goal/guarded", "messages": [{"role": "user", "content": "hi"}], '
         '"user": "u%s"}', "user"),
        ('{"model": "goal/guarded", "messages": [{"role": "user", "content": "hi"}], '
         '"tools": [{"type": "function", "function": {"name": "f", "parameters": '
         '{"properties": {"x%s": {}}}}}]}', "tools[0].function.parameters.properties"),
    ],
)  # fmt: skip
def test_nul_and_lone_surrogates_are_refused_naming_the_field(
    key: str, upstream: CaptureUpstream, template: str, param: str, bad: str
) -> None:
    assert_refused(post_raw((template % bad).encode(), key), param, upstream)


def test_nul_in_content_is_refused_over_http_with_the_openai_client(
    live: str, key: str, upstream: CaptureUpstream
) -> None:
    client = openai.OpenAI(base_url=f"{live}/v1", api_key=key, max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="goal/guarded", messages=[{"role": "user", "content": "a\u0000b"}]
        )
    assert error_of(caught.value)["param"] == "messages[0].content"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="goal/guarded", messages=MESSAGES, metadata={"tier": "\u0000"}
        )
    assert error_of(caught.value)["param"] == "metadata.tier"
    assert not RoutingDecision.objects.exists()
    assert upstream.requests == []


def test_lone_surrogate_is_refused_over_http(
    live: str, key: str, upstream: CaptureUpstream
) -> None:
    # The openai client cannot even encode a lone surrogate; a hand-written body can.
    response = httpx.post(
        f"{live}/v1/chat/completions",
        content=b'{"model": "goal/guarded", "messages": [{"role": "\\ud800", "content": "x"}]}',
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages[0].role"
    assert not RoutingDecision.objects.exists()
    assert upstream.requests == []


# --------------------------------------------------------------------------- nesting


def test_100k_nested_arrays_are_refused_without_recursion_error(
    key: str, upstream: CaptureUpstream
) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    body = b'{"model": "goal/guarded", "messages": ' + deep + b"}"
    response = post_raw(body, key)
    assert_refused(response, None, upstream)
    assert "nested deeper" in response.json()["error"]["message"]


def test_3000_nested_objects_in_metadata_are_refused(key: str, upstream: CaptureUpstream) -> None:
    # Built as text: json.dumps itself would recurse 3,000 deep.
    text = '{"a": ' * 3_000 + "{}" + "}" * 3_000
    body = f'{{"model": "goal/guarded", "messages": {json.dumps(MESSAGES)}, "metadata": {text}}}'
    assert_refused(post_raw(body.encode(), key), None, upstream)


def test_nesting_past_the_bound_is_refused_naming_where(
    key: str, upstream: CaptureUpstream
) -> None:
    # 70 levels: parsed fine by json, refused by the documented bound of 64.
    text = '{"a": ' * 70 + "1" + "}" * 70
    body = f'{{"model": "goal/guarded", "messages": {json.dumps(MESSAGES)}, "tools": {text}}}'
    response = post_raw(body.encode(), key)
    assert_refused(response, "tools" + ".a" * 63, upstream)


def test_a_deep_but_legitimate_tool_schema_passes(key: str, upstream: CaptureUpstream) -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(10):  # OpenAI's own limit for structured outputs
        schema = {"type": "object", "properties": {"x": schema}}
    tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
    response = post_raw(with_fields(tools=[tool]), key)
    assert response.status_code == 200, response.content
    assert upstream.requests[0]["tools"] == [tool]


# --------------------------------------------------------------------------- upstream controls


@pytest.mark.parametrize("field", ["extra_headers", "extra_query", "extra_body"])
def test_callers_cannot_set_upstream_headers_query_or_body(
    key: str, upstream: CaptureUpstream, field: str
) -> None:
    response = post_raw(with_fields(**{field: {"Authorization": "Bearer sk-evil", "X-A": 1}}), key)
    assert_refused(response, field, upstream)
    assert "cannot set" in response.json()["error"]["message"]


def test_extra_headers_are_refused_over_http_with_the_openai_client(
    live: str, key: str, upstream: CaptureUpstream
) -> None:
    client = openai.OpenAI(base_url=f"{live}/v1", api_key=key, max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        # extra_body is merged into the JSON body by the SDK: this sends a field
        # `extra_headers`, which routerapp used to hand to its own SDK call upstream.
        client.chat.completions.create(
            model="goal/guarded",
            messages=MESSAGES,
            extra_body={"extra_headers": {"Authorization": "Bearer sk-evil"}},
        )
    assert error_of(caught.value)["param"] == "extra_headers"
    assert upstream.requests == []


def test_unknown_fields_are_refused_as_openai_does(key: str, upstream: CaptureUpstream) -> None:
    response = post_raw(with_fields(top_k=5), key)
    assert_refused(response, "top_k", upstream)
    assert response.json()["error"]["message"] == "Unrecognized request argument supplied: top_k"


# --------------------------------------------------------------------------- OpenAI fields


@pytest.mark.parametrize(
    ("raw_value", "param"),
    [
        ('"max_tokens": -1', "max_tokens"),
        ('"max_tokens": 0', "max_tokens"),
        ('"max_tokens": "abc"', "max_tokens"),
        ('"max_tokens": 1e400', "max_tokens"),  # json reads it as infinity
        ('"max_tokens": 2.5', "max_tokens"),
        ('"max_tokens": true', "max_tokens"),
        ('"max_completion_tokens": 0', "max_completion_tokens"),
        ('"temperature": NaN', "temperature"),
        ('"temperature": Infinity', "temperature"),
        ('"temperature": 2.5', "temperature"),
        ('"temperature": "hot"', "temperature"),
        ('"top_p": 1.5', "top_p"),
        ('"presence_penalty": -3', "presence_penalty"),
        ('"frequency_penalty": 2.01', "frequency_penalty"),
        ('"stream": "yes"', "stream"),
        ('"stream_options": "yes"', "stream_options"),
        ('"stream_options": {"include_usage": "yes"}', "stream_options.include_usage"),
        ('"n": "five"', "n"),
        ('"n": 0', "n"),
        ('"n": 2', "n"),
        ('"stop": ["a", "b", "c", "d", "e"]', "stop"),
        ('"stop": 5', "stop"),
        ('"seed": "x"', "seed"),
        ('"seed": 99999999999999999999', "seed"),
        ('"logprobs": "yes"', "logprobs"),
        ('"top_logprobs": 21', "top_logprobs"),
        ('"response_format": {"type": "xml"}', "response_format.type"),
        ('"response_format": "json"', "response_format.type"),
        ('"tools": "all"', "tools"),
        ('"tools": [{"type": "function"}]', "tools[0].function"),
        ('"tool_choice": "maybe"', "tool_choice"),
        ('"parallel_tool_calls": "yes"', "parallel_tool_calls"),
        ('"user": 5', "user"),
        ('"logit_bias": {"hello": 1}', "logit_bias"),
        ('"logit_bias": {"50256": 500}', "logit_bias.50256"),
        ('"metadata": {"nested": {"a": 1}}', "metadata.nested"),
        ('"metadata": {"none": null}', "metadata.none"),
        ('"goal": 5', "goal"),
    ],
)
def test_openai_fields_are_checked_for_type_and_range(
    key: str, upstream: CaptureUpstream, raw_value: str, param: str
) -> None:
    body = f'{{"model": "goal/guarded", "messages": {json.dumps(MESSAGES)}, {raw_value}}}'
    assert_refused(post_raw(body.encode(), key), param, upstream)


@pytest.mark.parametrize(
    ("message", "param"),
    [
        ({"role": "wizard"}, "messages[0].role"),
        ({"content": [{"text": "no type"}]}, "messages[0].content[0]"),
        ({"content": [{"type": "text", "text": 5}]}, "messages[0].content[0].text"),
        ({"name": 5}, "messages[0].name"),
        ({"tool_calls": "x"}, "messages[0].tool_calls"),
    ],
)
def test_message_shapes_are_checked(
    key: str, upstream: CaptureUpstream, message: dict[str, Any], param: str
) -> None:
    assert_refused(post_raw(with_message(**message), key), param, upstream)


def test_client_mistakes_are_400_not_502_over_http_with_the_openai_client(
    live: str, key: str, upstream: CaptureUpstream
) -> None:
    client = openai.OpenAI(base_url=f"{live}/v1", api_key=key, max_retries=0)
    for arguments, param in [
        ({"max_tokens": -1}, "max_tokens"),
        ({"temperature": 7}, "temperature"),
        ({"n": 2}, "n"),
        ({"extra_body": {"n": "five"}}, "n"),
    ]:
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="goal/guarded", messages=MESSAGES, **arguments)
        assert caught.value.status_code == 400
        assert error_of(caught.value)["param"] == param
    assert not RoutingDecision.objects.exists()
    assert upstream.requests == []


def test_n_above_one_is_refused_with_the_reason(key: str, upstream: CaptureUpstream) -> None:
    response = post_raw(with_fields(n=3), key)
    assert_refused(response, "n", upstream)
    assert "one answer per call" in response.json()["error"]["message"]


# --------------------------------------------------------------------------- methods


@pytest.mark.parametrize("method", ["get", "put", "delete", "patch"])
def test_other_methods_on_chat_completions_get_an_openai_405(key: str, method: str) -> None:
    response = getattr(Client(), method)("/v1/chat/completions")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "POST" in error["message"]


def test_get_chat_completions_over_http_is_an_openai_405(live: str) -> None:
    response = httpx.get(f"{live}/v1/chat/completions")
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_post_on_models_is_an_openai_405(key: str) -> None:
    response = Client().post("/v1/models", data="{}", content_type="application/json")
    assert response.status_code == 405
    assert response["Allow"] == "GET"
    assert response.json()["error"]["type"] == "invalid_request_error"
