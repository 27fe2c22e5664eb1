"""The demo: simulator provider, list prices, the seeds' goals, and logins for each role."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.contrib.auth.models import Group, User
from django.db import transaction

from routerapp import demo_data
from routerapp.models import Goal, ModelPrice, Path, Provider
from routerapp.providers.simulator import JUDGE_MODEL
from routerapp.roles import ADMIN, APPROVER, OPERATOR, ROLES, VIEWER
from routerapp.rules import rules_check, rules_template

DEMO_PASSWORD = "routerapp-demo"
# Real list prices, USD per 1M tokens (input, output).
LIST_PRICES = {
    "gpt-4o-mini": (Decimal("0.15"), Decimal("0.60")),
    "gpt-4o": (Decimal("2.50"), Decimal("10.00")),
    # The simulator's judge, priced like a small model so the demo shows judge spend.
    JUDGE_MODEL: (Decimal("0.15"), Decimal("0.60")),
}
# Demo goals shadow 10% of their downgraded calls to the baseline, judged by the simulator.
DEMO_SHADOW_RATE = 0.10
PRICES_FROM = date(2024, 7, 18)
DEMO_PATHS = (("gpt-4o-mini", 0.7), ("gpt-4o", 0.3))
# The demo goal that starts with the article's heuristic router as its rule set.
TEMPLATE_RULES_GOAL = "task_complexity_routing"


def _labels_condition(labels: list[str]) -> str:
    return (
        "response.choices[0].finish_reason == 'stop' and "
        f"response.choices[0].message.content in {labels!r}"
    )


DEMO_GOALS = {
    "email_classification": {
        "description": "Label an email as spam or not_spam.",
        "success_when": _labels_condition(["spam", "not_spam"]),
        "bucket_by": Goal.BucketBy.NONE,
    },
    "support_ticket_triage": {
        "description": "Route a support ticket to billing, technical, account or other.",
        "success_when": _labels_condition(["billing", "technical", "account", "other"]),
        "bucket_by": Goal.BucketBy.NONE,
    },
    "task_complexity_routing": {
        "description": "A mixed workload: simple questions to multi-step reasoning and code.",
        "success_when": "response.choices[0].finish_reason == 'stop' and "
        "len(response.choices[0].message.content) > 0",
        "bucket_by": Goal.BucketBy.COMPLEXITY,
    },
}


@transaction.atomic
def demo_seed() -> dict[str, int]:
    """Idempotent: running it again changes nothing that exists (learned state is kept)."""
    for role in ROLES:
        Group.objects.get_or_create(name=role)
    users = 0
    for username, role in (
        ("admin", ADMIN),
        ("operator", OPERATOR),
        ("approver", APPROVER),
        ("viewer", VIEWER),
    ):
        user, created = User.objects.get_or_create(
            username=username, defaults={"is_staff": role == ADMIN, "is_superuser": role == ADMIN}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
            users += 1
        user.groups.add(Group.objects.get(name=role))
    simulator, _ = Provider.objects.get_or_create(
        name="simulator", defaults={"kind": Provider.Kind.SIMULATOR, "timeout_seconds": 30.0}
    )
    for model, (price_in, price_out) in LIST_PRICES.items():
        ModelPrice.objects.get_or_create(
            provider=simulator,
            model=model,
            effective_from=PRICES_FROM,
            defaults={"input_per_million": price_in, "output_per_million": price_out},
        )
    goals = 0
    for slug, settings in DEMO_GOALS.items():
        goal, created = Goal.objects.get_or_create(
            slug=slug,
            defaults={
                **settings,
                "shadow_rate": DEMO_SHADOW_RATE,
                "judge_mode": Goal.JudgeMode.LLM,
                "judge_provider": simulator,
                "judge_model": JUDGE_MODEL,
            },
        )
        goals += created
        system_prompt = demo_data.system_prompt(slug)
        for model, weight in DEMO_PATHS:
            Path.objects.get_or_create(
                goal=goal,
                name=model,
                defaults={
                    "provider": simulator,
                    "model": model,
                    "weight": weight,
                    "system_prompt": system_prompt,
                    "temperature": 0.0,
                },
            )
        if goal.baseline_path_id is None:
            goal.baseline_path = goal.paths.get(name="gpt-4o")
            goal.save(update_fields=["baseline_path"])
        if created and slug == TEMPLATE_RULES_GOAL:
            # Seed data may set rules directly (later edits go through change requests).
            goal.rules = rules_check(
                rules_template(cheap="gpt-4o-mini", strong="gpt-4o"),
                paths=dict(goal.paths.values_list("name", "enabled")),
            )
            goal.save(update_fields=["rules"])
    return {"users": users, "goals": goals}
