"""GET /api/v1/reports/savings and /api/v1/reports/regret: the dashboard figures as JSON or CSV.

Parameters: `from`, `to` (ISO date or datetime; default the last 30 days; `to` is exclusive),
`goal` (slug), `granularity` (hour|day). CSV with `Accept: text/csv` or `?format=csv`.
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
from routerapp.selectors.reports import GRANULARITIES, regret_report, savings_report
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
    spend = serializers.FloatField(allow_null=True)
    baseline_spend = serializers.FloatField(allow_null=True)
    savings = serializers.FloatField(allow_null=True)
    savings_pct = serializers.FloatField(allow_null=True)


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


class RegretTotalsSerializer(serializers.Serializer):
    shadow_comparisons = serializers.IntegerField()
    regrets = serializers.IntegerField()
    regret_rate = serializers.FloatField(allow_null=True)


class RegretRowSerializer(RegretTotalsSerializer):
    period = _period()
    goal = serializers.CharField()
    path = serializers.CharField()


class RegretReportSerializer(_ReportBody):
    totals = RegretTotalsSerializer()
    rows = RegretRowSerializer(many=True)


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
        goal = None
        if attrs.get("goal"):
            goal = Goal.objects.filter(slug=attrs["goal"]).first()
            if goal is None:
                raise NotFound(f"Unknown goal '{attrs['goal']}'.")
            if key is not None:
                api_key_check(key=key, scope=ApiKey.Scope.READ, goal=goal)
        return attrs, goal, goal_ids_visible(api_key=key)


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
            "totals": {
                "requests": totals.requests,
                "spend": _money(totals.spend),
                "baseline_spend": _money(totals.baseline_spend),
                "savings": _money(totals.savings),
                "savings_pct": _ratio(totals.savings_pct),
            },
            "rows": [
                {
                    "period": row.period,
                    "goal": row.goal,
                    "path": row.path,
                    "model": row.model,
                    "requests": row.requests,
                    "spend": _money(row.spend),
                    "baseline_spend": _money(row.baseline_spend),
                    "savings": _money(row.savings),
                    "savings_pct": _ratio(row.savings_pct),
                }
                for row in report.rows
            ],
            "columns": [
                "period",
                "goal",
                "path",
                "model",
                "requests",
                "spend",
                "baseline_spend",
                "savings",
                "savings_pct",
            ],
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
        body = regret_report(
            start=attrs["start"],
            end=attrs["end"],
            goal=goal,
            granularity=attrs["granularity"],
            goal_ids=goal_ids,
        )
        body["columns"] = ["period", "goal", "path", "shadow_comparisons", "regrets", "regret_rate"]
        return Response(body)
