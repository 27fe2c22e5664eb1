from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from routerapp.api.catalog import (
    ApiKeyViewSet,
    GoalPosteriorListApi,
    GoalViewSet,
    ModelPriceViewSet,
    PathViewSet,
    ProviderViewSet,
)
from routerapp.api.governance import (
    ChangeRequestApproveApi,
    ChangeRequestCommentCreateApi,
    ChangeRequestDetailApi,
    ChangeRequestListCreateApi,
    ChangeRequestRejectApi,
    ChangeRequestWithdrawApi,
    GoalVersionListApi,
    GoalVersionRollbackApi,
)
from routerapp.api.outcomes import OutcomeCreateApi
from routerapp.api.reports import RegretReportApi, SavingsReportApi
from routerapp.api.rules import GoalRulesTestApi
from routerapp.api.shadows import ShadowComparisonListApi

router = DefaultRouter(trailing_slash=False)
router.register("goals", GoalViewSet, basename="goal")
router.register("paths", PathViewSet, basename="path")
router.register("providers", ProviderViewSet, basename="provider")
router.register("prices", ModelPriceViewSet, basename="price")
router.register("api-keys", ApiKeyViewSet, basename="api-key")

urlpatterns = [
    path("outcomes", OutcomeCreateApi.as_view(), name="outcome-create"),
    path("goals/<slug:slug>/posteriors", GoalPosteriorListApi.as_view(), name="goal-posteriors"),
    path("goals/<slug:slug>/rules/test", GoalRulesTestApi.as_view(), name="goal-rules-test"),
    path("change-requests", ChangeRequestListCreateApi.as_view(), name="change-request-list"),
    path(
        "change-requests/<int:pk>", ChangeRequestDetailApi.as_view(), name="change-request-detail"
    ),
    path(
        "change-requests/<int:pk>/approve",
        ChangeRequestApproveApi.as_view(),
        name="change-request-approve",
    ),
    path(
        "change-requests/<int:pk>/reject",
        ChangeRequestRejectApi.as_view(),
        name="change-request-reject",
    ),
    path(
        "change-requests/<int:pk>/withdraw",
        ChangeRequestWithdrawApi.as_view(),
        name="change-request-withdraw",
    ),
    path(
        "change-requests/<int:pk>/comments",
        ChangeRequestCommentCreateApi.as_view(),
        name="change-request-comments",
    ),
    path("goals/<slug:slug>/versions", GoalVersionListApi.as_view(), name="goal-versions"),
    path(
        "goals/<slug:slug>/versions/<int:version>/rollback",
        GoalVersionRollbackApi.as_view(),
        name="goal-version-rollback",
    ),
    path("reports/savings", SavingsReportApi.as_view(), name="report-savings"),
    path("reports/regret", RegretReportApi.as_view(), name="report-regret"),
    path(
        "shadow-comparisons",
        ShadowComparisonListApi.as_view(),
        name="shadow-comparison-list",
    ),
    path("", include(router.urls)),
]
