"""routerapp.rules (pure): every refusal of rules_check, the combination order of rules_apply,
the template's behaviour on real feature values, and that compiled rules are cached."""

from __future__ import annotations

from typing import Any

import pytest

from routerapp.features import FEATURE_NAMES, compute_features
from routerapp.rules import (
    RULE_NAMES,
    RuleError,
    rules_apply,
    rules_check,
    rules_compile,
    rules_template,
)

PATHS = {"cheap": True, "strong": True, "legacy": False}


@pytest.fixture(autouse=True)
def _reset_circuit_breaker() -> None:
    # Shadows the root conftest's autouse fixture (it imports Django-side code): rules are pure.
    return None


def rule(name: str, condition: str, action: str, paths: Any = None, **extra: Any) -> dict:
    made: dict[str, Any] = {"name": name, "condition": condition, "action": action, **extra}
    if paths is not None:
        made["paths"] = paths
    return made


def names(**overrides: Any) -> dict[str, Any]:
    base = compute_features([{"role": "user", "content": "hello"}]).as_names()
    return {**base, "classifier_label": "", **overrides}


# --------------------------------------------------------------------------- checking


def test_names_are_the_features_and_the_classifier_label() -> None:
    assert {"has_tools", "system_prompt_tokens"} <= FEATURE_NAMES
    assert FEATURE_NAMES | {"classifier_label"} == RULE_NAMES


def test_a_valid_list_is_normalised() -> None:
    checked = rules_check(
        [
            rule(" pin-long ", "prompt_tokens > 1000", "pin", ["strong"]),
            rule("no-legacy", "True", "exclude", ["legacy", "legacy"]),
            rule("vip", "get(metadata, 'tier') == 'vip'", "bucket", bucket=" tier:vip "),
        ],
        paths=PATHS,
    )
    assert checked == [
        {
            "name": "pin-long",
            "condition": "prompt_tokens > 1000",
            "action": "pin",
            "paths": ["strong"],
            "bucket": "",
        },
        {
            "name": "no-legacy",
            "condition": "True",
            "action": "exclude",
            "paths": ["legacy"],
            "bucket": "",
        },
        {
            "name": "vip",
            "condition": "get(metadata, 'tier') == 'vip'",
            "action": "bucket",
            "paths": [],
            "bucket": "tier:vip",
        },
    ]
    assert rules_check([], paths=PATHS) == []
    assert rules_check(None, paths=PATHS) == []


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ({"name": "x"}, "rules must be a list"),
        ("pin everything", "rules must be a list"),
        (["not a rule"], "rule 1: must be an object"),
        ([rule("a", "True", "pin", ["cheap"], colour="red")], "unknown field(s) colour"),
        ([{"condition": "True", "action": "pin", "paths": ["cheap"]}], "rule 1 name: is missing"),
        ([rule("", "True", "pin", ["cheap"])], "name: must be a non-empty string"),
        ([rule(7, "True", "pin", ["cheap"])], "name: must be a non-empty string"),
        ([rule("a", "True", "pin", ["cheap"]), rule("a", "True", "pin", ["strong"])], "unique"),
        ([{"name": "a", "condition": "True", "paths": ["cheap"]}], "'a' action: is missing"),
        ([rule("a", "True", "route", ["cheap"])], "action: must be one of pin, exclude, bucket"),
        ([{"name": "a", "action": "pin", "paths": ["cheap"]}], "'a' condition: is missing"),
        ([rule("a", 5, "pin", ["cheap"])], "condition: must be a string"),
        ([rule("a", "prompt_tokens >", "pin", ["cheap"])], "syntax error"),
        ([rule("a", "tokens > 5", "pin", ["cheap"])], "unknown name 'tokens'"),
        ([rule("a", "__import__('os')", "pin", ["cheap"])], "condition"),
        ([rule("a", "True", "pin", "cheap")], "paths: must be a list of path names"),
        ([rule("a", "True", "pin", [1])], "paths: must be a list of path names"),
        ([rule("a", "True", "pin", ["cheap", "strong"])], "exactly one path, got 2"),
        ([rule("a", "True", "pin", [])], "exactly one path, got 0"),
        ([rule("a", "True", "exclude", [])], "at least one path"),
        ([rule("a", "True", "bucket")], "needs a bucket name"),
        ([rule("a", "True", "bucket", bucket=3)], "bucket: must be a string"),
        ([rule("a", "True", "bucket", ["cheap"], bucket="b")], "a bucket rule names no paths"),
        ([rule("a", "True", "bucket", bucket="b" * 101)], "longer than 100"),
        ([rule("a", "True", "pin", ["cheap"], bucket="b")], "only a bucket rule has a bucket"),
        ([rule("a", "True", "pin", ["gpt-5"])], "unknown path(s) gpt-5"),
        ([rule("a", "True", "exclude", ["cheap", "nope"])], "unknown path(s) nope"),
        ([rule("a", "True", "pin", ["legacy"])], "'legacy', which is disabled"),
        ([rule("a", "True", "exclude", ["cheap", "strong"])], "excludes every enabled path"),
        (
            [
                rule("a", "has_tools", "exclude", ["cheap"]),
                rule("b", "True", "exclude", ["strong"]),
            ],
            "together with the earlier exclude rules",
        ),
        ([rule(str(i), "True", "bucket", bucket="b") for i in range(101)], "at most 100 rules"),
    ],
)
def test_refusals(rules: Any, expected: str) -> None:
    with pytest.raises(RuleError) as refused:
        rules_check(rules, paths=PATHS)
    assert expected in str(refused.value)


