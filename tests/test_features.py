"""compute_features: deterministic values, monotonic complexity, content shapes, bounds."""

from __future__ import annotations

import time
from typing import Any

import pytest

from routerapp.expressions import compile_expression
from routerapp.features import (
    FEATURE_NAMES,
    Features,
    compute_features,
    estimate_tokens,
    guess_task_type,
)


@pytest.fixture(autouse=True)
def _reset_circuit_breaker() -> None:
    # Shadows the root conftest's autouse fixture, which imports a Django-side service;
    # features are pure and must be testable without Django.
    return None


def user(text: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def test_estimate_tokens_is_about_four_characters_per_token() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("a") == 1
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    assert estimate_tokens("x" * 4000) == 1000


def test_a_short_factual_question_is_simple() -> None:
    features = compute_features(user("What is the capital of France?"))
    # 30 chars -> 8 tokens; length log10(9)=0.95 + general 0.5.
    assert features == Features(
        prompt_tokens=8,
        message_count=1,
        task_type="general",
        complexity=1.45,
        has_json_request=False,
        reasoning_cues=0,
        keywords=(),
        metadata={},
    )
    assert features.complexity_bucket() == "complexity:simple"


def test_a_reasoning_request_with_comparisons_is_medium() -> None:
    text = "Explain step by step why the sky is blue, and compare it to a sunset."
    features = compute_features(user(text))
    # Cues: explain, step by step, why, compare -> 4; reasoning 2.5 + cues min(2.5, 3.0).
    assert (features.prompt_tokens, features.reasoning_cues) == (18, 4)
    assert features.task_type == "reasoning"
    assert features.complexity == 6.28
    assert features.complexity_bucket() == "complexity:medium"


def test_a_long_proof_request_is_complex() -> None:
    text = "Prove that there are infinitely many primes. Why does it work? " + (
        "Analyze each step of the argument carefully. " * 300
    )
    features = compute_features(user(text), response_format={"type": "json_object"})
    assert features.task_type == "reasoning"
    assert features.has_json_request is True
    # length log10(1+3391)=3.53 + 2.5 + 1.0 (json) + 2.5 (cues, capped).
    assert features.complexity == 9.53
    assert features.complexity_bucket() == "complexity:complex"


@pytest.mark.parametrize(
    ("text", "task_type"),
    [
        ("```python\nprint(1)\n```\nWhy does this fail?", "code"),
        ("def add(a, b):\n    return a - b\nfix it", "code"),
        ("Write a Python function that reverses a string", "code"),
        ("How many apples are left if I have 12 and eat 5?", "math"),
        ("Solve 3x + 4 = 19", "math"),
        ("Classify this ticket as billing or other: my card was charged twice", "classification"),
        ("Label the sentiment of: great product!", "classification"),
        ("Extract the names and dates from this email: ...", "extraction"),
        ("Summarize the following article in 3 bullet points: ...", "summarization"),
        ("Why is the sky blue? Explain the physics.", "reasoning"),
        ("Tell me a joke about cats", "general"),
    ],
)
def test_task_type_heuristics(text: str, task_type: str) -> None:
    assert compute_features(user(text)).task_type == task_type


def test_task_type_from_metadata_wins_over_the_heuristic() -> None:
    features = compute_features(user("def f(): pass"), metadata={"task_type": " Translation "})
    assert features.task_type == "translation"
    # An unknown task type weighs 1.0: log10(1+4)=0.70 + 1.0.
    assert features.complexity == 1.7


def test_guess_task_type_needs_two_reasoning_cues_for_reasoning() -> None:
    assert guess_task_type("tell me about rivers", reasoning_cues=1) == "general"
    assert guess_task_type("tell me about rivers", reasoning_cues=2) == "reasoning"


def test_complexity_grows_with_length_and_reasoning_cues() -> None:
    base = "Tell me about the history of Rome."
    short = compute_features(user(base)).complexity
    longer = compute_features(user(base + " It was founded long ago." * 200)).complexity
    with_cues = compute_features(
        user(base + " It was founded long ago." * 200 + " Explain why it fell and compare.")
    ).complexity
    assert short < longer < with_cues
    assert short >= 0
    assert with_cues <= 10


def test_complexity_is_capped_at_ten() -> None:
    text = "Prove why and explain, step by step, analyze and compare? " * 5000
    features = compute_features(user(text), response_format={"type": "json_schema"})
    assert features.complexity == 10.0


def test_json_is_detected_from_response_format_or_the_prompt() -> None:
    assert compute_features(user("hi"), response_format={"type": "json_object"}).has_json_request
    assert compute_features(user("hi"), response_format={"type": "json_schema"}).has_json_request
    assert not compute_features(user("hi"), response_format={"type": "text"}).has_json_request
    assert compute_features(user("Answer in JSON please")).has_json_request
    assert not compute_features(user("Ask Jason")).has_json_request


def test_multi_part_questions_count_as_reasoning_cues() -> None:
    features = compute_features(user("Where is it? When did it open? Who built it?"))
    assert features.reasoning_cues == 2


def test_list_content_counts_text_parts_and_ignores_images() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 9000}},
                {"type": "text", "text": "Answer in one word."},
            ],
        },
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1"}]},
    ]
    features = compute_features(messages)
    text = "Be brief.\nWhat is in this picture?\nAnswer in one word.\n"
    assert features.prompt_tokens == estimate_tokens(text)
    assert features.message_count == 3


