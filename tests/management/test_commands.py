"""Operator entry points: seed_demo, create_api_key, demo_traffic."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.test import RequestFactory

from routerapp.models import ApiKey, Goal, Outcome, Path, RoutingDecision
from routerapp.services.access import api_key_authenticate
from routerapp.services.demo import DEMO_PASSWORD


@pytest.mark.django_db
def test_seed_demo_creates_goals_paths_and_logins_and_is_idempotent() -> None:
    call_command("seed_demo", stdout=StringIO())
    call_command("seed_demo", stdout=StringIO())

    assert set(Goal.objects.values_list("slug", flat=True)) == {
        "email_classification",
        "support_ticket_triage",
        "task_complexity_routing",
    }
    assert Path.objects.count() == 6
    mini = Path.objects.filter(model="gpt-4o-mini").first()
    assert mini.weight == 0.7
    assert all(goal.baseline_path.model == "gpt-4o" for goal in Goal.objects.all())
    for username in ("admin", "operator", "approver", "viewer"):
        # A sign-in comes with its request: login throttling counts attempts per address.
        request = RequestFactory().post("/login/")
        assert authenticate(request, username=username, password=DEMO_PASSWORD) is not None


@pytest.mark.django_db
def test_create_api_key_prints_a_working_key_once() -> None:
    call_command("seed_demo", stdout=StringIO())
    out = StringIO()
    call_command(
        "create_api_key",
        name="ci",
        scopes="completions,read",
        goals="email_classification",
        stdout=out,
    )
    raw = out.getvalue().strip()
    key = api_key_authenticate(raw)
    assert key.scopes == ["completions", "read"]
    assert list(key.allowed_goals.values_list("slug", flat=True)) == ["email_classification"]
    assert raw not in str(ApiKey.objects.values_list().get())


@pytest.mark.django_db
@pytest.mark.parametrize(("scopes", "goals"), [("nonsense", ""), ("read", "nope")])
def test_create_api_key_refuses_bad_arguments(scopes: str, goals: str) -> None:
    with pytest.raises(CommandError):
        call_command("create_api_key", name="x", scopes=scopes, goals=goals, stdout=StringIO())
    assert not ApiKey.objects.exists()


def test_demo_traffic_sends_calls_and_reports_outcomes(live: str) -> None:
    call_command("seed_demo", stdout=StringIO())
    out = StringIO()
    call_command("demo_traffic", base_url=live, requests=3, delay=0, seed=1, stdout=out)

    assert RoutingDecision.objects.filter(status="ok").count() == 9
    # Every call got an outcome, and the reported ones came from the API (some replace the
    # automatic success_when verdict with the truth).
    assert Outcome.objects.count() == 9
    assert "9 calls sent" in out.getvalue()


@pytest.mark.django_db
def test_migrations_match_the_models() -> None:
    # A model change without its migration would break `make run` on a fresh database.
    call_command("makemigrations", "--check", "--dry-run", stdout=StringIO())
