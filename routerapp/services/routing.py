"""One completion call, end to end (DESIGN §4).

The flow is split by what it waits on, so the async view never holds a DB connection while
an upstream call is in flight:

1. `route_plan` (computation): the goal and its paths, prices and posteriors from this
   process's snapshots (selectors/catalog_cache.py: no SQL when warm) -> features (and the
   classifier's label, `route_plan_async` only: services/classifier.py) -> the goal's rules
   (routerapp/rules.py: pins, excludes, bucket) -> ranking and each path's probability.
2. `route_execute` (async, network): call the ranked paths in order with fallback on
   retryable provider errors, skipping providers whose circuit is open.
3. `decision_record` (sync, one SQL statement, on the DB pool): decision, automatic outcome,
   posterior update and rollup, all or nothing, with no goal-wide lock; the quality controller
   folds the outcome a moment later, off the request path (services/controller.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import lru_cache
from typing import Any

import numpy as np
from django.conf import settings
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
from routerapp.models import GOAL_WIDE, Goal, Outcome, RoutingDecision
from routerapp.models.goals import RESPONSE_NAMES
from routerapp.models.traffic import new_request_id
from routerapp.providers.circuit import CircuitBreaker
from routerapp.providers.client import ProviderResult, chat, chat_stream
from routerapp.providers.errors import ProviderError
from routerapp.rules import NO_RULES, RuleResult, rules_apply
from routerapp.selectors.catalog_cache import (
    ApiKeyRecord,
    GoalRoute,
    Learned,
    PathPlan,
    learned_aget,
    learned_get,
    learned_note_decision,
)
from routerapp.selectors.posteriors import arms_for, arms_usable, evidence_decayed
from routerapp.services.access import api_key_touch
from routerapp.services.classifier import Classification, classify
from routerapp.services.controller import nudge_on_commit
from routerapp.services.learning import decision_insert
from routerapp.services.shadows import shadow_baseline_for, shadow_enqueue_on_commit

PREVIEW_CHARS = 4000
# Engine draws behind each decision's propensity (the chance the policy gave the chosen path):
# enough for the projection's self-normalised estimate, cheap next to an upstream call.
PROPENSITY_DRAWS = 64

_rng = np.random.default_rng()
_rng_lock = threading.Lock()
breaker = CircuitBreaker(
    failure_threshold=settings.PROVIDER_BREAKER_THRESHOLD,
    cooldown_seconds=settings.PROVIDER_BREAKER_COOLDOWN_SECONDS,
)


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
    # Rules: what matched (`rules.RuleResult.hits`) and the path a pin put first (None: the
    # engine's choice is first).
    rule_hits: list[dict[str, Any]] = field(default_factory=list)
    pinned_path_id: int | None = None
    # Each eligible path's chance of being chosen first (path id -> probability).
    probabilities: dict[int, float] = field(default_factory=dict)
    goal_version: int = 0
    # The classifier step: its label ("" when off or failed), cost and facts.
    classifier_label: str = ""
    classifier_cost: Decimal = Decimal(0)
    classifier: dict[str, Any] = field(default_factory=dict)
    # Shadow traffic: the share of calls not served by the baseline also sent to it.
    shadow_rate: float = 0.0

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


def bucket_for(goal: GoalRoute, features: Features) -> str:
    if goal.bucket_by == Goal.BucketBy.COMPLEXITY:
        return features.complexity_bucket()
    if goal.bucket_by == Goal.BucketBy.TASK_TYPE:
        return f"task_type:{features.task_type}"
    return GOAL_WIDE


def _rank(
    arms: list[engine.Arm], goal: GoalRoute, bucket: str, state: engine.ControllerState
) -> tuple[engine.Ranking, dict[str, float]]:
    """The engine's ranking and each arm's share of first choices (`PROPENSITY_DRAWS` draws),
    from the same configuration and the same generator."""
    if goal.config is None:
        raise engine.InvalidConfig(goal.config_error)
    config = goal.config
    with _rng_lock:  # numpy Generators are not thread-safe
        try:
            ranking = engine.rank_paths(
                arms, config=config, rng=_rng, state=state, bucket=bucket or None
            )
        except engine.InvalidCost:
            # No prices known: cost-aware objectives have nothing to trade; route on success.
            config, state = replace(goal.config, objective="success"), engine.ControllerState()
            ranking = engine.rank_paths(arms, config=config, rng=_rng, bucket=bucket or None)
        shares = engine.allocation_shares(
            arms,
            config=config,
            rng=_rng,
            state=state,
            bucket=bucket or None,
            draws=PROPENSITY_DRAWS,
        )
    return ranking, shares


def request_features(
    messages: list[dict[str, Any]], metadata: dict[str, Any] | None, passthrough: dict[str, Any]
) -> Features:
    """The call's features; a malformed request is the caller's error (400)."""
    try:
        return compute_features(
            messages,
            metadata=metadata,
            response_format=passthrough.get("response_format"),
            tools=passthrough.get("tools") or passthrough.get("functions"),
        )
    except ValueError as error:
        raise InvalidRequest(str(error), param="messages") from error


def _rules_for(
    goal: GoalRoute, features: Features, classifier_label: str
) -> tuple[RuleResult, dict[str, Any]]:
    """The goal's rules over this call, and what the decision should say about them."""
    notes: dict[str, Any] = {}
    if goal.rules_error:
        notes["rules_error"] = goal.rules_error  # stored rules refused: routed without them
    if not goal.rules:
        return NO_RULES, notes
    names = {**features.as_names(), "classifier_label": classifier_label}
    result = rules_apply(goal.rules, names, available={plan.name for plan in goal.paths})
    if result.excluded and all(plan.name in result.excluded for plan in goal.paths):
        # Checked at save against the paths enabled then; a path disabled since (or its
        # provider) can still leave nothing: call the goal's paths rather than none.
        notes["rules_ignored"] = "the excludes would leave no enabled path; they were ignored"
        result = replace(result, excluded=frozenset())
    return result, notes


