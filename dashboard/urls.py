from __future__ import annotations

from django.urls import path

from dashboard import governance_views, regret_views, views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("goals/<slug:slug>", views.goal_detail, name="goal-detail"),
    path("goals/<slug:slug>/live", views.goal_live, name="goal-live"),
    path("savings", views.savings, name="savings"),
    path("regret", regret_views.regret, name="regret"),
    path("decisions", views.decisions, name="decisions"),
    path("decisions/<str:request_id>", views.decision_detail, name="decision-detail"),
    path("configuration", views.configuration, name="configuration"),
    path("configuration/goals/new", views.goal_create, name="goal-create"),
    path("configuration/goals/<slug:slug>", views.goal_edit, name="goal-edit"),
    path("configuration/goals/<slug:slug>/paths/new", views.path_create, name="path-create"),
    path("configuration/paths/<int:pk>", views.path_edit, name="path-edit"),
    path("configuration/providers/new", views.provider_create, name="provider-create"),
    path("configuration/providers/<int:pk>", views.provider_edit, name="provider-edit"),
    path("configuration/prices/new", views.price_create, name="price-create"),
    path("configuration/expression-check", views.expression_check, name="expression-check"),
    path("playground", views.playground, name="playground"),
    path("playground/outcome", views.playground_outcome, name="playground-outcome"),
    path("changes", governance_views.change_request_list, name="change-requests"),
    path("changes/<int:pk>", governance_views.change_request_detail, name="change-request-detail"),
    path(
        "changes/<int:pk>/comment",
        governance_views.change_request_comment,
        name="change-request-comment",
    ),
    path(
        "changes/<int:pk>/<str:action>",
        governance_views.change_request_decide,
        name="change-request-decide",
    ),
    path("goals/<slug:slug>/history", governance_views.goal_history, name="goal-history"),
    path("goals/<slug:slug>/rollback", governance_views.goal_rollback, name="goal-rollback"),
    path("goals/<slug:slug>/rules", governance_views.rule_editor, name="rule-editor"),
    path("goals/<slug:slug>/rules/test", governance_views.rule_test, name="rule-test"),
    path("audit", governance_views.audit_log, name="audit-log"),
    path("api-keys", views.api_keys, name="api-keys"),
    path("api-keys/<int:pk>/revoke", views.api_key_revoke, name="api-key-revoke"),
]
