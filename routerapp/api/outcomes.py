"""POST /api/v1/outcomes: report how a call went, by request id."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from routerapp.api.permissions import request_api_key
from routerapp.errors import NotFound
from routerapp.models import ApiKey
from routerapp.selectors.decisions import decision_get_visible
from routerapp.services.outcomes import outcome_report


class OutcomeCreateApi(APIView):
    read_scope = write_scope = ApiKey.Scope.OUTCOMES
    write_role = "operate"

    class InputSerializer(serializers.Serializer):
        request_id = serializers.CharField(max_length=40)
        outcome = serializers.ChoiceField(choices=["success", "failure"], required=False)
        score = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)
        note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")

        def validate(self, attrs: dict) -> dict:
            has_outcome, has_score = "outcome" in attrs, "score" in attrs
            if has_outcome == has_score:
                raise serializers.ValidationError(
                    {
                        "outcome": [
                            "Give exactly one of 'outcome' (success|failure) or 'score' (0..1)."
                        ]
                    }
                )
            attrs["value"] = attrs["score"] if has_score else float(attrs["outcome"] == "success")
            return attrs

    class OutputSerializer(serializers.Serializer):
        request_id = serializers.CharField()
        value = serializers.FloatField()
        # DRF's metaclass moves declared fields out of the class, so this does not replace
        # Field.source; the stubs cannot see that.
        source = serializers.CharField()  # type: ignore[assignment]
        changed = serializers.BooleanField()

    @extend_schema(
        request=InputSerializer, responses={200: OutputSerializer, 201: OutputSerializer}
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        attrs = data.validated_data
        decision = decision_get_visible(
            request_id=attrs["request_id"], api_key=request_api_key(request)
        )
        if decision is None:
            raise NotFound(f"No call with request_id '{attrs['request_id']}'.")
        outcome, changed = outcome_report(
            decision=decision, value=attrs["value"], note=attrs["note"]
        )
        body = self.OutputSerializer(
            {
                "request_id": decision.request_id,
                "value": outcome.value,
                "source": outcome.source,
                "changed": changed,
            }
        ).data
        return Response(body, status=status.HTTP_201_CREATED if changed else status.HTTP_200_OK)
