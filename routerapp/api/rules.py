"""POST /api/v1/goals/{slug}/rules/test: which rules match a request and what the engine
would do with it now. A dry run (selectors/rules_test.py): nothing stored, nothing called."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from routerapp.api.permissions import request_api_key
from routerapp.models import ApiKey
from routerapp.rules import CLASSIFIER_LABELS
from routerapp.selectors.goals import goal_list_visible
from routerapp.selectors.rules_test import rules_dry_run


class RulesTestInputSerializer(serializers.Serializer):
    messages = serializers.ListField(
        child=serializers.DictField(),
        allow_empty=False,
        max_length=1000,
        help_text="The chat messages of the request, as sent to /v1/chat/completions.",
    )
    metadata = serializers.DictField(required=False, default=dict)
    rules = serializers.ListField(
        child=serializers.JSONField(),
        required=False,
        max_length=100,
        help_text="A draft rule set to test instead of the goal's live rules.",
    )
    tools = serializers.ListField(child=serializers.DictField(), required=False)
    functions = serializers.ListField(child=serializers.DictField(), required=False)
    response_format = serializers.JSONField(required=False)
    classifier_label = serializers.ChoiceField(
        choices=["", *CLASSIFIER_LABELS],
        required=False,
        default="",
        help_text="Stands in for the classifier step, which a dry run does not call.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # Misspelt fields are refused, never dropped: a typo in `rules` would test the live set.
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return attrs


class RuleHitSerializer(serializers.Serializer):
    rule = serializers.CharField()
    action = serializers.CharField()
    paths = serializers.ListField(child=serializers.CharField())
    bucket = serializers.CharField(allow_blank=True)
    condition = serializers.CharField()
    effect = serializers.ChoiceField(choices=["applied", "ignored", "skipped", "error"])
    note = serializers.CharField(required=False)
    error = serializers.CharField(required=False)


class RuleSerializer(serializers.Serializer):
    name = serializers.CharField()
    condition = serializers.CharField()
    action = serializers.ChoiceField(choices=["pin", "exclude", "bucket"])
    paths = serializers.ListField(child=serializers.CharField())
    bucket = serializers.CharField(allow_blank=True)


class RuleResultSerializer(serializers.Serializer):
    pinned = serializers.CharField(allow_null=True)
    excluded = serializers.ListField(child=serializers.CharField())
    bucket = serializers.CharField(allow_blank=True)


class EngineViewSerializer(serializers.Serializer):
    reason = serializers.CharField()
    objective = serializers.CharField()
    choice = serializers.CharField()
    order = serializers.ListField(child=serializers.CharField())
    probabilities = serializers.DictField(child=serializers.FloatField())
    samples = serializers.DictField(child=serializers.FloatField())


class RulesTestOutputSerializer(serializers.Serializer):
    goal = serializers.CharField()
    version = serializers.IntegerField()
    status = serializers.CharField()
    rules_source = serializers.ChoiceField(choices=["live", "draft"])
    rules = RuleSerializer(many=True)
    rules_error = serializers.CharField(allow_blank=True)
    classifier_label = serializers.CharField(allow_blank=True)
    classifier_note = serializers.CharField()
    matches = RuleHitSerializer(many=True)
    result = RuleResultSerializer()
    features = serializers.DictField()
    engine = EngineViewSerializer()


class GoalRulesTestApi(APIView):
    """A dry run: a POST that reads, so the read scope / view role may use it."""

    read_scope = write_scope = ApiKey.Scope.READ
    read_role = write_role = "view"
    http_method_names = ["post", "options"]

    @extend_schema(
        request=RulesTestInputSerializer,
        responses={200: RulesTestOutputSerializer},
        summary="Test a goal's rules (or a draft rule set) against one request",
        description=(
            "Which rules match the request, what they decide (pin, excluded paths, bucket), "
            "the request's features and what the engine would do now (order and each path's "
            "probability of being chosen first). Nothing is stored and nothing is called: the "
            "classifier step is not run; `classifier_label` stands in for it. An invalid "
            "draft rule answers 400 under `rules`, naming the rule and the error position."
        ),
        examples=[
            OpenApiExample(
                "Draft rule",
                request_only=True,
                value={
                    "messages": [{"role": "user", "content": "Extract the date: 3 May 2024"}],
                    "metadata": {"tier": "free"},
                    "rules": [
                        {
                            "name": "free-tier-cheap",
                            "condition": "get(metadata, 'tier') == 'free'",
                            "action": "pin",
                            "paths": ["gpt-4o-mini"],
                        }
                    ],
                },
            )
        ],
    )
    def post(self, request: Request, slug: str) -> Response:
        # A goal this key may not see is as unknown as on GET /goals/<slug>.
        goal = get_object_or_404(goal_list_visible(api_key=request_api_key(request)), slug=slug)
        data = RulesTestInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        attrs = data.validated_data
        passthrough = {
            name: attrs[name]
            for name in ("tools", "functions", "response_format")
            if attrs.get(name) is not None
        }
        result = rules_dry_run(
            goal,
            messages=attrs["messages"],
            metadata=attrs["metadata"],
            passthrough=passthrough,
            rules=attrs.get("rules"),
            classifier_label=attrs["classifier_label"],
        )
        return Response(RulesTestOutputSerializer(result).data)
