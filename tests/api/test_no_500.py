"""Fuzzed bodies never get a 500 and never create a decision or an outcome they should not."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routerapp.models import Outcome, RoutingDecision
from tests.builders import make_api_key, make_goal

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
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


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    messages=bad_messages,
    extra=st.dictionaries(
        st.sampled_from(["temperature", "metadata", "stream", "goal"]), json_values, max_size=2
    ),
)
def test_completions_never_answer_500(key: str, messages: object, extra: dict) -> None:
    body = {"model": "goal/g1", "messages": messages, **extra}
    if (
        isinstance(messages, list)
        and messages
        and all(
            isinstance(m, dict)
            and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str)
            for m in messages
        )
    ):
        return  # a valid request: covered by the API tests, not by this fuzz
    response = Client().post(
        "/v1/chat/completions",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert response.status_code in (400, 413), response.content  # judged, not turned away
    assert "error" in response.json()
    assert not RoutingDecision.objects.exists()


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
