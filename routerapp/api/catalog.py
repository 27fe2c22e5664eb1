"""Configuration CRUD under /api/v1: goals, paths, providers, prices, API keys.

Serializers validate only; every write goes through `catalog_save` (validated, audited).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, viewsets
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from routerapp.api.permissions import (
    EveryGoalKeyPermission,
    RoleOrScopePermission,
    request_actor,
    request_api_key,
)
from routerapp.models import ApiKey, Goal, ModelPrice, Path, Provider
from routerapp.selectors.goals import goal_list_visible
from routerapp.selectors.posteriors import posterior_list_for_goal
from routerapp.services.access import api_key_revoke
from routerapp.services.catalog import catalog_save
from routerapp.services.providers import provider_save


class StrictFieldsMixin:
    """A field the serializer does not know is refused (400), never silently dropped: a client
    that misspells a setting must not believe it was saved. Read-only fields may be sent back
    as read (a PUT of what a GET returned)."""

    fields: Any
    initial_data: Any

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if isinstance(self.initial_data, dict):
            unknown = sorted(set(self.initial_data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return attrs


class GoalSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    baseline_path = serializers.PrimaryKeyRelatedField(
        queryset=Path.objects.all(), required=False, allow_null=True
    )
    classifier_path = serializers.PrimaryKeyRelatedField(
        queryset=Path.objects.all(), required=False, allow_null=True
    )
    judge_provider = serializers.SlugRelatedField(
        slug_field="name", queryset=Provider.objects.all(), required=False, allow_null=True
    )

    class Meta:
        model = Goal
        fields = [
            "id",
            *Goal.EDITABLE_FIELDS,
            *Goal.SETTINGS_FIELDS,
            "version",
            "rules",
            "regret_alert",
            "created_at",
            "updated_at",
        ]
        # The live rules, shown; they change through change requests (POST /change-requests).
        read_only_fields = ["id", "version", "rules", "regret_alert", "created_at", "updated_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        for name in ("baseline_path", "classifier_path"):
            path = attrs.get(name)
            if path is not None and (self.instance is None or path.goal_id != self.instance.id):
                raise serializers.ValidationError({name: ["Must be a path of this goal."]})
        return attrs


@extend_schema_field(OpenApiTypes.STR)
class VisibleGoalField(serializers.SlugRelatedField):
    """A goal by slug, among the goals the caller may see: a goal-restricted key cannot name
    another goal (it reads as unknown)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(slug_field="slug", **kwargs)

    def get_queryset(self) -> QuerySet[Goal]:
        request = self.context.get("request")
        return goal_list_visible(api_key=request_api_key(request) if request else None)


class PathSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    goal = VisibleGoalField()
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
        help_text="Write-only; never returned. Changing base_url or kind clears the stored key "
        "(and api_key_env) unless api_key or api_key_env is given in the same request.",
    )
    has_api_key = serializers.BooleanField(read_only=True)
    base_url_is_private = serializers.BooleanField(
        read_only=True, help_text="The base URL is a loopback or private-network address."
    )

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
            "base_url_is_private",
            "timeout_seconds",
            "max_retries",
            "enabled",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]
        extra_kwargs = {
            "api_key_env": {
                "help_text": "An environment variable holding the key: "
                "ROUTERAPP_PROVIDER_KEY_<NAME> or a name listed in PROVIDER_KEY_ENV_ALLOWED."
            }
        }


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

    def actor(self) -> dict[str, Any]:
        """Who asked, for the audit log: the signed-in user or the API key."""
        return {
            "actor": self.request.user,
            "actor_key": request_api_key(self.request),
            "ip": self.request.META.get("REMOTE_ADDR"),
        }

    def save_instance(self, instance: Any, data: dict[str, Any]) -> Any:
        return catalog_save(instance=instance, data=data, **self.actor())

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        serializer.instance = self.save_instance(self.model(), dict(serializer.validated_data))

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        instance = serializer.instance
        assert instance is not None  # UpdateModelMixin.update passed get_object()'s row
        serializer.instance = self.save_instance(instance, dict(serializer.validated_data))


class DirectEditRefusedSerializer(serializers.Serializer):
    detail = serializers.CharField()


