"""A goal's rule set: ordered `condition -> action` rules over request features. PURE.

A rule is `{"name", "condition", "action", "paths", "bucket"}`:

- `name`: its id, unique within the goal (decisions name it in `rule_hits`);
- `condition`: a safe expression (routerapp.expressions, the evaluator of `success_when`)
  over RULE_NAMES: the features of `routerapp.features` plus `classifier_label`
  ("simple" | "complex", "" when the goal has no classifier step or it failed);
- `action`: `pin` one path (`paths` holds exactly one name), `exclude` paths (`paths` holds
  one or more), or `bucket` (set the context bucket to `bucket`; no paths).

How matching rules combine (`rules_apply`; docs/decisions.md "Rules"):

1. Every rule is evaluated, in order.
2. Every matching `exclude` accumulates: the union of their paths is removed from the call.
3. The first matching `pin` whose path is available and not excluded wins; later matching
   pins are ignored; a pin of an excluded or unavailable (disabled) path is skipped, and the
   next matching pin may win. The pinned path is called first; the engine ranks the others
   after it as fallbacks.
4. The first matching `bucket` sets the context bucket (later ones are ignored); without one
   the goal's `bucket_by` decides.
5. A condition that fails to evaluate (a missing metadata field, a type error) counts as not
   matching; the hit list says so, the call goes on.

`rules_check` is the save-time validation (shape, names, conditions with the error position,
paths, and that no rule nor all excludes together leave a call without an enabled path);
`rules_compile` turns a checked list into `CompiledRule`s, cached by content, so routing
compiles a goal's rules once per catalog build and evaluating one costs microseconds.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from routerapp.expressions import CompiledExpression, ExpressionError, compile_expression
from routerapp.features import FEATURE_NAMES

RULE_ACTIONS = ("pin", "exclude", "bucket")
RULE_NAMES: frozenset[str] = FEATURE_NAMES | {"classifier_label"}
RULE_KEYS = ("name", "condition", "action", "paths", "bucket")
CLASSIFIER_LABELS = ("simple", "complex")
MAX_RULES = 100
MAX_NAME_LENGTH = 100
MAX_BUCKET_LENGTH = 100  # RoutingDecision.bucket

# Hit effects (`rule_hits[i]["effect"]`).
APPLIED = "applied"
IGNORED = "ignored"  # a later pin or bucket once an earlier one decided
SKIPPED = "skipped"  # a pin of an excluded or unavailable path
ERROR = "error"  # the condition could not be evaluated (counts as not matching)


class RuleError(ValueError):
    """A rule set is refused. `str()` is the readable message (rule number and name, field,
    and for a condition the expression error with its line and column); `index` (0-based),
    `rule`, `field` and `position` (0-based offset into the condition) locate it."""

    def __init__(
        self,
        message: str,
        *,
        index: int | None = None,
        rule: str | None = None,
        field: str | None = None,
        position: int | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.message = message
        self.index = index
        self.rule = rule
        self.field = field
        self.position = position
        self.line = line
        self.column = column
        super().__init__(self._formatted())

    def _formatted(self) -> str:
        where = []
        if self.index is not None:
            where.append(f"rule {self.index + 1}")
        if self.rule:
            where.append(f"'{self.rule}'")
        prefix = " ".join(where)
        if self.field:
            prefix = f"{prefix} {self.field}" if prefix else self.field
        return f"{prefix}: {self.message}" if prefix else self.message

    def __str__(self) -> str:
        return self._formatted()

    def as_dict(self) -> dict[str, Any]:
        return {
            "message": str(self),
            "index": self.index,
            "rule": self.rule,
            "field": self.field,
            "position": self.position,
            "line": self.line,
            "column": self.column,
        }


@dataclass(frozen=True)
class CompiledRule:
    name: str
    condition: str
    action: str
    paths: tuple[str, ...]
    bucket: str
    expression: CompiledExpression = field(repr=False, compare=False, hash=False)
    # The names the condition reads: only those are handed to the evaluator, which wraps
    # every value it is given (about half the cost of an evaluation with all the features).
    uses: frozenset[str] = frozenset()

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "condition": self.condition,
            "action": self.action,
            "paths": list(self.paths),
            "bucket": self.bucket,
        }


@dataclass(frozen=True)
class RuleResult:
    """What the matching rules decided for one call: the pinned path name (None: the engine
    decides), the excluded path names, the bucket (None: the goal's `bucket_by`), and one hit
    per matching (or failing) rule:
    `{"rule", "action", "paths", "bucket", "condition", "effect"[, "error"]}`."""

    pinned: str | None = None
    excluded: frozenset[str] = frozenset()
    bucket: str | None = None
    hits: list[dict[str, Any]] = field(default_factory=list)


NO_RULES = RuleResult()


# --------------------------------------------------------------------------- checking


def _normalised_rule(rule: object, index: int, seen: set[str]) -> dict[str, Any]:
    if not isinstance(rule, Mapping):
        raise RuleError(f"must be an object, got {type(rule).__name__}", index=index)
    raw_name = rule.get("name")
    name = raw_name.strip() if isinstance(raw_name, str) else None
    unknown = sorted(str(key) for key in rule if key not in RULE_KEYS)
    if unknown:
        raise RuleError(
            f"unknown field(s) {', '.join(unknown)}; a rule has {', '.join(RULE_KEYS)}",
            index=index,
            rule=name,
        )
    if raw_name is None:
        raise RuleError("is missing", index=index, field="name")
    if not isinstance(raw_name, str) or not name:
        raise RuleError("must be a non-empty string", index=index, field="name")
    if len(name) > MAX_NAME_LENGTH:
        raise RuleError(f"is longer than {MAX_NAME_LENGTH} characters", index=index, field="name")
    if name in seen:
        raise RuleError("is used by an earlier rule; names must be unique", index=index, rule=name)
    seen.add(name)
    where: dict[str, Any] = {"index": index, "rule": name}
    action = rule.get("action")
    if action is None:
        raise RuleError("is missing", field="action", **where)
    if action not in RULE_ACTIONS:
        raise RuleError(f"must be one of {', '.join(RULE_ACTIONS)}", field="action", **where)
    condition = rule.get("condition")
    if condition is None:
        raise RuleError("is missing", field="condition", **where)
    if not isinstance(condition, str):
        raise RuleError("must be a string", field="condition", **where)
    try:
        compile_expression(condition, names=RULE_NAMES)
    except ExpressionError as error:
        raise RuleError(
            str(error),
            field="condition",
            position=error.position,
            line=error.line,
            column=error.column,
            **where,
        ) from None
    paths = rule.get("paths", [])
    if paths is None:
        paths = []
    if isinstance(paths, str) or not isinstance(paths, Sequence):
        raise RuleError("must be a list of path names", field="paths", **where)
    if not all(isinstance(path, str) and path for path in paths):
        raise RuleError("must be a list of path names", field="paths", **where)
    paths = list(dict.fromkeys(paths))  # a repeated name means nothing more
    bucket = rule.get("bucket", "")
    if bucket is None:
        bucket = ""
    if not isinstance(bucket, str):
        raise RuleError("must be a string", field="bucket", **where)
    bucket = bucket.strip()
    if action == "pin" and len(paths) != 1:
        raise RuleError(f"a pin names exactly one path, got {len(paths)}", field="paths", **where)
    if action == "exclude" and not paths:
        raise RuleError("an exclude names at least one path", field="paths", **where)
    if action == "bucket":
        if paths:
            raise RuleError("a bucket rule names no paths", field="paths", **where)
        if not bucket:
            raise RuleError("a bucket rule needs a bucket name", field="bucket", **where)
        if len(bucket) > MAX_BUCKET_LENGTH:
            raise RuleError(
                f"is longer than {MAX_BUCKET_LENGTH} characters", field="bucket", **where
            )
    elif bucket:
        raise RuleError(f"only a bucket rule has a bucket (this is a {action})", **where)
    return {
        "name": name,
        "condition": condition,
        "action": action,
        "paths": paths,
        "bucket": bucket,
    }


def _normalised(rules: object) -> list[dict[str, Any]]:
    if rules is None:
        return []
    if isinstance(rules, str | bytes | Mapping) or not isinstance(rules, Sequence):
        raise RuleError(f"rules must be a list of rules, got {type(rules).__name__}")
    if len(rules) > MAX_RULES:
        raise RuleError(f"a goal has at most {MAX_RULES} rules, got {len(rules)}")
    seen: set[str] = set()
    return [_normalised_rule(rule, index, seen) for index, rule in enumerate(rules)]


def rules_check(rules: object, *, paths: Mapping[str, bool]) -> list[dict[str, Any]]:
    """Validate a rule list against the goal's paths (name -> enabled); return it normalised
    (every key present, names and buckets stripped). Raises `RuleError` on the first fault.

    Refused: a malformed list or rule, unknown or missing fields, duplicate names, a
    condition the evaluator refuses (with its position), an action without what it needs,
    an unknown path, a pin of a disabled path, and any exclude, or all excludes together,
    that would leave no enabled path.
    """
    checked = _normalised(rules)
    enabled = {name for name, on in paths.items() if on}
    excluded: set[str] = set()
    for index, rule in enumerate(checked):
        where: dict[str, Any] = {"index": index, "rule": rule["name"], "field": "paths"}
        unknown = [name for name in rule["paths"] if name not in paths]
        if unknown:
            known = ", ".join(sorted(paths)) or "none"
            raise RuleError(
                f"unknown path(s) {', '.join(unknown)}; the goal's paths: {known}", **where
            )
        if rule["action"] == "pin" and rule["paths"][0] not in enabled:
            raise RuleError(
                f"pins '{rule['paths'][0]}', which is disabled: it would never be called",
                **where,
            )
        if rule["action"] == "exclude":
            if enabled <= set(rule["paths"]):
                raise RuleError("excludes every enabled path: no path would be left", **where)
            excluded.update(rule["paths"])
            if enabled <= excluded:
                raise RuleError(
                    "together with the earlier exclude rules it excludes every enabled path: "
                    "a call matching them all would have no path",
                    **where,
                )
    return checked


# --------------------------------------------------------------------------- compiling


def rules_compile(rules: Sequence[Mapping[str, Any]]) -> tuple[CompiledRule, ...]:
    """The compiled form of a rule list (shape and conditions validated, paths not: a rule
    naming a path that is gone just never applies). Cached by content. Raises `RuleError`."""
    if not rules:
        return ()
    try:
        key = json.dumps(rules, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        raise RuleError("rules must be JSON data") from None
    return _compile_cached(key)


def _compiled_rule(rule: Mapping[str, Any]) -> CompiledRule:
    expression = compile_expression(rule["condition"], names=RULE_NAMES)
    tree = expression.tree
    uses = (
        frozenset(
            node.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Name) and node.id in RULE_NAMES
        )
        if tree is not None
        else RULE_NAMES
    )
    return CompiledRule(
        name=rule["name"],
        condition=rule["condition"],
        action=rule["action"],
        paths=tuple(rule["paths"]),
        bucket=rule["bucket"],
        expression=expression,
        uses=uses,
    )


@lru_cache(maxsize=256)
def _compile_cached(key: str) -> tuple[CompiledRule, ...]:
    return tuple(_compiled_rule(rule) for rule in _normalised(json.loads(key)))


# --------------------------------------------------------------------------- applying


def _hit(rule: CompiledRule, effect: str, **extra: Any) -> dict[str, Any]:
    return {
        "rule": rule.name,
        "action": rule.action,
        "paths": list(rule.paths),
        "bucket": rule.bucket,
        "condition": rule.condition,
        "effect": effect,
        **extra,
    }


def rules_apply(
    compiled: Sequence[CompiledRule],
    names: Mapping[str, object],
    *,
    available: Collection[str] | None = None,
) -> RuleResult:
    """Evaluate the rules over one call's names (`Features.as_names()` + `classifier_label`)
    and combine the matches as the module docstring says. `available`: the path names that
    can be called (None: every name is); a pin of any other path is skipped."""
    if not compiled:
        return NO_RULES
    matched: list[int] = []
    hits: dict[int, dict[str, Any]] = {}
    for index, rule in enumerate(compiled):
        try:
            if rule.expression.evaluate({name: names[name] for name in rule.uses if name in names}):
                matched.append(index)
        except ExpressionError as error:
            hits[index] = _hit(rule, ERROR, error=str(error))
    excluded = frozenset(
        name
        for index in matched
        if compiled[index].action == "exclude"
        for name in compiled[index].paths
    )
    pinned: str | None = None
    bucket: str | None = None
    for index in matched:
        rule = compiled[index]
        if rule.action == "exclude":
            hits[index] = _hit(rule, APPLIED)
        elif rule.action == "bucket":
            hits[index] = _hit(rule, IGNORED if bucket is not None else APPLIED)
            bucket = rule.bucket if bucket is None else bucket
        elif pinned is not None:
            hits[index] = _hit(rule, IGNORED, note="an earlier pin decided")
        elif rule.paths[0] in excluded:
            hits[index] = _hit(rule, SKIPPED, note=f"'{rule.paths[0]}' is excluded")
        elif available is not None and rule.paths[0] not in available:
            hits[index] = _hit(rule, SKIPPED, note=f"'{rule.paths[0]}' is not available")
        else:
            pinned = rule.paths[0]
            hits[index] = _hit(rule, APPLIED)
    return RuleResult(
        pinned=pinned,
        excluded=excluded,
        bucket=bucket,
        hits=[hits[index] for index in sorted(hits)],
    )


# --------------------------------------------------------------------------- template

TEMPLATE_LONG_TOKENS = 2000
TEMPLATE_SHORT_TOKENS = 500
TEMPLATE_BORDERLINE_COMPLEXITY = 3.5  # features.SIMPLE_BELOW: medium and complex


def rules_template(*, cheap: str, strong: str) -> list[dict[str, Any]]:
    """The heuristic router of the article this project started from, as rules: long or
    reasoning-heavy requests -> the strong path; short extraction / classification -> the
    cheap path; borderline (medium complexity and above) -> the strong path. Anything else
    (short, simple, general requests) is left to the engine."""
    return [
        {
            "name": "long-or-reasoning-to-strong",
            "condition": (
                f"prompt_tokens > {TEMPLATE_LONG_TOKENS} or reasoning_cues >= 2"
                " or task_type in ('reasoning', 'code', 'math')"
                " or classifier_label == 'complex'"
            ),
            "action": "pin",
            "paths": [strong],
            "bucket": "",
        },
        {
            "name": "short-extraction-to-cheap",
            "condition": (
                "task_type in ('extraction', 'classification')"
                f" and prompt_tokens <= {TEMPLATE_SHORT_TOKENS}"
                f" and complexity < {TEMPLATE_BORDERLINE_COMPLEXITY}"
            ),
            "action": "pin",
            "paths": [cheap],
            "bucket": "",
        },
        {
            "name": "borderline-to-strong",
            "condition": f"complexity >= {TEMPLATE_BORDERLINE_COMPLEXITY}",
            "action": "pin",
            "paths": [strong],
            "bucket": "",
        },
    ]


__all__ = [
    "CLASSIFIER_LABELS",
    "NO_RULES",
    "RULE_ACTIONS",
    "RULE_NAMES",
    "CompiledRule",
    "RuleError",
    "RuleResult",
    "rules_apply",
    "rules_check",
    "rules_compile",
    "rules_template",
]
