"""One completion call, end to end (DESIGN §4).

The flow is split by what it waits on, so the async view never holds a DB connection while
an upstream call is in flight:

1. `route_plan` (sync, DB reads): goal, paths, prices, posteriors -> features -> engine ranking.
2. `route_execute` (async, network): call the ranked paths in order with fallback on
   retryable provider errors, skipping providers whose circuit is open.
3. `decision_record` (sync, one transaction): decision, automatic outcome, posterior update,
   rollups and the controller state, all or nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from routerapp import engine
from routerapp.dbwork import run_db
from routerapp.errors import ConfigurationError, InvalidRequest, UpstreamFailed
from routerapp.expressions import (
    CompiledExpression,
    ExpressionError,
    compile_expression,
    plain_view,
)
from routerapp.features import Features, compute_features
from routerapp.models import GOAL_WIDE, ApiKey, Goal, Outcome, Path, RoutingDecision
from routerapp.models.goals import RESPONSE_NAMES
from routerapp.models.traffic import new_request_id
from routerapp.providers.circuit import CircuitBreaker
from routerapp.providers.client import (
    ProviderConfig,
    ProviderResult,
    chat,
    chat_stream,
)
from routerapp.providers.errors import ProviderError
from routerapp.selectors.goals import path_list_enabled, price_get
from routerapp.selectors.posteriors import arms_for, evidence_for_goal
from routerapp.services.learning import posterior_apply_outcome, rollup_add

PREVIEW_CHARS = 4000
# Request fields that steer routerapp itself and are not forwarded upstream.
ROUTER_FIELDS = {"model", "messages", "goal", "stream", "stream_options", "metadata", "n"}

_rng = np.random.default_rng()
_rng_lock = threading.Lock()
breaker = CircuitBreaker(
    failure_threshold=settings.PROVIDER_BREAKER_THRESHOLD,
    cooldown_seconds=settings.PROVIDER_BREAKER_COOLDOWN_SECONDS,
)


@dataclass(frozen=True)
class PathPlan:
    id: int
    name: str
    model: str
    provider: ProviderConfig
    simulated: bool
    params: dict[str, Any]
    system_prompt: str
    price_in: Decimal | None
    price_out: Decimal | None

    def cost(self, tokens_in: int, tokens_out: int) -> Decimal:
        if self.price_in is None or self.price_out is None:
            return Decimal(0)
        return (self.price_in * tokens_in + self.price_out * tokens_out) / Decimal(1_000_000)


@dataclass(frozen=True)
class RoutePlan:
    goal_id: int
    goal_slug: str
    success_when: str
    bucket: str
    features: Features
    ranking: engine.Ranking
    paths: dict[int, PathPlan]
    baseline: PathPlan | None
    api_key_id: int | None
    messages: list[dict[str, Any]]
    passthrough: dict[str, Any]
    # Known before the call so a streamed answer can carry it in its headers.
    request_id: str = field(default_factory=new_request_id)

    @property
    def ordered_paths(self) -> list[PathPlan]:
        return [self.paths[int(path_id)] for path_id in self.ranking.order]


@dataclass
class Attempt:
    path_id: int
    path: str
    model: str
    ok: bool
    latency_ms: float
    error: dict[str, Any] | None = None
    skipped: bool = False

    @classmethod
    def failure(
        cls, path: PathPlan, error: dict[str, Any], latency_ms: float, *, skipped: bool = False
    ) -> Attempt:
        return cls(
            path.id,
            path.name,
            path.model,
            ok=False,
            latency_ms=latency_ms,
            error=error,
            skipped=skipped,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "path_id": self.path_id,
            "path": self.path,
            "model": self.model,
            "ok": self.ok,
            "latency_ms": round(self.latency_ms, 1),
            "error": self.error,
            "skipped": self.skipped,
        }


@dataclass
class ExecutionResult:
    path: PathPlan | None
    result: ProviderResult | None
    attempts: list[Attempt] = field(default_factory=list)
    latency_ms: float = 0.0
    # Streaming only: the open upstream stream and its first chunk.
    first_chunk: dict[str, Any] | None = None
    chunks: AsyncIterator[dict[str, Any]] | None = None


# --------------------------------------------------------------------------- 1. plan


def provider_config(path: Path) -> ProviderConfig:
    provider = path.provider
    base_url = settings.SIMULATOR_URL if provider.is_simulator else provider.base_url
    return ProviderConfig(
        id=provider.id,
        name=provider.name,
        base_url=base_url,
        api_key=provider.resolve_api_key(),
        timeout_seconds=provider.timeout_seconds,
        max_retries=provider.max_retries,
    )


def _path_plan(path: Path, *, on: datetime) -> PathPlan:
    price = price_get(provider_id=path.provider_id, model=path.model, on=on.date())
    return PathPlan(
        id=path.id,
        name=path.name,
        model=path.model,
        provider=provider_config(path),
        simulated=path.provider.is_simulator,
        params=path.call_params(),
        system_prompt=path.system_prompt,
        price_in=price[0] if price else None,
        price_out=price[1] if price else None,
    )


def bucket_for(goal: Goal, features: Features) -> str:
    if goal.bucket_by == Goal.BucketBy.COMPLEXITY:
        return features.complexity_bucket()
    if goal.bucket_by == Goal.BucketBy.TASK_TYPE:
        return f"task_type:{features.task_type}"
    return GOAL_WIDE


def _rank(arms: list[engine.Arm], goal: Goal, bucket: str) -> engine.Ranking:
    state = engine.ControllerState.from_dict(goal.controller_state)
    config = goal.engine_config()
    with _rng_lock:  # numpy Generators are not thread-safe
        try:
            return engine.rank_paths(
                arms, config=config, rng=_rng, state=state, bucket=bucket or None
            )
        except engine.InvalidCost:
            # No prices known: cost-aware objectives have nothing to trade; route on success.
            return engine.rank_paths(
                arms,
                config=goal.engine_config(objective="success"),
                rng=_rng,
                bucket=bucket or None,
            )


def route_plan(
    *,
    goal: Goal,
    api_key: ApiKey | None,
    messages: list[dict[str, Any]],
    metadata: dict[str, Any] | None,
    passthrough: dict[str, Any],
) -> RoutePlan:
    if goal.status != Goal.Status.ACTIVE:
        raise ConfigurationError(f"Goal '{goal.slug}' is paused.")
    paths = path_list_enabled(goal=goal)
    if not paths:
        raise ConfigurationError(f"Goal '{goal.slug}' has no enabled path.")
    now = timezone.now()
    plans = [_path_plan(path, on=now) for path in paths]
    try:
        features = compute_features(
            messages, metadata=metadata, response_format=passthrough.get("response_format")
        )
    except ValueError as error:
        raise InvalidRequest(str(error), param="messages") from error
    bucket = bucket_for(goal, features)
    by_id = {plan.id: plan for plan in plans}
    arms = arms_for(
        paths=paths,
        evidence=evidence_for_goal(goal=goal, buckets={bucket, GOAL_WIDE}),
        bucket=bucket,
        expected_cost=lambda path: float(
            by_id[path.id].cost(features.prompt_tokens, path.expected_output_tokens)
        ),
    )
    ranking = _rank(arms, goal, bucket)
    baseline = None
    if goal.baseline_path_id is not None:
        baseline_path = goal.baseline_path
        baseline = by_id.get(goal.baseline_path_id) or _path_plan(baseline_path, on=now)
    else:
        # No baseline configured: compare with the most expensive path (normally the strongest).
        priced = [plan for plan in plans if plan.price_out is not None]
        if priced:
            baseline = max(priced, key=lambda plan: (plan.price_out, plan.price_in))
    return RoutePlan(
        goal_id=goal.id,
        goal_slug=goal.slug,
        success_when=goal.success_when,
        bucket=bucket,
        features=features,
        ranking=ranking,
        paths=by_id,
        baseline=baseline,
        api_key_id=api_key.id if api_key else None,
        messages=messages,
        passthrough=passthrough,
    )


# --------------------------------------------------------------------------- 2. execute


def upstream_messages(plan: PathPlan, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not plan.system_prompt:
        return messages
    return [{"role": "system", "content": plan.system_prompt}, *messages]


async def _first_chunk(chunks: AsyncIterator[dict[str, Any]], path: PathPlan) -> dict[str, Any]:
    try:
        return await chunks.__anext__()
    except StopAsyncIteration:
        raise ProviderError(
            f"{path.provider.name}: empty stream", kind="invalid_response", retryable=True
        ) from None


async def route_execute(plan: RoutePlan, *, stream: bool = False) -> ExecutionResult:
    """Call the ranked paths in order until one answers; record every attempt.

    With `stream=True` the result holds an open chunk stream whose first chunk has already
    arrived, so a path that fails before answering still falls back to the next one.
    """
    execution = ExecutionResult(path=None, result=None)
    started = time.perf_counter()
    for path in plan.ordered_paths:
        breaker_key = f"provider:{path.provider.id}"
        if not breaker.allow(breaker_key):
            cooling = {"kind": "circuit_open", "message": "provider cooling down"}
            execution.attempts.append(Attempt.failure(path, cooling, 0.0, skipped=True))
            continue
        attempt_started = time.perf_counter()
        arguments = {
            "model": path.model,
            "messages": upstream_messages(path, plan.messages),
            "params": {**path.params, **plan.passthrough},
        }
        try:
            result = None
            if stream:
                execution.chunks = chat_stream(path.provider, **arguments)
                execution.first_chunk = await _first_chunk(execution.chunks, path)
            else:
                result = await chat(path.provider, **arguments)
        except ProviderError as error:
            latency = (time.perf_counter() - attempt_started) * 1000
            execution.attempts.append(Attempt.failure(path, error.to_dict(), latency))
            execution.chunks = None
            if error.retryable:
                breaker.record_failure(breaker_key)
                continue
            break  # the request itself is at fault: another path would refuse it too
        breaker.record_success(breaker_key)
        execution.attempts.append(
            Attempt(
                path.id,
                path.name,
                path.model,
                ok=True,
                latency_ms=(time.perf_counter() - attempt_started) * 1000,
            )
        )
        execution.path, execution.result = path, result
        break
    execution.latency_ms = (time.perf_counter() - started) * 1000
    return execution


# --------------------------------------------------------------------------- 3. record


@lru_cache(maxsize=512)
def _compiled(source: str) -> CompiledExpression:
    return compile_expression(source, names=RESPONSE_NAMES)


def success_when_check(source: str, response: dict[str, Any]) -> tuple[float | None, str]:
    """(outcome value, note): None when the goal has no condition; a condition that fails to
    evaluate counts as a failure with the reason, it never breaks the call."""
    if not source.strip():
        return None, ""
    try:
        passed = _compiled(source).evaluate({"response": plain_view(response)})
    except ExpressionError as error:
        return 0.0, f"success_when error: {error}"
    return (1.0, "") if passed else (0.0, "success_when was false")


def _response_text(response: dict[str, Any]) -> str:
    try:
        content = response["choices"][0]["message"].get("content") or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        return ""
    return str(content)[:PREVIEW_CHARS]


def _prompt_preview(messages: list[dict[str, Any]]) -> str:
    lines = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            content = " ".join(
                str(part.get("text", "")) for part in content if isinstance(part, dict)
            )
        lines.append(f"{message.get('role', '?')}: {content}")
    return "\n".join(lines)[:PREVIEW_CHARS]


def _reason(plan: RoutePlan, execution: ExecutionResult) -> str:
    if execution.path is not None and str(execution.path.id) != plan.ranking.order[0]:
        return RoutingDecision.Reason.FALLBACK
    if plan.ranking.reason == "exploration":
        return RoutingDecision.Reason.EXPLORATION
    return RoutingDecision.Reason.THOMPSON


def decision_record(
    *, plan: RoutePlan, execution: ExecutionResult
) -> tuple[RoutingDecision, float | None]:
    """Store the decision, its automatic outcome and what the router learns, atomically."""
    now = timezone.now()
    result, path = execution.result, execution.path
    tokens_in = result.prompt_tokens if result else 0
    tokens_out = result.completion_tokens if result else 0
    cost = path.cost(tokens_in, tokens_out) if path else Decimal(0)
    baseline_cost = (
        plan.baseline.cost(tokens_in, tokens_out) if (plan.baseline and path) else Decimal(0)
    )
    value, note = success_when_check(plan.success_when, result.response) if result else (None, "")
    with transaction.atomic():
        decision = RoutingDecision.objects.create(
            request_id=plan.request_id,
            goal_id=plan.goal_id,
            path_id=path.id if path else None,
            bucket=plan.bucket,
            reason=_reason(plan, execution),
            objective=plan.ranking.objective,
            ranking=[int(path_id) for path_id in plan.ranking.order],
            samples=plan.ranking.samples,
            explanation={
                **plan.ranking.details,
                "reference_quality": plan.ranking.reference_quality,
                "engine_reason": plan.ranking.reason,
            },
            features=plan.features.as_names(),
            attempts=[attempt.as_dict() for attempt in execution.attempts],
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost=cost,
            baseline_cost=baseline_cost,
            latency_ms=execution.latency_ms,
            status=RoutingDecision.Status.OK if path else RoutingDecision.Status.FAILED,
            prompt_preview=_prompt_preview(plan.messages),
            response_text=_response_text(result.response) if result else "",
            api_key_id=plan.api_key_id,
            created_at=now,
        )
        rollup_path = path.id if path else int(plan.ranking.order[0])
        rollup_add(
            goal_id=plan.goal_id,
            path_id=rollup_path,
            at=now,
            requests=1,
            failed=0 if path else 1,
            spend=cost,
            baseline=baseline_cost,
            latency_ms=execution.latency_ms,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
        )
        if value is not None and path is not None:
            Outcome.objects.create(
                decision=decision,
                value=value,
                source=Outcome.Source.SUCCESS_WHEN,
                note=note,
                reported_at=now,
            )
            learn_from_outcome(decision=decision, value=value, previous=None)
    return decision, value


def learn_from_outcome(*, decision: RoutingDecision, value: float, previous: float | None) -> None:
    """Move the posteriors (and, for a first outcome, the controller) by an outcome or its change.
    Must run inside the caller's transaction."""
    goal = Goal.objects.select_for_update().get(id=decision.goal_id)
    d_successes, d_failures = engine.outcome_delta(value, previous)
    posterior_apply_outcome(
        goal=goal,
        path_id=decision.path_id,
        bucket=decision.bucket,
        d_successes=d_successes,
        d_failures=d_failures,
    )
    rollup_add(
        goal_id=goal.id,
        path_id=decision.path_id,
        at=decision.created_at,
        outcomes=1 if previous is None else 0,
        success=value - (previous or 0.0),
    )
    reference = decision.explanation.get("reference_quality")
    if previous is None and reference is not None:
        state = engine.controller_observe(
            engine.ControllerState.from_dict(goal.controller_state),
            config=goal.engine_config(),
            value=value,
            reference_quality=float(reference),
            bucket=decision.bucket or None,
            chosen_path=str(decision.path_id),
        )
        Goal.objects.filter(id=goal.id).update(controller_state=state.to_dict())


