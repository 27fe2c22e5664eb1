"""The reconcile task through a real broker and a real Celery worker."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from celery.contrib.testing.worker import start_worker
from django.utils import timezone

from routerapp.celery import app
from routerapp.models import HourlyRollup, RoutingDecision
from routerapp.tasks import rollups_reconcile
from tests.builders import make_goal


@pytest.mark.django_db(transaction=True)
def test_reconcile_task_runs_on_a_worker_and_is_idempotent() -> None:
    goal = make_goal(slug="g")
    path = goal.paths.first()
    RoutingDecision.objects.create(
        goal=goal,
        path=path,
        reason="thompson",
        objective="success",
        ranking=[path.id],
        cost=Decimal("0.003"),
        baseline_cost=Decimal("0.03"),
        created_at=timezone.now(),
    )
    assert not HourlyRollup.objects.exists()  # written directly: no live rollup yet

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        rollups_reconcile.delay()
        rollups_reconcile.delay()  # a second run stores the same rows, not twice the counts
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            row = HourlyRollup.objects.filter(path=path).first()
            if row is not None:
                break
            time.sleep(0.1)
        time.sleep(0.5)

    row = HourlyRollup.objects.get(path=path)
    assert row.requests == 1
    assert row.baseline_spend == Decimal("0.03")
