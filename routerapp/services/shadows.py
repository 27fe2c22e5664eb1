"""Shadow traffic and downgrade regret (issue 11, DESIGN §8).

A share (`Goal.shadow_rate`) of the calls *not* served by the goal's baseline path is also sent
to the baseline in the background, and a judge compares both answers:

1. Sampling (request path): `shadow_sampled` hashes the request id, so the choice is
   reproducible. A sampled call's pending `ShadowComparison` and `RegretRollup.sampled += 1`
   are written in the decision's own statement (services.learning); after commit the
   `shadow_compare` task is published with what the decision does not store (the messages,
   the pass-through parameters, the served response). The broker fails fast (settings); when
   it is down the comparison ends `dropped` and the client's call is unaffected.
2. The task (`shadow_compare_run`): budget check, the shadow call to the baseline path with the
   same messages and parameters (tools, response_format ...), judging per `Goal.judge_mode`
   (routerapp.judging), then `shadow_finish`: one statement that moves the comparison from
   `pending` to its terminal state (a conditional UPDATE, so a task run twice counts once),
   adds its counters to the regret rollup, and, learning from shadows, moves the baseline's
   posterior and logs a `reference` observation for the quality controller.
3. After a judged comparison the goal's regret alert is re-checked (services.alerts).

Every sampled call ends in exactly one of: judged, unjudgeable, shadow_failed, over_budget,
dropped (a comparison left pending by a lost message is swept to dropped, `shadows_sweep`).
Shadow and judge spend live in the regret rollup only, never in `HourlyRollup.spend`, so they
never count as routed spend or in the savings (reports net them out separately).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from routerapp import engine, judging
from routerapp.expressions import (
    CompiledExpression,
    ExpressionError,
    compile_expression,
    plain_view,
)
from routerapp.models import (
    GOAL_WIDE,
    ControllerObservation,
    Goal,
    ModelPrice,
    Outcome,
    Path,
    Posterior,
    RegretRollup,
    RoutingDecision,
    ShadowComparison,
)
from routerapp.models.goals import RESPONSE_NAMES
from routerapp.providers.client import ProviderConfig, chat
from routerapp.providers.errors import ProviderError
from routerapp.providers.redaction import redact
from routerapp.selectors.catalog_cache import provider_config
from routerapp.services.learning import _DECAY

if TYPE_CHECKING:
    from routerapp.services.routing import ExecutionResult, RoutePlan

logger = logging.getLogger(__name__)

State = ShadowComparison.State
MAX_STORED_TEXT = 8000
# Judge calls per comparison: one retry on a malformed verdict or a failed call, then
# `unjudgeable`.
JUDGE_ATTEMPTS = 2


# --------------------------------------------------------------------------- 1. sampling


def shadow_sampled(request_id: str, rate: float) -> bool:
    """Whether this call is shadowed at `rate`: a uniform number from the request id's hash,
    so the same request id is always sampled the same way (reproducible, testable)."""
    if rate <= 0.0:
        return False
    if rate >= 1.0:
        return True
    digest = hashlib.sha256(f"shadow:{request_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def _finished(response: Mapping[str, Any]) -> bool:
    # A stream the client abandoned is recorded with what it got: no answer to compare.
    choices = response.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    return isinstance(first, Mapping) and bool(first.get("finish_reason"))


def shadow_baseline_for(plan: RoutePlan, execution: ExecutionResult) -> int | None:
    """The baseline path id to shadow this call to, or None: only an answered call served by
    another path than the baseline (configured, else the most expensive path, as for the
    baseline cost), sampled at the goal's rate."""
    served, result, baseline = execution.path, execution.result, plan.baseline
    if served is None or result is None or baseline is None or baseline.id == served.id:
        return None
    if not _finished(result.response):
        return None
    if not shadow_sampled(plan.request_id, plan.shadow_rate):
        return None
    return baseline.id


