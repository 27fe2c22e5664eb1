"""GET /api/v1/shadow-comparisons: the sampled calls, newest first, each with both answers,
the judge's verdict and reason, the order the judge saw them in, the costs and the funnel state.

Parameters: `goal` (slug), `state` (a funnel state), `limit`/`offset` (api/pagination.py). A
key restricted to some goals lists only theirs, and naming another goal is a 403.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers

from routerapp.api.permissions import request_api_key
from routerapp.api.reports import goal_named
from routerapp.models import ApiKey, ShadowComparison
from routerapp.selectors.goals import goal_ids_visible
from routerapp.selectors.regret import shadow_comparison_list


class ShadowComparisonSerializer(serializers.ModelSerializer):
    request_id = serializers.CharField(source="decision.request_id")
    goal = serializers.CharField(source="goal.slug")
    served_path = serializers.CharField(source="served_path.name", allow_null=True)
    served_model = serializers.CharField(source="served_path.model", allow_null=True)
    baseline_path = serializers.CharField(source="baseline_path.name", allow_null=True)
    baseline_model = serializers.CharField(source="baseline_path.model", allow_null=True)
    prompt = serializers.CharField(
        source="decision.prompt_preview", help_text="the start of the prompt, as the log keeps it"
    )
    served_answer = serializers.CharField(source="decision.response_text")
    baseline_answer = serializers.CharField(source="shadow_text")
    served_cost = serializers.DecimalField(
        source="decision.cost", max_digits=14, decimal_places=8, help_text="USD"
    )
    baseline_shown_first = serializers.BooleanField(
        allow_null=True,
        help_text="the order the judge saw the answers in (randomised per comparison); "
        "null when no judge saw them",
    )
    # Declared: a read-only model field would lose `allow_blank`, and the schema would not
    # list "" (not judged yet) among the values.
    verdict = serializers.ChoiceField(
        choices=ShadowComparison.Verdict.choices,
        allow_blank=True,
        help_text="the baseline's answer against the served one; empty until judged",
    )
    state = serializers.ChoiceField(choices=ShadowComparison.State.choices)
    score_delta = serializers.FloatField(
        allow_null=True, help_text="baseline score minus served score"
    )

    class Meta:
        model = ShadowComparison
        fields = [
            "id",
            "request_id",
            "goal",
            "bucket",
            "state",
            "served_path",
            "served_model",
            "baseline_path",
            "baseline_model",
            "prompt",
            "served_answer",
            "baseline_answer",
            "judge_mode",
            "verdict",
            "score_delta",
            "reason",
            "baseline_shown_first",
            "judge_attempts",
            "served_cost",
            "shadow_cost",
            "judge_cost",
            "shadow_tokens_in",
            "shadow_tokens_out",
            "error",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields


class ShadowComparisonQuerySerializer(serializers.Serializer):
    goal = serializers.SlugField(required=False)
    state = serializers.ChoiceField(choices=ShadowComparison.State.choices, required=False)


@extend_schema(
    parameters=[
        OpenApiParameter(
            "goal",
            str,
            pattern=r"^[-a-zA-Z0-9_]+$",
            description="goal slug (default: every goal the caller may read)",
        ),
        OpenApiParameter("state", str, enum=list(ShadowComparison.State.values)),
    ]
)
class ShadowComparisonListApi(generics.ListAPIView):
    read_scope = ApiKey.Scope.READ
    read_role = "view"
    serializer_class = ShadowComparisonSerializer

    def get_queryset(self) -> QuerySet[ShadowComparison]:
        request = self.request
        query = ShadowComparisonQuerySerializer(
            data={name: value for name, value in request.query_params.items() if value}
        )
        query.is_valid(raise_exception=True)
        attrs: dict[str, Any] = query.validated_data
        return shadow_comparison_list(
            goal=goal_named(request, attrs.get("goal")),
            goal_ids=goal_ids_visible(api_key=request_api_key(request)),
            state=attrs.get("state"),
        )
