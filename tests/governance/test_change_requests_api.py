"""The change-request API over real HTTP with API keys that act for users."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest

from routerapp.models import AuditLog, ChangeRequest, Goal, Path, RoutingDecision
from routerapp.selectors.catalog_cache import catalog_get
from tests.builders import make_api_key, make_goal, make_user

MESSAGES = [{"role": "user", "content": "Is this spam? 'You won a free cruise, click now!'"}]


def key_for(user: Any, *scopes: str) -> str:
    _, raw = make_api_key(scopes=scopes or ("read", "config"), created_by=user)
    return raw


def client(live: str, raw: str) -> httpx.Client:
    return httpx.Client(base_url=live, headers={"Authorization": f"Bearer {raw}"}, timeout=30)


@pytest.fixture
def people(live: str) -> dict[str, Any]:
    return {
        "operator": make_user(username="otto", role="operator"),
        "approver": make_user(username="abby", role="approver"),
        "viewer": make_user(username="vera", role="viewer"),
    }


def goal_state(goal: Goal) -> list[Any]:
    goal.refresh_from_db()
    return [
        goal.version,
        goal.quality_target,
        goal.rules,
        list(goal.paths.order_by("id").values_list("weight", "enabled")),
        list(ChangeRequest.objects.order_by("id").values_list("id", "status")),
    ]


def test_propose_review_approve_and_read_the_history(live: str, people: dict[str, Any]) -> None:
    goal = make_goal(slug="email_classification")
    with (
        client(live, key_for(people["operator"])) as operator,
        client(live, key_for(people["approver"])) as approver,
    ):
        created = operator.post(
            "/api/v1/change-requests",
            json={
                "goal": goal.slug,
                "reason": "mini is good enough",
                "changes": {"quality_target": 0.9, "paths": {"gpt-4o-mini": {"weight": 3}}},
            },
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["status"] == "pending"
        assert body["base_version"] == 1
        assert body["author"] == "otto"
        assert len(body["snapshot_hash"]) == 64
        assert {"field": "paths.gpt-4o-mini.weight", "from": 1.0, "to": 3.0} in body["diff"]
        assert isinstance(body["projection"], dict)
        url = f"/api/v1/change-requests/{body['id']}"

        commented = approver.post(f"{url}/comments", json={"body": "why?"})
        assert commented.status_code == 201, commented.text
        listed = approver.get("/api/v1/change-requests", params={"status": "pending"})
        assert [row["id"] for row in listed.json()["results"]] == [body["id"]]
        assert (
            approver.get("/api/v1/change-requests", params={"goal": "other"}).json()["count"] == 0
        )

        approved = approver.post(f"{url}/approve", json={"comment": "fine"})
        assert approved.status_code == 200, approved.text
        assert approved.json()["status"] == "applied"
        assert approved.json()["applied_version"] == 2
        assert [c["action"] for c in approved.json()["comments"]] == ["comment", "approve"]

        shown = operator.get(f"/api/v1/goals/{goal.slug}").json()
        assert shown["version"] == 2
        assert shown["quality_target"] == 0.9
        assert shown["rules"] == []
        versions = operator.get(f"/api/v1/goals/{goal.slug}/versions").json()["results"]
        assert [(v["version"], v["change_request"], v["author"]) for v in versions] == [
            (2, body["id"], "otto"),
            (1, None, None),
        ]
        assert versions[0]["snapshot_hash"] == body["snapshot_hash"]

        again = approver.post(f"{url}/approve", json={})
        assert again.status_code == 409
        assert "applied" in again.json()["detail"]

        rollback = operator.post(
            f"/api/v1/goals/{goal.slug}/versions/1/rollback", json={"reason": "undo"}
        )
        assert rollback.status_code == 201, rollback.text
        assert rollback.json()["rollback_of_version"] == 1
        assert rollback.json()["kind"] == "rollback"
        assert {"field": "goal.quality_target", "from": 0.9, "to": 0.95} in rollback.json()["diff"]
    assert AuditLog.objects.filter(action="goal.apply", ip="127.0.0.1").exists()


def test_refusals_answer_their_status_and_change_nothing(live: str, people: dict[str, Any]) -> None:
    goal = make_goal(slug="email_classification")
    author = people["operator"]
    with client(live, key_for(author)) as operator:
        change = operator.post(
            "/api/v1/change-requests",
            json={"goal": goal.slug, "reason": "r", "changes": {"quality_target": 0.9}},
        ).json()
    url = f"/api/v1/change-requests/{change['id']}"
    before = goal_state(goal)

    # The author, through a second key of theirs: one person, so four eyes refuses.
    author_admin = make_user(username="ann", role="admin")
    with client(live, key_for(author_admin)) as admin:
        own = admin.post(
            "/api/v1/change-requests",
            json={"goal": goal.slug, "reason": "r", "changes": {"exploration_floor": 0.05}},
        ).json()
    with client(live, key_for(author_admin, "config", "read")) as second_key:
        response = second_key.post(f"/api/v1/change-requests/{own['id']}/approve", json={})
        assert response.status_code == 403
        assert "Four eyes" in response.json()["detail"]
    before = goal_state(goal)

    cases = [
        # (key, method, path, body, status, text in the answer)
        (key_for(people["viewer"]), "POST", f"{url}/approve", {}, 403, "may not approve"),
        (key_for(author), "POST", f"{url}/approve", {}, 403, "may not approve"),
        (key_for(people["approver"], "read"), "POST", f"{url}/approve", {}, 403, "config"),
        (
            make_api_key(scopes=("admin",))[1],
            "POST",
            "/api/v1/change-requests",
            {"goal": goal.slug, "reason": "r", "changes": {"quality_target": 0.8}},
            403,
            "owner",
        ),
        (
            key_for(people["viewer"]),
            "POST",
            "/api/v1/change-requests",
            {"goal": goal.slug, "reason": "r", "changes": {"quality_target": 0.8}},
            403,
            "vera",
        ),
        (
            key_for(author),
            "POST",
            "/api/v1/change-requests",
            {"goal": goal.slug, "reason": "r", "changes": {"quality_targte": 0.8}},
            400,
            "changes.quality_targte",
        ),
        (
            key_for(author),
            "POST",
            "/api/v1/change-requests",
            {"goal": goal.slug, "reason": "r", "changes": {"quality_target": 0.95}},
            400,
            "No change",
        ),
        (
            key_for(author),
            "POST",
            "/api/v1/change-requests",
            {
                "goal": goal.slug,
                "reason": "r",
                "changes": {"paths": {"gpt-4o-mini": {"weight": 0}, "gpt-4o": {"weight": 0}}},
            },
            400,
            "weights",
        ),
        (
            key_for(author),
            "POST",
            "/api/v1/change-requests",
            {"goal": "unknown", "reason": "r", "changes": {}},
            400,
            "goal",
        ),
        (
            key_for(people["approver"]),
            "POST",
            "/api/v1/change-requests/999999/approve",
            {},
            404,
            "",
        ),
        (key_for(people["approver"]), "GET", "/api/v1/change-requests/999999", None, 404, ""),
        (key_for(people["approver"]), "POST", f"{url}/withdraw", {}, 403, "author"),
        (
            key_for(author),
            "POST",
            f"/api/v1/goals/{goal.slug}/versions/7/rollback",
            {},
            400,
            "version",
        ),
    ]
    with httpx.Client(base_url=live, timeout=30) as http:
        for raw, method, path, body, status, text in cases:
            response = http.request(
                method, path, json=body, headers={"Authorization": f"Bearer {raw}"}
            )
            assert response.status_code == status, (path, body, response.text)
            assert text in response.text, (path, response.text)
    assert goal_state(goal) == before


def test_a_goal_restricted_key_sees_no_other_goal_s_requests(
    live: str, people: dict[str, Any]
) -> None:
    goal_a = make_goal(slug="email_classification")
    goal_b = make_goal(slug="support_ticket_triage")
    with client(live, key_for(people["operator"])) as operator:
        b_request = operator.post(
            "/api/v1/change-requests",
            json={"goal": goal_b.slug, "reason": "r", "changes": {"quality_target": 0.9}},
        ).json()
    _, raw = make_api_key(scopes=("read", "config"), goals=(goal_a,), created_by=people["approver"])
    before = goal_state(goal_b)
    with client(live, raw) as restricted:
        assert restricted.get("/api/v1/change-requests").json()["count"] == 0
        assert restricted.get(f"/api/v1/change-requests/{b_request['id']}").status_code == 404
        approve = restricted.post(f"/api/v1/change-requests/{b_request['id']}/approve", json={})
        assert approve.status_code == 404
        assert restricted.get(f"/api/v1/goals/{goal_b.slug}/versions").status_code == 404
    assert goal_state(goal_b) == before


def test_a_direct_patch_of_governed_fields_is_409_and_other_fields_stay_direct(
    live: str, people: dict[str, Any]
) -> None:
    goal = make_goal(slug="email_classification")
    path = goal.paths.get(name="gpt-4o")
    _, raw = make_api_key(scopes=("admin",), created_by=make_user(username="ada", role="admin"))
    before = goal_state(goal)
    with client(live, raw) as admin:
        for url, body, field in [
            (f"/api/v1/goals/{goal.slug}", {"quality_target": 0.5}, "quality_target"),
            (f"/api/v1/goals/{goal.slug}", {"objective": "success"}, "objective"),
            (f"/api/v1/paths/{path.id}", {"weight": 3}, "weight"),
            (f"/api/v1/paths/{path.id}", {"enabled": False}, "enabled"),
            (f"/api/v1/paths/{path.id}", {"model": "gpt-4.1"}, "model"),
        ]:
            response = admin.patch(url, json=body)
            assert response.status_code == 409, (url, body, response.text)
            assert field in response.json()["detail"]
            assert "POST /api/v1/change-requests" in response.json()["detail"]
        assert goal_state(goal) == before

        full = admin.get(f"/api/v1/goals/{goal.slug}").json()
        put = {key: full[key] for key in Goal.EDITABLE_FIELDS} | {"description": "v2"}
        assert admin.put(f"/api/v1/goals/{goal.slug}", json=put).status_code == 200
        assert (
            admin.patch(f"/api/v1/goals/{goal.slug}", json={"status": "paused"}).status_code == 200
        )
        new_path = admin.post(
            "/api/v1/paths",
            json={"goal": goal.slug, "name": "extra", "provider": "simulator", "model": "m"},
        )
        assert new_path.status_code == 201
        assert new_path.json()["enabled"] is False  # enabling it is a change request
    goal.refresh_from_db()
    assert (goal.description, goal.status, goal.version) == ("v2", "paused", 1)
    assert AuditLog.objects.filter(action="goal.update").count() == 2


def test_an_approved_change_routes_every_call_after_the_commit_and_none_before(
    live: str, people: dict[str, Any], settings: Any
) -> None:
    """ROUTING_CACHE_SECONDS (1 s) is the documented staleness: a call that starts more than
    that after the approval commits follows the new configuration; before the commit no
    lookup shows it."""
    goal = make_goal(slug="email_classification")
    mini = goal.paths.get(name="gpt-4o-mini")
    _, completions = make_api_key(scopes=("completions",))
    with client(live, key_for(people["operator"])) as operator:
        change = operator.post(
            "/api/v1/change-requests",
            json={
                "goal": goal.slug,
                "reason": "only the strong model",
                "changes": {"paths": {"gpt-4o-mini": {"enabled": False}}},
            },
        ).json()
    assert [p.name for p in catalog_get().goal(goal.slug).paths] == ["gpt-4o-mini", "gpt-4o"]

    with client(live, key_for(people["approver"])) as approver:
        approved = approver.post(f"/api/v1/change-requests/{change['id']}/approve", json={})
        committed = time.monotonic()
    assert approved.status_code == 200
    time.sleep(max(0.0, committed + settings.ROUTING_CACHE_SECONDS + 0.05 - time.monotonic()))

    openai_client = openai.OpenAI(
        base_url=f"{live}/v1", api_key=completions, max_retries=0, timeout=30
    )
    started = RoutingDecision.objects.count()
    for _ in range(15):
        openai_client.chat.completions.create(model=f"goal/{goal.slug}", messages=MESSAGES)
    served = RoutingDecision.objects.order_by("id")[started:]
    assert len(served) == 15
    assert mini.id not in {decision.path_id for decision in served}
    assert not Path.objects.get(pk=mini.pk).enabled
