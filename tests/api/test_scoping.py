"""A key restricted to goal A gets nothing of goal B from any API route, found by walking the URL
conf: a new route without a way to fill its URL fails here, so no endpoint can be forgotten.

Every route under /api/v1/ and /v1/ is called over HTTP with GET, GET ?goal=<B>, POST, PUT,
PATCH and DELETE (a 405 is a fine answer), its URL filled with goal B's objects and its body
naming goal B everywhere a body can. Then: a 2xx answer holds no goal B data at all; an error
may echo the slug the caller sent but nothing else of B; and nothing of goal B changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from routerapp.models import (
    ApiKey,
    ChangeRequest,
    ChangeRequestComment,
    Goal,
    HourlyRollup,
    Outcome,
    Path,
    Posterior,
    RegretRollup,
    RoutingDecision,
    ShadowComparison,
)
from routerapp.services.governance import change_request_propose
from tests.builders import make_api_key, make_goal, make_user

B_SLUG = "support_ticket_triage"
# Goal B's data a goal-A key has no way to know; none of it may appear in any answer.
B_SECRETS = {
    "description": "GOAL-B-DESCRIPTION-7f3a",
    "path names": "b-path-9c1d",
    "system prompt": "GOAL-B-SYSTEM-PROMPT-5e2b",
    "model": "b-only-model-4d8e",
    "prompt": "GOAL-B-PROMPT-PREVIEW-1a6c",
    "answer": "GOAL-B-ANSWER-TEXT-8b0f",
}
ROUTE_PREFIXES = ("api/v1/", "v1/")
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def api_routes() -> Iterator[tuple[str, str, set[str]]]:
    """(full route, name, URL kwargs) for every URL pattern under the API prefixes."""

    def walk(patterns: list[Any], prefix: str) -> Iterator[tuple[str, URLPattern]]:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, route)
            else:
                yield route, pattern

    for route, pattern in walk(get_resolver().url_patterns, ""):
        if route.lstrip("^").startswith(ROUTE_PREFIXES):
            yield route, pattern.name or "", set(pattern.pattern.regex.groupindex)


@pytest.fixture
def world(live: str) -> dict[str, Any]:
    goal_a = make_goal(slug="email_classification")
    goal_b = make_goal(
        slug=B_SLUG,
        models=(B_SECRETS["model"],),
        priced=False,
        description=B_SECRETS["description"],
    )
    path_b = goal_b.paths.get()
    path_b.name = B_SECRETS["path names"]
    path_b.system_prompt = B_SECRETS["system prompt"]
    path_b.save(update_fields=["name", "system_prompt"])
    decision_b = RoutingDecision.objects.create(
        goal=goal_b,
        path=path_b,
        reason=RoutingDecision.Reason.THOMPSON,
        objective=goal_b.objective,
        ranking=[path_b.id],
        attempts=[{"path": path_b.name, "model": path_b.model, "ok": True, "error": None}],
        prompt_preview=B_SECRETS["prompt"],
        response_text=B_SECRETS["answer"],
    )
    # Spend in the reports' window, so a report that ignored the restriction would show B.
    HourlyRollup.objects.create(
        goal=goal_b,
        path=path_b,
        hour=timezone.now().replace(minute=0, second=0, microsecond=0),
        requests=1,
        spend="0.001",
        baseline_spend="0.002",
    )
    # A shadow comparison and its rollup, so a regret report or comparison list that ignored
    # the restriction would show B.
    ShadowComparison.objects.create(
        decision=decision_b,
        goal=goal_b,
        served_path=path_b,
        baseline_path=path_b,
        state=ShadowComparison.State.JUDGED,
        shadow_text=B_SECRETS["answer"],
    )
    RegretRollup.objects.create(
        goal=goal_b,
        path=path_b,
        hour=timezone.now().replace(minute=0, second=0, microsecond=0),
        sampled=1,
        judged=1,
    )
    key_b, _ = make_api_key(scopes=("read",), goals=(goal_b,), name="key of goal b")
    # A pending change request of B (by someone else than the walking key's owner), so an
    # approval that ignored the restriction would change B.
    change_b = change_request_propose(
        goal=goal_b,
        changes={"quality_target": 0.5},
        reason="B's own change",
        actor=make_user(username="b-operator", role="operator"),
    )
    _, raw_a = make_api_key(
        scopes=("completions", "outcomes", "read", "admin"),
        goals=(goal_a,),
        name="key of goal a",
        rate_limit_per_minute=100_000,
        # An owner who may do everything: the key's goal restriction alone must keep B out.
        created_by=make_user(username="a-admin", role="admin"),
    )
    price = goal_a.paths.first().provider.prices.first()
    # How to fill each route's URL kwargs with goal B's objects (or shared ones where a
    # resource is not goal-scoped). A route missing here fails the test: add it.
    fillers: dict[str, dict[str, Any]] = {
        "api-root": {},
        "goal-list": {},
        "goal-detail": {"slug": B_SLUG},
        "goal-posteriors": {"slug": B_SLUG},
        "goal-rules-test": {"slug": B_SLUG},
        "path-list": {},
        "path-detail": {"pk": path_b.id},
        "provider-list": {},
        "provider-detail": {"pk": path_b.provider_id},
        "price-list": {},
        "price-detail": {"pk": price.id},
        "api-key-list": {},
        "api-key-detail": {"pk": key_b.id},
        "outcome-create": {},
        "report-savings": {},
        "report-regret": {},
        "shadow-comparison-list": {},
        "chat-completions": {},
        "models-list": {},
        "change-request-list": {},
        "change-request-detail": {"pk": change_b.pk},
        "change-request-approve": {"pk": change_b.pk},
        "change-request-reject": {"pk": change_b.pk},
        "change-request-withdraw": {"pk": change_b.pk},
        "change-request-comments": {"pk": change_b.pk},
        "goal-versions": {"slug": B_SLUG},
        "goal-version-rollback": {"slug": B_SLUG, "version": 1},
    }
    body = {
        "goal": B_SLUG,
        "model": f"goal/{B_SLUG}",
        "messages": [{"role": "user", "content": "hello"}],
        "request_id": decision_b.request_id,
        "outcome": "success",
        "slug": "created-by-the-walk",
        "name": "walk",
        "provider": path_b.provider.name,
        "system_prompt": "overwritten by the walk",
        "description": "overwritten by the walk",
        "weight": 0.5,
        "enabled": False,
        "baseline_path": path_b.id,
        "scopes": ["read"],
        "allowed_goals": [B_SLUG],
        "reason": "walk",
        "changes": {"quality_target": 0.4},
        "comment": "walk",
        "body": "walk",
    }
    return {
        "url": live,
        "key": raw_a,
        "fillers": fillers,
        "body": body,
        "goal_b": goal_b,
        "request_id_b": decision_b.request_id,
    }


def goal_b_state(goal: Goal) -> list[Any]:
    """Everything of goal B a leaky write could change."""
    goal.refresh_from_db()
    return [
        (goal.description, goal.version, goal.baseline_path_id, goal.status),
        list(Path.objects.filter(goal=goal).order_by("id").values()),
        list(RoutingDecision.objects.filter(goal=goal).values_list("request_id", "status")),
        list(Outcome.objects.filter(decision__goal=goal).values_list("value", "source")),
        list(Posterior.objects.filter(goal=goal).values_list("successes", "failures")),
        list(ApiKey.objects.filter(allowed_goals=goal).values_list("id", "revoked_at", "scopes")),
        list(ChangeRequest.objects.filter(goal=goal).values_list("id", "status")),
        ChangeRequestComment.objects.filter(change_request__goal=goal).count(),
    ]


def build_url(name: str, kwargs: set[str], fillers: dict[str, dict[str, Any]]) -> str:
    values = dict(fillers[name])
    if "format" in kwargs:
        values["format"] = "json"
    return reverse(name, kwargs={key: values[key] for key in kwargs})


def test_the_walk_finds_every_kind_of_route() -> None:
    names = {name for _, name, _ in api_routes()}
    assert {
        "goal-list",
        "path-detail",
        "goal-posteriors",
        "outcome-create",
        "report-regret",
        "chat-completions",
        "models-list",
    } <= names


def test_a_goal_restricted_key_gets_nothing_of_another_goal(world: dict[str, Any]) -> None:
    fillers = world["fillers"]
    routes = list(api_routes())
    unfilled = sorted(
        {
            f"{name or route}: {sorted(kwargs - {'format'})}"
            for route, name, kwargs in routes
            if name not in fillers or not (kwargs - {"format"}) <= set(fillers[name])
        }
    )
    assert not unfilled, f"routes with no URL filler (add them to `fillers`): {unfilled}"

    before = goal_b_state(world["goal_b"])
    leaks: list[str] = []
    headers = {"Authorization": f"Bearer {world['key']}"}
    with httpx.Client(base_url=world["url"], headers=headers, timeout=30) as client:
        for _, name, kwargs in routes:
            url = build_url(name, kwargs, fillers)
            calls = [("GET", url, {}), ("GET", url, {"params": {"goal": B_SLUG}})]
            calls += [(method, url, {"json": world["body"]}) for method in WRITE_METHODS]
            for method, target, options in calls:
                response = client.request(method, target, **options)
                text = response.text
                label = f"{method} {target} {options.get('params', '')} -> {response.status_code}"
                if response.status_code >= 500:
                    leaks.append(f"{label}: server error")
                found = [what for what, secret in B_SECRETS.items() if secret in text]
                if response.is_success:
                    found += [
                        what
                        for what, secret in (
                            ("slug", B_SLUG),
                            ("request id", world["request_id_b"]),
                        )
                        if secret in text
                    ]
                if found:
                    leaks.append(f"{label}: goal B's {', '.join(found)}")
    assert not leaks, "\n".join(leaks)  # leaks and server errors
    assert goal_b_state(world["goal_b"]) == before, "a goal-A key changed goal B"


def test_a_goal_restricted_admin_key_cannot_manage_api_keys(live: str) -> None:
    # It could otherwise read other goals' keys, or mint itself a key for every goal.
    goal = make_goal(slug="email_classification")
    _, restricted = make_api_key(scopes=("admin",), goals=(goal,))
    _, unrestricted = make_api_key(scopes=("admin",))
    body = {"name": "wider", "scopes": ["admin"]}
    with httpx.Client(base_url=live, timeout=30) as client:
        refused = client.post(
            "/api/v1/api-keys", json=body, headers={"Authorization": f"Bearer {restricted}"}
        )
        listed = client.get("/api/v1/api-keys", headers={"Authorization": f"Bearer {restricted}"})
        allowed = client.get(
            "/api/v1/api-keys", headers={"Authorization": f"Bearer {unrestricted}"}
        )
    assert refused.status_code == 403
    assert "restricted" in refused.json()["detail"]
    assert listed.status_code == 403
    assert allowed.status_code == 200
    assert not ApiKey.objects.filter(name="wider").exists()


def test_a_goal_restricted_key_cannot_add_a_path_to_another_goal(live: str) -> None:
    goal_a = make_goal(slug="email_classification")
    goal_b = make_goal(slug=B_SLUG)
    _, raw = make_api_key(scopes=("admin",), goals=(goal_a,))
    body = {"goal": B_SLUG, "name": "planted", "provider": "simulator", "model": "gpt-4o-mini"}
    response = httpx.post(
        f"{live}/api/v1/paths", json=body, headers={"Authorization": f"Bearer {raw}"}
    )
    assert response.status_code == 400
    assert "goal" in response.json()
    assert not goal_b.paths.filter(name="planted").exists()