def shadow_enqueue_on_commit(
    *,
    decision_id: int,
    messages: list[dict[str, Any]],
    params: Mapping[str, Any],
    served: Mapping[str, Any],
) -> None:
    """Publish the comparison's task once the decision is committed (at once in autocommit)."""
    payload = shadow_payload(
        decision_id=decision_id, messages=messages, params=params, served=served
    )
    transaction.on_commit(lambda: shadow_enqueue(payload), robust=True)


def shadow_payload(
    *,
    decision_id: int,
    messages: list[dict[str, Any]],
    params: Mapping[str, Any],
    served: Mapping[str, Any],
) -> dict[str, Any]:
    """The task's message: what the decision row does not store (the whole conversation, the
    pass-through parameters such as tools and response_format, the served response)."""
    return {
        "decision_id": decision_id,
        "messages": messages,
        "params": dict(params),
        "served": dict(served),
    }


def shadow_enqueue(payload: dict[str, Any]) -> bool:
    """Publish `shadow_compare`; on any failure (broker down, refused, timed out) the
    comparison ends `dropped`. Never raises: the client's call has already succeeded."""
    from routerapp.tasks import shadow_compare as shadow_compare_task

    try:
        shadow_compare_task.apply_async(args=[payload], retry=False)
    except Exception as error:  # kombu and redis raise several types; all mean "not queued"
        logger.warning("shadow of decision %s dropped: %s", payload["decision_id"], error)
        try:
            comparison = ShadowComparison.objects.filter(decision_id=payload["decision_id"]).first()
            if comparison is not None:
                shadow_finish(
                    comparison=comparison,
                    state=State.DROPPED,
                    error=redact(f"broker unavailable: {error}"),
                )
        except Exception:
            logger.exception("shadow of decision %s: could not record the drop", payload)
        return False
    return True


# --------------------------------------------------------------------------- 2. finishing

