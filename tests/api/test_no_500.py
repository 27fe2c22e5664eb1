"""Fuzzed bodies never get a 500 and never create a decision or an outcome they should not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from routerapp.api.completion_request import PASSTHROUGH_FIELDS, REFUSED_FIELDS, ROUTER_FIELDS
from routerapp.models import Outcome, Provider, RoutingDecision
from tests.builders import make_api_key, make_goal, make_provider
from tests.capture import CaptureUpstream, capture_upstream

# Text with, now and then, what PostgreSQL and UTF-8 refuse: NUL and unpaired surrogates.
strings = st.text(max_size=20) | st.builds(
    lambda before, bad, after: before + bad + after,
    st.text(max_size=5),
    st.sampled_from(["\x00", "\ud800", "\udfff"]),
    st.text(max_size=5),
)
json_values = st.recursive(
    # Floats include NaN and infinities: json.dumps writes them as NaN / Infinity.
    st.none() | st.booleans() | st.integers() | st.floats() | strings,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(strings, children, max_size=3)
    ),
    max_leaves=8,
)
bad_messages = st.one_of(
    json_values,
    st.lists(
        st.dictionaries(st.sampled_from(["role", "content", "name"]), json_values), max_size=3
    ),
)


@pytest.fixture
def key(transactional_db: None) -> str:
    # The goal's only path points nowhere reachable, so even a valid body cannot record a success.
    make_goal(slug="g1", priced=False)
    return make_api_key(scopes=("completions", "outcomes"))[1]


@pytest.fixture
def upstream() -> Iterator[CaptureUpstream]:
    with capture_upstream() as server:
        yield server


@pytest.fixture
def capture_key(upstream: CaptureUpstream, transactional_db: None) -> str:
    """A key for goal `fz`, whose paths call a capture server that answers every call: a body
    is either judged (400) or answered (200); a 502 could only be a client mistake let through."""
    provider = make_provider(
        name="capture", kind=Provider.Kind.OPENAI_COMPATIBLE, base_url=upstream.url
    )
    make_goal(slug="fz", provider=provider, priced=False)
    return make_api_key(scopes=("completions",))[1]


def post_completion(body: dict, key: str, *, deep: int | None = None) -> Any:
    text = json.dumps(body)
    if deep:
        # Nesting too deep for json.dumps itself: spliced in as text.
        text = text.replace('"__deep__"', "[" * deep + "]" * deep, 1)
    return Client().post(
        "/v1/chat/completions",
        data=text.encode(),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )


def assert_judged_or_answered(response: Any, upstream: CaptureUpstream, calls: int) -> None:
    """400 with nothing stored and nothing sent, or 200 with one call carrying only
    allow-listed fields. Never 500, never 502."""
    status = response.status_code
    event(f"status {status}")  # --hypothesis-show-statistics shows both outcomes occur
    assert status in (200, 400), response.content
    if status == 400:
        assert "error" in response.json()
        assert RoutingDecision.objects.count() == calls
        assert len(upstream.requests) == calls
        return
    assert RoutingDecision.objects.count() == calls + 1
    assert len(upstream.requests) == calls + 1
    sent = set(upstream.requests[-1])
    assert sent <= {"model", "messages", *PASSTHROUGH_FIELDS}, sent


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    messages=bad_messages,
    extra=st.dictionaries(
        st.sampled_from(["temperature", "metadata", "stream", "goal"]), json_values, max_size=2
    ),
)
def test_completions_never_answer_500(
    capture_key: str, upstream: CaptureUpstream, messages: object, extra: dict
) -> None:
    assume(extra.get("stream") is not True)  # the capture server does not stream
    calls = len(upstream.requests)
    body = {"model": "goal/fz", "messages": messages, **extra}
    assert_judged_or_answered(post_completion(body, capture_key), upstream, calls)


# Every field a body may carry, the ones it may not, and names nobody knows.
FIELDS = sorted(
    (set(PASSTHROUGH_FIELDS) | ROUTER_FIELDS | REFUSED_FIELDS | {"top_k", "functions_x", ""})
    - {"model", "messages"}
)
# Values some field accepts, so that bodies pass as well as fail.
PLAUSIBLE = st.sampled_from(
    [0, 1, 2, 0.5, -1, 21, 2**40, True, False, "auto", "none", "hi", [], ["a"], {}]
    + [{"type": "json_object"}, {"include_usage": True}, {"tier": "free"}, {"7": 5}]
)
MESSAGE_LISTS = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "system", "assistant", "wizard"]), "content": strings}
    ),
    min_size=1,
    max_size=3,
)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    messages=MESSAGE_LISTS,
    extra=st.dictionaries(
        st.sampled_from(FIELDS), PLAUSIBLE | json_values | st.just("__deep__"), max_size=3
    ),
    deep=st.none() | st.integers(min_value=60, max_value=5_000),
)
def test_openai_fields_are_judged_before_upstream(
    capture_key: str,
    upstream: CaptureUpstream,
    messages: list,
    extra: dict,
    deep: int | None,
) -> None:
    assume(extra.get("stream") is not True)  # the capture server does not stream
    calls = len(upstream.requests)
    body = {"model": "goal/fz", "messages": messages, **extra}
    assert_judged_or_answered(post_completion(body, capture_key, deep=deep), upstream, calls)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.dictionaries(
        st.sampled_from(["request_id", "outcome", "score", "note"]), json_values, max_size=4
    )
)
def test_outcomes_never_answer_500(key: str, body: dict) -> None:
    response = Client().post(
        "/api/v1/outcomes",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert response.status_code in (400, 404), response.content
    assert not Outcome.objects.exists()
