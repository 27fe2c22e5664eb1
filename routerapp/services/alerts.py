"""The regret alert: flag a goal whose downgrade regret is clearly above its threshold.

Over the goal's last `regret_window` judged shadow comparisons, the regret rate's 95% Wilson
interval (routerapp.stats) is computed; the goal is flagged while the interval's *lower* bound
is above `regret_threshold` (so a handful of unlucky comparisons does not page anyone), and
cleared automatically once it falls back to or below it. The state lives in
`Goal.regret_alert`; each change of state is audited and, when `alert_webhook_url` is set,
POSTed as JSON (timeout, bounded retries), the delivery's outcome kept in the state and in the
audit entry.

Checked after every judged comparison (services.shadows) and by Celery beat
(`regret_alerts_check_all`), which also clears an alert whose threshold or window changed.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from routerapp.models import AuditLog, Goal, ShadowComparison
from routerapp.providers.redaction import redact
from routerapp.stats import wilson_interval

logger = logging.getLogger(__name__)

RAISED = "regret_alert.raised"
CLEARED = "regret_alert.cleared"


def _window(goal: Goal) -> list[tuple[str, str]]:
    """(bucket, verdict) of the goal's last `regret_window` judged comparisons."""
    return list(
        ShadowComparison.objects.filter(goal=goal, state=ShadowComparison.State.JUDGED)
        .order_by("-finished_at", "-id")
        .values_list("bucket", "verdict")[: goal.regret_window]
    )


def _rates(rows: list[tuple[str, str]]) -> dict[str, Any]:
    judged = len(rows)
    regret = sum(verdict == ShadowComparison.Verdict.BETTER for _, verdict in rows)
    low, high = wilson_interval(regret, judged)
    return {
        "judged": judged,
        "regret": regret,
        "rate": regret / judged if judged else 0.0,
        "low": low,
        "high": high,
    }


def regret_alert_state(goal: Goal, *, now: datetime) -> dict[str, Any]:
    """The alert state the goal's recent comparisons call for (not stored)."""
    rows = _window(goal)
    overall = _rates(rows)
    buckets = []
    for bucket in sorted({bucket for bucket, _ in rows}):
        figures = _rates([row for row in rows if row[0] == bucket])
        buckets.append({"bucket": bucket, **figures})
    previous = goal.regret_alert or {}
    active = overall["judged"] > 0 and overall["low"] > goal.regret_threshold
    was_active = bool(previous.get("active"))
    since = previous.get("since") if (active and was_active) else None
    return {
        "active": active,
        "since": since or (now.isoformat() if active else None),
        **overall,
        "threshold": goal.regret_threshold,
        "window": goal.regret_window,
        # Worst first: the page and the webhook say where the regret comes from.
        "buckets": sorted(buckets, key=lambda item: -item["low"])[:10],
        "checked_at": now.isoformat(),
        "webhook": previous.get("webhook"),
    }


def _due(previous: dict[str, Any], state: dict[str, Any], now: datetime) -> bool:
    """Whether to store the new figures: always when the flag changes, otherwise at most once
    per REGRET_ALERT_REFRESH_SECONDS (each write of the goal row re-reads every process's
    catalog, so figures are not rewritten after every comparison)."""
    if bool(previous.get("active")) != state["active"] or not previous:
        return True
    if (previous.get("threshold"), previous.get("window")) != (
        state["threshold"],
        state["window"],
    ):
        return True
    try:
        checked = datetime.fromisoformat(str(previous.get("checked_at")))
    except ValueError:
        return True
    return now - checked >= timedelta(seconds=settings.REGRET_ALERT_REFRESH_SECONDS)


