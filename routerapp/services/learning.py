"""What the router learns from a call, written in one SQL statement per event.

A completion writes its decision, its automatic outcome, the controller's observation of that
outcome, the posterior counts and the hourly rollup in a single statement (data-modifying
CTEs); an outcome report writes the outcome, the observation of a first outcome, and moves the
posteriors and the rollup by the difference, also in one statement. Every counter moves by an
atomic `INSERT ... ON CONFLICT DO UPDATE SET n = n + delta`: concurrent writers never
read-modify-write in Python and never wait on a goal-wide lock, only on the very counter row
they increment, for the length of their own statement (DESIGN §3, STYLE §1.3).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import connection

from routerapp import engine
from routerapp.models import (
    GOAL_WIDE,
    ControllerObservation,
    Goal,
    HourlyRollup,
    Outcome,
    Path,
    Posterior,
    RegretRollup,
    RoutingDecision,
    ShadowComparison,
)

_DECISION_FIELDS = [f for f in RoutingDecision._meta.concrete_fields if not f.primary_key]
_DECISION_INSERT = (
    f"INSERT INTO {RoutingDecision._meta.db_table} "
    # (a concrete field always has a column; the filter only tells the type checker)
    f"({', '.join(f.column for f in _DECISION_FIELDS if f.column is not None)}) "
    f"VALUES ({', '.join(f'%(d_{f.column})s' for f in _DECISION_FIELDS)}) RETURNING id"
)
# An existing decision, for an outcome report: the same statement shape from here on.
_DECISION_GIVEN = "SELECT %(decision)s::bigint AS id"

_OUTCOME_UPSERT = f"""
    INSERT INTO {Outcome._meta.db_table} AS o (decision_id, value, source, note, reported_at)
    SELECT d.id, %(value)s, %(source)s, %(note)s, %(reported_at)s FROM d
    WHERE %(value)s::float8 IS NOT NULL
    ON CONFLICT (decision_id) DO UPDATE SET
        value = EXCLUDED.value, source = EXCLUDED.source, note = EXCLUDED.note,
        reported_at = EXCLUDED.reported_at
    RETURNING o.id"""

# The xid is the writing transaction's own: the controller folds a row only once every
# transaction up to that id has ended (services.controller).
_OBSERVATION_INSERT = f"""
    INSERT INTO {ControllerObservation._meta.db_table}
        (goal_id, decision_id, path_id, bucket, value, reference_quality, xid)
    SELECT %(goal)s, d.id, %(path)s, %(bucket)s, %(value)s, %(reference)s,
           pg_current_xact_id()::text::bigint
    FROM d WHERE %(observe)s
    RETURNING id"""

# engine.decay_factor in SQL, 0.5 ** (elapsed seconds / half-life), 1 without a half-life;
# a row written by a transaction that started later than this one has not aged (elapsed 0).
_DECAY = f"""COALESCE(power(0.5,
    GREATEST(extract(epoch from now() - p.updated_at), 0)
    / (SELECT g.half_life_seconds FROM {Goal._meta.db_table} g WHERE g.id = p.goal_id)), 1.0)"""

# The bucket's and the goal-wide posterior (one row when the bucket is goal-wide), always in
# the same order so two writers of the same path lock its rows in the same order.
_POSTERIOR_UPSERT = f"""
    INSERT INTO {Posterior._meta.db_table} AS p
        (goal_id, path_id, bucket, successes, failures, updated_at)
    SELECT %(goal)s, %(path)s, b.bucket, GREATEST(%(ds)s, 0), GREATEST(%(df)s, 0), now()
    FROM (SELECT DISTINCT unnest(ARRAY[%(goal_wide)s, %(bucket)s]) AS bucket ORDER BY 1) AS b
    WHERE %(ds)s::float8 IS NOT NULL
    ON CONFLICT (path_id, bucket) DO UPDATE SET
        successes = GREATEST(p.successes * {_DECAY} + %(ds)s, 0),
        failures = GREATEST(p.failures * {_DECAY} + %(df)s, 0),
        updated_at = now()"""

_ROLLUP_UPSERT = f"""
    INSERT INTO {HourlyRollup._meta.db_table} AS r
        (goal_id, path_id, hour, requests, failed_requests, outcomes, success_sum, spend,
         baseline_spend, latency_ms_sum, tokens_in, tokens_out, classifier_spend)
    VALUES (%(goal)s, %(rollup_path)s, date_trunc('hour', %(at)s::timestamptz), %(requests)s,
            %(failed)s, %(outcomes)s, %(success)s, %(spend)s, %(baseline)s, %(latency)s,
            %(tin)s, %(tout)s, %(classifier_spend)s)
    ON CONFLICT (goal_id, path_id, hour) DO UPDATE SET
        requests = r.requests + EXCLUDED.requests,
        failed_requests = r.failed_requests + EXCLUDED.failed_requests,
        outcomes = r.outcomes + EXCLUDED.outcomes,
        success_sum = r.success_sum + EXCLUDED.success_sum,
        spend = r.spend + EXCLUDED.spend,
        baseline_spend = r.baseline_spend + EXCLUDED.baseline_spend,
        latency_ms_sum = r.latency_ms_sum + EXCLUDED.latency_ms_sum,
        tokens_in = r.tokens_in + EXCLUDED.tokens_in,
        tokens_out = r.tokens_out + EXCLUDED.tokens_out,
        classifier_spend = r.classifier_spend + EXCLUDED.classifier_spend"""


# A call sampled for shadow traffic (services/shadows.py): its pending comparison and the
# `sampled` count, in the decision's own statement, so every sampled call is in the funnel.
_SHADOW_INSERT = f"""
    INSERT INTO {ShadowComparison._meta.db_table}
        (decision_id, goal_id, served_path_id, baseline_path_id, bucket, created_at)
    SELECT d.id, %(goal)s, %(path)s, %(shadow_baseline)s, %(bucket)s, %(at)s
    FROM d WHERE %(shadow_baseline)s::bigint IS NOT NULL
    RETURNING id"""

_SHADOW_SAMPLED = f"""
    INSERT INTO {RegretRollup._meta.db_table} AS rr (goal_id, path_id, bucket, hour, sampled)
    SELECT %(goal)s, %(path)s, %(bucket)s, date_trunc('hour', %(at)s::timestamptz), 1 FROM s
    ON CONFLICT (goal_id, path_id, bucket, hour) DO UPDATE SET sampled = rr.sampled + 1"""


def _learning_sql(decision_cte: str, *, shadows: bool = False) -> str:
    """One statement: the decision row `d`, then every write that follows from it."""
    shadow_ctes = ""
    if shadows:
        shadow_ctes = f""",
     s AS ({_SHADOW_INSERT}),
     sr AS ({_SHADOW_SAMPLED})"""
    return f"""
