"""GET /api/v1/reports/savings and /api/v1/reports/regret: the dashboard figures as JSON or CSV.

Parameters: `from`, `to` (ISO date or datetime; default the last 30 days; `to` is exclusive),
`goal` (slug), `granularity` (hour|day). CSV with `Accept: text/csv` or `?format=csv`: the
report's `rows` (flat), one line each.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import renderers, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from routerapp.api.permissions import request_api_key
from routerapp.errors import NotFound
from routerapp.models import ApiKey, Goal
from routerapp.selectors.goals import goal_ids_visible
from routerapp.selectors.regret import RegretCounts, RegretRow, regret_report
from routerapp.selectors.reports import GRANULARITIES, SavingsRow, Totals, savings_report
from routerapp.services.access import api_key_check

DEFAULT_WINDOW = timedelta(days=30)
MONEY_PLACES = 8


class CsvRenderer(renderers.BaseRenderer):
    """Renders a report's `rows` as CSV (header from the first row); other bodies (errors) as
    key,value lines."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        if isinstance(data, dict) and isinstance(data.get("rows"), list):
            rows = data["rows"]
            header = list(rows[0]) if rows else list(data.get("columns", []))
            writer.writerow(header)
            for row in rows:
                writer.writerow(["" if row.get(name) is None else row.get(name) for name in header])
        elif isinstance(data, dict):
            for key, value in data.items():
                writer.writerow([key, value])
        response = (renderer_context or {}).get("response")
        if response is not None and response.status_code == 200:
            view = (renderer_context or {}).get("view")
            name = getattr(view, "csv_filename", "report.csv")
            response["Content-Disposition"] = f'attachment; filename="{name}"'
        return buffer.getvalue().encode(self.charset)


def _money(value: Decimal | None) -> float | None:
    return None if value is None else round(float(value), MONEY_PLACES)


