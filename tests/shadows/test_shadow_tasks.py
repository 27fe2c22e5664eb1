"""Shadow traffic end to end: completions over real HTTP with the real openai client, the
`shadow_compare` task through a real broker and a real Celery worker, the simulator as both
upstream and judge, and a local server receiving the regret alert's webhook."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.db.models import Sum

from routerapp.celery import app
from routerapp.models import Goal, Path, RegretRollup, RoutingDecision, ShadowComparison
from routerapp.services.shadows import shadow_enqueue, shadow_payload
from routerapp.stats import wilson_interval
from routerapp.tasks import shadow_compare, shadows_maintain
from tests.builders import make_api_key, make_goal, make_provider
from tests.conftest import free_port
from tests.shadows.conftest import Recorder

CODE = "Write a python function that returns the {n}th Fibonacci number, iteratively."
LABEL = (
    "Classify the sentiment of this customer review as positive or negative: 'Order {n} was {w}.'"
)


def client_for(base: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=30)


def settled(goal: Goal, *, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while ShadowComparison.objects.filter(goal=goal, state="pending").exists():
        assert time.monotonic() < deadline, "shadow comparisons still pending"
        time.sleep(0.2)


def _reset_producers() -> None:
    # The app caches a connection pool and a producer pool built from the broker URL.
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def broker_down() -> Iterator[str]:
    """Tasks are published to a port nothing listens on, for this test only."""
    original = app.conf.broker_write_url
    app.conf.broker_write_url = f"redis://127.0.0.1:{free_port()}/0"
    _reset_producers()
    yield app.conf.broker_write_url
    app.conf.broker_write_url = original
    _reset_producers()


def test_beat_closes_the_funnel_and_rechecks_alerts_every_minute() -> None:
    entry = next(
        entry
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
        if entry["task"] == shadows_maintain.name
    )
    assert entry["schedule"] <= 60.0


def test_broker_down_the_call_is_served_and_the_drop_counted(live: str, broker_down: str) -> None:
    goal = make_goal(slug="down", shadow_rate=1.0, judge_mode=Goal.JudgeMode.SUCCESS_WHEN)
    Path.objects.filter(goal=goal, model="gpt-4o").update(enabled=False)  # serve the cheap one
    _, key = make_api_key()

    started = time.monotonic()
    completion = client_for(live, key).chat.completions.create(
        model="goal/down", messages=[{"role": "user", "content": "Summarise caching in a line."}]
    )
    elapsed = time.monotonic() - started

    assert completion.choices[0].message.content
    assert elapsed < 5.0  # the publish failed fast (measured: milliseconds)
    comparison = ShadowComparison.objects.get(goal=goal)
    assert comparison.state == "dropped"
    assert "broker unavailable" in comparison.error
    totals = RegretRollup.objects.filter(goal=goal).aggregate(s=Sum("sampled"), d=Sum("dropped"))
    assert totals == {"s": 1, "d": 1}


def test_the_worker_judges_a_shadow_once_even_when_the_task_is_delivered_twice(live: str) -> None:
    goal = make_goal(
        slug="twice",
        shadow_rate=1.0,
        judge_mode=Goal.JudgeMode.LLM,
        judge_provider=make_provider(),
        judge_model="simulator-judge",
    )
    Path.objects.filter(goal=goal, model="gpt-4o").update(enabled=False)
    _, key = make_api_key()
    messages: list[Any] = [{"role": "user", "content": "Explain what a CDN does."}]

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        client_for(live, key).chat.completions.create(model="goal/twice", messages=messages)
        settled(goal)
        decision = RoutingDecision.objects.get(goal=goal)
        again = shadow_payload(decision_id=decision.pk, messages=messages, params={}, served={})
        assert shadow_enqueue(again)
        shadow_compare.delay(again)
        time.sleep(1.0)  # both redeliveries reach the worker and find the comparison final

    comparison = ShadowComparison.objects.get(decision=decision)
    assert comparison.state == "judged"
    assert comparison.judge_attempts == 1
    totals = RegretRollup.objects.filter(goal=goal).aggregate(s=Sum("sampled"), j=Sum("judged"))
    assert totals == {"s": 1, "j": 1}


def test_a_cheap_model_gone_bad_on_code_raises_that_buckets_regret_and_the_alert(
    live: str, webhook: Recorder
) -> None:
    goal = make_goal(
        slug="loop",
        models=("worse-code-0.2/gpt-4o-mini", "gpt-4o"),
        bucket_by=Goal.BucketBy.TASK_TYPE,
        success_when="response.choices[0].finish_reason == 'stop'",
        shadow_rate=1.0,
        judge_mode=Goal.JudgeMode.LLM,
        judge_provider=make_provider(),
        judge_model="simulator-judge",
        regret_threshold=0.03,
        regret_window=100,
        alert_webhook_url=webhook.url + "/hook",
    )
    # Every call is served by the degraded cheap model; the baseline is only shadowed.
    Path.objects.filter(goal=goal, model="gpt-4o").update(enabled=False)
    _, key = make_api_key()
    client = client_for(live, key)

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        for n in range(24):
            for prompt, task in ((CODE, "code"), (LABEL, "classification")):
                client.chat.completions.create(
                    model="goal/loop",
                    messages=[{"role": "user", "content": prompt.format(n=n + 3, w="late")}],
                    metadata={"task_type": task},
                )
        settled(goal)

    def rate(bucket: str) -> tuple[int, int, float]:
        row = RegretRollup.objects.filter(goal=goal, bucket=bucket).aggregate(
            j=Sum("judged"), r=Sum("regret"), s=Sum("sampled")
        )
        assert row["s"] == 24
        low, _ = wilson_interval(row["r"], row["j"])
        return row["j"], row["r"], low

    code_judged, code_regret, code_low = rate("task_type:code")
    label_judged, label_regret, _ = rate("task_type:classification")
    # Simulated truth: regret on code when 0.2 <= u < ~0.9 (70%), on labels ~5%.
    assert code_judged == 24
    assert code_low > goal.regret_threshold
    assert code_regret / code_judged > 0.4
    assert label_regret / label_judged < code_regret / code_judged
    alert = Goal.objects.get(pk=goal.pk).regret_alert
    assert alert["active"] is True
    assert alert["low"] > goal.regret_threshold
    assert alert["buckets"][0]["bucket"] == "task_type:code"  # worst first
    received = webhook.received(1)
    assert received[0]["event"] == "regret_alert.raised"
    assert received[0]["goal"] == "loop"
    assert alert["webhook"]["delivered"] is True
