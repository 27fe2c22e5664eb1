"""Concurrent outcome reports: no lost update, posterior counts equal the stored outcomes."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from django.db import connection

from routerapp.models import Outcome, Posterior, RoutingDecision
from routerapp.services.outcomes import outcome_report
from tests.builders import make_goal

THREADS, REPORTS_PER_THREAD, DECISIONS = 20, 100, 150


@pytest.mark.django_db(transaction=True)
def test_concurrent_reports_with_duplicates_lose_no_update() -> None:
    goal = make_goal(slug="busy")
    path = goal.paths.first()
    decisions = [
        RoutingDecision.objects.create(
            goal=goal, path=path, reason="thompson", objective="success", ranking=[path.id]
        )
        for _ in range(DECISIONS)
    ]
    errors: list[BaseException] = []

    def report(seed: int) -> None:
        rng = np.random.default_rng(seed)  # many duplicates: 2,000 reports over 150 decisions
        try:
            for _ in range(REPORTS_PER_THREAD):
                decision = decisions[int(rng.integers(DECISIONS))]
                outcome_report(decision=decision, value=float(rng.integers(2)))
        except BaseException as error:  # surfaced below; a thread cannot fail the test itself
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=report, args=(seed,)) for seed in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    values = list(Outcome.objects.values_list("value", flat=True))
    posterior = Posterior.objects.get(path=path, bucket="")
    # Exact up to float rounding: each change moved the counts by exactly the difference.
    assert posterior.successes == pytest.approx(sum(values), abs=1e-9)
    assert posterior.failures == pytest.approx(len(values) - sum(values), abs=1e-9)
    assert len(values) <= DECISIONS
