"""Rollup reconciliation: recompute recent hourly rollups from the raw decisions."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from routerapp.models import HourlyRollup, Outcome, RoutingDecision

_RECOMPUTE = f"""
INSERT INTO {HourlyRollup._meta.db_table}
    (goal_id, path_id, hour, requests, failed_requests, outcomes, success_sum, spend,
     baseline_spend, latency_ms_sum, tokens_in, tokens_out)
SELECT d.goal_id,
       COALESCE(d.path_id, (d.ranking->>0)::bigint),
       date_trunc('hour', d.created_at),
       count(*),
       count(*) FILTER (WHERE d.status = 'failed'),
       count(o.id),
       COALESCE(sum(o.value), 0),
       sum(d.cost), sum(d.baseline_cost), sum(d.latency_ms), sum(d.tokens_in), sum(d.tokens_out)
FROM {RoutingDecision._meta.db_table} d
LEFT JOIN {Outcome._meta.db_table} o ON o.decision_id = d.id
WHERE d.created_at >= %(since)s
  AND COALESCE(d.path_id, (d.ranking->>0)::bigint) IS NOT NULL
GROUP BY 1, 2, 3
"""


def rollups_reconcile(*, since: datetime | None = None) -> int:
    """Rebuild the rollups of every hour from `since` (default: two hours ago) in one transaction.

    Idempotent: running it twice gives the same rows. Returns how many rollup rows now exist
    for the window.
    """
    start = (since or timezone.now() - timedelta(hours=2)).replace(
        minute=0, second=0, microsecond=0
    )
    with transaction.atomic():
        # Lock the window's rollups against the live upserts while they are rebuilt.
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {HourlyRollup._meta.db_table} IN SHARE ROW EXCLUSIVE MODE")
        HourlyRollup.objects.filter(hour__gte=start).delete()
        with connection.cursor() as cursor:
            cursor.execute(_RECOMPUTE, {"since": start})
        return HourlyRollup.objects.filter(hour__gte=start).count()