def _ratio(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


class ReportQuerySerializer(serializers.Serializer):
    start = serializers.DateTimeField(required=False)
    end = serializers.DateTimeField(required=False)
    goal = serializers.SlugField(required=False)
    granularity = serializers.ChoiceField(choices=GRANULARITIES, default="day")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs.setdefault("end", timezone.now())
        attrs.setdefault("start", attrs["end"] - DEFAULT_WINDOW)
        if attrs["end"] <= attrs["start"]:
            raise serializers.ValidationError({"to": ["'to' must be after 'from'."]})
        if attrs["granularity"] == "hour" and attrs["end"] - attrs["start"] > timedelta(days=93):
            raise serializers.ValidationError(
                {"granularity": ["Hourly reports cover at most 93 days; use granularity=day."]}
            )
        return attrs


class _ReportBody(serializers.Serializer):
    """The envelope both reports share (response documentation only)."""

    # `from` is a keyword: declared below through the fields mapping.
    to = serializers.DateTimeField()
    granularity = serializers.ChoiceField(choices=GRANULARITIES)
    goal = serializers.CharField(allow_null=True)
    columns = serializers.ListField(child=serializers.CharField())

    def get_fields(self) -> dict[str, serializers.Field]:
        return {"from": serializers.DateTimeField(), **super().get_fields()}


class SavingsTotalsSerializer(serializers.Serializer):
    requests = serializers.IntegerField()
    spend = serializers.FloatField(allow_null=True, help_text="routed calls only")
    baseline_spend = serializers.FloatField(allow_null=True)
    savings = serializers.FloatField(allow_null=True, help_text="baseline_spend - spend")
    savings_pct = serializers.FloatField(allow_null=True)
    classifier_spend = serializers.FloatField(allow_null=True)
    shadow_spend = serializers.FloatField(allow_null=True)
    judge_spend = serializers.FloatField(allow_null=True)
    net_savings = serializers.FloatField(
        allow_null=True,
        help_text="savings - classifier_spend - shadow_spend - judge_spend",
    )
    net_savings_pct = serializers.FloatField(allow_null=True)


def _period() -> serializers.CharField:
    return serializers.CharField(
        help_text="ISO date (granularity=day) or date and time (granularity=hour), UTC"
    )


class SavingsRowSerializer(SavingsTotalsSerializer):
    period = _period()
    goal = serializers.CharField()
    path = serializers.CharField()
    model = serializers.CharField()


class SavingsReportSerializer(_ReportBody):
    totals = SavingsTotalsSerializer()
    rows = SavingsRowSerializer(many=True)


class PositionBiasSerializer(serializers.Serializer):
    first_shown_wins = serializers.IntegerField()
    decisive = serializers.IntegerField(help_text="judged comparisons that were not a tie")
    rate = serializers.FloatField(allow_null=True, help_text="first_shown_wins / decisive")
    low = serializers.FloatField(allow_null=True)
    high = serializers.FloatField(allow_null=True)


class FunnelSerializer(serializers.Serializer):
    judged = serializers.IntegerField()
    unjudgeable = serializers.IntegerField()
    shadow_failed = serializers.IntegerField()
    over_budget = serializers.IntegerField()
    dropped = serializers.IntegerField()
    pending = serializers.IntegerField(help_text="sampled, not yet in a terminal state")


class RegretFiguresSerializer(serializers.Serializer):
    sampled = serializers.IntegerField()
    judged = serializers.IntegerField()
    regret = serializers.IntegerField(help_text="judged with the baseline's answer better")
    same = serializers.IntegerField()
    worse = serializers.IntegerField()
    regret_rate = serializers.FloatField(allow_null=True, help_text="regret / judged")
    low = serializers.FloatField(allow_null=True, help_text="95% Wilson interval")
    high = serializers.FloatField(allow_null=True, help_text="95% Wilson interval")
    mean_score_delta = serializers.FloatField(
        allow_null=True, help_text="baseline minus served score, per judged comparison"
    )
    position_bias = PositionBiasSerializer()
    funnel = FunnelSerializer()
    shadow_spend = serializers.FloatField()
    judge_spend = serializers.FloatField()


class RegretPathSerializer(RegretFiguresSerializer):
    goal = serializers.CharField()
    path = serializers.CharField()
    model = serializers.CharField()


class RegretBucketSerializer(RegretFiguresSerializer):
    goal = serializers.CharField()
    bucket = serializers.CharField()


class RegretSeriesSerializer(RegretFiguresSerializer):
    period = _period()
    goal = serializers.CharField()


class RegretRowSerializer(serializers.Serializer):
    """One CSV line: a period, goal, served path and bucket, the funnel flattened."""

    period = _period()
    goal = serializers.CharField()
    path = serializers.CharField()
    model = serializers.CharField()
    bucket = serializers.CharField(allow_blank=True)
    sampled = serializers.IntegerField()
    judged = serializers.IntegerField()
    regret = serializers.IntegerField()
    regret_rate = serializers.FloatField(allow_null=True)
    low = serializers.FloatField(allow_null=True)
    high = serializers.FloatField(allow_null=True)
    mean_score_delta = serializers.FloatField(allow_null=True)
    unjudgeable = serializers.IntegerField()
    shadow_failed = serializers.IntegerField()
    over_budget = serializers.IntegerField()
    dropped = serializers.IntegerField()
    pending = serializers.IntegerField()
    first_shown_wins = serializers.IntegerField()
    decisive = serializers.IntegerField()
    shadow_spend = serializers.FloatField()
    judge_spend = serializers.FloatField()


class RegretReportSerializer(_ReportBody, RegretFiguresSerializer):
    """The window's figures at the top level (the issue's contract: `sampled`, `judged`,
    `regret_rate`, `low`, `high`, `shadow_spend`, `funnel`), and again as `totals` beside the
    breakdowns, the shape of the savings report."""

    totals = RegretFiguresSerializer()
    paths = RegretPathSerializer(many=True)
    buckets = RegretBucketSerializer(many=True)
    series = RegretSeriesSerializer(many=True)
    rows = RegretRowSerializer(many=True)


REGRET_COLUMNS = list(RegretRowSerializer().fields)


REPORT_PARAMETERS = [
    OpenApiParameter(
        "from",
        OpenApiTypes.DATETIME,
        description="ISO date or datetime (default: 30 days ago)",
    ),
    OpenApiParameter(
        "to",
        OpenApiTypes.DATETIME,
        description="ISO date or datetime, exclusive (default: now)",
    ),
    OpenApiParameter(
        "goal",
        str,
        pattern=r"^[-a-zA-Z0-9_]+$",
        description="goal slug (default: every goal)",
    ),
    OpenApiParameter("granularity", str, enum=list(GRANULARITIES), default="day"),
    OpenApiParameter("format", str, enum=["json", "csv"], description="or Accept: text/csv"),
]


def goal_named(request: Request, slug: str | None) -> Goal | None:
    """The goal a `goal` query parameter names (None when it names none): 404 for an unknown
    slug, 403 for a goal the caller's key is not allowed to read."""
    if not slug:
        return None
    goal = Goal.objects.filter(slug=slug).first()
    if goal is None:
        raise NotFound(f"Unknown goal '{slug}'.")
    key = request_api_key(request)
    if key is not None:
        api_key_check(key=key, scope=ApiKey.Scope.READ, goal=goal)
    return goal


class _ReportApi(APIView):
    read_scope = ApiKey.Scope.READ
    read_role = "view"
    renderer_classes = [renderers.JSONRenderer, renderers.BrowsableAPIRenderer, CsvRenderer]
    csv_filename = "report.csv"

    def query(self, request: Request) -> tuple[dict[str, Any], Goal | None, list[int] | None]:
        params = request.query_params
        data = {
            name: params[public]
            for public, name in (
                ("from", "start"),
                ("to", "end"),
                ("goal", "goal"),
                ("granularity", "granularity"),
            )
            if params.get(public)
        }
        serializer = ReportQuerySerializer(data=data)
        if not serializer.is_valid():
            errors = {
                {"start": "from", "end": "to"}.get(k, k): v for k, v in serializer.errors.items()
            }
            raise serializers.ValidationError(errors)
        attrs = serializer.validated_data
        key = request_api_key(request)
        return attrs, goal_named(request, attrs.get("goal")), goal_ids_visible(api_key=key)


SAVINGS_COLUMNS = ["period", "goal", "path", "model", *SavingsTotalsSerializer().fields]


def _savings_figures(figures: Totals | SavingsRow) -> dict[str, float | None]:
    return {
        "spend": _money(figures.spend),
        "baseline_spend": _money(figures.baseline_spend),
        "savings": _money(figures.savings),
        "savings_pct": _ratio(figures.savings_pct),
        "classifier_spend": _money(figures.classifier_spend),
        "shadow_spend": _money(figures.shadow_spend),
        "judge_spend": _money(figures.judge_spend),
        "net_savings": _money(figures.net_savings),
        "net_savings_pct": _ratio(figures.net_savings_pct),
    }


def _regret_figures(counts: RegretCounts) -> dict[str, Any]:
    bias = counts.position_bias
    return {
        "sampled": counts.sampled,
        "judged": counts.judged,
        "regret": counts.regret,
        "same": counts.same,
        "worse": counts.worse,
        "regret_rate": _ratio(counts.regret_rate),
        "low": _ratio(counts.low),
        "high": _ratio(counts.high),
        "mean_score_delta": _ratio(counts.mean_score_delta),
        "position_bias": {
            **bias,
            **{name: _ratio(bias[name]) for name in ("rate", "low", "high")},
        },
        "funnel": counts.funnel,
        "shadow_spend": _money(counts.shadow_spend),
        "judge_spend": _money(counts.judge_spend),
    }


def _regret_row(row: RegretRow) -> dict[str, Any]:
    figures = _regret_figures(row.counts)
    flat = {
        "period": row.period,
        "goal": row.goal,
        "path": row.path,
        "model": row.model,
        "bucket": row.bucket,
        **figures,
        **figures["funnel"],
        "first_shown_wins": row.counts.first_shown_wins,
        "decisive": row.counts.decisive,
    }
    return {name: flat[name] for name in REGRET_COLUMNS}


class SavingsReportApi(_ReportApi):
    csv_filename = "savings.csv"

    @extend_schema(
        parameters=REPORT_PARAMETERS,
        responses={(200, "application/json"): SavingsReportSerializer, (200, "text/csv"): str},
    )
    def get(self, request: Request) -> Response:
        attrs, goal, goal_ids = self.query(request)
        report = savings_report(
            start=attrs["start"],
            end=attrs["end"],
            goal=goal,
            granularity=attrs["granularity"],
            goal_ids=goal_ids,
        )
        totals = report.totals
        body = {
            "from": report.start,
            "to": report.end,
            "granularity": report.granularity,
            "goal": report.goal,
            "totals": {"requests": totals.requests, **_savings_figures(totals)},
            "rows": [
                {
                    "period": row.period,
                    "goal": row.goal,
                    "path": row.path,
                    "model": row.model,
                    "requests": row.requests,
                    **_savings_figures(row),
                }
                for row in report.rows
            ],
            "columns": SAVINGS_COLUMNS,
        }
        return Response(body)


class RegretReportApi(_ReportApi):
    csv_filename = "regret.csv"

    @extend_schema(
        parameters=REPORT_PARAMETERS,
        responses={(200, "application/json"): RegretReportSerializer, (200, "text/csv"): str},
    )
    def get(self, request: Request) -> Response:
        attrs, goal, goal_ids = self.query(request)
        report = regret_report(
            start=attrs["start"],
            end=attrs["end"],
            goal=goal,
            granularity=attrs["granularity"],
            goal_ids=goal_ids,
        )
        body = {
            "from": report.start,
            "to": report.end,
            "granularity": report.granularity,
            "goal": report.goal,
            **_regret_figures(report.totals),
            "totals": _regret_figures(report.totals),
            "paths": [
                {"goal": row.goal, "path": row.path, "model": row.model}
                | _regret_figures(row.counts)
                for row in report.paths
            ],
            "buckets": [
                {"goal": row.goal, "bucket": row.bucket} | _regret_figures(row.counts)
                for row in report.buckets
            ],
            "series": [
                {"period": row.period, "goal": row.goal} | _regret_figures(row.counts)
                for row in report.series
            ],
            "rows": [_regret_row(row) for row in report.rows],
            "columns": REGRET_COLUMNS,
        }
        return Response(body)
