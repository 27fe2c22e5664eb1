"""Traffic: one routing decision per call, its current outcome, and hourly rollups."""

from __future__ import annotations

import secrets

from django.db import models
from django.db.models.functions import Now
from django.utils import timezone


def new_request_id() -> str:
    return "req_" + secrets.token_hex(16)


class RoutingDecision(models.Model):
    class Reason(models.TextChoices):
        THOMPSON = "thompson", "Thompson sampling"
        EXPLORATION = "exploration", "Exploration floor"
        RULE = "rule", "Rule"
        FALLBACK = "fallback", "Fallback after provider error"
        CASCADE = "cascade", "Cascade escalation"
        CACHE = "cache", "Cache"

    class Status(models.TextChoices):
        OK = "ok", "OK"
        FAILED = "failed", "All providers failed"

    request_id = models.CharField(max_length=40, unique=True, default=new_request_id)
    goal = models.ForeignKey("routerapp.Goal", on_delete=models.CASCADE, related_name="decisions")
    path = models.ForeignKey(
        "routerapp.Path", null=True, blank=True, on_delete=models.SET_NULL, related_name="decisions"
    )
    bucket = models.CharField(max_length=100, blank=True)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    objective = models.CharField(max_length=20)
    ranking = models.JSONField(default=list)  # path ids in fallback order
    samples = models.JSONField(default=dict)  # path id -> sampled success
    explanation = models.JSONField(default=dict)  # engine details, reference quality
    features = models.JSONField(default=dict)
    rule_hits = models.JSONField(default=list)  # [{"rule": name, "action": ..., ...}]
    # The probability the policy gave the chosen path when it chose (for off-policy estimates
    # in change-request projections); None where it was not measured.
    propensity = models.FloatField(null=True, blank=True)
    goal_version = models.PositiveIntegerField(default=0)  # the configuration that routed it
    # The classifier step (Goal.classifier_path): its label ("" when off or failed), its cost
    # (netted out of savings) and what happened {"status": ok|timeout|malformed|error, ...}.
    classifier_label = models.CharField(max_length=16, blank=True)
    classifier_cost = models.DecimalField(max_digits=14, decimal_places=8, default=0)
    classifier = models.JSONField(default=dict, blank=True)
    attempts = models.JSONField(default=list)  # [{path, model, ok, error, latency_ms}]
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=8, default=0)
    baseline_cost = models.DecimalField(max_digits=14, decimal_places=8, default=0)
    latency_ms = models.FloatField(default=0.0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OK)
    prompt_preview = models.TextField(blank=True)
    response_text = models.TextField(blank=True)
    api_key = models.ForeignKey(
        "routerapp.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["goal", "-created_at"]),
            models.Index(fields=["path", "-created_at"]),
        ]

    def __str__(self) -> str:
        return self.request_id


class Outcome(models.Model):
    class Source(models.TextChoices):
        SUCCESS_WHEN = "success_when", "success_when"
        API = "api", "Outcome API"
        JUDGE = "judge", "Judge"

    decision = models.OneToOneField(
        RoutingDecision, on_delete=models.CASCADE, related_name="outcome"
    )
    value = models.FloatField()  # 1 = success, 0 = failure, or a score in between
    source = models.CharField(max_length=16, choices=Source.choices)
    note = models.TextField(blank=True)
    reported_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.decision.request_id}={self.value}"


class HourlyRollup(models.Model):
    """Per goal / path / hour sums that dashboards read instead of scanning decisions."""

    goal = models.ForeignKey("routerapp.Goal", on_delete=models.CASCADE, related_name="+")
    path = models.ForeignKey("routerapp.Path", on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField()
    requests = models.PositiveIntegerField(default=0)
    failed_requests = models.PositiveIntegerField(default=0)
    outcomes = models.PositiveIntegerField(default=0)
    success_sum = models.FloatField(default=0.0)
    spend = models.DecimalField(max_digits=16, decimal_places=8, default=0)
    baseline_spend = models.DecimalField(max_digits=16, decimal_places=8, default=0)
    classifier_spend = models.DecimalField(max_digits=16, decimal_places=8, db_default=0)
    latency_ms_sum = models.FloatField(default=0.0)
    tokens_in = models.BigIntegerField(default=0)
    tokens_out = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["goal", "path", "hour"], name="unique_rollup_hour")
        ]
        indexes = [models.Index(fields=["hour"]), models.Index(fields=["goal", "hour"])]

    def __str__(self) -> str:
        return f"{self.goal_id}/{self.path_id} @ {self.hour:%Y-%m-%d %H:00}"


