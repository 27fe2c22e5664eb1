"""The projected effect of a change request: loads what the pure core (routerapp/projection.py)
replays: the goal's last N successful decisions with their outcomes, its paths at today's
prices, its current posteriors and controller state, and the two snapshots as policies."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from routerapp import engine
from routerapp.models import Goal, Path, Posterior, RoutingDecision
from routerapp.projection import (
    Evidence,
    LoggedDecision,
    PathInfo,
    Policy,
    PolicyPath,
    project,
)
from routerapp.selectors.goals import price_get
from routerapp.selectors.posteriors import StoredEvidence, arms_for, arms_usable, evidence_decayed

# One fixed seed: the same data and snapshots always project the same numbers.
SEED = 0


def _arms(
    paths: Sequence[PolicyPath],
    evidence: Evidence,
    bucket: str,
    expected_cost: Callable[[PolicyPath], float],
) -> list[engine.Arm]:
    """The router's own arms (selectors.posteriors), without the paths the engine refuses."""
    usable, _ = arms_usable(
        arms_for(paths=paths, evidence=evidence, bucket=bucket, expected_cost=expected_cost)
    )
    return usable


def _path_infos(paths: Sequence[Path]) -> list[PathInfo]:
    today = timezone.now().date()
    infos = []
    for path in paths:
        price = price_get(provider_id=path.provider_id, model=path.model, on=today)
        infos.append(
            PathInfo(
                id=path.id,
                name=path.name,
                price_in=float(price[0]) if price else None,
                price_out=float(price[1]) if price else None,
                expected_output_tokens=path.expected_output_tokens,
                available=path.provider.enabled,
            )
        )
    return infos


def _baseline(
    name: object, policy_paths: Sequence[PolicyPath], infos: Sequence[PathInfo]
) -> int | None:
    """The snapshot's baseline path, or as routing does without one: the most expensive
    priced enabled path."""
    by_name = {path.name: path.id for path in policy_paths}
    if isinstance(name, str) and name in by_name:
        return by_name[name]
    enabled = {path.id for path in policy_paths if path.enabled}
    priced = [
        info
        for info in infos
        if info.id in enabled and info.price_in is not None and info.price_out is not None
    ]
    if not priced:
        return None
    return max(priced, key=lambda info: (info.price_out or 0.0, info.price_in or 0.0)).id


def _policy(
    snapshot: Mapping[str, Any],
    *,
    paths: Sequence[Path],
    infos: Sequence[PathInfo],
    stored: StoredEvidence,
    state: engine.ControllerState,
    now: datetime,
) -> Policy:
    settings_ = snapshot["goal"]
    configured = snapshot.get("paths") or {}
    policy_paths = []
    for path in paths:
        numbers = configured.get(path.name)
        if numbers is None:  # a path added after the snapshot was taken: as it is now
            numbers = {
                "weight": path.weight,
                "alpha0": path.alpha0,
                "beta0": path.beta0,
                "enabled": path.enabled,
            }
        policy_paths.append(
            PolicyPath(
                id=path.id,
                name=path.name,
                weight=float(numbers["weight"]),
                alpha0=None if numbers.get("alpha0") is None else float(numbers["alpha0"]),
                beta0=None if numbers.get("beta0") is None else float(numbers["beta0"]),
                enabled=bool(numbers["enabled"]),
            )
        )
    # The goal model builds the engine's settings, so the projection reads them as routing does.
    config = Goal(
        objective=settings_["objective"],
        quality_target=settings_["quality_target"],
        exploration_floor=settings_["exploration_floor"],
        prior_strength=settings_["prior_strength"],
        half_life_seconds=settings_["half_life_seconds"],
    ).engine_config()
    return Policy(
        config=config,
        paths=tuple(policy_paths),
        rules=list(snapshot.get("rules") or []),
        bucket_by=str(settings_["bucket_by"]),
        evidence=evidence_decayed(
            stored, half_life_seconds=settings_["half_life_seconds"], now=now
        ),
        baseline=_baseline(settings_.get("baseline_path"), policy_paths, infos),
        state=state,
    )


def decisions_for_projection(*, goal: Goal, limit: int) -> list[LoggedDecision]:
    """The goal's last `limit` successful calls, newest first, with their current outcome."""
    rows = (
        RoutingDecision.objects.filter(goal=goal, status=RoutingDecision.Status.OK)
        .order_by("-created_at", "-id")
        .values_list(
            "id",
            "path_id",
            "features",
            "classifier_label",
            "propensity",
            "outcome__value",
            "tokens_in",
            "tokens_out",
            "cost",
            "created_at",
        )[:limit]
    )
    return [
        LoggedDecision(
            id=decision_id,
            path=path_id,
            names={**(features if isinstance(features, dict) else {}), "classifier_label": label},
            propensity=propensity,
            outcome=outcome,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost=float(cost),
            at=created_at.timestamp(),
        )
        for (
            decision_id,
            path_id,
            features,
            label,
            propensity,
            outcome,
            tokens_in,
            tokens_out,
            cost,
            created_at,
        ) in rows
    ]


def project_change(
    goal: Goal, *, current: dict[str, Any], proposed: dict[str, Any], limit: int | None = None
) -> dict[str, Any]:
    """Replay the goal's last `limit` (default settings.PROJECTION_DECISIONS) decisions under
    the `current` and the `proposed` snapshot (services.governance.goal_snapshot's shape) and
    return the JSON-able comparison stored in `ChangeRequest.projection`. Raises
    `projection.ProjectionError` (a ValueError) when the engine refuses a snapshot."""
    limit = settings.PROJECTION_DECISIONS if limit is None else limit
    paths = list(goal.paths.select_related("provider").order_by("id"))
    infos = _path_infos(paths)
    stored = {
        (path_id, bucket): (successes, failures, updated_at)
        for path_id, bucket, successes, failures, updated_at in Posterior.objects.filter(
            goal=goal
        ).values_list("path_id", "bucket", "successes", "failures", "updated_at")
    }
    notes = []
    try:
        state = engine.ControllerState.from_dict(goal.controller_state)
    except engine.EngineError:
        state = engine.ControllerState()
        notes.append("The goal's controller state is not valid: its initial state is used.")
    now = timezone.now()
    common: dict[str, Any] = {"paths": paths, "infos": infos, "stored": stored, "state": state}
    result = project(
        decisions_for_projection(goal=goal, limit=max(limit, 0)),
        paths=infos,
        current=_policy(current, now=now, **common),
        proposed=_policy(proposed, now=now, **common),
        arms_builder=_arms,
        seed=SEED,
    )
    result["notes"] = notes + result["notes"]
    result["limit"] = limit
    return result
