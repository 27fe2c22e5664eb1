"""Rules and the classifier step on the request path: PostgreSQL, the real openai client over
real HTTP, the built-in simulator as the only stand-in (plus a capture upstream for a
malformed classifier answer)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest
from django.db.models import Sum

from routerapp.models import Goal, HourlyRollup, Path, Provider, RoutingDecision
from routerapp.rules import rules_check
from tests.builders import make_api_key, make_goal, make_price, make_provider
from tests.capture import capture_upstream

SIMPLE = [{"role": "user", "content": "Is this spam? 'You won a free cruise, click now!'"}]
COMPLEX = [
    {
        "role": "user",
        "content": "Explain step by step why this python function deadlocks, compare two "
        "fixes and prove which one is correct:\n```def f(lock): lock.acquire(); f(lock)```",
    }
]


def client_for(base: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=30)


def set_rules(goal: Goal, rules: list[dict[str, Any]]) -> None:
    paths = {path.name: path.enabled for path in goal.paths.all()}
    goal.rules = rules_check(rules, paths=paths)
    goal.save(update_fields=["rules"])


def call(
    live: str, key: str, goal: str, messages: list[dict[str, Any]], **extra: Any
) -> RoutingDecision:
    raw = client_for(live, key).chat.completions.with_raw_response.create(
        model=f"goal/{goal}", messages=messages, **extra
    )
    raw.parse()
    return RoutingDecision.objects.get(request_id=raw.headers["X-Router-Request-Id"])


def test_a_pin_rule_routes_every_matching_call_to_its_path_with_reason_rule(live: str) -> None:
    goal = make_goal(slug="pinned", weights=(0.9, 0.1))
    set_rules(
        goal,
        [
            {
                "name": "vip-to-strong",
                "condition": "get(metadata, 'tier') == 'vip'",
                "action": "pin",
                "paths": ["gpt-4o"],
            }
        ],
    )
    _, key = make_api_key()

    vip = [
        call(live, key, "pinned", SIMPLE, metadata={"tier": "vip", "n": str(i)}) for i in range(6)
    ]
    others = [call(live, key, "pinned", SIMPLE, metadata={"n": str(i)}) for i in range(6)]

    strong = goal.paths.get(name="gpt-4o")
    for decision in vip:
        assert decision.path_id == strong.id
        assert decision.reason == "rule"
        assert decision.ranking[0] == strong.id  # the pin first, the engine's order after it
        assert len(decision.ranking) == 2
        assert decision.propensity == 1.0
        assert decision.goal_version == goal.version
        assert decision.rule_hits == [
            {
                "rule": "vip-to-strong",
                "action": "pin",
                "paths": ["gpt-4o"],
                "bucket": "",
                "condition": "get(metadata, 'tier') == 'vip'",
                "effect": "applied",
            }
        ]
    for decision in others:
        assert decision.reason in {"thompson", "exploration"}
        assert decision.rule_hits == []
        # The engine's share of first choices for the path it served (64 draws + the floor).
        assert decision.propensity is not None
        assert 0.0 < decision.propensity <= 1.0


def test_an_exclude_rule_keeps_its_paths_out_of_matching_calls(live: str) -> None:
    goal = make_goal(slug="excluding", weights=(0.95, 0.05))
    set_rules(
        goal,
        [
            {
                "name": "json-not-on-mini",
                "condition": "has_json_request",
                "action": "exclude",
                "paths": ["gpt-4o-mini"],
            }
        ],
    )
    _, key = make_api_key()
    mini = goal.paths.get(name="gpt-4o-mini")
    strong = goal.paths.get(name="gpt-4o")

    json_calls = [
        call(live, key, "excluding", SIMPLE, response_format={"type": "json_object"}, seed=i)
        for i in range(5)
    ]
    plain = [call(live, key, "excluding", SIMPLE, seed=i) for i in range(8)]

    for decision in json_calls:
        assert decision.path_id == strong.id
        assert decision.ranking == [strong.id]  # not even a fallback
        assert str(mini.id) not in decision.samples
        assert decision.explanation["excluded_paths"] == ["gpt-4o-mini"]
        assert decision.rule_hits[0]["rule"] == "json-not-on-mini"
        assert decision.propensity == pytest.approx(1.0)
    assert any(decision.path_id == mini.id for decision in plain)


def test_a_bucket_rule_sets_the_context_bucket(live: str) -> None:
    goal = make_goal(slug="bucketed", bucket_by=Goal.BucketBy.COMPLEXITY)
    set_rules(
        goal,
        [
            {
                "name": "tools-bucket",
                "condition": "has_tools",
                "action": "bucket",
                "bucket": "tools",
            }
        ],
    )
    _, key = make_api_key()
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]

    with_tools = call(live, key, "bucketed", SIMPLE, tools=tools)
    without = call(live, key, "bucketed", SIMPLE)

    assert with_tools.bucket == "tools"
    assert with_tools.features["has_tools"] is True
    assert with_tools.rule_hits[0]["effect"] == "applied"
    assert without.bucket.startswith("complexity:")
    assert without.features["has_tools"] is False


def test_stored_rules_that_fail_to_compile_route_without_them_and_say_so(live: str) -> None:
    goal = make_goal(slug="broken-rules")
    # Written past the checks (as a database edit would): the call must still be served.
    Goal.objects.filter(pk=goal.pk).update(
        rules=[{"name": "bad", "condition": "import os", "action": "pin", "paths": ["gpt-4o"]}]
    )
    _, key = make_api_key()

    decision = call(live, key, "broken-rules", SIMPLE)

    assert decision.status == "ok"
    assert decision.rule_hits == []
    assert "rules were ignored" in decision.explanation["rules_error"]


# --------------------------------------------------------------------------- classifier


def classifier_goal(
    slug: str, *, model: str, provider: Provider | None = None, **fields: Any
) -> Goal:
    """A goal whose classifier is a disabled extra path (any path may be the classifier)."""
    goal = make_goal(slug=slug, **fields)
    classifier = Path.objects.create(
        goal=goal,
        name="classifier",
        provider=provider or make_provider(),
        model=model,
        enabled=False,
    )
    goal.classifier_path = classifier
    goal.save(update_fields=["classifier_path"])
    return goal


def test_the_classifier_labels_calls_its_cost_is_on_the_decision_and_in_the_rollup(
    live: str,
) -> None:
    goal = classifier_goal("classified", model="gpt-4o-mini")
    set_rules(
        goal,
        [
            {
                "name": "complex-to-strong",
                "condition": "classifier_label == 'complex'",
                "action": "pin",
                "paths": ["gpt-4o"],
            },
            {
                "name": "simple-to-mini",
                "condition": "classifier_label == 'simple'",
                "action": "pin",
                "paths": ["gpt-4o-mini"],
            },
        ],
    )
    _, key = make_api_key()

    decisions = [call(live, key, "classified", SIMPLE, seed=i) for i in range(4)]
    decisions += [call(live, key, "classified", COMPLEX, seed=i) for i in range(4)]

    # gpt-4o-mini list prices: $0.15 / $0.60 per million tokens.
    for decision in decisions:
        facts = decision.classifier
        assert facts["status"] in {"ok", "malformed"}, facts
        assert facts["model"] == "gpt-4o-mini"
        expected = (
            Decimal("0.15") * facts["tokens_in"] + Decimal("0.60") * facts["tokens_out"]
        ) / Decimal(1_000_000)
        assert facts["tokens_in"] > 0
        assert decision.classifier_cost == expected.quantize(Decimal("1e-8"))
        assert decision.classifier_cost > 0
        assert decision.classifier_label == facts["label"]
        if decision.classifier_label:
            assert decision.reason == "rule"
            wanted = "gpt-4o" if decision.classifier_label == "complex" else "gpt-4o-mini"
            assert decision.path.name == wanted
    labels = [decision.classifier_label for decision in decisions]
    # The simulator labels these right far more often than not (seeded, so stable).
    assert labels[:4].count("simple") >= 3
    assert labels[4:].count("complex") >= 3
    rolled = HourlyRollup.objects.filter(goal=goal).aggregate(total=Sum("classifier_spend"))
    assert rolled["total"] == sum(decision.classifier_cost for decision in decisions)


def test_a_classifier_timeout_routes_without_a_label_and_the_decision_says_so(live: str) -> None:
    goal = classifier_goal(
        "slow-classifier", model="slow-3/gpt-4o-mini", classifier_timeout_seconds=0.3
    )
    set_rules(
        goal,
        [
            {
                "name": "simple-to-mini",
                "condition": "classifier_label == 'simple'",
                "action": "pin",
                "paths": ["gpt-4o-mini"],
            }
        ],
    )
    _, key = make_api_key()

    decision = call(live, key, "slow-classifier", SIMPLE)

    assert decision.status == "ok"
    assert decision.classifier["status"] == "timeout"
    assert decision.classifier["label"] == ""
    assert 250 <= decision.classifier["latency_ms"] < 2500
    assert decision.classifier_label == ""
    assert decision.classifier_cost == 0
    assert decision.reason in {"thompson", "exploration"}  # no label: the rule did not fire
    assert decision.rule_hits == []


def test_a_malformed_classifier_answer_routes_without_a_label_but_its_cost_counts(
    live: str,
) -> None:
    with capture_upstream() as upstream:  # answers "ok" to everything: not a label
        provider = make_provider(
            name="chatty", kind=Provider.Kind.OPENAI_COMPATIBLE, base_url=upstream.url
        )
        make_price(provider=provider, model="gpt-4o-mini", price_in="0.15", price_out="0.60")
        goal = classifier_goal("malformed-classifier", model="gpt-4o-mini", provider=provider)
        _, key = make_api_key()

        decision = call(live, key, "malformed-classifier", SIMPLE)

    assert decision.status == "ok"
    assert decision.classifier["status"] == "malformed"
    assert "'ok'" in decision.classifier["detail"]
    assert decision.classifier_label == ""
    # The capture upstream bills 5 + 1 tokens: paid for, so counted, though it was useless.
    assert (decision.classifier["tokens_in"], decision.classifier["tokens_out"]) == (5, 1)
    assert decision.classifier_cost == Decimal("0.00000135")  # (0.15 * 5 + 0.60 * 1) / 1e6
    rolled = HourlyRollup.objects.filter(goal=goal).aggregate(total=Sum("classifier_spend"))
    assert rolled["total"] == Decimal("0.00000135")
    sent = upstream.requests[0]
    assert sent["max_tokens"] == 8
    assert "Label this request (simple or complex):" in sent["messages"][1]["content"]
    assert goal.paths.count() == 3


def test_a_failing_classifier_upstream_routes_without_a_label(live: str) -> None:
    classifier_goal("failing-classifier", model="fail-500/gpt-4o-mini")
    _, key = make_api_key()

    decision = call(live, key, "failing-classifier", SIMPLE)

    assert decision.status == "ok"
    assert decision.classifier["status"] == "error"
    assert "500" in decision.classifier["detail"]


def test_a_streamed_call_runs_the_classifier_too(live: str) -> None:
    classifier_goal("streamed-classifier", model="gpt-4o-mini")
    _, key = make_api_key()

    with httpx.stream(
        "POST",
        f"{live}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "goal/streamed-classifier", "messages": SIMPLE, "stream": True},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        request_id = response.headers["X-Router-Request-Id"]
        body = response.read().decode()
    assert "[DONE]" in body
    decision = RoutingDecision.objects.get(request_id=request_id)
    assert decision.classifier["status"] in {"ok", "malformed"}
    assert decision.classifier_cost > 0
