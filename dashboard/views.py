"""Operator pages. Each view parses input, calls one selector or service, and renders.

Roles (routerapp.roles): every page needs a signed-in user with the `view` role; goal and path
edits and the playground need `operate`; providers, prices and API keys need `admin`. The same
decorator guards GET and POST.
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import urlencode

from asgiref.sync import async_to_sync
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Model
from django.forms import BaseForm
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dashboard import charts, governance_views
from dashboard.decorators import role_required
from dashboard.forms import (
    ApiKeyForm,
    DecisionFilterForm,
    ExpressionCheckForm,
    GoalForm,
    ModelPriceForm,
    PathForm,
    PlaygroundForm,
    PlaygroundOutcomeForm,
    ProviderForm,
    ReportWindowForm,
)
from routerapp.errors import RouterError
from routerapp.expressions import ExpressionError, compile_expression
from routerapp.models import ApiKey, Goal, ModelPrice, Path, Provider, RoutingDecision
from routerapp.models.goals import RESPONSE_NAMES
from routerapp.selectors import reports
from routerapp.selectors.catalog_cache import catalog_refresh
from routerapp.selectors.decisions import decision_get_detail, decision_list
from routerapp.selectors.goals import api_key_list, catalog_overview
from routerapp.selectors.posteriors import posterior_list_for_goal
from routerapp.services import access, routing
from routerapp.services.access import api_key_create
from routerapp.services.catalog import catalog_save
from routerapp.services.outcomes import outcome_report
from routerapp.services.providers import provider_save

LIVE_REFRESH_SECONDS = 3
DECISIONS_PER_PAGE = 50
PLAYGROUND_NOTE = "reported from the playground (ui) by {user}"


def _ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR")


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


# --------------------------------------------------------------------------- overview


@require_GET
@role_required("view")
def overview(request: HttpRequest) -> HttpResponse:
    form = ReportWindowForm(request.GET, default_window="7d")
    start, end, granularity, window = form.window_bounds()
    report = reports.overview_report(start=start, end=end, granularity=granularity)
    sparklines = [
        (
            summary,
            f"fig-spark-{index}",
            charts.sparkline_figure(
                summary.requests_series, periods=summary.periods, color=charts.color_for(index)
            ),
        )
        for index, summary in enumerate(report.goals)
    ]
    return render(
        request,
        "dashboard/overview.html",
        {
            "form": form,
            "window": window,
            "report": report,
            "sparklines": sparklines,
        },
    )


# --------------------------------------------------------------------------- goal detail


def _goal_live_context(goal: Goal, request: HttpRequest) -> dict[str, Any]:
    rows = [
        {**row.as_dict(), "observations": row.successes + row.failures}
        for row in posterior_list_for_goal(goal=goal)
    ]
    buckets = sorted({row["bucket"] for row in rows})
    form = ReportWindowForm(request.GET, default_window="24h")
    start, end, granularity, window = form.window_bounds()
    series = reports.goal_traffic_series(goal=goal, start=start, end=end, granularity=granularity)
    return {
        "goal": goal,
        "posteriors": rows,
        "observations": sum(row["observations"] for row in rows if not row["bucket"]),
        "posterior_figures": [
            (
                bucket or "goal-wide",
                f"fig-posterior-{index}",
                charts.posterior_figure(rows, bucket=bucket),
            )
            for index, bucket in enumerate(buckets)
        ],
        "share_figure": charts.share_over_time_figure(series),
        "success_figure": charts.success_rate_figure(series),
        "has_traffic": bool(series),
        "window": window,
        "refresh_seconds": LIVE_REFRESH_SECONDS,
        "updated_at": timezone.now(),
        "query": request.GET.urlencode(),
    }


@require_GET
@role_required("view")
def goal_detail(request: HttpRequest, slug: str) -> HttpResponse:
    goal = get_object_or_404(Goal.objects.select_related("baseline_path"), slug=slug)
    return render(request, "dashboard/goal_detail.html", _goal_live_context(goal, request))


@require_GET
@role_required("view")
def goal_live(request: HttpRequest, slug: str) -> HttpResponse:
    """The self-refreshing part of the goal page (htmx polls it)."""
    goal = get_object_or_404(Goal, slug=slug)
    return render(request, "dashboard/partials/_goal_live.html", _goal_live_context(goal, request))


# --------------------------------------------------------------------------- savings


@require_GET
@role_required("view")
def savings(request: HttpRequest) -> HttpResponse:
    form = ReportWindowForm(request.GET, default_window="30d")
    start, end, granularity, window = form.window_bounds()
    slug = form.cleaned_data.get("goal") if form.is_valid() else None
    goal = Goal.objects.filter(slug=slug).first() if slug else None
    report = reports.savings_report(start=start, end=end, goal=goal, granularity=granularity)
    rows = [row.as_dict() for row in report.rows]
    export_query = {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "granularity": granularity,
        "format": "csv",
        **({"goal": goal.slug} if goal else {}),
    }
    return render(
        request,
        "dashboard/savings.html",
        {
            "form": form,
            "window": window,
            "report": report,
            "goal": goal,
            "goals": Goal.objects.order_by("slug").values_list("slug", flat=True),
            "figures": [
                ("fig-spend-cumulative", charts.spend_vs_baseline_figure(rows, cumulative=True)),
                ("fig-spend-period", charts.spend_vs_baseline_figure(rows, cumulative=False)),
                ("fig-spend-goal", charts.spend_by_figure(rows, by="goal")),
                ("fig-spend-model", charts.spend_by_figure(rows, by="model")),
                (
                    "fig-cost-per-1k",
                    charts.cost_per_1k_figure([cost.as_dict() for cost in report.path_costs]),
                ),
            ],
            "export_url": f"{reverse('report-savings')}?{urlencode(export_query)}",
        },
    )


# --------------------------------------------------------------------------- decisions


@require_GET
@role_required("view")
def decisions(request: HttpRequest) -> HttpResponse:
    form = DecisionFilterForm(request.GET)
    older, newer = form.cursors()
    page = decision_list(
        filters=form.filters(), older_than=older, newer_than=newer, limit=DECISIONS_PER_PAGE
    )
    filters = {
        key: value
        for key, value in request.GET.items()
        if key in {"goal", "path", "reason", "outcome"} and value
    }
    return render(
        request,
        "dashboard/decisions.html",
        {
            "form": form,
            "page": page,
            "filters": filters,
            "goals": Goal.objects.order_by("slug").values_list("slug", flat=True),
        },
    )


@require_GET
@role_required("view")
def decision_detail(request: HttpRequest, request_id: str) -> HttpResponse:
    detail = decision_get_detail(request_id=request_id)
    if detail is None:
        raise Http404("No such decision.")
    return render(request, "dashboard/decision_detail.html", {"detail": detail})


# --------------------------------------------------------------------------- configuration


@require_GET
@role_required("view")
def configuration(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/configuration.html", {"catalog": catalog_overview()})


def _save(request: HttpRequest, form: BaseForm, *, instance: Model, data: dict[str, Any]) -> bool:
    """catalog_save, or provider_save for providers (validated, audited); a model-level
    refusal becomes a form error."""
    try:
        if isinstance(instance, Provider):
            provider_save(provider=instance, data=data, actor=request.user, ip=_ip(request))
        else:
            catalog_save(instance=instance, data=data, actor=request.user, ip=_ip(request))
    except ValidationError as error:
        for message in error.messages:
            form.add_error(None, message)
        return False
    return True


@require_http_methods(["GET", "POST"])
@role_required("operate")
def goal_create(request: HttpRequest) -> HttpResponse:
    form = GoalForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        goal = Goal()
        if _save(request, form, instance=goal, data=dict(form.cleaned_data)):
            messages.success(request, f"Goal {goal.slug} created. Now add its paths.")
            return redirect("dashboard:goal-edit", slug=goal.slug)
    return render(request, "dashboard/goal_form.html", {"form": form, "goal": None})


@require_http_methods(["GET", "POST"])
@role_required("operate")
def goal_edit(request: HttpRequest, slug: str) -> HttpResponse:
    goal = get_object_or_404(Goal, slug=slug)
    # The form validates a copy: catalog_save compares against the stored values to audit.
    form = GoalForm(request.POST or None, instance=copy.copy(goal))
    if request.method == "POST" and form.is_valid():
        # Descriptive fields save directly; routing fields become a change request.
        done = governance_views.goal_form_submit(request, form, goal=goal)
        if done is not None:
            return done
    return render(
        request,
        "dashboard/goal_form.html",
        {
            "form": form,
            "goal": goal,
            "paths": goal.paths.select_related("provider").order_by("id"),
        },
    )


@require_POST
@role_required("operate")
def expression_check(request: HttpRequest) -> HttpResponse:
    """htmx: compile success_when as it is typed; the error says where (line and column)."""
    form = ExpressionCheckForm(request.POST)
    source = form.cleaned_data["success_when"] if form.is_valid() else ""
    error = None
    if source.strip():
        try:
            compile_expression(source, names=RESPONSE_NAMES)
        except ExpressionError as exc:
            error = exc
    return render(
        request,
        "dashboard/partials/_expression_check.html",
        {"error": error, "empty": not source.strip()},
    )


@require_http_methods(["GET", "POST"])
@role_required("operate")
def path_create(request: HttpRequest, slug: str) -> HttpResponse:
    goal = get_object_or_404(Goal, slug=slug)
    form = PathForm(request.POST or None, instance=Path(goal=goal))
    if request.method == "POST" and form.is_valid():
        path = Path(goal=goal)
        if _save(request, form, instance=path, data=dict(form.cleaned_data)):
            note = ""
            if form.cleaned_data["enabled"] and not path.enabled:
                note = (
                    " It was created disabled: enabling a path on a goal that routes is a "
                    "routing change; propose it from the path's page."
                )
            messages.success(request, f"Path {path.name} added to {goal.slug}.{note}")
            return redirect("dashboard:goal-edit", slug=goal.slug)
    return render(request, "dashboard/path_form.html", {"form": form, "goal": goal, "path": None})


@require_http_methods(["GET", "POST"])
@role_required("operate")
def path_edit(request: HttpRequest, pk: int) -> HttpResponse:
    path = get_object_or_404(Path.objects.select_related("goal"), pk=pk)
    form = PathForm(request.POST or None, instance=copy.copy(path))
    if request.method == "POST" and form.is_valid():
        # Call settings save directly; weight, priors and enabled become a change request.
        done = governance_views.path_form_submit(request, form, path=path)
        if done is not None:
            return done
    return render(
        request, "dashboard/path_form.html", {"form": form, "goal": path.goal, "path": path}
    )


@require_http_methods(["GET", "POST"])
@role_required("admin")
def provider_create(request: HttpRequest) -> HttpResponse:
    form = ProviderForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        provider = Provider()
        if _save(request, form, instance=provider, data=form.catalog_data()):
            messages.success(request, f"Provider {provider.name} created.")
            return redirect("dashboard:configuration")
    return render(request, "dashboard/provider_form.html", {"form": form, "provider": None})


@require_http_methods(["GET", "POST"])
@role_required("admin")
def provider_edit(request: HttpRequest, pk: int) -> HttpResponse:
    provider = get_object_or_404(Provider, pk=pk)
    had_key = provider.has_api_key
    form = ProviderForm(request.POST or None, instance=copy.copy(provider))
    posted = request.method == "POST" and form.is_valid()
    if posted and _save(request, form, instance=provider, data=form.catalog_data()):
        messages.success(request, f"Provider {provider.name} saved.")
        if had_key and not provider.has_api_key:
            messages.warning(
                request,
                "The API key was cleared: a key is bound to its base URL and kind. "
                "Enter it again if it belongs to the new address.",
            )
        return redirect("dashboard:configuration")
    return render(request, "dashboard/provider_form.html", {"form": form, "provider": provider})


@require_http_methods(["GET", "POST"])
@role_required("admin")
def price_create(request: HttpRequest) -> HttpResponse:
    form = ModelPriceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        price = ModelPrice()
        if _save(request, form, instance=price, data=dict(form.cleaned_data)):
            messages.success(request, f"Price for {price.model} saved.")
            return redirect("dashboard:configuration")
    return render(request, "dashboard/price_form.html", {"form": form})


# --------------------------------------------------------------------------- playground


@require_http_methods(["GET", "POST"])
@role_required("operate")
def playground(request: HttpRequest) -> HttpResponse:
    """Send a prompt to a goal through the real routing path (no API key: a signed-in user)."""
    form = PlaygroundForm(request.POST or None, initial={"goal": request.GET.get("goal")})
    context: dict[str, Any] = {"form": form}
    if request.method == "POST" and form.is_valid():
        try:
            _, execution, decision = async_to_sync(routing.completion_create)(
                # Checked now, not within ROUTING_CACHE_SECONDS: an edit just saved applies.
                goal=catalog_refresh().goal(form.cleaned_data["goal"].slug),
                api_key=None,
                messages=[{"role": "user", "content": form.cleaned_data["prompt"]}],
            )
        except RouterError as error:
            context["error"] = error.message
            context["error_request_id"] = error.extra.get("request_id")
        else:
            context["detail"] = decision_get_detail(request_id=decision.request_id)
    return render(request, "dashboard/playground.html", context)


@require_POST
@role_required("operate")
def playground_outcome(request: HttpRequest) -> HttpResponse:
    """One-click outcome report for a playground answer (an API-source outcome, noted as ui)."""
    form = PlaygroundOutcomeForm(request.POST)
    if not form.is_valid():
        return HttpResponse("Bad outcome report.", status=400)
    decision = get_object_or_404(RoutingDecision, request_id=form.cleaned_data["request_id"])
    try:
        outcome_report(
            decision=decision,
            value=form.value,
            note=PLAYGROUND_NOTE.format(user=request.user.get_username()),
        )
    except RouterError as error:
        return HttpResponse(error.message, status=400)
    if not _is_htmx(request):
        messages.success(request, f"Outcome recorded: {form.cleaned_data['outcome']}.")
        return redirect("dashboard:decision-detail", request_id=decision.request_id)
    detail = decision_get_detail(request_id=decision.request_id)
    return render(
        request, "dashboard/partials/_outcome.html", {"detail": detail, "just_reported": True}
    )


# --------------------------------------------------------------------------- API keys


@require_http_methods(["GET", "POST"])
@role_required("admin")
def api_keys(request: HttpRequest) -> HttpResponse:
    form = ApiKeyForm(request.POST or None)
    context: dict[str, Any] = {"form": form}
    if request.method == "POST" and form.is_valid():
        try:
            key, raw = api_key_create(
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                goals=form.cleaned_data["allowed_goals"],
                rate_limit_per_minute=form.cleaned_data["rate_limit_per_minute"],
                created_by=request.user,
            )
        except RouterError as error:
            form.add_error(None, error.message)
        else:
            # Shown in this response only: the secret is not stored anywhere.
            context.update(created_key=key, created_secret=raw, form=ApiKeyForm())
    context["keys"] = api_key_list()
    return render(request, "dashboard/api_keys.html", context)


@require_POST
@role_required("admin")
def api_key_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    key = get_object_or_404(ApiKey, pk=pk)
    if access.api_key_revoke(key=key, actor=request.user, ip=_ip(request)):
        messages.success(request, f"Key {key.name} revoked.")
    return redirect(reverse("dashboard:api-keys"))
