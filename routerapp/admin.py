from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.forms import ModelForm
from django.http import HttpRequest

from routerapp import models
from routerapp.services.catalog import catalog_save
from routerapp.services.governance import (
    GOVERNED_GOAL_FIELDS,
    GOVERNED_PATH_FIELDS,
    PATH_CALL_FIELDS,
)


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


def _save_changed(request: HttpRequest, obj: Any, form: ModelForm, change: bool) -> None:
    """Save through catalog_save, naming only the fields the form changed: a whole-row save
    would put back a controller state the router updated since the page was opened."""
    if not change:
        obj.save()
        return
    stored = type(obj).objects.get(pk=obj.pk)
    data = {name: form.cleaned_data[name] for name in form.changed_data}
    catalog_save(instance=stored, data=data, actor=request.user, ip=request.META.get("REMOTE_ADDR"))


class PathInline(admin.TabularInline):
    """Shown, not edited here: paths are added on the pages or the API (created disabled on a
    live goal) and their routing fields change through change requests."""

    model = models.Path
    extra = 0
    fields = ("name", "provider", "model", *GOVERNED_PATH_FIELDS)
    readonly_fields = ("name", "provider", "model", *GOVERNED_PATH_FIELDS)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(models.Goal)
class GoalAdmin(admin.ModelAdmin):
    list_display = ["slug", "objective", "status", "quality_target", "version", "updated_at"]
    # Governed fields change through change requests only (services/governance.py); the
    # controller's fields are written by its fold only (services/controller.py).
    readonly_fields = [
        *GOVERNED_GOAL_FIELDS,
        "rules",
        "version",
        "regret_alert",
        "controller_state",
        "controller_cursor",
    ]
    inlines = [PathInline]

    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm, change: bool) -> None:
        _save_changed(request, obj, form, change)


@admin.register(models.Path)
class PathAdmin(admin.ModelAdmin):
    list_display = ["goal", "name", "provider", "model", "weight", "enabled"]
    list_filter = ["goal"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # added on the pages or the API, where a path on a live goal starts disabled

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # An enabled path's call settings are live routing too (services/governance.py).
        readonly = ["goal", *GOVERNED_PATH_FIELDS]
        if obj is not None and obj.enabled:
            readonly += PATH_CALL_FIELDS
        return readonly

    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm, change: bool) -> None:
        _save_changed(request, obj, form, change)


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