def test_a_bad_condition_is_refused_with_its_rule_and_position() -> None:
    rules = [
        rule("fine", "True", "pin", ["cheap"]),
        rule("typo", "complexity >= 7 and task_typ == 'code'", "pin", ["strong"]),
    ]
    with pytest.raises(RuleError) as refused:
        rules_check(rules, paths=PATHS)
    error = refused.value
    assert (error.index, error.rule, error.field) == (1, "typo", "condition")
    assert (error.line, error.column, error.position) == (1, 21, 20)
    assert str(error).startswith("rule 2 'typo' condition: unknown name 'task_typ'")
    assert "(line 1, column 21)" in str(error)
    assert error.as_dict()["position"] == 20


# --------------------------------------------------------------------------- applying


def test_first_matching_pin_wins_and_later_pins_are_ignored() -> None:
    compiled = rules_compile(
        rules_check(
            [
                rule("never", "False", "pin", ["legacy"]) | {"action": "exclude"},
                rule("first", "prompt_tokens < 100", "pin", ["cheap"]),
                rule("second", "True", "pin", ["strong"]),
            ],
            paths=PATHS,
        )
    )
    result = rules_apply(compiled, names())
    assert result.pinned == "cheap"
    assert result.excluded == frozenset()
    assert result.bucket is None
    assert [(hit["rule"], hit["effect"]) for hit in result.hits] == [
        ("first", "applied"),
        ("second", "ignored"),
    ]
    assert result.hits[0] == {
        "rule": "first",
        "action": "pin",
        "paths": ["cheap"],
        "bucket": "",
        "condition": "prompt_tokens < 100",
        "effect": "applied",
    }


def test_excludes_accumulate_and_a_pin_of_an_excluded_path_is_skipped() -> None:
    paths = {"a": True, "b": True, "c": True}
    compiled = rules_compile(
        rules_check(
            [
                rule("pin-a", "True", "pin", ["a"]),
                rule("no-b", "True", "exclude", ["b"]),
                rule("pin-c", "True", "pin", ["c"]),
                rule("no-a-later", "True", "exclude", ["a"]),
            ],
            paths=paths,
        )
    )
    result = rules_apply(compiled, names())
    # The exclude after the pin still removes its path: every exclude counts, whatever order.
    assert result.excluded == frozenset({"a", "b"})
    assert result.pinned == "c"
    effects = {hit["rule"]: hit["effect"] for hit in result.hits}
    assert effects == {
        "pin-a": "skipped",
        "no-b": "applied",
        "pin-c": "applied",
        "no-a-later": "applied",
    }


def test_a_pin_of_an_unavailable_path_is_skipped() -> None:
    compiled = rules_compile(
        [rule("pin-a", "True", "pin", ["a"]), rule("pin-b", "True", "pin", ["b"])]
    )
    result = rules_apply(compiled, names(), available={"b"})
    assert result.pinned == "b"
    assert result.hits[0]["effect"] == "skipped"
    assert "not available" in result.hits[0]["note"]


def test_first_matching_bucket_sets_the_bucket() -> None:
    compiled = rules_compile(
        [
            rule("no-match", "prompt_tokens > 10000", "bucket", bucket="huge"),
            rule("json", "has_json_request", "bucket", bucket="json"),
            rule("any", "True", "bucket", bucket="other"),
        ]
    )
    assert rules_apply(compiled, names(has_json_request=True)).bucket == "json"
    result = rules_apply(compiled, names())
    assert result.bucket == "other"
    assert [hit["rule"] for hit in result.hits] == ["any"]
    both = rules_apply(compiled, names(has_json_request=True))
    assert [hit["effect"] for hit in both.hits] == ["applied", "ignored"]


