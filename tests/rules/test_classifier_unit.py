"""The classifier step's pieces without a server: the label parser, the request it sends, and
that the simulator answers it sensibly (labels by the quoted request's complexity)."""

from __future__ import annotations

import pytest

from routerapp.providers.simulator import CLASSIFIER_REQUEST, simulate
from routerapp.services.classifier import (
    DEFAULT_PROMPT,
    MAX_REQUEST_CHARS,
    classifier_messages,
    label_parse,
)


@pytest.mark.parametrize(
    ("answer", "label"),
    [
        ("simple", "simple"),
        ("Complex", "complex"),
        ("  complex.\n", "complex"),
        ('"simple"', "simple"),
        ("simple or complex", None),
        ("I think it is simple", None),
        ("", None),
        (None, None),
        (42, None),
    ],
)
def test_label_parse_accepts_exactly_one_label_word(answer: object, label: str | None) -> None:
    assert label_parse(answer) == label


def test_the_request_uses_the_goal_prompt_or_the_default_and_quotes_the_request() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "hello"}, {"type": "image_url"}]},
    ]
    default = classifier_messages("", messages)
    assert default[0] == {"role": "system", "content": DEFAULT_PROMPT}
    custom = classifier_messages("  Label it.  ", messages)
    assert custom[0]["content"] == "Label it."
    quoted = CLASSIFIER_REQUEST.match(custom[1]["content"])
    assert quoted is not None, "the simulator must recognise the router's classifier request"
    assert quoted.group("quoted") == "system: Be brief.\nuser: hello"


def test_a_huge_request_is_quoted_from_its_end() -> None:
    text = "x" * 50_000 + " the question"
    content = classifier_messages("", [{"role": "user", "content": text}])[1]["content"]
    assert len(content) < MAX_REQUEST_CHARS + 100
    assert "the question" in content


def label_for(text: str, *, seed: int = 0) -> str:
    body = {
        "model": "gpt-4o-mini",
        "messages": classifier_messages("", [{"role": "user", "content": text}]),
        "seed": seed,
    }
    return simulate(body, latency_scale=0.0).choices[0].content


def test_the_simulator_labels_simple_and_complex_requests_mostly_right() -> None:
    simple = [label_for("What is the capital of France?", seed=i) for i in range(50)]
    complex_ = [
        label_for("Explain step by step why this python code deadlocks and prove the fix", seed=i)
        for i in range(50)
    ]
    # gpt-4o-mini's classification quality at complexity 2 is 0.93: seeded, so exact counts
    # are stable; the bound leaves room for a change of seed derivation.
    assert simple.count("simple") >= 40
    assert complex_.count("complex") >= 40
    wrong = [answer for answer in simple if answer != "simple"]
    assert all(answer == "complex" or label_parse(answer) is None for answer in wrong)
