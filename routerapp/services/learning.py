"""Atomic writes of what the router learns: posterior counts and hourly rollups.

Both are single `INSERT ... ON CONFLICT DO UPDATE` statements: concurrent callers never
read-modify-write in Python, so no update is lost (DESIGN §3, STYLE §1.3).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import connection

from routerapp.models import GOAL_WIDE, Goal, HourlyRollup, Path, Posterior

_POSTERIOR_UPSERT = f"""
INSERT INTO {Posterior._meta.db_table} AS p
    (goal_id, path_id, bucket, successes, failures, updated_at)
VALUES (%(goal)s, %(path)s, %(bucket)s, GREATEST(%(ds)s, 0), GREATEST(%(df)s, 0), now())
ON CONFLICT (path_id, bucket) DO UPDATE SET
    successes = GREATEST(p.successes * {{decay}} + %(ds)s, 0),
    failures = GREATEST(p.failures * {{decay}} + %(df)s, 0),
    updated_at = now()
"""
# engine.decay_factor in SQL: 0.5 ** (elapsed seconds / half-life).
_DECAY_SQL = "power(0.5, extract(epoch from (now() - p.updated_at)) / %(half_life)s)"


def posterior_apply_outcome(
    *, goal: Goal, path_id: int, bucket: str, d_successes: float, d_failures: float
) -> None:
    """Add an outcome's (or an outcome change's) evidence to the bucket and goal-wide posteriors."""
    decay = _DECAY_SQL if goal.half_life_seconds else "1.0"
    sql = _POSTERIOR_UPSERT.format(decay=decay)
    buckets = {GOAL_WIDE, bucket}
    with connection.cursor() as cursor:
        for name in sorted(buckets):
            cursor.execute(
                sql,
                {
                    "goal": goal.id,
                    "path": path_id,
                    "bucket": name,
                    "ds": d_successes,
                    "df": d_failures,
                    "half_life": goal.half_life_seconds,
                },
            )


_ROLLUP_UPSERT = f"""
INSERT INTO {HourlyRollup._meta.db_table} AS r
    (goal_id, path_id, hour, requests, failed_requests, outcomes, success_sum, spend,
     baseline_spend, latency_ms_sum, tokens_in, tokens_out)
VALUES (%(goal)s, %(path)s, date_trunc('hour', %(at)s::timestamptz), %(requests)s, %(failed)s,
        %(outcomes)s, %(success)s, %(spend)s, %(baseline)s, %(latency)s, %(tin)s, %(tout)s)
ON CONFLICT (goal_id, path_id, hour) DO UPDATE SET
    requests = r.requests + EXCLUDED.requests,
    failed_requests = r.failed_requests + EXCLUDED.failed_requests,
    outcomes = r.outcomes + EXCLUDED.outcomes,
    success_sum = r.success_sum + EXCLUDED.success_sum,
    spend = r.spend + EXCLUDED.spend,
    baseline_spend = r.baseline_spend + EXCLUDED.baseline_spend,
    latency_ms_sum = r.latency_ms_sum + EXCLUDED.latency_ms_sum,
    tokens_in = r.tokens_in + EXCLUDED.tokens_in,
    tokens_out = r.tokens_out + EXCLUDED.tokens_out
"""


def rollup_add(
    *,
    goal_id: int,
    path_id: int,
    at: datetime,
    requests: int = 0,
    failed: int = 0,
    outcomes: int = 0,
    success: float = 0.0,
    spend: Decimal = Decimal(0),
    baseline: Decimal = Decimal(0),
    latency_ms: float = 0.0,
    tokens_in: int = 0,
    tokens_out: int = 0,
) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            _ROLLUP_UPSERT,
            {
                "goal": goal_id,
                "path": path_id,
                "at": at,
                "requests": requests,
                "failed": failed,
                "outcomes": outcomes,
                "success": success,
                "spend": spend,
                "baseline": baseline,
                "latency": latency_ms,
                "tin": tokens_in,
                "tout": tokens_out,
            },
        )


def posterior_reset(*, path: Path) -> None:
    Posterior.objects.filter(path=path).delete()
