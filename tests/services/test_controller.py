"""The quality controller folded off the request path: exact, in log order, never skipping a
row whose transaction commits late, and never waited for."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

import pytest
from django.db import connection, transaction

from routerapp import engine
from routerapp.models import ControllerObservation, Goal
from routerapp.services import controller
from routerapp.services.controller import (
    FOLD_LOCK,
    controller_advance,
    controller_advance_pending,
)
from routerapp.services.outcomes import outcome_report
from tests.builders import controller_settle, make_decision, make_goal


def direct_fold(goal: Goal, rows: Iterable[tuple[float, float, str, int]]) -> dict:
    """The controller state the engine itself gives for (value, reference, bucket, path)."""
    state = engine.ControllerState()
    for value, reference, bucket, path_id in rows:
        state = engine.controller_observe(
            state,
            config=goal.engine_config(),
            value=value,
            reference_quality=reference,
            bucket=bucket or None,
            chosen_path=str(path_id),
        )
    return state.to_dict()


def stored_state(goal: Goal) -> dict:
    return Goal.objects.get(pk=goal.pk).controller_state


@pytest.fixture
def no_nudges(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the test folds: commits start no background fold."""
    monkeypatch.setattr(controller, "controller_nudge", lambda goal_id: None)


@pytest.mark.django_db(transaction=True)
def test_fold_equals_the_engine_over_first_outcomes_and_changes_do_not_feed_it() -> None:
    goal = make_goal(slug="g", bucket_by=Goal.BucketBy.COMPLEXITY)
    cheap, strong = goal.paths.order_by("id")
    calls = [
        (1.0, 0.9, "complexity:simple", cheap),
        (0.0, 0.8, "complexity:complex", cheap),
        (1.0, 0.85, "complexity:complex", strong),
        (0.0, 0.9, "complexity:simple", cheap),
        (1.0, 0.7, "complexity:medium", strong),
    ]
    decisions = [
        make_decision(goal=goal, path=path, bucket=bucket, outcome=value, reference_quality=ref)
        for value, ref, bucket, path in calls
    ]
    outcome_report(decision=decisions[1], value=1.0)  # a change: posteriors move, not the fold
    late = make_decision(goal=goal, path=cheap, bucket="complexity:simple", reference_quality=0.6)
    outcome_report(decision=late, value=0.5)  # a first outcome from the API is observed

    controller_settle(goal)

    expected = [(v, r, b, p.id) for v, r, b, p in calls]
    expected.append((0.5, 0.6, "complexity:simple", cheap.id))
    assert stored_state(goal) == direct_fold(goal, expected)
    assert stored_state(goal)["observations"] == 6
    assert controller_advance(goal.id) == 0  # idempotent: nothing is folded twice


@pytest.mark.django_db(transaction=True)
def test_a_row_whose_transaction_commits_late_is_folded_in_its_place_not_skipped(
    no_nudges: None,
) -> None:
    goal = make_goal(slug="g")
    cheap, strong = goal.paths.order_by("id")
    inserted, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                make_decision(goal=goal, path=cheap, outcome=0.0, reference_quality=0.9)
                inserted.set()
                release.wait(timeout=30)
        except BaseException as error:  # surfaced below
            errors.append(error)
        finally:
            connection.close()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    try:
        assert inserted.wait(timeout=30)
        # Committed after the slow writer took its (smaller) transaction id and row id.
        make_decision(goal=goal, path=strong, outcome=1.0, reference_quality=0.95)

        folded = controller_advance(goal.id)

        # A fold up to the largest id seen would take this row now and skip the other one.
        assert folded == 0
        assert stored_state(goal) == {}
    finally:
        release.set()
        writer.join(timeout=30)
    assert errors == []

    controller_settle(goal)

    rows = ControllerObservation.objects.filter(goal=goal).order_by("xid", "id")
    assert [row.path_id for row in rows] == [cheap.id, strong.id]
    expected = [(0.0, 0.9, "", cheap.id), (1.0, 0.95, "", strong.id)]
    assert stored_state(goal) == direct_fold(goal, expected)


@pytest.mark.django_db(transaction=True)
def test_a_fold_already_running_elsewhere_is_skipped_not_waited_for(no_nudges: None) -> None:
    goal = make_goal(slug="g")
    make_decision(goal=goal, path=goal.paths.first(), outcome=1.0)
    held, release = threading.Event(), threading.Event()

    def other_process() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [FOLD_LOCK, goal.id])
                held.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    holder = threading.Thread(target=other_process)
    holder.start()
    try:
        assert held.wait(timeout=30)
        started = time.monotonic()
        assert controller_advance(goal.id) is None
        assert time.monotonic() - started < 1.0
    finally:
        release.set()
        holder.join(timeout=30)
    assert stored_state(goal) == {}
    controller_settle(goal)
    assert stored_state(goal)["observations"] == 1


@pytest.mark.django_db(transaction=True)
def test_the_periodic_pass_folds_every_goal_with_new_observations(no_nudges: None) -> None:
    first, second = make_goal(slug="a"), make_goal(slug="b")
    for goal in (first, second):
        make_decision(goal=goal, path=goal.paths.first(), outcome=1.0)
    make_decision(goal=second, path=second.paths.last(), outcome=0.0)

    deadline = time.monotonic() + 60
    total = 0
    while total < 3 and time.monotonic() < deadline:  # other writers on the server delay it
        total += controller_advance_pending()
        time.sleep(0.05)

    assert total == 3
    assert stored_state(first)["observations"] == 1
    assert stored_state(second)["observations"] == 2
    assert controller_advance_pending() == 0


@pytest.mark.django_db(transaction=True)
def test_a_committed_first_outcome_is_folded_in_the_background_within_seconds() -> None:
    goal = make_goal(slug="g")
    decision = make_decision(goal=goal, path=goal.paths.first())

    outcome_report(decision=decision, value=1.0)

    # No explicit fold: the commit nudged this process's background folder.
    deadline = time.monotonic() + 30
    while stored_state(goal).get("observations") != 1 and time.monotonic() < deadline:
        time.sleep(0.05)

    assert stored_state(goal)["observations"] == 1