def route_plan(
    *,
    goal: GoalRoute,
    api_key: ApiKeyRecord | None,
    messages: list[dict[str, Any]],
    metadata: dict[str, Any] | None,
    passthrough: dict[str, Any],
    learned: Learned | None = None,
    features: Features | None = None,
    classification: Classification | None = None,
) -> RoutePlan:
    """Features, the goal's rules and the engine's ranking over the goal's cached paths; no
    SQL when `learned` (the goal's posteriors and controller state) is given, as the async
    callers do. `classification`: the classifier step's result, if the goal has one."""
    if not goal.active:
        raise ConfigurationError(f"Goal '{goal.slug}' is paused.")
    if not goal.paths:
        raise ConfigurationError(f"Goal '{goal.slug}' has no enabled path.")
    if features is None:
        features = request_features(messages, metadata, passthrough)
    learned = learned or learned_get(goal.id)
    label = classification.label if classification is not None else ""
    rules, rule_notes = _rules_for(goal, features, label)
    bucket = rules.bucket or bucket_for(goal, features)
    by_id = {plan.id: plan for plan in goal.paths}
    in_play = [plan for plan in goal.paths if plan.name not in rules.excluded]
    try:
        arms, refused = arms_usable(
            arms_for(
                paths=in_play,
                evidence=evidence_decayed(
                    learned.rows,
                    half_life_seconds=goal.half_life_seconds,
                    buckets=(bucket, GOAL_WIDE),
                ),
                bucket=bucket,
                expected_cost=lambda path: float(
                    path.cost(features.prompt_tokens, path.expected_output_tokens)
                ),
            )
        )
        if not arms:
            raise ConfigurationError(
                f"Goal '{goal.slug}' has no path the engine can use: {'; '.join(refused.values())}",
                refused_paths=refused,
            )
        ranking, shares = _rank(arms, goal, bucket, learned.controller_state())
    except engine.EngineError as error:
        # Numbers stored before they were validated (or edited in the database) that concern
        # the goal as a whole: a configuration to fix, not a server failure.
        raise ConfigurationError(
            f"Goal '{goal.slug}' cannot route as configured: {error}"
        ) from error
    details = dict(ranking.details)
    if refused:
        # A path the engine refuses is left out, not the call; the decision says why.
        details["refused_paths"] = refused
    if rules.excluded:
        details["excluded_paths"] = sorted(rules.excluded)
    details.update(rule_notes)
    probabilities = {int(path_id): share for path_id, share in shares.items()}
    pinned_id = next((plan.id for plan in in_play if plan.name == rules.pinned), None)
    if pinned_id is not None and str(pinned_id) in ranking.order:
        # The pin is called first; the engine's order of the others is the fallback order.
        order = (str(pinned_id), *(p for p in ranking.order if p != str(pinned_id)))
        ranking = replace(ranking, order=order)
        probabilities = {pinned_id: 1.0}
    else:
        pinned_id = None
    ranking = replace(ranking, details=details)
    baseline = goal.baseline
    if baseline is None:
        # No baseline configured: compare with the most expensive path (normally the strongest).
        priced = [plan for plan in goal.paths if plan.price_out is not None]
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
        rule_hits=rules.hits,
        pinned_path_id=pinned_id,
        probabilities=probabilities,
        goal_version=goal.version,
        classifier_label=label,
        classifier_cost=classification.cost if classification is not None else Decimal(0),
        classifier=classification.as_dict() if classification is not None else {},
        shadow_rate=goal.shadow_rate,
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
        arguments: dict[str, Any] = {
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
    if plan.pinned_path_id is not None:
        return RoutingDecision.Reason.RULE
    if plan.ranking.reason == "exploration":
        return RoutingDecision.Reason.EXPLORATION
    return RoutingDecision.Reason.THOMPSON


def decision_record(
    *, plan: RoutePlan, execution: ExecutionResult
) -> tuple[RoutingDecision, float | None]:
    """Store the decision, its automatic outcome and what the router learns, atomically: one
    statement, no lock but the counter rows it increments (services.learning)."""
    now = timezone.now()
    result, path = execution.result, execution.path
    tokens_in = result.prompt_tokens if result else 0
    tokens_out = result.completion_tokens if result else 0
    cost = path.cost(tokens_in, tokens_out) if path else Decimal(0)
    baseline_cost = (
        plan.baseline.cost(tokens_in, tokens_out) if (plan.baseline and path) else Decimal(0)
    )
    value, note = success_when_check(plan.success_when, result.response) if result else (None, "")
    decision = RoutingDecision(
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
        rule_hits=plan.rule_hits,
        propensity=plan.probabilities.get(path.id) if path else None,
        goal_version=plan.goal_version,
        classifier_label=plan.classifier_label,
        classifier_cost=plan.classifier_cost,
        classifier=plan.classifier,
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
    # Sampled for shadow traffic: the pending comparison goes into the same statement.
    shadow_baseline_id = shadow_baseline_for(plan, execution)
    observed = decision_insert(
        decision,
        outcome=value if path is not None else None,
        source=Outcome.Source.SUCCESS_WHEN,
        note=note,
        shadow_baseline_id=shadow_baseline_id,
    )
    if observed:
        nudge_on_commit(plan.goal_id)
    if shadow_baseline_id is not None and result is not None:
        shadow_enqueue_on_commit(
            decision_id=decision.pk,
            messages=plan.messages,
            params=plan.passthrough,
            served=result.response,
        )
    return decision, value


def upstream_failure(decision: RoutingDecision) -> UpstreamFailed:
    return UpstreamFailed(
        "Every path of the goal failed upstream.",
        request_id=decision.request_id,
        attempts=decision.attempts,
    )


def completion_record(
    *, plan: RoutePlan, execution: ExecutionResult
) -> tuple[RoutingDecision, float | None]:
    """The call's one database unit, after its upstream call: `decision_record`, and the key's
    last use (written at most once a minute per key and process)."""
    recorded = decision_record(plan=plan, execution=execution)
    learned_note_decision(plan.goal_id)
    if plan.api_key_id is not None:
        api_key_touch(key_id=plan.api_key_id)
    return recorded


async def route_plan_async(
    *,
    goal: GoalRoute,
    api_key: ApiKeyRecord | None,
    messages: list[dict[str, Any]],
    metadata: dict[str, Any] | None,
    passthrough: dict[str, Any],
) -> RoutePlan:
    """`route_plan` on the event loop: the learned state comes from this process's snapshot
    (read on the DB pool only when it is missing or too old), the classifier step (if the
    goal has one) is an upstream call, the rest is computation."""
    features = request_features(messages, metadata, passthrough)
    classification = None
    if goal.classifier is not None and goal.active and goal.paths:
        classification = await classify(goal, messages)
    return route_plan(
        goal=goal,
        api_key=api_key,
        messages=messages,
        metadata=metadata,
        passthrough=passthrough,
        learned=await learned_aget(goal.id),
        features=features,
        classification=classification,
    )


async def completion_create(
    *,
    goal: GoalRoute,
    api_key: ApiKeyRecord | None,
    messages: list[dict[str, Any]],
    metadata: dict[str, Any] | None = None,
    passthrough: dict[str, Any] | None = None,
) -> tuple[RoutePlan, ExecutionResult, RoutingDecision]:
    """Plan, call upstream, record; raises UpstreamFailed (once recorded) if every path fails.
    With warm caches the only SQL is the record, after the upstream call."""
    plan = await route_plan_async(
        goal=goal,
        api_key=api_key,
        messages=messages,
        metadata=metadata,
        passthrough=passthrough or {},
    )
    execution = await route_execute(plan)
    decision, _ = await run_db(completion_record, plan=plan, execution=execution)
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
