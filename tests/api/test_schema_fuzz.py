"""Schemathesis fuzzes every operation of /api/schema/ over real HTTP: no 5xx, and every answer
matches the schema (status documented, body and content type as described).

Two identities take turns: an admin key (everything may succeed) and a read key (every write
must be refused as documented). A fixed seed and a bounded number of examples per operation keep the
run reproducible and short; each operation also gets schemathesis's coverage phase (boundary
values, missing and malformed parameters, unexpected methods).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings

from routerapp.models import HourlyRollup, ModelPrice, RoutingDecision
from routerapp.services.governance import change_request_propose
from tests.builders import make_api_key, make_goal, make_user

SEED = 20_261_204
MAX_EXAMPLES = 12  # per operation and generation mode (positive, negative), fuzzing phase


def served_schema() -> dict[str, Any]:
    """The document /api/schema/ serves (test_the_fuzzed_schema_is_the_served_one checks it).
    Built in-process because pytest needs the operations at collection, before any server
    runs; schemathesis's fixture-based loader does not work with this pytest."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document))


schema = schemathesis.openapi.from_dict(served_schema(), config=schemathesis.Config(seed=SEED))
schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True)
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    # The fixtures below are function-scoped on purpose: one clean database per operation.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def key_headers(*scopes: str) -> dict[str, str]:
    # A high limit: the fuzz sends hundreds of requests a minute with this key.
    _, raw = make_api_key(scopes=scopes, name="fuzz", rate_limit_per_minute=1_000_000)
    return {"Authorization": f"Bearer {raw}"}


@pytest.fixture
def identities(live: str) -> Iterator[dict[str, str]]:
    """An admin key (anything may succeed) and a read key (every write must be refused as
    documented), taking turns case by case, so each operation is tried with both at the cost of
    one request per case; both see every goal. Also a goal with paths, a provider and prices."""
    make_goal(slug="email_classification")
    return itertools.cycle([key_headers("admin"), key_headers("read")])


# Every check schemathesis has runs (server errors, documented status codes, content types,
# response schemas and headers, missing or invalid credentials refused, undeclared methods
# refused ...), except two that judge requests rather than answers, for reasons no schema
# change can fix:
# - `positive_data_acceptance` expects every schema-valid body to succeed, but no OpenAPI
#   document can say that a named goal, provider or path must exist, that a slug must be new,
#   or that an outcome gives exactly one of `outcome` and `score`: those answer a documented 400.
# - `negative_data_rejection` expects every schema-violating body to fail, but DRF's fields
#   accept compatible JSON types by design (`"5"` or `5.0` for an integer, `0` for false, `12`
#   for a string) and store the coerced value; nothing malformed is stored. Query strings, the
#   part DRF leaves to each view, are validated strictly (tests/api/test_input_hardening.py).
EXCLUDED_CHECKS = [
    schemathesis.checks.positive_data_acceptance,
    schemathesis.checks.negative_data_rejection,
]


def test_the_fuzzed_schema_is_the_served_one(live: str) -> None:
    response = httpx.get(f"{live}/api/schema/?format=json", headers=key_headers("read"))
    assert response.status_code == 200
    assert response.json() == served_schema()


@schema.parametrize()
@FUZZ_SETTINGS
def test_no_5xx_and_every_answer_matches_the_schema(
    case: Any, live: str, identities: Iterator[dict[str, str]]
) -> None:
    case.call_and_validate(base_url=live, headers=next(identities), excluded_checks=EXCLUDED_CHECKS)


def test_real_objects_answer_as_documented(live: str) -> None:
    """Random ids and slugs mostly find nothing (404): here every GET operation, key creation
    and an outcome report run against real rows, so their 2xx bodies are checked against the
    schema too. A new operation with a path parameter must be added to `ids` below."""
    goal = make_goal(slug="email_classification")
    path = goal.paths.order_by("id").first()
    decision = RoutingDecision.objects.create(
        goal=goal,
        path=path,
        reason=RoutingDecision.Reason.THOMPSON,
        objective=goal.objective,
        ranking=[path.id],
        cost="0.0001",
        baseline_cost="0.001",
    )
    HourlyRollup.objects.create(
        goal=goal,
        path=path,
        hour=timezone.now().replace(minute=0, second=0, microsecond=0),
        requests=1,
        spend="0.0001",
        baseline_spend="0.001",
    )
    key, raw = make_api_key(scopes=("admin",), name="fuzz", rate_limit_per_minute=1_000_000)
    headers = {"Authorization": f"Bearer {raw}"}
    change = change_request_propose(
        goal=goal,
        changes={"quality_target": 0.9},
        reason="fuzz",
        actor=make_user(username="otto", role="operator"),
    )
    ids = {
        "/api/v1/change-requests/{id}": {"id": change.pk},
        "/api/v1/goals/{slug}/versions": {"slug": goal.slug},
        "/api/v1/goals/{slug}": {"slug": goal.slug},
        "/api/v1/goals/{slug}/posteriors": {"slug": goal.slug},
        "/api/v1/paths/{id}": {"id": path.id},
        "/api/v1/providers/{id}": {"id": path.provider_id},
        "/api/v1/prices/{id}": {"id": ModelPrice.objects.first().id},
        "/api/v1/api-keys/{id}": {"id": key.id},
    }
    cases = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method.upper() != "GET":
            continue
        if "{" in operation.path:
            assert operation.path in ids, f"add real ids for {operation.path}"
        cases.append(operation.Case(path_parameters=ids.get(operation.path, {})))
    for report in ("/api/v1/reports/savings", "/api/v1/reports/regret"):
        cases.append(schema[report]["GET"].Case(query={"granularity": "hour", "format": "csv"}))
    cases.append(
        schema["/api/v1/api-keys"]["POST"].Case(
            body={"name": "made by the fuzz", "scopes": ["read"], "allowed_goals": [goal.slug]},
            media_type="application/json",
        )
    )
    cases.append(
        schema["/api/v1/outcomes"]["POST"].Case(
            body={"request_id": decision.request_id, "outcome": "success"},
            media_type="application/json",
        )
    )
    for case in cases:
        response = case.call_and_validate(
            base_url=live, headers=headers, excluded_checks=EXCLUDED_CHECKS
        )
        assert response.status_code in (200, 201), (case.operation.label, response.text[:300])
    assert len(cases) >= 14
