"""The regret alert: raised when the Wilson lower bound passes the threshold, cleared when it
falls back, announced to a webhook (a local server) with bounded retries, audited."""

from __future__ import annotations

from typing import Any

import pytest

from routerapp.models import AuditLog, Goal
from routerapp.services.alerts import regret_alert_check, regret_webhook_post
from routerapp.services.shadows import shadow_compare_run
from tests.builders import make_goal
from tests.shadows.conftest import Recorder, record_served

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _simulator(simulator_url: str) -> None:
    """Simulator paths call the session's simulator over HTTP."""


def regretful_goal(webhook: Recorder, **fields: Any) -> Goal:
    goal = make_goal(
        slug="alerted",
        shadow_rate=1.0,
        judge_mode=Goal.JudgeMode.SUCCESS_WHEN,
        # The simulator always answers; the served answers below are empty: each is regret.
        success_when="len(response.choices[0].message.content) > 0",
        regret_threshold=0.03,
        regret_window=10,
        alert_webhook_url=webhook.url + "/hook",
        **fields,
    )
    for n in range(5):
        _, payload = record_served(goal, messages=[{"role": "user", "content": f"Q{n}?"}])
        shadow_compare_run(payload=payload)  # checks the alert after each judged comparison
    return goal


def test_the_alert_is_raised_announced_and_cleared(webhook: Recorder, settings: Any) -> None:
    settings.REGRET_ALERT_REFRESH_SECONDS = 0  # store the figures on every check
    goal = regretful_goal(webhook)

    alert = Goal.objects.get(pk=goal.pk).regret_alert
    # 5 of 5 judged are regret: Wilson 95% lower bound 0.566 > 0.03.
    assert alert["active"] is True
    assert (alert["judged"], alert["regret"]) == (5, 5)
    assert alert["low"] == pytest.approx(0.5655, abs=1e-3)
    assert alert["webhook"]["delivered"] is True
    assert [body["event"] for body in webhook.bodies] == ["regret_alert.raised"]  # once

    Goal.objects.filter(pk=goal.pk).update(regret_threshold=0.9)
    state = regret_alert_check(goal_id=goal.pk)

    assert state is not None
    assert state["active"] is False
    assert [body["event"] for body in webhook.bodies] == [
        "regret_alert.raised",
        "regret_alert.cleared",
    ]
    actions = list(AuditLog.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["regret_alert.raised", "regret_alert.cleared"]
    assert AuditLog.objects.last().changes["webhook"]["delivered"] is True


def test_the_webhook_is_retried_on_server_errors_not_on_refusals(webhook: Recorder) -> None:
    webhook.replies = [(503, {}), (200, {})]
    delivered = regret_webhook_post(url=webhook.url, payload={"goal": "g"})
    assert (delivered["delivered"], delivered["attempts"]) == (True, 2)

    webhook.bodies.clear()
    webhook.replies = [(404, {})]
    refused = regret_webhook_post(url=webhook.url, payload={"goal": "g"})
    assert (refused["delivered"], refused["attempts"], refused["status_code"]) == (False, 1, 404)


def test_an_unreachable_webhook_is_bounded_and_recorded(settings: Any) -> None:
    settings.REGRET_WEBHOOK_ATTEMPTS = 2
    from tests.conftest import free_port

    outcome = regret_webhook_post(url=f"http://127.0.0.1:{free_port()}/", payload={"goal": "g"})
    assert (outcome["delivered"], outcome["attempts"]) == (False, 2)
    assert "ConnectError" in outcome["error"]
