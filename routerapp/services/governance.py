"""Change requests (four eyes): propose, review, approve (apply), reject, withdraw, roll back.

A goal's routing configuration (its governed fields, its paths' weights, priors and enabled
flags, and its rules) never changes by a direct edit: a change request holds the whole proposed
configuration as one snapshot with its hash, made against the goal's version at the time, and
approving it applies exactly that snapshot, in one transaction, and bumps the version.

The snapshot (canonical JSON; `snapshot_hash` is the sha256 of its sorted compact dump):

    {"goal": {<GOVERNED_GOAL_FIELDS>: value}, "paths": {name: {<GOVERNED_PATH_FIELDS>: value}},
     "rules": [{"name", "condition", "action", "paths", "bucket"}]}

Paths, the baseline and classifier paths are named by path name, the judge provider by provider
name, money as a decimal string: the snapshot reads the same in any database.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import logging
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from routerapp.engine.errors import InvalidWeight
from routerapp.engine.priors import check_weights
from routerapp.errors import RouterError
from routerapp.models import (
    ApiKey,
    ChangeRequest,
    ChangeRequestComment,
    Goal,
    GoalVersion,
    Path,
    Provider,
)
from routerapp.roles import user_can
from routerapp.services.access import audit

logger = logging.getLogger(__name__)

GOVERNED_GOAL_FIELDS: tuple[str, ...] = (
    "objective",
    "quality_target",
    "exploration_floor",
    "prior_strength",
    "half_life_seconds",
    "bucket_by",
    "success_when",
    "baseline_path",
    "classifier_path",
    "classifier_prompt",
    "classifier_timeout_seconds",
    "shadow_rate",
    "shadow_budget_usd",
    "judge_mode",
    "judge_provider",
    "judge_model",
    "judge_rubric",
    "judge_max_tokens",
    "learn_from_shadows",
    "regret_threshold",
    "regret_window",
    "alert_webhook_url",
)
GOVERNED_PATH_FIELDS: tuple[str, ...] = ("weight", "alpha0", "beta0", "enabled")
# What a call sends (and the name rules refer to): governed while the path is enabled, since
# changing them changes live routing. A disabled path is edited directly, then enabled by a
# change request.
PATH_CALL_FIELDS: tuple[str, ...] = (
    "name",
    "provider",
    "model",
    "temperature",
    "max_tokens",
    "system_prompt",
    "extra_params",
    "expected_output_tokens",
)
# Goal fields named in the snapshot by the related row's name.
_PATH_REFERENCES = ("baseline_path", "classifier_path")
_MONEY_PLACES = Decimal("0.0001")  # Goal.shadow_budget_usd has 4 decimal places
CHANGE_REQUESTS_ENDPOINT = "POST /api/v1/change-requests"

Actor = User | AbstractBaseUser | AnonymousUser | None


class ChangeInvalid(RouterError):
    """The proposal is refused: `errors` maps each offending field (a dotted path into
    `changes`) to its messages. Nothing was stored."""

    status = 400

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        summary = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items())
        super().__init__(summary or "Invalid change.")


class ChangeNotAllowed(RouterError):
    """The actor may not do this (role, four eyes, a key without an owner)."""

    status = 403
    type = "permission_error"


class ChangeConflict(RouterError):
    """The request is not in a state that allows this (stale, applied, tampered ...)."""

    status = 409
    type = "conflict_error"


class DirectEditRefused(ChangeConflict, ValidationError):  # type: ignore[misc]
    """A direct save of governed fields: they change through a change request only.

    Also a ValidationError, so every form that shows a model's ValidationError as a form error
    (the configuration pages) shows this one too; the API maps it to 409 as a ChangeConflict."""

    def __init__(self, message: str, *, fields: list[str]) -> None:
        super().__init__(message)
        self.fields = fields


# --------------------------------------------------------------------------- snapshots


def _money(value: Any) -> str:
    return str(Decimal(value).quantize(_MONEY_PLACES))


def goal_snapshot(goal: Goal) -> dict[str, Any]:
    """The goal's live configuration as a snapshot (reads the paths from the database)."""
    paths = list(goal.paths.order_by("id").values("id", *GOVERNED_PATH_FIELDS, "name"))
    names = {row["id"]: row["name"] for row in paths}
    goal_part: dict[str, Any] = {}
    for name in GOVERNED_GOAL_FIELDS:
        if name in _PATH_REFERENCES:
            goal_part[name] = names.get(getattr(goal, f"{name}_id"))
        elif name == "judge_provider":
            provider_id = goal.judge_provider_id
            goal_part[name] = (
                None
                if provider_id is None
                else Provider.objects.filter(id=provider_id).values_list("name", flat=True).first()
            )
        elif name == "shadow_budget_usd":
            goal_part[name] = _money(goal.shadow_budget_usd)
        else:
            goal_part[name] = getattr(goal, name)
    return {
        "goal": goal_part,
        "paths": {
            row["name"]: {field: row[field] for field in GOVERNED_PATH_FIELDS} for row in paths
        },
        "rules": list(goal.rules or []),
    }