def test_keywords_are_matched_case_insensitively_on_word_boundaries() -> None:
    features = compute_features(
        user("I want a REFUND for my C++ course, step by step. Refunding is slow."),
        keywords=["refund", "step by step", "c++", "fund", "invoice", "refund"],
    )
    assert features.keywords == ("refund", "step by step", "c++")


def test_as_names_are_plain_data_that_rule_expressions_accept() -> None:
    features = compute_features(
        user("Please refund me"), metadata={"tier": "free"}, keywords=["refund"]
    )
    names = features.as_names()
    assert set(names) == FEATURE_NAMES
    assert names["keywords"] == ["refund"]
    assert names["metadata"] == {"tier": "free"}
    condition = compile_expression(
        "'refund' in keywords and metadata.tier == 'free' and complexity < 7",
        names=FEATURE_NAMES,
    )
    assert condition.evaluate(names) is True


def test_metadata_is_a_read_only_copy() -> None:
    metadata = {"tier": "free"}
    features = compute_features(user("hi"), metadata=metadata)
    metadata["tier"] = "pro"
    assert features.metadata["tier"] == "free"
    with pytest.raises(TypeError):
        features.metadata["tier"] = "pro"  # type: ignore[index]


def test_huge_input_is_fast_and_counts_every_character() -> None:
    text = "lorem ipsum " * 1_000_000 + "Why? Explain step by step."
    messages = [{"role": "system", "content": "x" * 5_000_000}, *user(text)]
    started = time.perf_counter()
    features = compute_features(messages, keywords=["explain", "ipsum", "absent"])
    assert time.perf_counter() - started < 0.5
    assert features.prompt_tokens == estimate_tokens("x" * 5_000_000 + "\n" + text)
    # The end of the newest message is scanned even though it is far beyond 20k characters.
    assert features.keywords == ("explain", "ipsum")
    assert features.reasoning_cues >= 3


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ("hello", "messages must be a list of chat messages, got str"),
        ({"role": "user", "content": "hi"}, "messages must be a list of chat messages, got dict"),
        (None, "messages must be a list of chat messages, got NoneType"),
        ([], "messages must not be empty"),
        (["hello"], r"messages\[0\] must be an object, got str"),
        ([{"role": "user"}], r"messages\[0\] has no content"),
        ([{"role": "user", "content": 42}], r"messages\[0\].content must be a string or a list"),
        ([{"role": "user", "content": ["hi"]}], r"messages\[0\].content\[0\] must be an object"),
        (
            [{"role": "user", "content": [{"type": "text", "text": None}]}],
            r"messages\[0\].content\[0\].text must be a string",
        ),
    ],
)
def test_bad_messages_raise_value_error_with_a_clear_message(messages: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compute_features(messages)


def test_bad_metadata_and_keywords_raise_value_error() -> None:
    with pytest.raises(ValueError, match="metadata must be an object"):
        compute_features(user("hi"), metadata=["tier"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"metadata.task_type must be a string"):
        compute_features(user("hi"), metadata={"task_type": 3})
    with pytest.raises(ValueError, match="not a single string"):
        compute_features(user("hi"), keywords="refund")
    with pytest.raises(ValueError, match="keywords must be strings"):
        compute_features(user("hi"), keywords=[1])  # type: ignore[list-item]


def test_has_tools_is_true_for_a_request_that_offers_tools() -> None:
    tool = {"type": "function", "function": {"name": "lookup"}}
    assert compute_features(user("hi"), tools=[tool]).has_tools is True
    assert compute_features(user("hi"), tools=[]).has_tools is False
    assert compute_features(user("hi")).has_tools is False
    with pytest.raises(ValueError, match="tools must be a list"):
        compute_features(user("hi"), tools="lookup")
    with pytest.raises(ValueError, match="tools must be a list"):
        compute_features(user("hi"), tools=5)


def test_system_prompt_tokens_count_system_and_developer_messages_only() -> None:
    messages = [
        {"role": "system", "content": "x" * 400},
        {"role": "developer", "content": [{"type": "text", "text": "y" * 40}]},
        {"role": "user", "content": "z" * 4000},
    ]
    features = compute_features(messages)
    assert features.system_prompt_tokens == 110  # (400 + 40) / 4
    assert compute_features(user("hello")).system_prompt_tokens == 0


def test_the_new_features_are_names_rules_can_use() -> None:
    names = compute_features(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        tools=[{"type": "function", "function": {"name": "f"}}],
    ).as_names()
    assert names["has_tools"] is True
    assert names["system_prompt_tokens"] == 3
    assert set(names) == FEATURE_NAMES
    assert compile_expression(
        "has_tools and system_prompt_tokens < 10", names=FEATURE_NAMES
    ).evaluate(names)
