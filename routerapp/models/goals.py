"""Goals (named jobs) and their paths (a model on a provider with parameters)."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import cast

from django.core.exceptions import ValidationError
from django.core.validators import BaseValidator, MaxValueValidator, MinValueValidator
from django.db import models

from routerapp import engine
from routerapp.expressions import ExpressionError, compile_expression
from routerapp.judging import judge_model_conflict

RESPONSE_NAMES = ("response",)


def engine_range(
    bounds: engine.Bounds, *, low: float | None = None, high: float | None = None
) -> list[BaseValidator]:
    """Validators of a number the engine consumes: the engine's own range, narrowed where the
    product wants less (`low`/`high`; never widened). One validator per side, so DRF and the
    model forms show them as the field's minimum and maximum."""
    low = bounds.low if low is None else max(low, bounds.low)
    high = bounds.high if high is None else min(high, bounds.high)
    validators: list[BaseValidator] = [MinValueValidator(low)]
    if math.isfinite(high):
        validators.append(MaxValueValidator(high))
    return validators


def validate_success_when(source: str) -> None:
    if not source.strip():
        return
    try:
        compile_expression(source, names=RESPONSE_NAMES)
    except ExpressionError as error:
        raise ValidationError(str(error)) from error


class Goal(models.Model):
    class JudgeMode(models.TextChoices):
        LLM = "llm", "LLM judge"
        SUCCESS_WHEN = "success_when", "success_when on both answers"
        EXACT = "exact", "Exact match"
        NORMALIZED = "normalized", "Normalised match (case, spaces, punctuation)"

    class Objective(models.TextChoices):
        SUCCESS = "success", "Highest success"
        COST_AT_QUALITY = "cost_at_quality", "Cheapest at quality target"
        UTILITY = "utility", "Success minus cost"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"

    class BucketBy(models.TextChoices):
        NONE = "none", "No buckets (goal-wide)"
        COMPLEXITY = "complexity", "Complexity (simple / medium / complex)"
        TASK_TYPE = "task_type", "Task type"

    # What operators set (the web form and the API edit the same fields).
    EDITABLE_FIELDS = (
        "slug",
        "description",
        "success_when",
        "objective",
        "quality_target",
        "exploration_floor",
        "prior_strength",
        "half_life_seconds",
        "bucket_by",
        "shadow_rate",
        "status",
        "baseline_path",
    )
    # Also set by operators (through change requests once the goal exists): the classifier
    # step, shadow traffic and its judge, the regret alert.
    SETTINGS_FIELDS = (
        "classifier_path",
        "classifier_prompt",
        "classifier_timeout_seconds",
        "shadow_budget_usd",
        "judge_mode",
        "judge_provider",
        "judge_model",
        "judge_rubric",
        "judge_max_tokens",
        "learn_from_shadows",
        "regret_threshold",
        "regret_window",
        "alert_webhook_url",
    )

    slug = models.SlugField(max_length=100, unique=True, help_text="The goal_id clients send.")
    description = models.TextField(blank=True)
    success_when = models.TextField(
        blank=True,
        validators=[validate_success_when],
        help_text="Python-like condition over `response`, e.g. "
        "response.choices[0].finish_reason == 'stop'",
    )
    objective = models.CharField(
        max_length=20, choices=Objective.choices, default=Objective.COST_AT_QUALITY
    )
    # Every number the engine reads is checked at save against the engine's own bounds.
    quality_target = models.FloatField(
        default=0.95, validators=engine_range(engine.CONFIG_BOUNDS["quality_target"])
    )
    exploration_floor = models.FloatField(
        default=0.01,
        # Past 0.5 two paths would be drawn at random on every call.
        validators=engine_range(engine.CONFIG_BOUNDS["exploration_floor"], high=0.5),
    )
    prior_strength = models.FloatField(
        default=engine.DEFAULT_PRIOR_STRENGTH,
        validators=engine_range(engine.CONFIG_BOUNDS["prior_strength"], low=0.01),
    )
    half_life_seconds = models.FloatField(
        null=True,
        blank=True,
        validators=engine_range(engine.CONFIG_BOUNDS["half_life_seconds"], low=1.0),
        help_text="Evidence older than this counts half; empty = never forget.",
    )
    bucket_by = models.CharField(max_length=16, choices=BucketBy.choices, default=BucketBy.NONE)
    # Rules: an ordered list of {"name", "condition", "action", "paths", "bucket"} (rules.py
    # validates it); versioned with the goal through change requests.
    rules = models.JSONField(default=list, blank=True)
    # Optional classifier step: a cheap model labels each request simple | complex before the
    # rules run (`classifier_label`). Off while `classifier_path` is empty.
    classifier_path = models.ForeignKey(
        "routerapp.Path", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    classifier_prompt = models.TextField(blank=True)
    classifier_timeout_seconds = models.FloatField(
        default=2.0, validators=[MinValueValidator(0.1), MaxValueValidator(30.0)]
    )
    # Shadow traffic: this share of the calls not served by the baseline path is also sent to
    # the baseline in the background and judged.
    shadow_rate = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    shadow_budget_usd = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        default=Decimal("10"),
        validators=[MinValueValidator(Decimal(0))],
        help_text="Monthly cap on shadow + judge spend (USD).",
    )
    judge_mode = models.CharField(max_length=16, choices=JudgeMode.choices, default=JudgeMode.LLM)
    judge_provider = models.ForeignKey(
        "routerapp.Provider", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    judge_model = models.CharField(max_length=200, blank=True)
    judge_rubric = models.TextField(blank=True)
    judge_max_tokens = models.PositiveIntegerField(
        default=2048, validators=[MinValueValidator(16), MaxValueValidator(65536)]
    )
    learn_from_shadows = models.BooleanField(default=True)
    regret_threshold = models.FloatField(
        default=0.03, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    regret_window = models.PositiveIntegerField(
        default=200, validators=[MinValueValidator(10), MaxValueValidator(100_000)]
    )
    alert_webhook_url = models.URLField(max_length=500, blank=True)
    # Learned state of the regret alert (services write it with update_fields, never a form):
    # {"active": bool, "since": iso, "rate": r, "low": l, "high": h, "judged": n, ...}.
    regret_alert = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    baseline_path = models.ForeignKey(
        "routerapp.Path", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The engine's online cost/quality controller (engine.ControllerState.to_dict()), folded
    # off the request path from the goal's ControllerObservation log (services/controller.py).
    controller_state = models.JSONField(default=dict, blank=True)
    # Every observation whose transaction id is below this is folded into controller_state.
    controller_cursor = models.BigIntegerField(default=0)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    def clean(self) -> None:
        # A judge must not judge its own model's answers (self-preference); the same rule
        # (judging.judge_model_conflict) checks change-request snapshots and new paths.
        if self.pk is not None and self.judge_mode == self.JudgeMode.LLM:
            conflict = judge_model_conflict(
                self.judge_model, self.paths.values_list("model", flat=True)
            )
            if conflict:
                raise ValidationError({"judge_model": conflict})

    def engine_config(self, *, objective: str | None = None) -> engine.EngineConfig:
        return engine.EngineConfig(
            # EngineConfig checks the name at run time; the field's choices are the same names.
            objective=cast(engine.Objective, objective or self.objective),
            quality_target=self.quality_target,
            exploration_floor=self.exploration_floor,
            prior_strength=self.prior_strength,
            half_life_seconds=self.half_life_seconds,
        )


class Path(models.Model):
    # What operators set on a path of a goal (the web form and the API edit the same fields).
    EDITABLE_FIELDS = (
        "name",
        "provider",
        "model",
        "temperature",
        "max_tokens",
        "system_prompt",
        "extra_params",
        "weight",
        "alpha0",
        "beta0",
        "expected_output_tokens",
        "enabled",
    )

    goal = models.ForeignKey(Goal, on_delete=models.CASCADE, related_name="paths")
    name = models.SlugField(max_length=100, help_text="Unique within the goal, e.g. gpt-4o-mini.")
    provider = models.ForeignKey(
        "routerapp.Provider", on_delete=models.PROTECT, related_name="paths"
    )
    model = models.CharField(max_length=200)
    temperature = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.0), MaxValueValidator(2.0)]
    )
    max_tokens = models.PositiveIntegerField(null=True, blank=True)
    system_prompt = models.TextField(blank=True)
    extra_params = models.JSONField(default=dict, blank=True)
    weight = models.FloatField(default=1.0, validators=engine_range(engine.WEIGHT_BOUNDS))
    alpha0 = models.FloatField(null=True, blank=True, validators=engine_range(engine.PRIOR_BOUNDS))
    beta0 = models.FloatField(null=True, blank=True, validators=engine_range(engine.PRIOR_BOUNDS))
    expected_output_tokens = models.PositiveIntegerField(
        default=200, help_text="Used for the expected cost before outputs are observed."
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["goal_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["goal", "name"], name="unique_path_name_per_goal")
        ]

    def __str__(self) -> str:
        return f"{self.goal.slug}:{self.name}"

    def clean(self) -> None:
        if (self.alpha0 is None) != (self.beta0 is None):
            raise ValidationError(
                "Set both alpha0 and beta0, or neither (then the weight is used)."
            )
        if not isinstance(self.extra_params, dict):
            raise ValidationError({"extra_params": "Must be a JSON object."})
        goal = self.goal if self.goal_id else None
        if goal is not None and goal.judge_mode == Goal.JudgeMode.LLM:
            conflict = judge_model_conflict(goal.judge_model, [self.model])
            if conflict:
                raise ValidationError({"model": conflict})

    def call_params(self) -> dict[str, object]:
        params: dict[str, object] = dict(self.extra_params or {})
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if self.max_tokens is not None:
            params["max_tokens"] = self.max_tokens
        return params
