"""Bulk synthetic traffic for benchmarks: decisions, outcomes, hourly rollups and posteriors.

Everything is generated inside PostgreSQL with INSERT ... SELECT generate_series, so a million
decisions take seconds, not the hours a per-row ORM loop would. Not for production databases.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from routerapp.models import Goal, HourlyRollup, Outcome, Posterior, RoutingDecision
from routerapp.selectors.goals import price_get
from routerapp.services.demo import demo_seed

# Chance that a path's answer succeeds, by model (the cheap one is slightly worse).
SUCCESS_RATE = {"gpt-4o-mini": 0.90, "gpt-4o": 0.96}
DEFAULT_SUCCESS_RATE = 0.9

_DECISIONS = f"""
INSERT INTO {RoutingDecision._meta.db_table}
    (request_id, goal_id, path_id, bucket, reason, objective, ranking, samples, explanation,
     features, rule_hits, attempts, tokens_in, tokens_out, cost, baseline_cost, latency_ms, status,
     prompt_preview, response_text, created_at)
SELECT 'req_' || md5(random()::text || g::text),
       p.goal_id, p.path_id, '', 'thompson', 'cost_at_quality',
       jsonb_build_array(p.path_id),
       jsonb_build_object(p.path_id::text, round(random()::numeric, 4)),
       '{{}}'::jsonb, jsonb_build_object('prompt_tokens', t.tokens_in), '[]'::jsonb,
       jsonb_build_array(jsonb_build_object('path_id', p.path_id, 'ok', true)),
       t.tokens_in, t.tokens_out,
       (t.tokens_in * p.price_in + t.tokens_out * p.price_out) / 1000000,
       (t.tokens_in * p.base_in + t.tokens_out * p.base_out) / 1000000,
       t.latency, 'ok', 'user: synthetic prompt ' || g, 'synthetic answer',
       now() - random() * %(days)s * interval '1 day'
FROM generate_series(1, %(count)s) AS g
JOIN (SELECT * FROM jsonb_to_recordset(%(slots)s::jsonb) AS s(
        slot int, goal_id bigint, path_id bigint, price_in numeric, price_out numeric,
        base_in numeric, base_out numeric)) AS p ON p.slot = g %% %(slot_count)s
CROSS JOIN LATERAL (SELECT (50 + random() * 950 + g * 0)::int AS tokens_in,
                           (1 + random() * 300 + g * 0)::int AS tokens_out,
                           200 + random() * 1800 + g * 0 AS latency) AS t
"""

_OUTCOMES = f"""
INSERT INTO {Outcome._meta.db_table} (decision_id, value, source, note, reported_at)
SELECT d.id, CASE WHEN random() < r.rate THEN 1.0 ELSE 0.0 END, 'success_when', '', d.created_at
FROM {RoutingDecision._meta.db_table} d
JOIN (SELECT * FROM jsonb_to_recordset(%(rates)s::jsonb) AS r(path_id bigint, rate float)) r
  ON r.path_id = d.path_id
WHERE d.id > %(after)s AND random() < %(outcome_share)s
"""

_ROLLUPS = f"""
INSERT INTO {HourlyRollup._meta.db_table} AS r
    (goal_id, path_id, hour, requests, failed_requests, outcomes, success_sum, spend,
     baseline_spend, latency_ms_sum, tokens_in, tokens_out)
SELECT d.goal_id, d.path_id, date_trunc('hour', d.created_at), count(*), 0, count(o.id),
       COALESCE(sum(o.value), 0), sum(d.cost), sum(d.baseline_cost), sum(d.latency_ms),
       sum(d.tokens_in), sum(d.tokens_out)
FROM {RoutingDecision._meta.db_table} d
LEFT JOIN {Outcome._meta.db_table} o ON o.decision_id = d.id
WHERE d.id > %(after)s
GROUP BY 1, 2, 3
ON CONFLICT (goal_id, path_id, hour) DO UPDATE SET
    requests = r.requests + EXCLUDED.requests, outcomes = r.outcomes + EXCLUDED.outcomes,
    success_sum = r.success_sum + EXCLUDED.success_sum, spend = r.spend + EXCLUDED.spend,
    baseline_spend = r.baseline_spend + EXCLUDED.baseline_spend,
    latency_ms_sum = r.latency_ms_sum + EXCLUDED.latency_ms_sum,
    tokens_in = r.tokens_in + EXCLUDED.tokens_in, tokens_out = r.tokens_out + EXCLUDED.tokens_out
