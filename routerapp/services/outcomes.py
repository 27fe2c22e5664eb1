"""Outcome reports: idempotent, replaceable, applied to the posteriors by difference."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from routerapp.errors import InvalidRequest
from routerapp.models import Outcome, RoutingDecision
from routerapp.services.controller import nudge_on_commit
from routerapp.services.learning import outcome_store

NO_OUTCOME_FOR_FAILED = "The call failed upstream; there is no answer to report an outcome for."


def outcome_report(
    *, decision: RoutingDecision, value: float, source: str = Outcome.Source.API, note: str = ""
) -> tuple[Outcome, bool]:
    """Store the decision's current outcome. Returns (outcome, changed).

    Reporting the same value again changes nothing; a different value replaces the old one
    and the posterior moves by the difference (Kalibr's update_outcome). Only this decision's
    row is locked, so concurrent reports of one decision serialise and none is lost, while
    reports and calls of the rest of the goal never wait for it. Three statements: the lock,
    the current outcome (read under the lock), and one write of everything that follows.
    """
    if not 0.0 <= value <= 1.0:
        raise InvalidRequest("An outcome is a value in [0, 1].", param="score")
    with transaction.atomic():
        # NO KEY UPDATE: reports of this decision queue; inserts that reference it do not.
        locked = (
            RoutingDecision.objects.select_for_update(no_key=True)
            .only("goal_id", "path_id", "bucket", "status", "ranking", "explanation", "created_at")
            .get(pk=decision.pk)
        )
        if locked.status != RoutingDecision.Status.OK or locked.path_id is None:
            raise InvalidRequest(NO_OUTCOME_FOR_FAILED, param="request_id")
        current = Outcome.objects.filter(decision=locked).first()
        if current is not None and abs(current.value - value) < 1e-12:
            return current, False
        previous = current.value if current else None
        outcome = current or Outcome(decision=locked)
        outcome.value, outcome.source, outcome.note = value, source, note
        outcome.reported_at = timezone.now()
        outcome.pk, observed = outcome_store(
            locked,
            value=value,
            previous=previous,
            source=source,
            note=note,
            reported_at=outcome.reported_at,
        )
        if observed:
            nudge_on_commit(locked.goal_id)
    return outcome, True
