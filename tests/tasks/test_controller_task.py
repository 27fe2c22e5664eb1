"""The controller's safety-net task through a real broker and a real Celery worker."""

from __future__ import annotations

import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings

from routerapp.celery import app
from routerapp.models import Goal
from routerapp.services import controller
from routerapp.tasks import controller_advance_pending
from tests.builders import make_decision, make_goal


def test_beat_runs_the_controller_pass_every_few_seconds() -> None:
    entry = next(
        entry
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
        if entry["task"] == controller_advance_pending.name
    )
    assert entry["schedule"] <= 5.0


@pytest.mark.django_db(transaction=True)
def test_the_task_folds_a_goal_nobody_nudged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(controller, "controller_nudge", lambda goal_id: None)
    goal = make_goal(slug="g")
    make_decision(goal=goal, path=goal.paths.first(), outcome=1.0)

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            controller_advance_pending.delay()
            time.sleep(0.5)
            if Goal.objects.get(pk=goal.pk).controller_state.get("observations") == 1:
                break

    assert Goal.objects.get(pk=goal.pk).controller_state["observations"] == 1
