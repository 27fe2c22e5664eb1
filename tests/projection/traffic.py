"""Logged traffic for projection and suggestion tests: decisions with features, propensities,
costs and outcomes drawn from known success rates, and the posteriors they imply, written to
PostgreSQL in bulk (a few thousand rows in well under a second)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import numpy as np
from django.utils import timezone

from routerapp.features import SIMPLE_BELOW
from routerapp.models import GOAL_WIDE, Goal, Outcome, Path, Posterior, RoutingDecision
from tests.builders import PRICES

# True success rates by model and bucket.
RATES: Mapping[str, Mapping[str, float]] = {
    "gpt-4o-mini": {"complexity:simple": 0.96, "complexity:complex": 0.70},
    "gpt-4o": {"complexity:simple": 0.97, "complexity:complex": 0.92},
}


@dataclass(frozen=True)
class Traffic:
    decisions: int
    spend: Decimal


def call_cost(model: str, tokens_in: int, tokens_out: int) -> Decimal:
    price_in, price_out = PRICES[model]
    return (Decimal(price_in) * tokens_in + Decimal(price_out) * tokens_out) / Decimal(1_000_000)


def bucket_of(complexity: float) -> str:
    return "complexity:simple" if complexity < SIMPLE_BELOW else "complexity:complex"


def generate(
    goal: Goal,
    *,
    count: int,
    seed: int = 0,
    cheap_share: float = 0.5,
    propensity: bool = True,
    simple_share: float = 0.6,
    outcome_share: float = 1.0,
    only_strong_in: str | None = None,
    days: float = 3.0,
    rates: Mapping[str, Mapping[str, float]] = RATES,
) -> Traffic:
    """`count` calls of `goal` (paths gpt-4o-mini and gpt-4o) over the last `days`: each path
    chosen at random with the logged probability (`cheap_share` for gpt-4o-mini, stored as the
    propensity unless `propensity` is False), an outcome drawn from `rates` for
    `outcome_share` of them; `only_strong_in` sends every call of that bucket to gpt-4o."""
    rng = np.random.default_rng(seed)
    paths = {path.model: path for path in Path.objects.filter(goal=goal)}
    cheap, strong = paths["gpt-4o-mini"], paths["gpt-4o"]
    now = timezone.now()
    decisions = []
    outcomes: list[float | None] = []
    evidence: dict[tuple[int, str], list[float]] = {}
    spend = Decimal(0)
    for index in range(count):
        complexity = float(rng.uniform(0.5, 3.0) if rng.random() < simple_share else 7.0)
        bucket = bucket_of(complexity)
        share = 0.0 if bucket == only_strong_in else cheap_share
        path = cheap if rng.random() < share else strong
        chance = share if path is cheap else 1.0 - share
        tokens_in = int(rng.integers(50, 1000))
        tokens_out = int(rng.integers(10, 300))
        cost = call_cost(path.model, tokens_in, tokens_out)
        spend += cost
        decisions.append(
            RoutingDecision(
                goal=goal,
                path=path,
                bucket=bucket,
                reason=RoutingDecision.Reason.THOMPSON,
                objective=goal.objective,
                ranking=[path.id],
                features={
                    "prompt_tokens": tokens_in,
                    "message_count": 1,
                    "task_type": "general",
                    "complexity": round(complexity, 2),
                    "has_json_request": False,
                    "reasoning_cues": 0,
                    "keywords": [],
                    "metadata": {},
                },
                propensity=chance if propensity else None,
                tokens_in=tokens_in,
                tokens_out=tokens_out,
                cost=cost,
                baseline_cost=call_cost("gpt-4o", tokens_in, tokens_out),
                created_at=now - timedelta(seconds=days * 86400 * (count - index) / count),
            )
        )
        value: float | None = None
        if rng.random() < outcome_share:
            value = 1.0 if rng.random() < rates[path.model][bucket] else 0.0
            for key in ((path.id, bucket), (path.id, GOAL_WIDE)):
                evidence.setdefault(key, [0.0, 0.0])[0 if value else 1] += 1.0
        outcomes.append(value)
    created = RoutingDecision.objects.bulk_create(decisions)
    Outcome.objects.bulk_create(
        Outcome(decision=decision, value=value, source=Outcome.Source.API)
        for decision, value in zip(created, outcomes, strict=True)
        if value is not None
    )
    for (path_id, bucket), (successes, failures) in evidence.items():
        row, _ = Posterior.objects.get_or_create(
            goal=goal,
            path_id=path_id,
            bucket=bucket,
            defaults={"updated_at": now},
        )
        row.successes += successes
        row.failures += failures
        row.updated_at = now
        row.save(update_fields=["successes", "failures", "updated_at"])
    return Traffic(decisions=count, spend=spend)
