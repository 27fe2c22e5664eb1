"""The suggestions task through a real broker and a real Celery worker."""

from __future__ import annotations

import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings

from routerapp.celery import app
from routerapp.models import ChangeRequest, Goal
from routerapp.tasks import suggestions_propose
from tests.builders import make_goal
from tests.projection.traffic import generate


def test_beat_runs_the_suggestions_task_hourly() -> None:
    entry = next(
        entry
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
        if entry["task"] == suggestions_propose.name
    )
    assert entry["schedule"] == 3600.0


@pytest.mark.django_db(transaction=True)
def test_the_task_proposes_once_however_often_it_runs() -> None:
    goal = make_goal(slug="triage", bucket_by=Goal.BucketBy.COMPLEXITY)
    generate(goal, count=1800, seed=11, simple_share=0.6)

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        suggestions_propose.delay()
        suggestions_propose.delay()  # a second run finds the pending one and adds nothing
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if ChangeRequest.objects.filter(goal=goal).exists():
                break
            time.sleep(0.2)
        time.sleep(3.0)  # let the second run finish (solo pool: one after the other)

    pending = ChangeRequest.objects.filter(goal=goal, status=ChangeRequest.Status.PENDING)
    assert pending.count() == 1
    assert pending.get().suggestion_key == "route:complexity:simple->gpt-4o-mini"