class ShadowComparison(models.Model):
    """One sampled call: its answer against the baseline path's answer to the same request.

    Created (state `pending`) in the same statement as the decision, so every sampled call ends
    in exactly one funnel state."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        JUDGED = "judged", "Judged"
        UNJUDGEABLE = "unjudgeable", "Unjudgeable"
        SHADOW_FAILED = "shadow_failed", "Shadow call failed"
        OVER_BUDGET = "over_budget", "Over budget"
        DROPPED = "dropped", "Dropped (broker unavailable)"

    class Verdict(models.TextChoices):
        # The baseline's answer compared with the served answer.
        BETTER = "better", "Baseline better"
        SAME = "same", "Same"
        WORSE = "worse", "Baseline worse"

    decision = models.OneToOneField(
        RoutingDecision, on_delete=models.CASCADE, related_name="shadow"
    )
    goal = models.ForeignKey("routerapp.Goal", on_delete=models.CASCADE, related_name="+")
    served_path = models.ForeignKey(
        "routerapp.Path", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    baseline_path = models.ForeignKey(
        "routerapp.Path", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    bucket = models.CharField(max_length=100, blank=True, db_default="")
    state = models.CharField(max_length=16, choices=State.choices, db_default=State.PENDING)
    judge_mode = models.CharField(max_length=16, blank=True, db_default="")
    shadow_text = models.TextField(blank=True, db_default="")
    shadow_tokens_in = models.PositiveIntegerField(db_default=0)
    shadow_tokens_out = models.PositiveIntegerField(db_default=0)
    shadow_cost = models.DecimalField(max_digits=14, decimal_places=8, db_default=0)
    judge_cost = models.DecimalField(max_digits=14, decimal_places=8, db_default=0)
    verdict = models.CharField(max_length=8, choices=Verdict.choices, blank=True, db_default="")
    score_delta = models.FloatField(null=True, blank=True)  # baseline minus served
    reason = models.TextField(blank=True, db_default="")
    baseline_shown_first = models.BooleanField(null=True, blank=True)
    judge_attempts = models.PositiveSmallIntegerField(db_default=0)
    error = models.TextField(blank=True, db_default="")
    created_at = models.DateTimeField(db_default=Now(), db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["goal", "-created_at"]),
            models.Index(fields=["goal", "state"]),
        ]

    def __str__(self) -> str:
        return f"shadow of {self.decision_id}: {self.state}"


class RegretRollup(models.Model):
    """Per goal / served path / bucket / hour shadow sums that the regret pages read."""

    goal = models.ForeignKey("routerapp.Goal", on_delete=models.CASCADE, related_name="+")
    path = models.ForeignKey("routerapp.Path", on_delete=models.CASCADE, related_name="+")
    bucket = models.CharField(max_length=100, blank=True, db_default="")
    hour = models.DateTimeField()
    sampled = models.PositiveIntegerField(db_default=0)
    judged = models.PositiveIntegerField(db_default=0)
    regret = models.PositiveIntegerField(db_default=0)  # judged with verdict "better"
    same = models.PositiveIntegerField(db_default=0)
    worse = models.PositiveIntegerField(db_default=0)
    unjudgeable = models.PositiveIntegerField(db_default=0)
    shadow_failed = models.PositiveIntegerField(db_default=0)
    over_budget = models.PositiveIntegerField(db_default=0)
    dropped = models.PositiveIntegerField(db_default=0)
    first_shown_wins = models.PositiveIntegerField(db_default=0)
    # Judged comparisons that were not "same" (for the position-bias check).
    decisive = models.PositiveIntegerField(db_default=0)
    score_delta_sum = models.FloatField(db_default=0.0)
    shadow_spend = models.DecimalField(max_digits=16, decimal_places=8, db_default=0)
    judge_spend = models.DecimalField(max_digits=16, decimal_places=8, db_default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["goal", "path", "bucket", "hour"], name="unique_regret_rollup_hour"
            )
        ]
        indexes = [models.Index(fields=["goal", "hour"])]

    def __str__(self) -> str:
        return f"regret {self.goal_id}/{self.path_id}/{self.bucket} @ {self.hour:%Y-%m-%d %H:00}"
