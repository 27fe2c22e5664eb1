"""Recording what the router learns: one statement per call, atomic upserts, exact decay."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from routerapp import engine
from routerapp.models import (
    ControllerObservation,
    Goal,
    HourlyRollup,
    Outcome,
    Posterior,
    RoutingDecision,
)
from routerapp.providers.client import ProviderResult
from routerapp.selectors.catalog_cache import catalog_get
from routerapp.services.outcomes import outcome_report
from routerapp.services.routing import (
    Attempt,
    ExecutionResult,
    RoutePlan,
    decision_record,
    route_plan,
)
from tests.builders import make_decision, make_goal

TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")
ANSWER = {"choices": [{"message": {"content": "spam"}, "finish_reason": "stop"}]}


def statements(context: CaptureQueriesContext) -> list[str]:
    """The SQL a unit ran, transaction control (BEGIN/COMMIT/savepoints) left out."""
    return [
        query["sql"]
        for query in context.captured_queries
        if not query["sql"].lstrip().upper().startswith(TRANSACTION_CONTROL)
    ]


def plan_for(goal: Goal) -> RoutePlan:
    return route_plan(
        goal=catalog_get().goal(goal.slug),
        api_key=None,
        messages=[{"role": "user", "content": "Is this spam? 'You won a cruise!'"}],
        metadata=None,
        passthrough={},
    )


def answered(plan: RoutePlan, **response: Any) -> ExecutionResult:
    path = plan.ordered_paths[0]
    result = ProviderResult(
        response={**ANSWER, **response}, prompt_tokens=30, completion_tokens=2, latency_ms=5.0
    )
    attempt = Attempt(path.id, path.name, path.model, ok=True, latency_ms=5.0)
    return ExecutionResult(path=path, result=result, attempts=[attempt], latency_ms=5.0)


@pytest.mark.django_db
def test_a_completion_is_recorded_in_one_statement() -> None:
    goal = make_goal(
        slug="g",
        success_when="response.choices[0].finish_reason == 'stop'",
        bucket_by=Goal.BucketBy.COMPLEXITY,
    )
    plan = plan_for(goal)
    execution = answered(plan)

    with CaptureQueriesContext(connection) as context:
        decision, value = decision_record(plan=plan, execution=execution)

    # Decision, outcome, controller observation, both posteriors and the rollup: one statement
    # (the hot path allows three; none of them locks the goal).
    assert len(statements(context)) == 1
    assert "FOR UPDATE" not in statements(context)[0].upper()
    assert value == 1.0
    stored = RoutingDecision.objects.get(pk=decision.pk)
    assert stored.request_id == plan.request_id
    assert stored.cost == decision.cost > 0
    assert stored.explanation["reference_quality"] == plan.ranking.reference_quality
    assert Outcome.objects.get(decision=stored).value == 1.0
    observation = ControllerObservation.objects.get(decision=stored)
    assert (observation.value, observation.bucket) == (1.0, plan.bucket)
    assert observation.reference_quality == plan.ranking.reference_quality
    rows = {p.bucket: (p.successes, p.failures) for p in Posterior.objects.all()}
    assert rows == {"": (1.0, 0.0), plan.bucket: (1.0, 0.0)}
    rollup = HourlyRollup.objects.get()
    assert (rollup.path_id, rollup.requests, rollup.outcomes, rollup.success_sum) == (
        execution.path.id,
        1,
        1,
        1.0,
    )
    assert (rollup.spend, rollup.tokens_in, rollup.tokens_out) == (decision.cost, 30, 2)
    assert Goal.objects.get(pk=goal.pk).controller_state == {}  # folded later, off the path


@pytest.mark.django_db
def test_a_call_every_path_failed_is_recorded_in_one_statement_and_teaches_nothing() -> None:
    goal = make_goal(slug="g", success_when="response.choices[0].finish_reason == 'stop'")
    plan = plan_for(goal)
    first = plan.ordered_paths[0]
    failure = Attempt.failure(first, {"kind": "server_error", "message": "500"}, 3.0)
    execution = ExecutionResult(path=None, result=None, attempts=[failure], latency_ms=3.0)

    with CaptureQueriesContext(connection) as context:
        decision, value = decision_record(plan=plan, execution=execution)

    assert len(statements(context)) == 1
    assert value is None
    assert RoutingDecision.objects.get().status == RoutingDecision.Status.FAILED
    assert not Outcome.objects.exists()
    assert not ControllerObservation.objects.exists()
    assert not Posterior.objects.exists()
    rollup = HourlyRollup.objects.get()
    assert (rollup.path_id, rollup.requests, rollup.failed_requests, rollup.outcomes) == (
        first.id,
        1,
        1,
        0,
    )


@pytest.mark.django_db
def test_outcome_report_is_three_statements_and_only_a_first_outcome_is_observed() -> None:
    goal = make_goal(slug="g")
    path = goal.paths.first()
    decision = make_decision(goal=goal, path=path, bucket="task_type:qa", reference_quality=0.7)

    with CaptureQueriesContext(connection) as first:
        outcome_report(decision=decision, value=0.25)
    with CaptureQueriesContext(connection) as change:
        outcome_report(decision=decision, value=1.0)
    with CaptureQueriesContext(connection) as repeat:
        _, changed = outcome_report(decision=decision, value=1.0)

    # The decision's own row lock, the outcome read under it, one write of the rest.
    assert len(statements(first)) == len(statements(change)) == 3
    assert len(statements(repeat)) == 2
    assert changed is False
    observation = ControllerObservation.objects.get(decision=decision)
    assert (observation.value, observation.reference_quality) == (0.25, 0.7)
    rows = {p.bucket: (p.successes, p.failures) for p in Posterior.objects.all()}
    assert rows == {"": (1.0, 0.0), "task_type:qa": (1.0, 0.0)}
    rollup = HourlyRollup.objects.get()
    assert (rollup.requests, rollup.outcomes, rollup.success_sum) == (1, 1, 1.0)


@pytest.mark.django_db
def test_outcome_updates_bucket_and_goal_wide_posteriors() -> None:
    goal = make_goal(slug="g")
    path = goal.paths.first()
    make_decision(goal=goal, path=path, bucket="complexity:simple", outcome=1.0)
    make_decision(goal=goal, path=path, bucket="complexity:complex", outcome=0.0)
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

    make_decision(goal=goal, path=path, outcome=1.0)

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
    make_decision(goal=goal, path=path, outcome=0.5)
    row = Posterior.objects.get(path=path, bucket="")
    assert (row.successes, row.failures) == (5.5, 5.5)