# One statement per terminal state: the conditional UPDATE claims the comparison (nothing
# follows when it was not pending any more), then the regret rollup counters, and, learning
# from shadows, the baseline's posterior and the controller's reference observation. Counter
# rows move by atomic increments, as in services.learning.
_FINISH = f"""
WITH s AS (
    UPDATE {ShadowComparison._meta.db_table} SET
        state = %(state)s, judge_mode = %(judge_mode)s, shadow_text = %(shadow_text)s,
        shadow_tokens_in = %(stin)s, shadow_tokens_out = %(stout)s,
        shadow_cost = %(shadow_cost)s, judge_cost = %(judge_cost)s, verdict = %(verdict)s,
        score_delta = %(score_delta)s, reason = %(reason)s,
        baseline_shown_first = %(shown_first)s, judge_attempts = %(attempts)s,
        error = %(error)s, finished_at = now()
    WHERE id = %(id)s AND state = 'pending'
    RETURNING id, goal_id, decision_id, served_path_id, bucket, created_at
),
r AS (
    INSERT INTO {RegretRollup._meta.db_table} AS rr
        (goal_id, path_id, bucket, hour, judged, regret, same, worse, unjudgeable,
         shadow_failed, over_budget, dropped, first_shown_wins, decisive, score_delta_sum,
         shadow_spend, judge_spend)
    SELECT s.goal_id, s.served_path_id, s.bucket, date_trunc('hour', s.created_at),
           %(n_judged)s, %(n_regret)s, %(n_same)s, %(n_worse)s, %(n_unjudgeable)s,
           %(n_shadow_failed)s, %(n_over_budget)s, %(n_dropped)s, %(n_first_wins)s,
           %(n_decisive)s, %(delta_sum)s, %(shadow_cost)s, %(judge_cost)s
    FROM s WHERE s.served_path_id IS NOT NULL
    ON CONFLICT (goal_id, path_id, bucket, hour) DO UPDATE SET
        judged = rr.judged + EXCLUDED.judged,
        regret = rr.regret + EXCLUDED.regret,
        same = rr.same + EXCLUDED.same,
        worse = rr.worse + EXCLUDED.worse,
        unjudgeable = rr.unjudgeable + EXCLUDED.unjudgeable,
        shadow_failed = rr.shadow_failed + EXCLUDED.shadow_failed,
        over_budget = rr.over_budget + EXCLUDED.over_budget,
        dropped = rr.dropped + EXCLUDED.dropped,
        first_shown_wins = rr.first_shown_wins + EXCLUDED.first_shown_wins,
        decisive = rr.decisive + EXCLUDED.decisive,
        score_delta_sum = rr.score_delta_sum + EXCLUDED.score_delta_sum,
        shadow_spend = rr.shadow_spend + EXCLUDED.shadow_spend,
        judge_spend = rr.judge_spend + EXCLUDED.judge_spend
),
p AS (
    INSERT INTO {Posterior._meta.db_table} AS p
        (goal_id, path_id, bucket, successes, failures, updated_at)
    SELECT s.goal_id, %(baseline)s, b.bucket, %(ds)s, %(df)s, now()
    FROM s, (SELECT DISTINCT unnest(ARRAY[%(goal_wide)s, %(bucket)s]) AS bucket ORDER BY 1) AS b
    WHERE %(ds)s::float8 IS NOT NULL
    ON CONFLICT (path_id, bucket) DO UPDATE SET
        successes = GREATEST(p.successes * {_DECAY} + %(ds)s, 0),
        failures = GREATEST(p.failures * {_DECAY} + %(df)s, 0),
        updated_at = now()
),
c AS (
    INSERT INTO {ControllerObservation._meta.db_table}
        (goal_id, decision_id, kind, path_id, bucket, value, reference_quality, xid)
    SELECT s.goal_id, s.decision_id, %(kind)s, %(baseline)s, s.bucket, %(ref_value)s,
           %(ref_quality)s, pg_current_xact_id()::text::bigint
    FROM s WHERE %(ref_value)s::float8 IS NOT NULL AND %(ref_quality)s::float8 IS NOT NULL
    ON CONFLICT (decision_id, kind) DO NOTHING
    RETURNING id
)
SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM c)"""


@dataclass
class ShadowCall:
    text: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    cost: Decimal = Decimal(0)


@dataclass
class JudgeRun:
    judgement: judging.Judgement | None = None
    attempts: int = 0
    cost: Decimal = Decimal(0)
    error: str = ""
    errors: list[str] = field(default_factory=list)


def shadow_finish(
    *,
    comparison: ShadowComparison,
    state: str,
    judge_mode: str = "",
    shadow: ShadowCall | None = None,
    judge: JudgeRun | None = None,
    error: str = "",
    learn: bool = False,
    reference_quality: float | None = None,
) -> bool:
    """Move a pending comparison to `state` with everything that follows, in one statement.
    False when it was no longer pending (another run finished it: nothing is counted twice)."""
    shadow = shadow or ShadowCall()
    judge = judge or JudgeRun()
    judgement = judge.judgement if state == State.JUDGED else None
    first_won = judging.first_shown_won(judgement) if judgement else None
    verdict = judgement.verdict if judgement else ""
    learned = judgement.baseline_success if (judgement and learn) else None
    delta = engine.outcome_delta(learned) if learned is not None else (None, None)
    params: dict[str, Any] = {
        "id": comparison.pk,
        "state": state,
        "judge_mode": judge_mode,
        "shadow_text": shadow.text[:MAX_STORED_TEXT],
        "stin": shadow.tokens_in,
        "stout": shadow.tokens_out,
        "shadow_cost": shadow.cost,
        "judge_cost": judge.cost,
        "verdict": verdict,
        "score_delta": judgement.score_delta if judgement else None,
        "reason": judgement.reason if judgement else "",
        "shown_first": judgement.baseline_shown_first if judgement else None,
        "attempts": judge.attempts,
        "error": (error or judge.error)[:2000],
        "n_judged": int(state == State.JUDGED),
        "n_regret": int(verdict == "better"),
        "n_same": int(verdict == "same"),
        "n_worse": int(verdict == "worse"),
        "n_unjudgeable": int(state == State.UNJUDGEABLE),
        "n_shadow_failed": int(state == State.SHADOW_FAILED),
        "n_over_budget": int(state == State.OVER_BUDGET),
        "n_dropped": int(state == State.DROPPED),
        # Position bias: only judgements that showed the answers in an order count.
        "n_first_wins": int(first_won is True),
        "n_decisive": int(first_won is not None),
        "delta_sum": (judgement.score_delta or 0.0) if judgement else 0.0,
        "baseline": comparison.baseline_path_id,
        "goal_wide": GOAL_WIDE,
        "bucket": comparison.bucket,
        "ds": delta[0],
        "df": delta[1],
        "kind": ControllerObservation.Kind.REFERENCE,
        "ref_value": learned,
        "ref_quality": reference_quality,
    }
    with connection.cursor() as cursor:
        cursor.execute(_FINISH, params)
        claimed, _ = cursor.fetchone()
    return bool(claimed)


