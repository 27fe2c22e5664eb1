"""A dry run of a goal's rules and engine on one request (POST /api/v1/goals/{slug}/rules/test).

Nothing is stored and nothing is called upstream: the classifier step is not run (its label is
what the caller gives), and the engine ranks the paths from this process's snapshot of the
learned state, exactly as `routing.route_plan` does for a real call. A draft rule set (not yet
proposed) can be tested instead of the live one; it is checked as a change request would be.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from routerapp.errors import InvalidRequest
from routerapp.models import Goal
from routerapp.rules import RuleError, rules_check, rules_compile
from routerapp.selectors.catalog_cache import catalog_get
from routerapp.services.classifier import Classification
from routerapp.services.routing import request_features, route_plan


def goal_path_states(goal: Goal) -> dict[str, bool]:
    """Path name -> callable now (the path and its provider enabled), as rules are checked."""
    return {
        name: enabled and provider_enabled
        for name, enabled, provider_enabled in goal.paths.values_list(
            "name", "enabled", "provider__enabled"
        )
    }


def rules_dry_run(
    goal: Goal,
    *,
    messages: list[dict[str, Any]],
    metadata: dict[str, Any] | None,
    passthrough: dict[str, Any],
    rules: list[Any] | None = None,
    classifier_label: str = "",
) -> dict[str, Any]:
    """What the goal's rules (or the draft `rules`) and the engine would do with this request
    now. Raises `InvalidRequest` (param `rules` / `messages`) for a bad draft or request."""
    route = catalog_get().goal(goal.slug)
    if rules is not None:
        try:
            checked = rules_check(rules, paths=goal_path_states(goal))
            compiled = rules_compile(checked)
        except RuleError as error:
            raise InvalidRequest(str(error), param="rules", position=error.position) from None
        route = replace(route, rules=compiled, rules_error="")
    # A paused goal answers no calls; its rules can still be tried before it resumes.
    route = replace(route, active=True)
    label = classifier_label
    # The caller's label stands in for the classifier step, which a dry run never calls.
    given = (
        Classification(
            status="given", label=label, cost=Decimal(0), latency_ms=0.0, path="", model=""
        )
        if label
        else None
    )
    plan = route_plan(
        goal=route,
        api_key=None,
        messages=messages,
        metadata=metadata,
        passthrough=passthrough,
        features=request_features(messages, metadata, passthrough),
        classification=given,
    )
    names = {str(path_id): path.name for path_id, path in plan.paths.items()}
    order = [names[path_id] for path_id in plan.ranking.order]
    return {
        "goal": goal.slug,
        "version": route.version,
        "status": goal.status,
        "rules_source": "draft" if rules is not None else "live",
        "rules": [rule.as_dict() for rule in route.rules],
        "rules_error": route.rules_error,
        "classifier_label": label,
        "classifier_note": "The classifier step is not called in a dry run; classifier_label "
        "is the value given in the request ('' when none).",
        "matches": plan.rule_hits,
        "result": {
            "pinned": names.get(str(plan.pinned_path_id)) if plan.pinned_path_id else None,
            "excluded": sorted(plan.ranking.details.get("excluded_paths", [])),
            "bucket": plan.bucket,
        },
        "features": {**plan.features.as_names(), "classifier_label": label},
        "engine": {
            "reason": "rule" if plan.pinned_path_id is not None else plan.ranking.reason,
            "objective": plan.ranking.objective,
            "choice": order[0],
            "order": order,
            "probabilities": {
                names[str(path_id)]: round(share, 4)
                for path_id, share in plan.probabilities.items()
            },
            "samples": {
                names[path_id]: round(sample, 4) for path_id, sample in plan.ranking.samples.items()
            },
        },
    }
