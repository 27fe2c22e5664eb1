"""Configuration CRUD under /api/v1: goals, paths, providers, prices, API keys.

Serializers validate only; every write goes through `catalog_save` (validated, audited).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from routerapp.errors import NotFound
from routerapp.models import ApiKey, Goal, ModelPrice, Path, Provider
from routerapp.selectors.goals import goal_get, goal_list_visible
from routerapp.selectors.posteriors import posterior_list_for_goal
from routerapp.services.access import api_key_check, api_key_revoke
from routerapp.services.catalog import catalog_save


class GoalSerializer(serializers.ModelSerializer):
    baseline_path = serializers.PrimaryKeyRelatedField(
        queryset=Path.objects.all(), required=False, allow_null=True
    )

    class Meta:
        model = Goal
        fields = ["id", *Goal.EDITABLE_FIELDS, "version", "created_at", "updated_at"]
        read_only_fields = ["id", "version", "created_at", "updated_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        baseline = attrs.get("baseline_path")
        if baseline is not None and (self.instance is None or baseline.goal_id != self.instance.id):
            raise serializers.ValidationError({"baseline_path": ["Must be a path of this goal."]})
        return attrs


class PathSerializer(serializers.ModelSerializer):
    goal = serializers.SlugRelatedField(slug_field="slug", queryset=Goal.objects.all())
    provider = serializers.SlugRelatedField(slug_field="name", queryset=Provider.objects.all())

    class Meta:
        model = Path
        fields = ["id", "goal", *Path.EDITABLE_FIELDS, "created_at"]
        read_only_fields = ["id", "created_at"]
        validators: list[Any] = []  # the model's full_clean checks uniqueness with a field error


class ProviderSerializer(serializers.ModelSerializer):
    api_key = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=500,
        help_text="Write-only; never returned.",
    )
    has_api_key = serializers.BooleanField(read_only=True)

    class Meta:
        model = Provider
        fields = [
            "id",
            "name",
            "kind",
            "base_url",
            "api_key",
            "api_key_env",
            "has_api_key",
            "timeout_seconds",
            "max_retries",
            "enabled",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]


class ModelPriceSerializer(serializers.ModelSerializer):
    provider = serializers.SlugRelatedField(slug_field="name", queryset=Provider.objects.all())

    class Meta:
        model = ModelPrice
        fields = [
            "id",
            "provider",
            "model",
            "input_per_million",
            "output_per_million",
            "effective_from",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]
        validators: list[Any] = []


class CatalogViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    read_scope = ApiKey.Scope.READ
    write_scope = ApiKey.Scope.ADMIN
    read_role = "view"
    write_role = "operate"
    model: type[Any]

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        serializer.instance = catalog_save(
            instance=self.model(),
            data=dict(serializer.validated_data),
            actor=self.request.user,
            ip=self.request.META.get("REMOTE_ADDR"),
        )

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        serializer.instance = catalog_save(
            instance=serializer.instance,
            data=dict(serializer.validated_data),
            actor=self.request.user,
            ip=self.request.META.get("REMOTE_ADDR"),
        )


class GoalViewSet(CatalogViewSet):
    model = Goal
    serializer_class = GoalSerializer
    lookup_field = "slug"

    def get_queryset(self) -> QuerySet[Goal]:
        key = self.request.auth if isinstance(self.request.auth, ApiKey) else None
        return goal_list_visible(api_key=key)


class PathViewSet(CatalogViewSet):
    model = Path
    serializer_class = PathSerializer

    def get_queryset(self) -> QuerySet[Path]:
        paths = Path.objects.select_related("goal", "provider")
        goal = self.request.query_params.get("goal")
        return paths.filter(goal__slug=goal) if goal else paths


class ProviderViewSet(CatalogViewSet):
    model = Provider
    serializer_class = ProviderSerializer
    queryset = Provider.objects.all()


class ModelPriceViewSet(CatalogViewSet):
    model = ModelPrice
    serializer_class = ModelPriceSerializer
    queryset = ModelPrice.objects.select_related("provider")


class PosteriorRowSerializer(serializers.Serializer):
    path_id = serializers.IntegerField()
    path = serializers.CharField()
    model = serializers.CharField()
    bucket = serializers.CharField()
    alpha = serializers.FloatField()
    beta = serializers.FloatField()
    successes = serializers.FloatField()
    failures = serializers.FloatField()
    mean = serializers.FloatField()
    low = serializers.FloatField()
    high = serializers.FloatField()
    share = serializers.FloatField()


class GoalPosteriorListApi(APIView):
    read_scope = ApiKey.Scope.READ
    read_role = "view"

    @extend_schema(responses={200: PosteriorRowSerializer(many=True)})
    def get(self, request: Request, slug: str) -> Response:
        goal = goal_get(slug=slug)
        if isinstance(request.auth, ApiKey):
            api_key_check(key=request.auth, scope=ApiKey.Scope.READ, goal=goal)
        rows = [row.as_dict() for row in posterior_list_for_goal(goal=goal)]
        return Response(
            {
                "goal": goal.slug,
                "objective": goal.objective,
                "posteriors": PosteriorRowSerializer(rows, many=True).data,
            }
        )


class ApiKeySerializer(serializers.ModelSerializer):
    allowed_goals = serializers.SlugRelatedField(
        slug_field="slug", queryset=Goal.objects.all(), many=True, required=False
    )
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=ApiKey.Scope.choices), allow_empty=False
    )

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "scopes",
            "allowed_goals",
            "rate_limit_per_minute",
            "created_at",
            "last_used_at",
            "revoked_at",
        ]
        read_only_fields = ["id", "prefix", "created_at", "last_used_at", "revoked_at"]


class ApiKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Keys are created (the secret is in the response, once) and revoked; never edited."""

    read_scope = write_scope = ApiKey.Scope.ADMIN
    read_role = write_role = "admin"
    serializer_class = ApiKeySerializer
    queryset = ApiKey.objects.prefetch_related("allowed_goals")

    def create(self, request: Request) -> Response:
        from routerapp.services.access import api_key_create

        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        attrs = serializer.validated_data
        user = request.user if request.user.is_authenticated else None
        key, raw = api_key_create(
            name=attrs["name"],
            scopes=attrs["scopes"],
            goals=attrs.get("allowed_goals", []),
            rate_limit_per_minute=attrs.get("rate_limit_per_minute"),
            created_by=user,
        )
        return Response({**self.get_serializer(key).data, "key": raw}, status=201)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        key = ApiKey.objects.filter(pk=pk).first()
        if key is None:
            raise NotFound("No such API key.")
        api_key_revoke(key=key, actor=request.user, ip=request.META.get("REMOTE_ADDR"))
        return Response(status=204)
