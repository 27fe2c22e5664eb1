"""POST /v1/chat/completions over real HTTP with the real openai client, against the simulator."""

from __future__ import annotations

import httpx
import openai
import pytest

from routerapp.models import Outcome, Posterior, Provider, RoutingDecision
from routerapp.services.access import api_key_revoke
from tests.builders import make_api_key, make_goal, make_provider

MESSAGES = [{"role": "user", "content": "Is this spam? 'You won a free cruise, click now!'"}]


def client_for(base: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=30)


def test_completion_returns_answer_with_routing_headers_and_router_object(live: str) -> None:
    goal = make_goal(
        slug="email_classification", success_when="response.choices[0].finish_reason == 'stop'"
    )
    _, key = make_api_key()

    raw = client_for(live, key).chat.completions.with_raw_response.create(
        model="goal/email_classification", messages=MESSAGES
    )
    completion = raw.parse()

    request_id = raw.headers["X-Router-Request-Id"]
    decision = RoutingDecision.objects.get(request_id=request_id)
    assert completion.choices[0].message.content
    assert raw.headers["X-Router-Path"] == decision.path.name
    assert float(raw.headers["X-Router-Cost-USD"]) == pytest.approx(float(decision.cost))
    router = raw.http_response.json()["router"]
    assert router["request_id"] == request_id
    assert router["goal"] == goal.slug
    assert router["model"] in {"gpt-4o-mini", "gpt-4o"}
    assert router["reason"] in {"thompson", "exploration"}
    assert router["simulated"] is True
    assert decision.cost > 0
    assert decision.baseline_cost >= decision.cost
    assert decision.tokens_in > 0
    assert decision.tokens_out > 0
    assert set(decision.samples) == {str(path.id) for path in goal.paths.all()}
    # success_when produced the automatic outcome and the posterior learned it, atomically.
    outcome = Outcome.objects.get(decision=decision)
    assert outcome.source == "success_when"
    assert outcome.value == 1.0
    goal_wide = Posterior.objects.get(path=decision.path, bucket="")
    assert goal_wide.successes == pytest.approx(1.0)
    assert goal_wide.failures == 0


def test_goal_can_be_named_by_header_or_goal_field(live: str) -> None:
    make_goal(slug="triage")
    _, key = make_api_key()
    headers = {"Authorization": f"Bearer {key}"}
    by_header = httpx.post(
        f"{live}/v1/chat/completions",
        headers={**headers, "X-Router-Goal": "triage"},
        json={"model": "anything", "messages": MESSAGES},
        timeout=30,
    )
    by_field = httpx.post(
        f"{live}/v1/chat/completions",
        headers=headers,
        json={"goal": "triage", "messages": MESSAGES},
        timeout=30,
    )
    assert by_header.status_code == 200, by_header.text
    assert by_field.status_code == 200, by_field.text
    assert by_field.json()["router"]["goal"] == "triage"


def test_falls_back_to_next_path_when_upstream_returns_500(live: str) -> None:
    broken = make_provider(name="broken-sim")
    goal = make_goal(
        slug="fallback", models=("fail-500/gpt-4o-mini",), provider=broken, priced=False
    )
    healthy = make_provider()
    goal.paths.create(name="gpt-4o", provider=healthy, model="gpt-4o", weight=0.1)
    _, key = make_api_key()

    client = client_for(live, key)
    for _ in range(4):
        client.chat.completions.create(model="goal/fallback", messages=MESSAGES)

    decisions = RoutingDecision.objects.filter(goal=goal)
    assert decisions.count() == 4
    assert all(d.status == "ok" and d.path.model == "gpt-4o" for d in decisions)
    fallbacks = [d for d in decisions if d.reason == "fallback"]
    assert fallbacks, "with weight 0.9 on the broken path, some call must have tried it first"
    first = fallbacks[0].attempts
    assert first[0]["ok"] is False
    assert first[0]["error"]["kind"] == "server_error"
    assert first[-1]["ok"] is True