WITH d AS ({decision_cte}),
     o AS ({_OUTCOME_UPSERT}),
     c AS ({_OBSERVATION_INSERT}),
     p AS ({_POSTERIOR_UPSERT}),
     r AS ({_ROLLUP_UPSERT}){shadow_ctes}
SELECT d.id, (SELECT id FROM o), (SELECT count(*) FROM c) FROM d"""


_RECORD = _learning_sql(_DECISION_INSERT, shadows=True)
_REPORT = _learning_sql(_DECISION_GIVEN)


def _learning_params(
    decision: RoutingDecision,
    *,
    value: float | None,
    previous: float | None,
    source: str,
    note: str,
    reported_at: datetime,
) -> dict[str, Any]:
    """Parameters shared by both statements. `value` None: no outcome (nothing is learned)."""
    delta = engine.outcome_delta(value, previous) if value is not None else (None, None)
    reference = decision.explanation.get("reference_quality")
    return {
        "goal": decision.goal_id,
        "path": decision.path_id,
        "bucket": decision.bucket,
        "goal_wide": GOAL_WIDE,
        "value": value,
        "source": source,
        "note": note,
        "reported_at": reported_at,
        # Only a first outcome is observed, as before the controller left the request path.
        "observe": value is not None and previous is None and reference is not None,
        "reference": reference,
        "ds": delta[0],
        "df": delta[1],
        # Rollups count per hour of the call, whenever its outcome arrives.
        "rollup_path": decision.path_id or int(decision.ranking[0]),
        "at": decision.created_at,
        "outcomes": int(value is not None and previous is None),
        "success": 0.0 if value is None else value - (previous or 0.0),
    }


def decision_insert(
    decision: RoutingDecision,
    *,
    outcome: float | None,
    source: str,
    note: str,
    shadow_baseline_id: int | None = None,
) -> bool:
    """Insert an unsaved decision with everything it teaches, in one statement: the row, its
    automatic outcome (`outcome`, None for none) and the controller's observation of it, the
    posterior counts and the hourly rollup, and, for a call sampled for shadow traffic to
    `shadow_baseline_id`, its pending comparison. Sets `decision.pk`; True when an observation
    was logged for the controller."""
    params = {
        f"d_{field.column}": field.get_db_prep_save(getattr(decision, field.attname), connection)
        for field in _DECISION_FIELDS
    }
    params.update(
        _learning_params(
            decision,
            value=outcome,
            previous=None,
            source=source,
            note=note,
            reported_at=decision.created_at,
        )
    )
    failed = decision.status == RoutingDecision.Status.FAILED
    params.update(
        requests=1,
        failed=int(failed),
        spend=decision.cost,
        baseline=decision.baseline_cost,
        latency=decision.latency_ms,
        tin=decision.tokens_in,
        tout=decision.tokens_out,
        # The classifier step's cost, netted out of the savings (reports).
        classifier_spend=decision.classifier_cost,
        shadow_baseline=shadow_baseline_id,
    )
    with connection.cursor() as cursor:
        cursor.execute(_RECORD, params)
        decision.pk, _, observed = cursor.fetchone()
    decision._state.adding = False
    return bool(observed)


def outcome_store(
    decision: RoutingDecision,
    *,
    value: float,
    previous: float | None,
    source: str,
    note: str,
    reported_at: datetime,
) -> tuple[int, bool]:
    """Store the decision's outcome, first or changed (`previous`), in one statement: the
    outcome row, the observation of a first outcome, and the posteriors and rollup moved by
    the difference. The caller holds the decision's row lock and has read `previous` under
    it. Returns (outcome id, whether an observation was logged)."""
    params = _learning_params(
        decision,
        value=value,
        previous=previous,
        source=source,
        note=note,
        reported_at=reported_at,
    )
    params.update(
        decision=decision.pk,
        requests=0,
        failed=0,
        spend=0,
        baseline=0,
        latency=0.0,
        tin=0,
        tout=0,
        classifier_spend=0,
    )
    with connection.cursor() as cursor:
        cursor.execute(_REPORT, params)
        _, outcome_id, observed = cursor.fetchone()
    return outcome_id, bool(observed)


def posterior_reset(*, path: Path) -> None:
    Posterior.objects.filter(path=path).delete()
