from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from routerapp import models


@admin.register(models.Provider)
class ProviderAdmin(admin.ModelAdmin):
    """Read-only here: providers change through the web app or the API, where the key rules
    (bound to the base URL, allowed variables) and the audit log apply."""

    list_display = ["name", "kind", "base_url", "enabled"]
    exclude = ["api_key_encrypted"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(models.ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    list_display = [
        "provider",
        "model",
        "input_per_million",
        "output_per_million",
        "effective_from",
    ]


class PathInline(admin.TabularInline):
    model = models.Path
    extra = 0


@admin.register(models.Goal)
class GoalAdmin(admin.ModelAdmin):
    list_display = ["slug", "objective", "status", "quality_target", "updated_at"]
    # Written by the controller's fold only (services/controller.py).
    readonly_fields = ["controller_state", "controller_cursor"]
    inlines = [PathInline]


@admin.register(models.Path)
class PathAdmin(admin.ModelAdmin):
    list_display = ["goal", "name", "provider", "model", "weight", "enabled"]
    list_filter = ["goal"]


@admin.register(models.Posterior)
class PosteriorAdmin(admin.ModelAdmin):
    list_display = ["goal", "path", "bucket", "successes", "failures", "updated_at"]
    readonly_fields = ["successes", "failures", "updated_at"]


@admin.register(models.RoutingDecision)
class RoutingDecisionAdmin(admin.ModelAdmin):
    list_display = ["request_id", "goal", "path", "reason", "status", "cost", "created_at"]
    list_filter = ["goal", "reason", "status"]
    search_fields = ["request_id"]
    raw_id_fields = ["path", "api_key"]


@admin.register(models.Outcome)
class OutcomeAdmin(admin.ModelAdmin):
    list_display = ["decision", "value", "source", "reported_at"]
    raw_id_fields = ["decision"]


@admin.register(models.HourlyRollup)
class HourlyRollupAdmin(admin.ModelAdmin):
    list_display = ["goal", "path", "hour", "requests", "outcomes", "spend", "baseline_spend"]


@admin.register(models.ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "scopes", "created_at", "revoked_at"]
    exclude = ["hashed_secret"]
    readonly_fields = ["prefix"]


@admin.register(models.AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor", "action", "object_type", "object_id", "ip"]
    readonly_fields = [f.name for f in models.AuditLog._meta.fields]
