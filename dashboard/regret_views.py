"""The Regret page: the downgrade-regret rate over time with its interval and the goal's alert
threshold, by served path and bucket, the funnel of sampled calls, shadow and judge spend, and
the comparisons themselves (both answers side by side, the judge's reason). Read-only: the
`view` role; signed-in users see every goal (roles, not goal lists, limit people)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from dashboard import charts
from dashboard.decorators import role_required
from dashboard.forms import ReportWindowForm
from routerapp.models import Goal, ShadowComparison
from routerapp.selectors.regret import regret_report, shadow_comparison_list

COMPARISONS_PER_PAGE = 20
STATE_LABELS = dict(ShadowComparison.State.choices)


@require_GET
@role_required("view")
def regret(request: HttpRequest) -> HttpResponse:
    form = ReportWindowForm(request.GET, default_window="7d")
    start, end, granularity, window = form.window_bounds()
    slug = form.cleaned_data.get("goal") if form.is_valid() else None
    goal = Goal.objects.filter(slug=slug).first() if slug else None
    report = regret_report(start=start, end=end, goal=goal, granularity=granularity)
    comparisons = Paginator(
        shadow_comparison_list(goal=goal, start=start, end=end), COMPARISONS_PER_PAGE
    ).get_page(request.GET.get("page"))
    # The pager's links keep the page's own filters.
    filters = request.GET.copy()
    filters.pop("page", None)
    export_query = {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "granularity": granularity,
        "format": "csv",
        **({"goal": goal.slug} if goal else {}),
    }
    return render(
        request,
        "dashboard/regret.html",
        {
            "form": form,
            "window": window,
            "report": report,
            "goal": goal,
            "goals": Goal.objects.order_by("slug").values_list("slug", flat=True),
            "figures": [
                (
                    "fig-regret-rate",
                    charts.regret_rate_figure(
                        [row.as_dict() for row in report.series], thresholds=report.thresholds
                    ),
                ),
                ("fig-regret-funnel", charts.regret_funnel_figure(report.totals.funnel)),
            ],
            "funnel": [
                (state, STATE_LABELS[state], calls) for state, calls in report.totals.funnel.items()
            ],
            "comparisons": comparisons,
            "page_query": filters.urlencode(),
            "export_url": f"{reverse('report-regret')}?{urlencode(export_query)}",
        },
    )