"""

_POSTERIORS = f"""
INSERT INTO {Posterior._meta.db_table} AS p
    (goal_id, path_id, bucket, successes, failures, updated_at)
SELECT d.goal_id, d.path_id, '', sum(o.value), sum(1 - o.value), now()
FROM {RoutingDecision._meta.db_table} d
JOIN {Outcome._meta.db_table} o ON o.decision_id = d.id
WHERE d.id > %(after)s
GROUP BY 1, 2
ON CONFLICT (path_id, bucket) DO UPDATE SET
    successes = p.successes + EXCLUDED.successes, failures = p.failures + EXCLUDED.failures,
    updated_at = now()
"""


class Command(BaseCommand):
    help = (
        "Generate COUNT synthetic decisions over the last DAYS days for every goal (the demo "
        "goals are seeded first), with outcomes, hourly rollups and posteriors to match. "
        "For benchmark databases only."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--count", type=int, default=100_000)
        parser.add_argument("--days", type=float, default=30.0)
        parser.add_argument(
            "--outcome-share",
            type=float,
            default=0.9,
            help="share of decisions that get an outcome",
        )

    def handle(
        self, *args: Any, count: int, days: float, outcome_share: float, **options: Any
    ) -> None:
        if count < 1 or days <= 0:
            raise CommandError("--count must be positive and --days > 0")
        demo_seed()
        slots, rates = self._slots()
        started = time.perf_counter()
        with transaction.atomic():
            after = (
                RoutingDecision.objects.order_by("-id").values_list("id", flat=True).first() or 0
            )
            with connection.cursor() as cursor:
                cursor.execute(
                    _DECISIONS,
                    {"days": days, "count": count, "slots": _json(slots), "slot_count": len(slots)},
                )
                cursor.execute(
                    _OUTCOMES,
                    {"rates": _json(rates), "after": after, "outcome_share": outcome_share},
                )
                cursor.execute(_ROLLUPS, {"after": after})
                cursor.execute(_POSTERIORS, {"after": after})
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {RoutingDecision._meta.db_table}")
            cursor.execute(f"ANALYZE {Outcome._meta.db_table}")
            cursor.execute(f"ANALYZE {HourlyRollup._meta.db_table}")
        self.stdout.write(
            f"generated {count:,} decisions over {days:g} days "
            f"in {time.perf_counter() - started:.1f} s"
        )

    def _slots(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Ten slots per goal split by path weight: the path of decision g is slot g % n."""
        today = timezone.now().date()
        slots: list[dict[str, Any]] = []
        rates: list[dict[str, Any]] = []
        for goal in Goal.objects.prefetch_related("paths").select_related("baseline_path"):
            paths = [path for path in goal.paths.all() if path.enabled]
            if not paths:
                continue
            baseline = goal.baseline_path or paths[-1]
            base = price_get(provider_id=baseline.provider_id, model=baseline.model, on=today)
            total_weight = sum(path.weight for path in paths) or 1.0
            for path in paths:
                price = price_get(provider_id=path.provider_id, model=path.model, on=today)
                price_in, price_out = price or (Decimal(0), Decimal(0))
                base_in, base_out = base or (price_in, price_out)
                share = max(1, round(10 * path.weight / total_weight))
                for _ in range(share):
                    slots.append(
                        {
                            "slot": len(slots),
                            "goal_id": goal.id,
                            "path_id": path.id,
                            "price_in": str(price_in),
                            "price_out": str(price_out),
                            "base_in": str(base_in),
                            "base_out": str(base_out),
                        }
                    )
                rates.append(
                    {"path_id": path.id, "rate": SUCCESS_RATE.get(path.model, DEFAULT_SUCCESS_RATE)}
                )
        if not slots:
            raise CommandError("No goal with an enabled path.")
        return slots, rates


def _json(value: Any) -> str:
    import json

    return json.dumps(value)