# --------------------------------------------------------------------------- 2. the task


def _price(provider_id: int, model: str) -> tuple[Decimal, Decimal] | None:
    row = (
        ModelPrice.objects.filter(
            provider_id=provider_id, model=model, effective_from__lte=timezone.now().date()
        )
        .order_by("-effective_from")
        .values_list("input_per_million", "output_per_million")
        .first()
    )
    return (row[0], row[1]) if row else None


def _cost(price: tuple[Decimal, Decimal] | None, tokens_in: int, tokens_out: int) -> Decimal:
    if price is None:
        return Decimal(0)
    return (price[0] * tokens_in + price[1] * tokens_out) / Decimal(1_000_000)


def shadow_month_spend(goal_id: int) -> Decimal:
    """Shadow + judge spend of the goal's calls since the start of this month (UTC)."""
    start = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    totals = RegretRollup.objects.filter(goal_id=goal_id, hour__gte=start).aggregate(
        shadow=Sum("shadow_spend"), judge=Sum("judge_spend")
    )
    return (totals["shadow"] or Decimal(0)) + (totals["judge"] or Decimal(0))


@lru_cache(maxsize=256)
def _compiled(source: str) -> CompiledExpression:
    return compile_expression(source, names=RESPONSE_NAMES)


def _passes(source: str, response: Mapping[str, Any]) -> bool:
    # As the automatic outcome does (services.routing): a condition that cannot be evaluated
    # on an answer counts as a failure of that answer.
    try:
        return bool(_compiled(source).evaluate({"response": plain_view(dict(response))}))
    except ExpressionError:
        return False


