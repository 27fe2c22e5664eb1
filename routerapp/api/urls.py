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
from routerapp.api.outcomes import OutcomeCreateApi
from routerapp.api.reports import RegretReportApi, SavingsReportApi

router = DefaultRouter(trailing_slash=False)
router.register("goals", GoalViewSet, basename="goal")
router.register("paths", PathViewSet, basename="path")
router.register("providers", ProviderViewSet, basename="provider")
router.register("prices", ModelPriceViewSet, basename="price")
router.register("api-keys", ApiKeyViewSet, basename="api-key")

urlpatterns = [
    path("outcomes", OutcomeCreateApi.as_view(), name="outcome-create"),
    path("goals/<slug:slug>/posteriors", GoalPosteriorListApi.as_view(), name="goal-posteriors"),
    path("reports/savings", SavingsReportApi.as_view(), name="report-savings"),
    path("reports/regret", RegretReportApi.as_view(), name="report-regret"),
    path("", include(router.urls)),
]