def test_a_rule_that_fails_to_evaluate_does_not_match_and_is_noted() -> None:
    compiled = rules_compile(
        [
            rule("tier", "metadata.tier == 'free'", "pin", ["cheap"]),
            rule("fallback", "True", "pin", ["strong"]),
        ]
    )
    result = rules_apply(compiled, names(metadata={}))
    assert result.pinned == "strong"
    assert result.hits[0]["effect"] == "error"
    assert "tier" in result.hits[0]["error"]
    free = rules_apply(compiled, names(metadata={"tier": "free"}))
    assert free.pinned == "cheap"


def test_the_new_features_and_the_classifier_label_can_be_used() -> None:
    compiled = rules_compile(
        [
            rule("tools", "has_tools and system_prompt_tokens > 50", "pin", ["strong"]),
            rule("label", "classifier_label == 'simple'", "pin", ["cheap"]),
        ]
    )
    with_tools = compute_features(
        [{"role": "system", "content": "x" * 400}, {"role": "user", "content": "hi"}],
        tools=[{"type": "function", "function": {"name": "f"}}],
    )
    assert rules_apply(compiled, {**with_tools.as_names(), "classifier_label": ""}).pinned == (
        "strong"
    )
    assert rules_apply(compiled, names(classifier_label="simple")).pinned == "cheap"
    assert rules_apply(compiled, names(classifier_label="")).pinned is None


def test_no_rules_decide_nothing() -> None:
    result = rules_apply((), names())
    assert (result.pinned, result.excluded, result.bucket, result.hits) == (
        None,
        frozenset(),
        None,
        [],
    )


def test_compiled_rules_are_cached_by_content() -> None:
    rules = [rule("a", "complexity > 3 and 'refund' in keywords", "pin", ["cheap"])]
    first = rules_compile(rules)
    again = rules_compile([dict(rules[0])])
    assert first is again  # the same objects: nothing re-parsed per call or per build
    assert first[0].expression is again[0].expression
    assert rules_compile([rule("a", "complexity > 4", "pin", ["cheap"])]) is not first


def test_compile_refuses_what_check_refuses_except_paths() -> None:
    with pytest.raises(RuleError, match="unknown name"):
        rules_compile([rule("a", "nope", "pin", ["cheap"])])
    # Paths are the catalog's business at run time: a gone path simply never applies.
    assert rules_compile([rule("a", "True", "pin", ["gone"])])[0].paths == ("gone",)


# --------------------------------------------------------------------------- template


def template_choice(messages: list[dict[str, Any]], label: str = "") -> str | None:
    compiled = rules_compile(
        rules_check(rules_template(cheap="cheap", strong="strong"), paths=PATHS)
    )
    features = compute_features(messages)
    return rules_apply(compiled, {**features.as_names(), "classifier_label": label}).pinned


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def test_template_sends_short_extraction_and_classification_to_the_cheap_path() -> None:
    assert template_choice(user("Extract all email addresses: bob@x.org, ann@y.com")) == "cheap"
    assert template_choice(user("Classify the sentiment of: 'I love this phone'")) == "cheap"


def test_template_sends_long_or_reasoning_heavy_requests_to_the_strong_path() -> None:
    long_text = "Extract all the names from this report. " + "The board met. " * 700
    assert compute_features(user(long_text)).prompt_tokens > 2000
    assert template_choice(user(long_text)) == "strong"
    reasoning = "Explain step by step why the proof works and compare the two approaches."
    assert template_choice(user(reasoning)) == "strong"
    assert template_choice(user("def f(x): return x  # debug this python function")) == "strong"
    assert template_choice(user("Classify this"), label="complex") == "strong"


def test_template_sends_borderline_requests_to_the_strong_path() -> None:
    # An extraction of a mid-sized text: not short enough for the cheap rule.
    borderline = "Extract the key figures from this summary. " + "Revenue grew again. " * 120
    features = compute_features(user(borderline))
    assert 500 < features.prompt_tokens <= 2000
    assert features.complexity >= 3.5
    assert template_choice(user(borderline)) == "strong"
    # A mid-sized summary: medium complexity, no reasoning cues.
    notes = "Summarize the key points of these notes. " + "The meeting ran long. " * 80
    medium = compute_features(user(notes))
    assert (medium.task_type, medium.reasoning_cues) == ("summarization", 0)
    assert 3.5 <= medium.complexity < 6.5
    assert template_choice(user(notes)) == "strong"


def test_template_leaves_short_simple_general_requests_to_the_engine() -> None:
    assert template_choice(user("What is the capital of France?")) is None
