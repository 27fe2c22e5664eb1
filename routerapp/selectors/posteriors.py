"""Posterior reads: alpha, beta, mean, 95% interval and current traffic share per path/bucket."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from django.utils import timezone

from routerapp import engine
from routerapp.models import GOAL_WIDE, Goal, Posterior
from routerapp.selectors.goals import path_list_enabled, price_get


@dataclass(frozen=True)
class PosteriorRow:
    path_id: int
    path: str
    model: str
    bucket: str
    alpha: float
    beta: float
    successes: float
    failures: float
    mean: float
    low: float
    high: float
    share: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def posterior_list_for_goal(*, goal: Goal, seed: int = 0) -> list[PosteriorRow]:
    """Rows for every enabled path in every bucket seen so far (goal-wide first).

    alpha/beta include the prior the engine uses for the path (weight-derived or explicit).
    The share is a seeded Monte Carlo estimate of how often the engine picks the path now.
    """
    paths = path_list_enabled(goal=goal)
    if not paths:
        return []
    now = timezone.now()
    evidence: dict[tuple[int, str], tuple[float, float]] = {}
    buckets = {GOAL_WIDE}
    for row in Posterior.objects.filter(goal=goal):
        evidence[(row.path_id, row.bucket)] = engine.decay(
            (row.successes, row.failures),
            half_life_seconds=goal.half_life_seconds,
            elapsed_seconds=max((now - row.updated_at).total_seconds(), 0.0),
        )
        buckets.add(row.bucket)
    weights = [path.weight for path in paths]
    try:
        weight_priors = engine.priors_from_weights(weights, strength=goal.prior_strength)
    except engine.EngineError:
        weight_priors = [(1.0, 1.0)] * len(paths)
    config = goal.engine_config()
    state = engine.ControllerState.from_dict(goal.controller_state)
    rows: list[PosteriorRow] = []
    for bucket in sorted(buckets):
        arms = []
        for path in paths:
            goal_s, goal_f = evidence.get((path.id, GOAL_WIDE), (0.0, 0.0))
            s, f = evidence.get((path.id, bucket), (0.0, 0.0))
            arms.append(
                engine.Arm(
                    path_id=str(path.id),
                    weight=path.weight,
                    expected_cost=_expected_cost(path),
                    successes=s,
                    failures=f,
                    goal_successes=goal_s,
                    goal_failures=goal_f,
                    alpha0=path.alpha0,
                    beta0=path.beta0,
                )
            )
        try:
            shares = engine.allocation_shares(
                arms,
                config=config,
                rng=np.random.default_rng(seed),
                state=state,
                bucket=bucket or None,
                draws=2000,
            )
        except engine.InvalidCost:
            shares = engine.allocation_shares(
                arms,
                config=goal.engine_config(objective="success"),
                rng=np.random.default_rng(seed),
                bucket=bucket or None,
                draws=2000,
            )
        for path, arm, prior in zip(paths, arms, weight_priors, strict=True):
            alpha0, beta0 = (path.alpha0, path.beta0) if path.alpha0 is not None else prior
            alpha, beta = alpha0 + arm.successes, beta0 + arm.failures
            mean, low, high = engine.posterior_summary(alpha, beta)
            rows.append(
                PosteriorRow(
                    path_id=path.id,
                    path=path.name,
                    model=path.model,
                    bucket=bucket,
                    alpha=alpha,
                    beta=beta,
                    successes=arm.successes,
                    failures=arm.failures,
                    mean=mean,
                    low=low,
                    high=high,
                    share=shares.get(str(path.id), 0.0),
                )
            )
    return rows


def _expected_cost(path: Any) -> float:
    price = price_get(provider_id=path.provider_id, model=path.model, on=timezone.now().date())
    if price is None:
        return 0.0
    # A typical call: 500 prompt tokens and the path's expected output length.
    return float((price[0] * 500 + price[1] * path.expected_output_tokens) / 1_000_000)