def upstream_failure(decision: RoutingDecision) -> UpstreamFailed:
    return UpstreamFailed(
        "Every path of the goal failed upstream.",
        request_id=decision.request_id,
        attempts=decision.attempts,
    )


async def completion_create(
    *,
    goal: Goal,
    api_key: ApiKey | None,
    messages: list[dict[str, Any]],
    metadata: dict[str, Any] | None = None,
    passthrough: dict[str, Any] | None = None,
) -> tuple[RoutePlan, ExecutionResult, RoutingDecision]:
    """Plan, call upstream, record; raises UpstreamFailed (once recorded) if every path fails."""
    plan = await run_db(
        route_plan,
        goal=goal,
        api_key=api_key,
        messages=messages,
        metadata=metadata,
        passthrough=passthrough or {},
    )
    execution = await route_execute(plan)
    decision, _ = await run_db(decision_record, plan=plan, execution=execution)
    if execution.result is None or execution.path is None:
        raise upstream_failure(decision)
    return plan, execution, decision


def router_facts(plan: RoutePlan, decision: RoutingDecision, path: PathPlan) -> dict[str, Any]:
    """The `router` object of a response: what was chosen, why, and what it cost."""
    return {
        "request_id": decision.request_id,
        "goal": plan.goal_slug,
        "path": path.name,
        "model": path.model,
        "reason": decision.reason,
        "bucket": plan.bucket,
        "cost_usd": float(decision.cost),
        "baseline_cost_usd": float(decision.baseline_cost),
        "simulated": path.simulated,
    }