def regret_alert_check(*, goal_id: int) -> dict[str, Any] | None:
    """Re-compute the goal's alert; store it when due; on a change of the flag, audit it and
    call the webhook. Returns the state, or None when the goal is gone."""
    now = timezone.now()
    with transaction.atomic():
        # The goal's row lock serialises checks, so one change of state is announced once.
        goal = (
            Goal.objects.select_for_update(of=("self",))
            .only("id", "slug", "regret_alert", "regret_threshold", "regret_window")
            .filter(pk=goal_id)
            .first()
        )
        if goal is None:
            return None
        previous = dict(goal.regret_alert or {})
        state = regret_alert_state(goal, now=now)
        changed = bool(previous.get("active")) != state["active"]
        if not _due(previous, state, now):
            return state
        goal.regret_alert = state
        goal.save(update_fields=["regret_alert"])
        if not changed:
            return state
        event = RAISED if state["active"] else CLEARED
        audit = AuditLog.objects.create(
            action=event,
            object_type="goal",
            object_id=str(goal.pk),
            changes={key: state[key] for key in ("rate", "low", "high", "judged", "threshold")},
        )
    # Delivered after the commit, outside the lock: a slow webhook holds nothing.
    url = Goal.objects.filter(pk=goal_id).values_list("alert_webhook_url", flat=True).first()
    if url:
        delivery = regret_webhook_post(url=url, payload=_payload(goal, state, event))
        _store_delivery(goal_id, audit, delivery)
        state["webhook"] = delivery
    return state


def _payload(goal: Goal, state: dict[str, Any], event: str) -> dict[str, Any]:
    return {
        "event": event,
        "goal": goal.slug,
        "active": state["active"],
        "since": state["since"],
        "regret_rate": state["rate"],
        "low": state["low"],
        "high": state["high"],
        "judged": state["judged"],
        "regret": state["regret"],
        "threshold": state["threshold"],
        "window": state["window"],
        "buckets": state["buckets"],
        "checked_at": state["checked_at"],
    }


def regret_webhook_post(*, url: str, payload: dict[str, Any]) -> dict[str, Any]:
    """POST the payload; retry a connection failure, a timeout, a 429 or a 5xx up to
    REGRET_WEBHOOK_ATTEMPTS times in all with a short backoff. Returns what happened."""
    attempts = 0
    outcome: dict[str, Any] = {}
    for attempt in range(settings.REGRET_WEBHOOK_ATTEMPTS):
        attempts = attempt + 1
        try:
            response = httpx.post(
                url,
                json=payload,
                timeout=settings.REGRET_WEBHOOK_TIMEOUT_SECONDS,
                follow_redirects=False,
                headers={"User-Agent": "routerapp-regret-alert"},
            )
        except httpx.HTTPError as error:
            outcome = {"delivered": False, "error": redact(f"{type(error).__name__}: {error}")}
        else:
            if response.is_success:
                outcome = {"delivered": True, "status_code": response.status_code}
                break
            outcome = {"delivered": False, "status_code": response.status_code}
            if response.status_code != 429 and response.status_code < 500:
                break  # the receiver refused this payload: sending it again will not help
        if attempt + 1 < settings.REGRET_WEBHOOK_ATTEMPTS:
            time.sleep(0.5 * 2**attempt)
    if not outcome.get("delivered"):
        logger.warning("regret alert webhook for %s failed: %s", payload["goal"], outcome)
    return {**outcome, "attempts": attempts, "at": timezone.now().isoformat()}


def _store_delivery(goal_id: int, audit: AuditLog, delivery: dict[str, Any]) -> None:
    # A JSON merge in SQL: the flag may have been re-checked meanwhile; only `webhook` changes.
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Goal._meta.db_table} SET regret_alert = "
            "regret_alert || jsonb_build_object('webhook', %s::jsonb) WHERE id = %s",
            [json.dumps(delivery), goal_id],
        )
    audit.changes = {**audit.changes, "webhook": delivery}
    audit.save(update_fields=["changes"])


def regret_alerts_check_all() -> int:
    """The periodic pass: every goal that shadows or is flagged. Returns how many active."""
    goals = Goal.objects.filter(Q(shadow_rate__gt=0) | Q(regret_alert__active=True))
    active = 0
    for goal_id in goals.values_list("id", flat=True):
        try:
            state = regret_alert_check(goal_id=goal_id)
        except Exception:  # one goal's failure must not stop the others' checks
            logger.exception("regret alert check of goal %s failed", goal_id)
            continue
        active += bool(state and state["active"])
    return active
