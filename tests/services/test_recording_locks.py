"""No goal-wide lock: a call or outcome report of a goal never waits for another one's open
transaction, except on the very counter row both increment."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from django.db import connection, transaction

from routerapp.models import Goal, Path
from routerapp.providers.client import ProviderResult
from routerapp.selectors.catalog_cache import catalog_get
from routerapp.services.outcomes import outcome_report
from routerapp.services.routing import Attempt, ExecutionResult, decision_record, route_plan
from tests.builders import make_decision, make_goal

ANSWER = {"choices": [{"message": {"content": "spam"}, "finish_reason": "stop"}]}


def record_on(goal: Goal, path: Path) -> None:
    """A completion of `goal` answered by `path`, recorded as the API records it."""
    plan = route_plan(
        goal=catalog_get().goal(goal.slug),
        api_key=None,
        messages=[{"role": "user", "content": "Is this spam?"}],
        metadata=None,
        passthrough={},
    )
    chosen = plan.paths[path.id]
    result = ProviderResult(response=ANSWER, prompt_tokens=5, completion_tokens=1, latency_ms=1.0)
    attempt = Attempt(chosen.id, chosen.name, chosen.model, ok=True, latency_ms=1.0)
    decision_record(
        plan=plan,
        execution=ExecutionResult(path=chosen, result=result, attempts=[attempt], latency_ms=1.0),
    )


def while_open(first: Callable[[], None], second: Callable[[], None]) -> float:
    """Run `second` while another connection holds `first` in an open transaction; seconds
    `second` took. It fails on a lock wait over 5 s instead of hanging."""
    opened, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def holder() -> None:
        try:
            with transaction.atomic():
                first()
                opened.set()
                release.wait(timeout=30)
        except BaseException as error:  # surfaced below
            errors.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert opened.wait(timeout=30)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '5s'")
            started = time.monotonic()
            second()
            took = time.monotonic() - started
        assert thread.is_alive()  # the first transaction was still open all along
    finally:
        release.set()
        thread.join(timeout=30)
    assert errors == []
    return took


@pytest.mark.django_db(transaction=True)
def test_two_calls_of_one_goal_record_without_waiting_for_each_other() -> None:
    goal = make_goal(slug="g", success_when="response.choices[0].finish_reason == 'stop'")
    cheap, strong = goal.paths.order_by("id")

    took = while_open(lambda: record_on(goal, cheap), lambda: record_on(goal, strong))

    assert took < 1.0


@pytest.mark.django_db(transaction=True)
def test_two_outcome_reports_of_one_goal_do_not_wait_for_each_other() -> None:
    goal = make_goal(slug="g")
    cheap, strong = goal.paths.order_by("id")
    one = make_decision(goal=goal, path=cheap, outcome=1.0)
    other = make_decision(goal=goal, path=strong, outcome=1.0)

    took = while_open(
        lambda: outcome_report(decision=one, value=0.0),
        lambda: outcome_report(decision=other, value=0.0),
    )

    assert took < 1.0
