"""Outcome reports: idempotent, replaceable, applied to the posteriors by difference."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from routerapp.errors import InvalidRequest
from routerapp.models import Outcome, RoutingDecision
from routerapp.services.routing import learn_from_outcome

NO_OUTCOME_FOR_FAILED = "The call failed upstream; there is no answer to report an outcome for."


def outcome_report(
    *, decision: RoutingDecision, value: float, source: str = Outcome.Source.API, note: str = ""
) -> tuple[Outcome, bool]:
    """Store the decision's current outcome. Returns (outcome, changed).

    Reporting the same value again changes nothing; a different value replaces the old one
    and the posterior moves by the difference (Kalibr's update_outcome). The decision row is
    locked first, so concurrent reports of one decision serialise and none is lost.
    """
    if not 0.0 <= value <= 1.0:
        raise InvalidRequest("An outcome is a value in [0, 1].", param="score")
    with transaction.atomic():
        locked = RoutingDecision.objects.select_for_update().get(pk=decision.pk)
        if locked.status != RoutingDecision.Status.OK or locked.path_id is None:
            raise InvalidRequest(NO_OUTCOME_FOR_FAILED, param="request_id")
        current = Outcome.objects.filter(decision=locked).first()
        if current is not None and abs(current.value - value) < 1e-12:
            return current, False
        previous = current.value if current else None
        if current is None:
            current = Outcome(decision=locked)
        current.value, current.source, current.note = value, source, note
        current.reported_at = timezone.now()
        current.save()
        learn_from_outcome(decision=locked, value=value, previous=previous)
    return current, True
