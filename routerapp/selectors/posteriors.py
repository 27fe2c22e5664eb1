"""Posterior reads: stored evidence as engine arms, and per-path summaries for pages and API."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

import numpy as np
from django.utils import timezone

from routerapp import engine
from routerapp.models import GOAL_WIDE, Goal, Path, Posterior
from routerapp.selectors.goals import path_list_enabled, price_get

Evidence = dict[tuple[int, str], tuple[float, float]]
# (path id, bucket) -> (successes, failures, updated_at): posterior rows as stored.
StoredEvidence = Mapping[tuple[int, str], tuple[float, float, datetime]]
TYPICAL_PROMPT_TOKENS = 500


class PathNumbers(Protocol):
    """What the engine reads of a path: a `Path` row or a cached `PathPlan`."""

    @property
    def id(self) -> int: ...
    @property
    def weight(self) -> float: ...
    @property
    def alpha0(self) -> float | None: ...
    @property
    def beta0(self) -> float | None: ...


P = TypeVar("P", bound=PathNumbers)


def evidence_decayed(
    rows: StoredEvidence,
    *,
    half_life_seconds: float | None,
    buckets: Iterable[str] | None = None,
    now: datetime | None = None,
) -> Evidence:
    """(successes, failures) per (path id, bucket), decayed to `now` by the half-life."""
    now = now or timezone.now()
    wanted = None if buckets is None else set(buckets)
    return {
        (path_id, bucket): engine.decay(
            (successes, failures),
            half_life_seconds=half_life_seconds,
            elapsed_seconds=max((now - updated_at).total_seconds(), 0.0),
        )
        for (path_id, bucket), (successes, failures, updated_at) in rows.items()
        if wanted is None or bucket in wanted
    }


def evidence_for_goal(*, goal: Goal, buckets: Iterable[str] | None = None) -> Evidence:
    """(successes, failures) per (path id, bucket), decayed to now by the goal's half-life."""
    rows = Posterior.objects.filter(goal=goal)
    if buckets is not None:
        rows = rows.filter(bucket__in=set(buckets))
    stored = {
        (path_id, bucket): (successes, failures, updated_at)
        for path_id, bucket, successes, failures, updated_at in rows.values_list(
            "path_id", "bucket", "successes", "failures", "updated_at"
        )
    }
    return evidence_decayed(stored, half_life_seconds=goal.half_life_seconds)


def arms_for(
    *,
    paths: Sequence[P],
    evidence: Evidence,
    bucket: str,
    expected_cost: Callable[[P], float],
) -> list[engine.Arm]:
    """Engine arms: the bucket's evidence, with the goal-wide evidence for backoff."""
    arms = []
    for path in paths:
        goal_s, goal_f = evidence.get((path.id, GOAL_WIDE), (0.0, 0.0))
        s, f = evidence.get((path.id, bucket), (0.0, 0.0)) if bucket else (goal_s, goal_f)
        arms.append(
            engine.Arm(
                path_id=str(path.id),
                weight=path.weight,
                expected_cost=expected_cost(path),
                successes=s,
                failures=f,
                goal_successes=goal_s,
                goal_failures=goal_f,
                alpha0=path.alpha0,
                beta0=path.beta0,
            )
        )
    return arms


def arms_usable(arms: list[engine.Arm]) -> tuple[list[engine.Arm], dict[str, str]]:
    """The arms whose numbers the engine accepts, and for each other path id the reason it is
    left out: a path saved before its numbers were validated must not take the goal down."""
    usable: list[engine.Arm] = []
    refused: dict[str, str] = {}
    for arm in arms:
        try:
            engine.arm_check(arm)
        except engine.EngineError as error:
            refused[arm.path_id] = str(error)
        else:
            usable.append(arm)
    return usable, refused


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


def typical_cost(path: Path) -> float:
    """Expected USD of a typical call on the path, for shares shown outside a request."""
    price = price_get(provider_id=path.provider_id, model=path.model, on=timezone.now().date())
    if price is None:
        return 0.0
    tokens = price[0] * TYPICAL_PROMPT_TOKENS + price[1] * path.expected_output_tokens
    return float(tokens / 1_000_000)


def posterior_list_for_goal(*, goal: Goal, seed: int = 0) -> list[PosteriorRow]:
    """Rows for every enabled path in every bucket seen so far (goal-wide first).

    alpha/beta are exactly what the engine samples (prior, weight, bucket backoff included).
    The share is a seeded Monte Carlo estimate of how often the engine picks the path now.
    """
    paths = path_list_enabled(goal=goal)
    if not paths:
        return []
    evidence = evidence_for_goal(goal=goal)
    costs = {path.id: typical_cost(path) for path in paths}
    state = engine.ControllerState.from_dict(goal.controller_state)
    rows: list[PosteriorRow] = []
    by_id = {str(path.id): path for path in paths}
    for bucket in sorted({GOAL_WIDE} | {name for _, name in evidence}):
        # Paths the engine refuses are left out, as the router leaves them out of its decisions.
        arms, _ = arms_usable(
            arms_for(
                paths=paths, evidence=evidence, bucket=bucket, expected_cost=lambda p: costs[p.id]
            )
        )
        if not arms:
            continue
        try:
            config = goal.engine_config()
            try:
                shares = engine.allocation_shares(
                    arms,
                    config=config,
                    rng=np.random.default_rng(seed),
                    state=state,
                    bucket=bucket or None,
                )
            except engine.InvalidCost:  # no prices: the router itself routes on success
                config = goal.engine_config(objective="success")
                shares = engine.allocation_shares(
                    arms, config=config, rng=np.random.default_rng(seed), bucket=bucket or None
                )
            parameters = engine.posterior_parameters(arms, config=config)
        except engine.EngineError:
            # The goal itself holds numbers the engine refuses (saved before they were
            # validated); completions answer 409 naming them, this read shows no estimate.
            continue
        for arm in arms:
            path = by_id[arm.path_id]
            alpha, beta = parameters[arm.path_id]
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
                    share=shares.get(arm.path_id, 0.0),
                )
            )
    return rows