def test_falls_back_when_upstream_times_out(live: str) -> None:
    slow = make_provider(name="slow-sim", timeout_seconds=0.5)
    goal = make_goal(slug="timeouts", models=("slow-5/gpt-4o-mini",), provider=slow, priced=False)
    goal.paths.create(name="gpt-4o", provider=make_provider(), model="gpt-4o", weight=0.01)
    _, key = make_api_key()

    client_for(live, key).chat.completions.create(model="goal/timeouts", messages=MESSAGES)

    decision = RoutingDecision.objects.get(goal=goal)
    assert decision.path.model == "gpt-4o"
    kinds = [a["error"]["kind"] for a in decision.attempts if not a["ok"]]
    assert kinds in ([], ["timeout"])


def test_every_path_failing_answers_502_with_attempts_and_records_the_decision(live: str) -> None:
    make_goal(
        slug="doomed",
        models=("fail-500/gpt-4o-mini", "fail-429/gpt-4o"),
        priced=False,
        provider=make_provider(name="doomed-sim"),
    )
    _, key = make_api_key()

    with pytest.raises(openai.APIStatusError) as caught:
        client_for(live, key).chat.completions.create(model="goal/doomed", messages=MESSAGES)

    assert caught.value.status_code == 502
    error = caught.value.response.json()["error"]
    assert error["type"] == "upstream_error"
    assert len(error["attempts"]) == 2
    decision = RoutingDecision.objects.get(request_id=error["request_id"])
    assert decision.status == "failed"
    assert decision.path is None
    assert not Outcome.objects.filter(decision=decision).exists()


def test_success_when_that_raises_records_failure_with_reason(live: str) -> None:
    make_goal(slug="brittle", success_when="response.choices[3].message.content == 'x'")
    _, key = make_api_key()

    raw = client_for(live, key).chat.completions.with_raw_response.create(
        model="goal/brittle", messages=MESSAGES
    )

    outcome = Outcome.objects.get(decision__request_id=raw.headers["X-Router-Request-Id"])
    assert outcome.value == 0.0
    assert "success_when error" in outcome.note


def test_unknown_goal_is_404_in_openai_format(live: str) -> None:
    _, key = make_api_key()
    with pytest.raises(openai.NotFoundError) as caught:
        client_for(live, key).chat.completions.create(model="goal/nope", messages=MESSAGES)
    assert caught.value.response.json()["error"]["type"] == "not_found_error"


@pytest.mark.parametrize("header", [None, "Bearer rk_dead_beef", "Bearer garbage"])
def test_missing_or_wrong_key_is_401(live: str, header: str | None) -> None:
    make_goal(slug="g1")
    headers = {"Authorization": header} if header else {}
    response = httpx.post(
        f"{live}/v1/chat/completions",
        headers=headers,
        json={"model": "goal/g1", "messages": MESSAGES},
    )
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


def test_revoked_key_is_401(live: str) -> None:
    make_goal(slug="g1")
    api_key, key = make_api_key()
    api_key_revoke(key=api_key)
    with pytest.raises(openai.AuthenticationError):
        client_for(live, key).chat.completions.create(model="goal/g1", messages=MESSAGES)


def test_key_without_completions_scope_is_403(live: str) -> None:
    make_goal(slug="g1")
    _, key = make_api_key(scopes=("outcomes",))
    with pytest.raises(openai.PermissionDeniedError):
        client_for(live, key).chat.completions.create(model="goal/g1", messages=MESSAGES)


