"""Traffic: one routing decision per call, its current outcome, and hourly rollups."""

from __future__ import annotations

import secrets

from django.db import models
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
    rule_hits = models.JSONField(default=list)
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