def snapshot_hash(snapshot: dict[str, Any]) -> str:
    canonical = json.dumps(snapshot, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def snapshot_diff(current: dict[str, Any], proposed: dict[str, Any]) -> list[dict[str, Any]]:
    """Old -> new per goal field, per path field and per rule, in that order."""
    diff: list[dict[str, Any]] = []
    for name in GOVERNED_GOAL_FIELDS:
        old, new = current["goal"].get(name), proposed["goal"].get(name)
        if old != new:
            diff.append({"field": f"goal.{name}", "from": old, "to": new})
    old_paths, new_paths = current["paths"], proposed["paths"]
    for path in [*old_paths, *(name for name in new_paths if name not in old_paths)]:
        if path not in new_paths or path not in old_paths:
            diff.append(
                {"field": f"paths.{path}", "from": old_paths.get(path), "to": new_paths.get(path)}
            )
            continue
        for name in GOVERNED_PATH_FIELDS:
            old, new = old_paths[path].get(name), new_paths[path].get(name)
            if old != new:
                diff.append({"field": f"paths.{path}.{name}", "from": old, "to": new})
    old_rules = {rule.get("name"): rule for rule in current["rules"]}
    new_rules = {rule.get("name"): rule for rule in proposed["rules"]}
    for name, rule in old_rules.items():
        if name not in new_rules:
            diff.append(
                {"field": "rules", "rule": name, "change": "removed", "from": rule, "to": None}
            )
        elif new_rules[name] != rule:
            diff.append(
                {
                    "field": "rules",
                    "rule": name,
                    "change": "changed",
                    "from": rule,
                    "to": new_rules[name],
                }
            )
    for name, rule in new_rules.items():
        if name not in old_rules:
            diff.append(
                {"field": "rules", "rule": name, "change": "added", "from": None, "to": rule}
            )
    old_order = [name for name in old_rules if name in new_rules]
    new_order = [name for name in new_rules if name in old_rules]
    if old_order != new_order:  # first match wins: the order is part of the rule set
        diff.append(
            {
                "field": "rules",
                "rule": None,
                "change": "reordered",
                "from": old_order,
                "to": new_order,
            }
        )
    return diff


# --------------------------------------------------------------------------- validation


def _unknown(field: str, name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return f"Unknown {field} '{name}'.{hint}"


def _merge(current: dict[str, Any], changes: object) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """`changes` laid over `current`; every key it holds must be known (never dropped)."""
    errors: dict[str, list[str]] = {}
    proposed = copy.deepcopy(current)
    if not isinstance(changes, dict):
        return proposed, {"changes": ["Must be an object of goal fields, 'paths' and 'rules'."]}
    direct = [name for name in Goal.EDITABLE_FIELDS if name not in GOVERNED_GOAL_FIELDS]
    for key, value in changes.items():
        where = f"changes.{key}"
        if key == "rules":
            proposed["rules"] = value
        elif key == "paths":
            if not isinstance(value, dict):
                errors[where] = ['Must be an object: {"<path name>": {"weight": ...}}.']
                continue
            for path, fields in value.items():
                if path not in proposed["paths"]:
                    errors[f"{where}.{path}"] = [
                        _unknown("path", str(path), list(proposed["paths"]))
                        + " Add a path with POST /api/v1/paths (it is created disabled)."
                    ]
                elif not isinstance(fields, dict):
                    errors[f"{where}.{path}"] = [
                        f"Must be an object of {', '.join(GOVERNED_PATH_FIELDS)}."
                    ]
                else:
                    for name, field_value in fields.items():
                        if name not in GOVERNED_PATH_FIELDS:
                            errors[f"{where}.{path}.{name}"] = [
                                _unknown("path field", str(name), list(GOVERNED_PATH_FIELDS))
                                + f" A path's governed fields: {', '.join(GOVERNED_PATH_FIELDS)}."
                            ]
                        else:
                            proposed["paths"][path][name] = field_value
        elif key in GOVERNED_GOAL_FIELDS:
            proposed["goal"][key] = value
        elif key in direct:
            errors[where] = [
                f"'{key}' is not part of the routing configuration: change it directly "
                "(PATCH /api/v1/goals/<slug>)."
            ]
        else:
            errors[where] = [_unknown("field", str(key), [*GOVERNED_GOAL_FIELDS, "paths", "rules"])]
    return proposed, errors


def _field_value(model: type[models.Model], name: str, value: Any) -> Any:
    """The model field's own conversion and validators (choices, bounds, success_when ...)."""
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)
    numeric = isinstance(field, models.FloatField | models.IntegerField | models.DecimalField)
    if isinstance(value, bool) and numeric:
        raise ValidationError("Must be a number, not true/false.")
    if isinstance(field, models.BooleanField) and not isinstance(value, bool):
        raise ValidationError("Must be true or false.")
    textual = not numeric and not isinstance(field, models.BooleanField)
    if textual and value is not None and not isinstance(value, str):
        raise ValidationError("Must be a string.")
    if isinstance(value, dict | list):
        raise ValidationError("Must be a single value.")
    cleaned = field.clean(value, model())
    if isinstance(field, models.DecimalField):
        return _money(cleaned)
    if isinstance(field, models.FloatField) and cleaned is not None:
        return float(cleaned)
    return cleaned


def _snapshot_clean(
    goal: Goal, snapshot: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The snapshot normalised (numbers as the model stores them, rules as rules_check returns
    them) and every error found, keyed by the dotted path into `changes`."""
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {"goal": {}, "paths": {}, "rules": []}
    live_paths = {
        path.name: path for path in Path.objects.filter(goal=goal).select_related("provider")
    }

    for name, fields in snapshot["paths"].items():
        where = f"changes.paths.{name}"
        if name not in live_paths:
            errors[where] = [f"Path '{name}' no longer exists on goal {goal.slug}."]
            continue
        row: dict[str, Any] = {}
        for field in GOVERNED_PATH_FIELDS:
            try:
                row[field] = _field_value(Path, field, fields.get(field))
            except ValidationError as error:
                errors[f"{where}.{field}"] = error.messages
        if (row.get("alpha0") is None) != (row.get("beta0") is None):
            errors[f"{where}.alpha0"] = [
                "Set both alpha0 and beta0, or neither (then the weight is used)."
            ]
        clean["paths"][name] = row

    for name in GOVERNED_GOAL_FIELDS:
        value = snapshot["goal"].get(name)
        where = f"changes.{name}"
        try:
            if name in _PATH_REFERENCES:
                if value is not None and value not in snapshot["paths"]:
                    raise ValidationError(_unknown("path", str(value), list(snapshot["paths"])))
                clean["goal"][name] = value
            elif name == "judge_provider":
                if value is not None and not Provider.objects.filter(name=value).exists():
                    raise ValidationError(f"Unknown provider '{value}'.")
                clean["goal"][name] = value
            else:
                clean["goal"][name] = _field_value(Goal, name, value)
        except ValidationError as error:
            errors[where] = error.messages
        except (TypeError, FieldDoesNotExist, InvalidOperation) as error:
            errors[where] = [f"Invalid value: {error}"]

    enabled = {name: bool(row.get("enabled")) for name, row in clean["paths"].items()}
    on = [name for name, is_on in enabled.items() if is_on]
    if clean["paths"] and not on:
        errors.setdefault("changes.paths", []).append(
            "At least one path must stay enabled, or the goal cannot route."
        )
    weights = [clean["paths"][name].get("weight") for name in on]
    if on and all(isinstance(weight, float) for weight in weights):
        try:
            check_weights(weights, on)
        except InvalidWeight as error:
            errors.setdefault("changes.paths", []).append(f"The enabled paths' weights: {error}.")

    clean["rules"] = _rules_clean(snapshot.get("rules"), enabled, errors)
    _judge_check(clean["goal"], live_paths, errors)
    return clean, errors


def _rules_clean(rules: object, enabled: dict[str, bool], errors: dict[str, list[str]]) -> Any:
    try:
        from routerapp.rules import RuleError, rules_check
    except ImportError:  # the rules module is not in this build: only "no rules" is valid
        if rules in ([], None):
            return []
        errors["changes.rules"] = ["Rules are not available in this version."]
        return rules
    try:
        return rules_check([] if rules is None else rules, paths=enabled)
    except RuleError as error:
        errors["changes.rules"] = [str(error)]
        return rules


def _judge_check(
    goal: dict[str, Any], paths: dict[str, Path], errors: dict[str, list[str]]
) -> None:
    if goal.get("judge_mode") != Goal.JudgeMode.LLM:
        return
    model = goal.get("judge_model") or ""
    compared = {path.model for path in paths.values()}
    if model and model in compared:
        errors.setdefault("changes.judge_model", []).append(
            f"The judge model '{model}' is one of the models it would compare (this goal's "
            "paths): a model judging its own answers favours them. Pick another model."
        )
    if (goal.get("shadow_rate") or 0) > 0 and not (goal.get("judge_provider") and model):
        errors.setdefault("changes.judge_model", []).append(
            "An LLM judge with shadow traffic on needs judge_provider and judge_model."
        )


# --------------------------------------------------------------------------- workflow


def _user(actor: Actor) -> User | None:
    """The signed-in account acting; None for nobody (a key without an owner)."""
    return actor if isinstance(actor, User) and actor.is_authenticated else None


def _require(actor: Actor, action: str, what: str) -> User:
    user = _user(actor)
    if user is None:
        raise ChangeNotAllowed(
            f"Only a user may {what}: an API key acts for its owner, and this one has none "
            "(create keys with --user or from the keys page)."
        )
    if not user_can(user, action):
        raise ChangeNotAllowed(f"Your role may not {what}.")
    return user


def _same_user(a: User | None, b: Any) -> bool:
    return a is not None and b is not None and a.pk == getattr(b, "pk", b)


def _project(goal: Goal, current: dict[str, Any], proposed: dict[str, Any]) -> dict[str, Any]:
    """The projected effect (services/projection.py); never blocks a proposal."""
    try:
        from routerapp.services.projection import project_change

        return project_change(goal, current=current, proposed=proposed)
    except Exception as error:  # noqa: BLE001 - the projection informs, it does not decide
        logger.exception("projection of a change to goal %s failed", goal.slug)
        return {"error": f"{type(error).__name__}: {error}"}


def change_request_propose(
    *,
    goal: Goal,
    changes: dict[str, Any],
    reason: str,
    actor: Actor,
    actor_key: ApiKey | None = None,
    ip: str | None = None,
    kind: str = ChangeRequest.Kind.CHANGE,
    suggestion_key: str = "",
    rollback_of_version: int | None = None,
) -> ChangeRequest:
    """A pending change request of `changes` laid over the goal's live configuration.

    Suggestions come from the periodic task, whose system user needs no role; every other
    proposal needs the `operate` role. Raises ChangeInvalid (nothing stored) or
    ChangeNotAllowed."""
    if kind == ChangeRequest.Kind.SUGGESTION:
        author = _user(actor)
        if author is None:
            raise ChangeNotAllowed("A suggestion needs an author (the system user).")
    else:
        author = _require(actor, "operate", "propose changes")
    if not isinstance(reason, str) or not reason.strip():
        raise ChangeInvalid({"reason": ["Say why: a change request needs a reason."]})
    goal = Goal.objects.get(pk=goal.pk)  # the live row: its version is the base
    current = goal_snapshot(goal)
    merged, errors = _merge(current, changes)
    if errors:
        raise ChangeInvalid(errors)
    proposed, errors = _snapshot_clean(goal, merged)
    if errors:
        raise ChangeInvalid(errors)
    diff = snapshot_diff(current, proposed)
    if not diff:
        raise ChangeInvalid({"changes": ["No change: this is the goal's live configuration."]})
    projection = _project(goal, current, proposed)
    try:
        with transaction.atomic():
            change_request = ChangeRequest.objects.create(
                goal=goal,
                kind=kind,
                author=author,
                author_key=actor_key,
                base_version=goal.version,
                snapshot=proposed,
                snapshot_hash=snapshot_hash(proposed),
                diff=diff,
                reason=reason.strip(),
                projection=projection,
                suggestion_key=suggestion_key,
                rollback_of_version=rollback_of_version,
            )
            audit(
                action="change_request.propose",
                obj=change_request,
                actor=author,
                api_key=actor_key,
                changes={"goal": goal.slug, "kind": kind, "diff": diff, "reason": reason},
                ip=ip,
            )
    except IntegrityError:  # one_pending_suggestion_per_key
        raise ChangeConflict(
            f"A suggestion '{suggestion_key}' for goal {goal.slug} is already pending."
        ) from None
    return change_request


def _locked(change_request: ChangeRequest) -> tuple[Goal, ChangeRequest]:
    """The goal and the request, locked in that order (every writer takes the goal first)."""
    goal = Goal.objects.select_for_update().get(pk=change_request.goal_id)
    locked = ChangeRequest.objects.select_for_update().get(pk=change_request.pk)
    return goal, locked


def _not_pending(change_request: ChangeRequest) -> ChangeConflict:
    return ChangeConflict(
        f"Change request #{change_request.pk} is {change_request.status}: only a pending "
        "request can be decided."
    )


def _decide(
    change_request: ChangeRequest,
    *,
    status: str,
    user: User,
    actor_key: ApiKey | None,
    comment: str,
    ip: str | None,
    action: str,
) -> None:
    change_request.status = status
    change_request.decided_by = user
    change_request.decided_at = timezone.now()
    change_request.save(
        update_fields=["status", "decided_by", "decided_at", "applied_version", "updated_at"]
    )
    ChangeRequestComment.objects.create(
        change_request=change_request, author=user, api_key=actor_key, action=action, body=comment
    )
    audit(
        action=f"change_request.{action}",
        obj=change_request,
        actor=user,
        api_key=actor_key,
        changes={"goal_id": change_request.goal_id, "status": status, "comment": comment},
        ip=ip,
    )


def _version_ensure(goal: Goal) -> None:
    """The row of the goal's current version, made from the live goal if it has none yet (a
    goal's first version, or one changed before versions were recorded)."""
    if not GoalVersion.objects.filter(goal=goal, version=goal.version).exists():
        snapshot = goal_snapshot(goal)
        GoalVersion.objects.get_or_create(
            goal=goal,
            version=goal.version,
            defaults={"snapshot": snapshot, "snapshot_hash": snapshot_hash(snapshot)},
        )


def _apply(goal: Goal, snapshot: dict[str, Any]) -> None:
    """Write the snapshot's values that differ from the live rows, naming exactly those
    columns, so what the router learned (controller_state ...) is never overwritten."""
    paths = {path.name: path for path in Path.objects.select_for_update().filter(goal=goal)}
    ids = {name: path.id for name, path in paths.items()}
    providers = dict(Provider.objects.values_list("name", "id"))
    goal_fields: list[str] = []
    new: Any
    for name in GOVERNED_GOAL_FIELDS:
        value = snapshot["goal"][name]
        if name in _PATH_REFERENCES:
            attname, new = f"{name}_id", ids.get(value) if value is not None else None
        elif name == "judge_provider":
            attname, new = "judge_provider_id", providers.get(value) if value else None
        elif name == "shadow_budget_usd":
            attname, new = name, Decimal(value)
        else:
            attname, new = name, value
        if getattr(goal, attname) != new:
            setattr(goal, attname, new)
            goal_fields.append(name)
    if list(goal.rules or []) != snapshot["rules"]:
        goal.rules = snapshot["rules"]
        goal_fields.append("rules")
    goal.version += 1
    goal.save(update_fields=[*goal_fields, "version", "updated_at"])
    for name, fields in snapshot["paths"].items():
        path = paths[name]
        changed = [field for field in GOVERNED_PATH_FIELDS if getattr(path, field) != fields[field]]
        for field in changed:
            setattr(path, field, fields[field])
        if changed:
            path.save(update_fields=changed)


def change_request_approve(
    *,
    change_request: ChangeRequest,
    actor: Actor,
    actor_key: ApiKey | None = None,
    comment: str = "",
    ip: str | None = None,
) -> ChangeRequest:
    """Approve and apply, atomically: exactly the stored snapshot (hash re-checked), only if
    the goal is still at the request's base version (else the request becomes stale, 409)."""
    user = _require(actor, "approve", "approve change requests")
    conflict: ChangeConflict | None = None
    with transaction.atomic():
        goal, locked = _locked(change_request)
        if _same_user(user, locked.author_id):
            raise ChangeNotAllowed(
                "Four eyes: you proposed this change, so someone else must approve it "
                "(your other API keys act for you too)."
            )
        if locked.status != ChangeRequest.Status.PENDING:
            raise _not_pending(locked)
        if snapshot_hash(locked.snapshot) != locked.snapshot_hash:
            raise ChangeConflict(
                f"Change request #{locked.pk} was altered after it was proposed (its snapshot "
                "no longer matches its hash): refused. Propose the change again."
            )
        if locked.base_version != goal.version:
            locked.status = ChangeRequest.Status.STALE
            locked.save(update_fields=["status", "updated_at"])
            audit(
                action="change_request.stale",
                obj=locked,
                actor=user,
                api_key=actor_key,
                changes={"base_version": locked.base_version, "goal_version": goal.version},
                ip=ip,
            )
            conflict = ChangeConflict(
                f"Change request #{locked.pk} is stale: it was made against version "
                f"{locked.base_version} and the goal is at version {goal.version}. Propose it "
                "again against the current version."
            )
        else:
            _, errors = _snapshot_clean(goal, locked.snapshot)
            if errors:
                raise ChangeConflict(
                    f"Change request #{locked.pk} no longer fits the goal: "
                    + "; ".join(f"{key}: {' '.join(value)}" for key, value in errors.items())
                )
            _version_ensure(goal)
            _apply(goal, locked.snapshot)
            live = goal_snapshot(goal)
            GoalVersion.objects.create(
                goal=goal,
                version=goal.version,
                snapshot=live,
                snapshot_hash=snapshot_hash(live),
                change_request=locked,
                created_by=locked.author,
            )
            locked.applied_version = goal.version
            _decide(
                locked,
                status=ChangeRequest.Status.APPLIED,
                user=user,
                actor_key=actor_key,
                comment=comment,
                ip=ip,
                action="approve",
            )
            audit(
                action="goal.apply",
                obj=goal,
                actor=user,
                api_key=actor_key,
                changes={
                    "change_request": locked.pk,
                    "version": goal.version,
                    "diff": locked.diff,
                },
                ip=ip,
            )
            # The others were made against the version this one replaced.
            ChangeRequest.objects.filter(goal=goal, status=ChangeRequest.Status.PENDING).exclude(
                pk=locked.pk
            ).update(status=ChangeRequest.Status.STALE, updated_at=timezone.now())
    if conflict is not None:
        raise conflict  # after the commit: the request stays marked stale
    return locked


def change_request_reject(
    *,
    change_request: ChangeRequest,
    actor: Actor,
    actor_key: ApiKey | None = None,
    comment: str = "",
    ip: str | None = None,
) -> ChangeRequest:
    user = _require(actor, "approve", "reject change requests")
    with transaction.atomic():
        _, locked = _locked(change_request)
        if _same_user(user, locked.author_id):
            raise ChangeNotAllowed("You proposed this change: withdraw it instead.")
        if locked.status != ChangeRequest.Status.PENDING:
            raise _not_pending(locked)
        _decide(
            locked,
            status=ChangeRequest.Status.REJECTED,
            user=user,
            actor_key=actor_key,
            comment=comment,
            ip=ip,
            action="reject",
        )
    return locked


def change_request_withdraw(
    *,
    change_request: ChangeRequest,
    actor: Actor,
    actor_key: ApiKey | None = None,
    comment: str = "",
    ip: str | None = None,
) -> ChangeRequest:
    user = _user(actor)
    with transaction.atomic():
        _, locked = _locked(change_request)
        if user is None or not _same_user(user, locked.author_id) or not user_can(user, "view"):
            raise ChangeNotAllowed("Only the author may withdraw a change request.")
        if locked.status != ChangeRequest.Status.PENDING:
            raise _not_pending(locked)
        _decide(
            locked,
            status=ChangeRequest.Status.WITHDRAWN,
            user=user,
            actor_key=actor_key,
            comment=comment,
            ip=ip,
            action="withdraw",
        )
    return locked


def change_request_comment(
    *,
    change_request: ChangeRequest,
    actor: Actor,
    actor_key: ApiKey | None = None,
    body: str,
    ip: str | None = None,
) -> ChangeRequestComment:
    user = _require(actor, "review", "comment on change requests")
    if not isinstance(body, str) or not body.strip():
        raise ChangeInvalid({"body": ["A comment needs some text."]})
    with transaction.atomic():
        comment = ChangeRequestComment.objects.create(
            change_request=change_request,
            author=user,
            api_key=actor_key,
            action="comment",
            body=body.strip(),
        )
        audit(
            action="change_request.comment",
            obj=change_request,
            actor=user,
            api_key=actor_key,
            changes={"comment": comment.body},
            ip=ip,
        )
    return comment


def goal_version_ensure(*, goal: Goal) -> None:
    """Record the goal's current version if it has no row yet (the history's first entry)."""
    with transaction.atomic():
        _version_ensure(goal)


def rollback_propose(
    *,
    goal: Goal,
    version: int,
    actor: Actor,
    actor_key: ApiKey | None = None,
    ip: str | None = None,
    reason: str = "",
) -> ChangeRequest:
    """A change request that restores version `version` of the goal. Paths added since that
    version are proposed disabled (they did not route then)."""
    goal_version_ensure(goal=goal)
    try:
        old = GoalVersion.objects.get(goal=goal, version=version)
    except GoalVersion.DoesNotExist:
        raise ChangeInvalid(
            {"version": [f"Goal {goal.slug} has no recorded version {version}."]}
        ) from None
    snapshot = copy.deepcopy(old.snapshot)
    changes: dict[str, Any] = {**snapshot["goal"], "rules": snapshot["rules"]}
    live = goal_snapshot(goal)
    paths = {name: dict(fields) for name, fields in snapshot["paths"].items()}
    for name, fields in live["paths"].items():
        if name not in paths:
            paths[name] = {**fields, "enabled": False}
    changes["paths"] = paths
    return change_request_propose(
        goal=goal,
        changes=changes,
        reason=reason.strip() or f"Roll back to version {version}.",
        actor=actor,
        actor_key=actor_key,
        ip=ip,
        kind=ChangeRequest.Kind.ROLLBACK,
        rollback_of_version=version,
    )


# --------------------------------------------------------------------------- direct edits


def governed_changes(instance: models.Model, data: dict[str, Any]) -> list[str]:
    """The fields of `data` a direct save may not change on `instance` (an existing goal's
    governed fields and rules; an existing path's governed fields, and its call settings while
    it is enabled). Unchanged values pass, so a PUT of the whole object still works."""
    if instance.pk is None:
        return []
    if isinstance(instance, Goal):
        governed: tuple[str, ...] = (*GOVERNED_GOAL_FIELDS, "rules")
    elif isinstance(instance, Path):
        governed = GOVERNED_PATH_FIELDS
        if instance.enabled:
            governed = (*governed, *PATH_CALL_FIELDS)
    else:
        return []
    changed = []
    for name in governed:
        if name not in data:
            continue
        old = getattr(instance, name, None)
        old, new = getattr(old, "pk", old), getattr(data[name], "pk", data[name])
        if old != new:
            changed.append(name)
    return changed


def direct_edit_check(instance: models.Model, data: dict[str, Any]) -> None:
    fields = governed_changes(instance, data)
    if fields:
        kind = type(instance).__name__.lower()
        raise DirectEditRefused(
            f"The {kind}'s {', '.join(fields)} change through a change request only: use "
            f"{CHANGE_REQUESTS_ENDPOINT}.",
            fields=fields,
        )