def test_key_not_allowed_for_goal_is_403(live: str) -> None:
    allowed = make_goal(slug="allowed")
    make_goal(slug="other", provider=make_provider())
    _, key = make_api_key(goals=(allowed,))
    client = client_for(live, key)
    client.chat.completions.create(model="goal/allowed", messages=MESSAGES)
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="goal/other", messages=MESSAGES)
    assert RoutingDecision.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (b'{"model": "goal/g1"}', "messages"),
        (b'{"model": "goal/g1", "messages": "hi"}', "messages"),
        (b'{"model": "goal/g1", "messages": []}', "messages"),
        (b'{"model": "goal/g1", "messages": [{"role": 1, "content": "x"}]}', "messages[0].role"),
        (
            b'{"model": "goal/g1", "messages": [{"role": "user", "content": 5}]}',
            "messages[0].content",
        ),
        (
            b'{"model": "goal/g1", "messages": [{"role": "user", "content": "x"}], "metadata": 3}',
            "metadata",
        ),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "model"),
    ],
)
def test_malformed_bodies_are_400_and_record_nothing(
    live: str, body: bytes, param: str | None
) -> None:
    make_goal(slug="g1")
    _, key = make_api_key()
    response = httpx.post(
        f"{live}/v1/chat/completions",
        content=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert RoutingDecision.objects.count() == 0


def test_body_over_the_limit_is_413(live: str, settings: object) -> None:
    settings.MAX_REQUEST_BYTES = 2_000  # type: ignore[attr-defined]
    make_goal(slug="g1")
    _, key = make_api_key()
    big = [{"role": "user", "content": "x" * 5_000}]
    response = httpx.post(
        f"{live}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "goal/g1", "messages": big},
    )
    assert response.status_code == 413
    assert RoutingDecision.objects.count() == 0


def test_models_lists_the_goals_a_key_may_call(live: str) -> None:
    allowed = make_goal(slug="allowed")
    make_goal(slug="hidden")
    _, key = make_api_key(goals=(allowed,))
    ids = [model.id for model in client_for(live, key).models.list()]
    assert ids == ["goal/allowed"]


def test_provider_key_is_never_returned(live: str) -> None:
    provider = make_provider(
        name="real", kind=Provider.Kind.OPENAI_COMPATIBLE, base_url="https://example.invalid/v1"
    )
    provider.set_api_key("sk-secret-value")
    provider.save()
    _, key = make_api_key(scopes=("read",))
    response = httpx.get(f"{live}/api/v1/providers", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    assert "sk-secret-value" not in response.text
    assert response.json()["results"][0]["has_api_key"] is True


def test_streamed_completion_records_usage_and_cost(live: str) -> None:
    make_goal(slug="streamy", success_when="response.choices[0].finish_reason == 'stop'")
    _, key = make_api_key()

    stream = client_for(live, key).chat.completions.create(
        model="goal/streamy", messages=MESSAGES, stream=True
    )
    chunks = list(stream)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    last = chunks[-1].model_dump()
    assert text
    decision = RoutingDecision.objects.get(request_id=last["router"]["request_id"])
    assert decision.response_text == text
    assert decision.tokens_out > 0
    assert decision.cost > 0
    assert last["usage"]["completion_tokens"] == decision.tokens_out
    assert Outcome.objects.get(decision=decision).value == 1.0


def test_streamed_completion_falls_back_before_the_first_byte(live: str) -> None:
    goal = make_goal(
        slug="streamfall",
        models=("fail-500/gpt-4o-mini",),
        priced=False,
        provider=make_provider(name="broken-stream"),
    )
    goal.paths.create(name="gpt-4o", provider=make_provider(), model="gpt-4o", weight=0.01)
    _, key = make_api_key()

    chunks = list(
        client_for(live, key).chat.completions.create(
            model="goal/streamfall", messages=MESSAGES, stream=True
        )
    )

    decision = RoutingDecision.objects.get(goal=goal)
    assert decision.path.model == "gpt-4o"
    assert chunks[-1].model_dump()["router"]["path"] == "gpt-4o"


@pytest.mark.django_db(transaction=True)  # the async view reads keys on its own DB threads
def test_rate_limited_key_gets_429_past_its_limit() -> None:
    from django.test import Client

    make_goal(slug="g1", priced=False)
    _, key = make_api_key(rate_limit_per_minute=2)
    client = Client()
    statuses = [
        client.post(
            "/v1/chat/completions",
            data={"model": "goal/g1"},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {key}",
        ).status_code
        for _ in range(3)
    ]
    # The first two pass the limiter (and fail validation: no messages); the third is throttled.
    assert statuses == [400, 400, 429]