def _with_system(path: Path, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not path.system_prompt:
        return messages
    return [{"role": "system", "content": path.system_prompt}, *messages]


def _run(coroutine: Any) -> Any:
    # A fresh loop per call (the provider client cache closes that loop's clients with it).
    return asyncio.run(coroutine)


def _shadow_call(
    path: Path, messages: list[dict[str, Any]], params: Mapping[str, Any]
) -> tuple[ShadowCall, dict[str, Any]]:
    """The baseline's answer to the same messages and parameters (its own parameters first,
    the call's pass-through fields over them, as routing does). Raises ProviderError."""
    result = _run(
        chat(
            provider_config(path.provider),
            model=path.model,
            messages=_with_system(path, messages),
            params={**path.call_params(), **params},
        )
    )
    price = _price(path.provider_id, path.model)
    answer = judging.answer_of(result.response)
    call = ShadowCall(
        text=judging.answer_text(answer),
        tokens_in=result.prompt_tokens,
        tokens_out=result.completion_tokens,
        cost=_cost(price, result.prompt_tokens, result.completion_tokens),
    )
    return call, result.response


def _judge_llm(
    *,
    goal: Goal,
    comparison: ShadowComparison,
    conversation: list[dict[str, Any]],
    baseline: dict[str, Any],
    served: dict[str, Any],
    served_value: float | None,
    compared_models: list[str],
) -> JudgeRun:
    """The LLM judge: one call, one retry on a malformed reply or a failed call, then
    unjudgeable (never a tie made up for a judge that did not answer)."""
    run = JudgeRun()
    provider = goal.judge_provider
    if provider is None or not goal.judge_model.strip():
        run.error = "No judge model is configured for this goal."
        return run
    conflict = judging.judge_model_conflict(goal.judge_model, compared_models)
    if conflict:
        run.error = conflict
        return run
    config: ProviderConfig = provider_config(provider)
    price = _price(provider.pk, goal.judge_model)
    baseline_first = judging.baseline_shown_first(comparison.pk)
    first, second = (baseline, served) if baseline_first else (served, baseline)
    messages = judging.judge_messages(
        rubric=goal.judge_rubric, conversation=conversation, first=first, second=second
    )
    for _ in range(JUDGE_ATTEMPTS):
        run.attempts += 1
        try:
            result = _run(
                chat(
                    config,
                    model=goal.judge_model,
                    messages=messages,
                    params={"max_completion_tokens": goal.judge_max_tokens},
                )
            )
        except ProviderError as failure:
            run.errors.append(f"judge call failed: {failure.message}")
            continue
        run.cost += _cost(price, result.prompt_tokens, result.completion_tokens)
        reply = judging.answer_of(result.response)["content"]
        try:
            output = judging.judge_output_parse(reply)
        except judging.JudgeOutputError as refused:
            run.errors.append(f"malformed verdict: {refused}")
            # The retry says what was wrong; the refused reply goes back as the judge's own.
            messages = [
                *messages,
                {"role": "assistant", "content": reply[:4000]},
                {
                    "role": "user",
                    "content": f"That reply was refused ({refused}). Answer with only the "
                    "JSON object described, nothing else.",
                },
            ]
            continue
        run.judgement = judging.llm_judgement(
            output, baseline_first=baseline_first, served_value=served_value
        )
        return run
    run.error = "; ".join(run.errors)
    return run


def _judge(
    *,
    goal: Goal,
    comparison: ShadowComparison,
    conversation: list[dict[str, Any]],
    baseline_response: Mapping[str, Any],
    served_response: Mapping[str, Any],
    served_value: float | None,
    compared_models: list[str],
) -> JudgeRun:
    baseline = judging.answer_of(baseline_response)
    served = judging.answer_of(served_response)
    mode = goal.judge_mode
    if mode == Goal.JudgeMode.SUCCESS_WHEN:
        if not goal.success_when.strip():
            return JudgeRun(error="The goal has no success_when to judge both answers with.")
        return JudgeRun(
            judgement=judging.success_when_judgement(
                baseline_passed=_passes(goal.success_when, baseline_response),
                served_passed=_passes(goal.success_when, served_response),
            )
        )
    if mode in (Goal.JudgeMode.EXACT, Goal.JudgeMode.NORMALIZED):
        return JudgeRun(
            judgement=judging.match_judgement(
                baseline, served, normalised=mode == Goal.JudgeMode.NORMALIZED
            )
        )
    return _judge_llm(
        goal=goal,
        comparison=comparison,
        conversation=conversation,
        baseline=baseline,
        served=served,
        served_value=served_value,
        compared_models=compared_models,
    )


def _served_outcome_from_judge(decision_id: int, value: float, note: str) -> None:
    """The served call's outcome from the judgement, when it has none yet (a later report
    replaces it as usual)."""
    from routerapp.services.outcomes import outcome_report

    with transaction.atomic():
        decision = RoutingDecision.objects.select_for_update(no_key=True).get(pk=decision_id)
        if Outcome.objects.filter(decision=decision).exists():
            return
        outcome_report(decision=decision, value=value, source=Outcome.Source.JUDGE, note=note)


def shadow_compare_run(*, payload: Mapping[str, Any]) -> str:
    """The `shadow_compare` task's work for one sampled call; returns the comparison's state.
    Idempotent: a comparison that is no longer pending is left as it is."""
    comparison = (
        ShadowComparison.objects.select_related(
            "goal__judge_provider", "baseline_path__provider", "served_path", "decision"
        )
        .filter(decision_id=payload["decision_id"])
        .first()
    )
    if comparison is None:
        return "missing"
    if comparison.state != State.PENDING:
        return str(comparison.state)
    goal = comparison.goal
    mode = str(goal.judge_mode)
    if shadow_month_spend(goal.pk) >= goal.shadow_budget_usd:
        shadow_finish(comparison=comparison, state=State.OVER_BUDGET, judge_mode=mode)
        return State.OVER_BUDGET
    baseline_path = comparison.baseline_path
    if baseline_path is None:
        shadow_finish(
            comparison=comparison,
            state=State.SHADOW_FAILED,
            judge_mode=mode,
            error="The baseline path was deleted.",
        )
        return State.SHADOW_FAILED
    messages = list(payload.get("messages") or [])
    try:
        shadow, baseline_response = _shadow_call(
            baseline_path, messages, dict(payload.get("params") or {})
        )
    except ProviderError as failure:  # its message is redacted by the provider client
        shadow_finish(
            comparison=comparison,
            state=State.SHADOW_FAILED,
            judge_mode=mode,
            error=failure.message,
        )
        return State.SHADOW_FAILED
    decision = comparison.decision
    served_value = (
        Outcome.objects.filter(decision_id=decision.pk).values_list("value", flat=True).first()
    )
    compared = list(goal.paths.values_list("model", flat=True))
    try:
        judge = _judge(
            goal=goal,
            comparison=comparison,
            conversation=_with_system(baseline_path, messages),
            baseline_response=baseline_response,
            served_response=dict(payload.get("served") or {}),
            served_value=served_value,
            compared_models=compared,
        )
    except Exception as failure:  # a bug must not leave the comparison pending for ever
        logger.exception("shadow of decision %s: judging failed", decision.pk)
        judge = JudgeRun(error=redact(f"judging failed: {failure}"))
    state = State.JUDGED if judge.judgement is not None else State.UNJUDGEABLE
    reference = decision.explanation.get("reference_quality")
    claimed = shadow_finish(
        comparison=comparison,
        state=state,
        judge_mode=mode,
        shadow=shadow,
        judge=judge,
        learn=goal.learn_from_shadows,
        reference_quality=float(reference) if isinstance(reference, int | float) else None,
    )
    if claimed and judge.judgement is not None:
        served_success = judge.judgement.served_success
        if goal.learn_from_shadows and served_success is not None:
            _served_outcome_from_judge(
                decision.pk, served_success, f"shadow comparison: {judge.judgement.reason}"
            )
        from routerapp.services.alerts import regret_alert_check

        try:
            regret_alert_check(goal_id=goal.pk)
        except Exception:  # the comparison is stored; the periodic check retries the alert
            logger.exception("regret alert check of goal %s failed", goal.pk)
    return state


def shadows_sweep(*, older_than: timedelta | None = None) -> int:
    """Comparisons still pending long after their call (a message lost with a worker, a
    broker restarted without persistence) end `dropped`, so the funnel closes. Returns how
    many."""
    if older_than is None:
        older_than = timedelta(seconds=settings.SHADOW_PENDING_TIMEOUT_SECONDS)
    stale = ShadowComparison.objects.filter(
        state=State.PENDING, created_at__lt=timezone.now() - older_than
    ).only("id", "baseline_path_id", "bucket")
    return sum(
        shadow_finish(
            comparison=comparison,
            state=State.DROPPED,
            error="never processed (message lost); swept after the pending timeout",
        )
        for comparison in stale[:1000]
    )
