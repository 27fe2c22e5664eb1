"""Change requests and goal versions under /api/v1 (services/governance.py does the work).

Reading needs the `read` scope (users: `view`); proposing, deciding and commenting need the
`config` scope, and the key's owner the role the action needs (users: that role).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView, get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response

from routerapp.api.catalog import VisibleGoalField
from routerapp.api.permissions import request_actor, request_api_key
from routerapp.models import ApiKey, ChangeRequest, GoalVersion
from routerapp.selectors.goals import goal_list_visible
from routerapp.selectors.governance import change_requests_visible, goal_versions
from routerapp.services.governance import (
    ChangeInvalid,
    change_request_approve,
    change_request_comment,
    change_request_propose,
    change_request_reject,
    change_request_withdraw,
    rollback_propose,
)


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


CONFLICT = OpenApiResponse(
    DetailSerializer,
    description="Conflict: the request is stale, applied, rejected, withdrawn or altered.",
)


def _user_name(user: Any) -> str | None:
    return user.get_username() if user is not None else None


class CommentSerializer(serializers.Serializer):
    author = serializers.CharField(allow_null=True)
    action = serializers.CharField()
    body = serializers.CharField()
    created_at = serializers.DateTimeField()


class ChangeRequestSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    goal = serializers.CharField()
    kind = serializers.ChoiceField(choices=ChangeRequest.Kind.choices)
    status = serializers.ChoiceField(choices=ChangeRequest.Status.choices)
    author = serializers.CharField(allow_null=True)
    reason = serializers.CharField()
    base_version = serializers.IntegerField()
    snapshot_hash = serializers.CharField()
    snapshot = serializers.JSONField()
    diff = serializers.JSONField()
    projection = serializers.JSONField()
    suggestion_key = serializers.CharField()
    rollback_of_version = serializers.IntegerField(allow_null=True)
    decided_by = serializers.CharField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    applied_version = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    comments = CommentSerializer(many=True)


def change_request_data(change_request: ChangeRequest) -> dict[str, Any]:
    comments = [
        {
            "author": _user_name(comment.author),
            "action": comment.action,
            "body": comment.body,
            "created_at": comment.created_at,
        }
        for comment in change_request.comments.select_related("author")
    ]
    return ChangeRequestSerializer(
        {
            "id": change_request.pk,
            "goal": change_request.goal.slug,
            "kind": change_request.kind,
            "status": change_request.status,
            "author": _user_name(change_request.author),
            "reason": change_request.reason,
            "base_version": change_request.base_version,
            "snapshot_hash": change_request.snapshot_hash,
            "snapshot": change_request.snapshot,
            "diff": change_request.diff,
            "projection": change_request.projection,
            "suggestion_key": change_request.suggestion_key,
            "rollback_of_version": change_request.rollback_of_version,
            "decided_by": _user_name(change_request.decided_by),
            "decided_at": change_request.decided_at,
            "applied_version": change_request.applied_version,
            "created_at": change_request.created_at,
            "comments": comments,
        }
    ).data


class _GovernanceApi(GenericAPIView):
    read_scope = ApiKey.Scope.READ
    read_role = "view"
    write_scope = ApiKey.Scope.CONFIG
    write_role = "operate"
    # What OPTIONS describes (DRF's metadata asks the view for it); handlers pick their own.
    serializer_class: type[serializers.Serializer] = ChangeRequestSerializer

    def who(self) -> dict[str, Any]:
        return {
            "actor": request_actor(self.request),
            "actor_key": request_api_key(self.request),
            "ip": self.request.META.get("REMOTE_ADDR"),
        }

    def change_requests(self) -> QuerySet[ChangeRequest]:
        return change_requests_visible(self.request.user, api_key=request_api_key(self.request))

    def change_request(self, pk: int) -> ChangeRequest:
        return get_object_or_404(self.change_requests(), pk=pk)


class ChangeRequestListCreateApi(_GovernanceApi):
    class ChangeRequestInputSerializer(serializers.Serializer):
        goal = VisibleGoalField()
        reason = serializers.CharField(max_length=5000)
        changes = serializers.JSONField(
            help_text='Goal fields (e.g. "quality_target"), "paths": {name: {"weight", '
            '"alpha0", "beta0", "enabled"}} and "rules": [...]; unknown fields are refused.'
        )

    serializer_class = ChangeRequestInputSerializer

    class FilterSerializer(serializers.Serializer):
        goal = serializers.SlugField(required=False, max_length=100)
        status = serializers.ChoiceField(choices=ChangeRequest.Status.choices, required=False)

    @extend_schema(
        parameters=[FilterSerializer],
        responses={200: ChangeRequestSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        requests = self.change_requests().prefetch_related("comments__author")
        if "goal" in filters.validated_data:
            requests = requests.filter(goal__slug=filters.validated_data["goal"])
        if "status" in filters.validated_data:
            requests = requests.filter(status=filters.validated_data["status"])
        page = self.paginate_queryset(requests)
        assert page is not None  # every /api/v1 list is paginated
        return self.get_paginated_response([change_request_data(item) for item in page])

    @extend_schema(request=ChangeRequestInputSerializer, responses={201: ChangeRequestSerializer})
    def post(self, request: Request) -> Response:
        data = self.ChangeRequestInputSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        attrs = data.validated_data
        try:
            change_request = change_request_propose(
                goal=attrs["goal"], changes=attrs["changes"], reason=attrs["reason"], **self.who()
            )
        except ChangeInvalid as error:
            raise serializers.ValidationError(error.errors) from None
        return Response(change_request_data(change_request), status=status.HTTP_201_CREATED)


class ChangeRequestDetailApi(_GovernanceApi):
    @extend_schema(responses={200: ChangeRequestSerializer})
    def get(self, request: Request, pk: int) -> Response:
        return Response(change_request_data(self.change_request(pk)))


class CommentInputSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")


class _ChangeRequestDecisionApi(_GovernanceApi):
    serializer_class = CommentInputSerializer

    @staticmethod
    def decide(*, change_request: ChangeRequest, **kwargs: Any) -> ChangeRequest:
        raise NotImplementedError

    @extend_schema(
        request=CommentInputSerializer, responses={200: ChangeRequestSerializer, 409: CONFLICT}
    )
    def post(self, request: Request, pk: int) -> Response:
        data = CommentInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        change_request = self.decide(
            change_request=self.change_request(pk),
            comment=data.validated_data["comment"],
            **self.who(),
        )
        change_request.refresh_from_db()
        return Response(change_request_data(change_request))


class ChangeRequestApproveApi(_ChangeRequestDecisionApi):
    """Approve and apply (four eyes: not your own; approver or admin role)."""

    write_role = "approve"
    decide = staticmethod(change_request_approve)  # type: ignore[assignment]


class ChangeRequestRejectApi(_ChangeRequestDecisionApi):
    write_role = "approve"
    decide = staticmethod(change_request_reject)  # type: ignore[assignment]


class ChangeRequestWithdrawApi(_ChangeRequestDecisionApi):
    """The author withdraws their own pending request."""

    write_role = "view"  # the service checks that the caller is the author
    decide = staticmethod(change_request_withdraw)  # type: ignore[assignment]


class ChangeRequestCommentCreateApi(_GovernanceApi):
    write_role = "review"

    class CommentCreateInputSerializer(serializers.Serializer):
        body = serializers.CharField(max_length=5000)

    serializer_class = CommentCreateInputSerializer

    @extend_schema(request=CommentCreateInputSerializer, responses={201: CommentSerializer})
    def post(self, request: Request, pk: int) -> Response:
        data = self.CommentCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            comment = change_request_comment(
                change_request=self.change_request(pk),
                body=data.validated_data["body"],
                **self.who(),
            )
        except ChangeInvalid as error:
            raise serializers.ValidationError(error.errors) from None
        body = {
            "author": _user_name(comment.author),
            "action": comment.action,
            "body": comment.body,
            "created_at": comment.created_at,
        }
        return Response(CommentSerializer(body).data, status=status.HTTP_201_CREATED)


class GoalVersionSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    snapshot_hash = serializers.CharField()
    snapshot = serializers.JSONField()
    change_request = serializers.IntegerField(allow_null=True)
    author = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()


class GoalVersionListApi(_GovernanceApi):
    serializer_class = GoalVersionSerializer

    @extend_schema(responses={200: GoalVersionSerializer(many=True)})
    def get(self, request: Request, slug: str) -> Response:
        goal = get_object_or_404(goal_list_visible(api_key=request_api_key(request)), slug=slug)
        page = self.paginate_queryset(goal_versions(goal))
        assert page is not None
        rows: list[GoalVersion] = page
        return self.get_paginated_response(
            [
                GoalVersionSerializer(
                    {
                        "version": row.version,
                        "snapshot_hash": row.snapshot_hash,
                        "snapshot": row.snapshot,
                        "change_request": row.change_request_id,
                        "author": _user_name(row.created_by),
                        "created_at": row.created_at,
                    }
                ).data
                for row in rows
            ]
        )


class GoalVersionRollbackApi(_GovernanceApi):
    """Propose the configuration of an earlier version again (a new change request)."""

    class RollbackInputSerializer(serializers.Serializer):
        reason = serializers.CharField(required=False, allow_blank=True, max_length=5000)

    serializer_class = RollbackInputSerializer

    @extend_schema(
        request=RollbackInputSerializer,
        responses={201: ChangeRequestSerializer},
        parameters=[OpenApiParameter("version", int, OpenApiParameter.PATH)],
    )
    def post(self, request: Request, slug: str, version: int) -> Response:
        data = self.RollbackInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        goal = get_object_or_404(goal_list_visible(api_key=request_api_key(request)), slug=slug)
        try:
            change_request = rollback_propose(
                goal=goal,
                version=version,
                reason=data.validated_data.get("reason", ""),
                **self.who(),
            )
        except ChangeInvalid as error:
            raise serializers.ValidationError(error.errors) from None
        return Response(change_request_data(change_request), status=status.HTTP_201_CREATED)
