"""The quality controller's state, folded off the request path from the observation log.

`engine.controller_observe` is a sequential, non-linear fold (anti-windup clip, re-basing of
the reference), so it cannot move by commutative increments the way posterior counts do.
Instead every first outcome appends a `ControllerObservation` row in the recording statement,
and `controller_advance` folds a goal's new rows into `Goal.controller_state` in one short
transaction. Nobody waits for it: a fold runs under a *try* advisory lock (a process that does
not get it skips; the holder folds the same rows), on a background thread of the process whose
commit logged the row, once a second while the goal has rows not yet folded
(`controller_nudge`), and from Celery beat as a safety net.

Which rows are final: row ids and xids are assigned before commit, and transactions commit out
of order, so "everything up to the largest id seen" could skip a row that commits a moment
later. Each row carries its writer's transaction id (xid8); every xid below
`pg_snapshot_xmin(pg_current_snapshot())` belongs to a transaction that has ended, so no row
below that horizon can still appear. A fold takes the rows in [cursor, horizon) in (xid, id)
order and moves the cursor to the horizon: each row is folded exactly once, in an order fixed
by the log itself. The horizon is the cluster's oldest running writer, so a long transaction
anywhere on the server delays the controller (never skips a row) until it ends.
"""

from __future__ import annotations

import logging
import threading
import time

from django.db import close_old_connections, connection, transaction
from django.db.models import Exists, OuterRef

from routerapp import engine
from routerapp.models import ControllerObservation, Goal

logger = logging.getLogger(__name__)

# First key of the advisory lock pair (the goal id is the second): "ctrl" in ASCII.
FOLD_LOCK = 0x6374726C
# A process folds the goals it logged rows for once per this many seconds.
FOLD_EVERY_SECONDS = 1.0

_pending: set[int] = set()  # goals with rows this process logged and has not seen folded
_pending_lock = threading.Lock()
_folder: threading.Thread | None = None


def _final_horizon() -> int:
    """Every transaction with a smaller xid has ended (committed or rolled back)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
        return int(cursor.fetchone()[0])


def controller_fold(
    state: engine.ControllerState,
    observations: list[ControllerObservation],
    *,
    config: engine.EngineConfig,
) -> engine.ControllerState:
    """`state` after the observations, in the order given: a served call's first outcome, or
    a judged shadow's measure of the baseline's success on a random sample of calls (an
    unbiased estimate of the reference quality, services/shadows.py)."""
    for row in observations:
        try:
            if row.kind == ControllerObservation.Kind.REFERENCE:
                state = engine.controller_observe_reference(
                    state, value=row.value, config=config, bucket=row.bucket or None
                )
                continue
            state = engine.controller_observe(
                state,
                config=config,
                value=row.value,
                reference_quality=row.reference_quality,
                bucket=row.bucket or None,
                chosen_path=str(row.path_id),
            )
        except engine.InvalidOutcome as error:
            # One bad row must not stop the goal's controller for good.
            logger.warning("controller: observation %s skipped: %s", row.pk, error)
    return state


def controller_advance(goal_id: int) -> int | None:
    """Fold the goal's final observations into its controller state; how many were folded,
    or None when another fold of this goal holds the lock (it folds them)."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Advisory keys are int4 pairs; goals 2**31 apart sharing a key only skip a round.
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [FOLD_LOCK, goal_id % 2**31])
            if not cursor.fetchone()[0]:
                return None
        goal = Goal.objects.filter(id=goal_id).first()
        if goal is None:
            return 0
        # Read after the lock, so never below a cursor another fold has just committed.
        horizon = _final_horizon()
        if horizon <= goal.controller_cursor:
            return 0
        rows = list(
            ControllerObservation.objects.filter(
                goal_id=goal_id, xid__gte=goal.controller_cursor, xid__lt=horizon
            )
            .order_by("xid", "id")
            .only("kind", "path_id", "bucket", "value", "reference_quality")
        )
        if not rows:
            return 0  # the cursor may stay behind: the (goal, xid) index skips empty ranges
        state = controller_fold(
            engine.ControllerState.from_dict(goal.controller_state),
            rows,
            config=goal.engine_config(),
        )
        Goal.objects.filter(id=goal_id).update(
            controller_state=state.to_dict(), controller_cursor=horizon
        )
    return len(rows)


def controller_settled(goal_id: int) -> bool:
    """Whether every observation logged so far is folded."""
    cursor = Goal.objects.filter(id=goal_id).values_list("controller_cursor", flat=True).first()
    if cursor is None:
        return True  # the goal is gone
    return not ControllerObservation.objects.filter(goal_id=goal_id, xid__gte=cursor).exists()


def _fold_round(goals: set[int]) -> set[int]:
    """Fold each goal; the ones with rows left over (an older transaction still open)."""
    unsettled = set()
    for goal_id in sorted(goals):
        try:
            controller_advance(goal_id)
            if not controller_settled(goal_id):
                unsettled.add(goal_id)
        except Exception:  # a failed round must not end the folder; the next one retries
            logger.exception("controller: fold of goal %s failed", goal_id)
            unsettled.add(goal_id)
    return unsettled


def _fold_pending() -> None:
    """The background folder: every FOLD_EVERY_SECONDS, fold the goals this process logged rows
    for, until they are all folded. The thread ends when nothing is pending."""
    global _folder
    try:
        while True:
            time.sleep(FOLD_EVERY_SECONDS)
            with _pending_lock:
                goals = set(_pending)
                _pending.clear()
                if not goals:
                    _folder = None  # the next nudge starts a new folder
                    return
            unsettled = _fold_round(goals)
            with _pending_lock:
                _pending.update(unsettled)
            close_old_connections()
    finally:
        with _pending_lock:
            if _folder is threading.current_thread():  # ended by an error: let a nudge restart
                _folder = None
        connection.close()  # this thread's own connection


def controller_nudge(goal_id: int) -> None:
    """After a commit that logged an observation: have this process fold the goal within about
    FOLD_EVERY_SECONDS, off the request path. Costs a set insertion."""
    global _folder
    with _pending_lock:
        _pending.add(goal_id)
        if _folder is None:
            _folder = threading.Thread(target=_fold_pending, name="controller-fold", daemon=True)
            _folder.start()


def nudge_on_commit(goal_id: int) -> None:
    """`controller_nudge` once the current transaction commits (at once, in autocommit)."""
    transaction.on_commit(lambda: controller_nudge(goal_id), robust=True)


def controller_advance_pending() -> int:
    """Fold every goal with observations at or past its cursor (the safety net behind the
    nudges: a goal whose traffic stopped, a process that died). Returns how many rows."""
    pending = Goal.objects.filter(
        Exists(
            ControllerObservation.objects.filter(
                goal=OuterRef("pk"), xid__gte=OuterRef("controller_cursor")
            )
        )
    ).values_list("id", flat=True)
    return sum(controller_advance(goal_id) or 0 for goal_id in pending)