def _governed_update(serializer: type[serializers.BaseSerializer]) -> dict[str, Any]:
    """The schema of PUT/PATCH on a goal or path: 409 when it would change governed fields."""
    refused = OpenApiResponse(
        DirectEditRefusedSerializer,
        description="Governed fields (routing configuration) change through "
        "POST /api/v1/change-requests only; nothing was changed.",
    )
    operation = extend_schema(responses={200: serializer, 409: refused})
    return {"update": operation, "partial_update": operation}


@extend_schema_view(**_governed_update(GoalSerializer))
class GoalViewSet(CatalogViewSet):
    model = Goal
    serializer_class = GoalSerializer
    lookup_field = "slug"

    def get_queryset(self) -> QuerySet[Goal]:
        return goal_list_visible(api_key=request_api_key(self.request))


@extend_schema_view(
    list=extend_schema(
        parameters=[OpenApiParameter("goal", str, description="only the paths of this goal (slug)")]
    ),
    **_governed_update(PathSerializer),
)
class PathViewSet(CatalogViewSet):
    model = Path
    serializer_class = PathSerializer

    def get_queryset(self) -> QuerySet[Path]:
        paths = Path.objects.select_related("goal", "provider").filter(
            goal__in=goal_list_visible(api_key=request_api_key(self.request))
        )
        goal = self.request.query_params.get("goal")
        return paths.filter(goal__slug=goal) if goal else paths


class ProviderViewSet(CatalogViewSet):
    """Providers hold the company's keys: only admins (role or key scope) change them."""

    model = Provider
    serializer_class = ProviderSerializer
    queryset = Provider.objects.all()
    write_role = "admin"

    def save_instance(self, instance: Any, data: dict[str, Any]) -> Any:
        return provider_save(provider=instance, data=data, **self.actor())


class ModelPriceViewSet(CatalogViewSet):
    model = ModelPrice
    write_role = "admin"
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


class GoalPosteriorsSerializer(serializers.Serializer):
    goal = serializers.CharField()
    objective = serializers.ChoiceField(choices=Goal.Objective.choices)
    posteriors = PosteriorRowSerializer(many=True)


class GoalPosteriorListApi(APIView):
    read_scope = ApiKey.Scope.READ
    read_role = "view"

    @extend_schema(responses={200: GoalPosteriorsSerializer})
    def get(self, request: Request, slug: str) -> Response:
        # A goal this key may not see is as unknown as on GET /goals/<slug>.
        goal = get_object_or_404(goal_list_visible(api_key=request_api_key(request)), slug=slug)
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
    owner = serializers.CharField(
        source="created_by.username",
        read_only=True,
        allow_null=True,
        help_text="The user the key acts for: its rights are its scopes within this user's "
        "role (the creator; null for a key made without one).",
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
            "owner",
            "created_at",
            "last_used_at",
            "revoked_at",
        ]
        read_only_fields = ["id", "prefix", "owner", "created_at", "last_used_at", "revoked_at"]


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The secret: shown in this answer only.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]


class ApiKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Keys are created (the secret is in the response, once) and revoked; never edited."""

    read_scope = write_scope = ApiKey.Scope.ADMIN
    read_role = write_role = "admin"
    permission_classes = [RoleOrScopePermission, EveryGoalKeyPermission]
    serializer_class = ApiKeySerializer
    queryset = ApiKey.objects.prefetch_related("allowed_goals").select_related("created_by")

    @extend_schema(request=ApiKeySerializer, responses={201: ApiKeyCreatedSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        from routerapp.services.access import api_key_create

        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        attrs = serializer.validated_data
        # The new key acts for whoever made it: the signed-in user, or the owner of the key used.
        user = request_actor(request)
        key, raw = api_key_create(
            name=attrs["name"],
            scopes=attrs["scopes"],
            goals=attrs.get("allowed_goals", []),
            rate_limit_per_minute=attrs.get("rate_limit_per_minute"),
            created_by=user,
        )
        return Response({**self.get_serializer(key).data, "key": raw}, status=201)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = self.get_object()  # a 404 for an unknown or malformed id
        api_key_revoke(key=key, actor=request.user, ip=request.META.get("REMOTE_ADDR"))
        return Response(status=204)
