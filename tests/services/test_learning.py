"""Posterior updates in SQL: atomic upserts, decay by half-life as the engine defines it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from routerapp import engine
from routerapp.models import Posterior
from routerapp.services.learning import posterior_apply_outcome
from tests.builders import make_goal


@pytest.mark.django_db
def test_outcome_updates_bucket_and_goal_wide_posteriors() -> None:
    goal = make_goal(slug="g")
    path = goal.paths.first()
    posterior_apply_outcome(
        goal=goal, path_id=path.id, bucket="complexity:simple", d_successes=1.0, d_failures=0.0
    )
    posterior_apply_outcome(
        goal=goal, path_id=path.id, bucket="complexity:complex", d_successes=0.0, d_failures=1.0
    )
    rows = {p.bucket: (p.successes, p.failures) for p in Posterior.objects.filter(path=path)}
    assert rows == {
        "": (1.0, 1.0),
        "complexity:simple": (1.0, 0.0),
        "complexity:complex": (0.0, 1.0),
    }


@pytest.mark.django_db
def test_old_evidence_decays_in_sql_exactly_as_the_engine_formula() -> None:
    goal = make_goal(slug="g", half_life_seconds=3600)
    path = goal.paths.first()
    two_hours_ago = timezone.now() - timedelta(hours=2)
    Posterior.objects.create(
        goal=goal, path=path, bucket="", successes=40.0, failures=8.0, updated_at=two_hours_ago
    )

    posterior_apply_outcome(goal=goal, path_id=path.id, bucket="", d_successes=1.0, d_failures=0.0)

    row = Posterior.objects.get(path=path, bucket="")
    elapsed = (row.updated_at - two_hours_ago).total_seconds()
    expected = engine.decay((40.0, 8.0), half_life_seconds=3600, elapsed_seconds=elapsed)
    assert row.successes == pytest.approx(expected[0] + 1.0, rel=1e-6)
    assert row.failures == pytest.approx(expected[1], rel=1e-6)
    assert row.successes == pytest.approx(11.0, abs=0.01)  # two half-lives: 40 -> 10, plus one


@pytest.mark.django_db
def test_without_half_life_nothing_is_forgotten() -> None:
    goal = make_goal(slug="g")
    path = goal.paths.first()
    Posterior.objects.create(
        goal=goal,
        path=path,
        bucket="",
        successes=5.0,
        failures=5.0,
        updated_at=timezone.now() - timedelta(days=30),
    )
    posterior_apply_outcome(goal=goal, path_id=path.id, bucket="", d_successes=0.5, d_failures=0.5)
    row = Posterior.objects.get(path=path, bucket="")
    assert (row.successes, row.failures) == (5.5, 5.5)
