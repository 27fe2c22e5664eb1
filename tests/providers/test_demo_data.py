"""Demo prompts: varied wording, a known gold answer, and grading."""

from __future__ import annotations

import random

import numpy as np
import pytest

from routerapp import demo_data


@pytest.mark.parametrize("goal", sorted(demo_data.DEMO_GOALS))
def test_every_goal_has_enough_templates_and_varied_prompts(goal: str) -> None:
    prompts = demo_data.sample_prompts(goal, np.random.default_rng(0), 200)

    assert len(demo_data.DEMO_GOALS[goal].templates) >= 15
    assert len(prompts) == 200
    assert len({p.text for p in prompts}) > 100
    assert all(p.goal == goal and p.messages[0]["role"] == "user" for p in prompts)


@pytest.mark.parametrize("goal", sorted(demo_data.DEMO_GOALS))
def test_gold_label_reads_the_gold_back_from_the_wording(goal: str) -> None:
    prompts = demo_data.sample_prompts(goal, np.random.default_rng(1), 500)

    assert all(demo_data.gold_label(p.text) == p.gold for p in prompts)
    if demo_data.labels(goal):
        assert {p.gold for p in prompts} == set(demo_data.labels(goal))


def test_same_seed_same_prompts_and_stdlib_rng_works() -> None:
    first = demo_data.sample_prompts(demo_data.TRIAGE, np.random.default_rng(9), 20)
    again = demo_data.sample_prompts(demo_data.TRIAGE, np.random.default_rng(9), 20)
    stdlib = demo_data.sample_prompts(demo_data.TRIAGE, random.Random(9), 20)

    assert first == again
    assert len(stdlib) == 20


def test_system_prompts_demand_exactly_one_label() -> None:
    prompt = demo_data.system_prompt(demo_data.TRIAGE)

    assert "exactly one label from: billing, technical, account, other" in prompt
    with pytest.raises(ValueError, match="unknown demo goal"):
        demo_data.system_prompt("nope")


def test_keyword_table_labels_unseen_wording_when_the_goal_is_named() -> None:
    assert demo_data.gold_label("Please refund my last invoice", demo_data.TRIAGE) == "billing"
    assert demo_data.gold_label("The export keeps crashing", demo_data.TRIAGE) == "technical"
    assert demo_data.gold_label("hello", demo_data.TRIAGE) == "other"
    assert demo_data.gold_label("Claim your prize now!", demo_data.EMAIL) == "spam"
    assert demo_data.gold_label("Lunch tomorrow?") is None  # no goal, no template


def test_is_correct_grades_labels_strictly_and_numbers_by_value() -> None:
    label = demo_data.DemoPrompt(
        goal=demo_data.TRIAGE,
        messages=[],
        gold="billing",
        task_type="classification",
        complexity_hint=2,
    )
    number = demo_data.DemoPrompt(
        goal=demo_data.MIXED, messages=[], gold="12.5", task_type="math", complexity_hint=8
    )
    contains = demo_data.DemoPrompt(
        goal=demo_data.MIXED,
        messages=[],
        gold="e-bike",
        task_type="summarization",
        complexity_hint=4,
        match="contains",
    )

    assert demo_data.is_correct(label, " billing\n")
    assert demo_data.is_correct(label, "Billing")
    assert not demo_data.is_correct(label, "I think this might be billing-related.")
    assert not demo_data.is_correct(label, "technical")
    assert demo_data.is_correct(number, "12.50")
    assert demo_data.is_correct(number, "$12.5")
    assert not demo_data.is_correct(number, "13")
    assert demo_data.is_correct(contains, "Broken e-bike, wants a replacement")


def test_recognise_uses_template_then_system_prompt() -> None:
    prompt = demo_data.sample_prompts(demo_data.MIXED, np.random.default_rng(4), 1)[0]
    by_template = demo_data.recognise(prompt.messages)
    by_system = demo_data.recognise(
        [
            {"role": "system", "content": demo_data.system_prompt(demo_data.EMAIL)},
            {"role": "user", "content": "Win a FREE cruise, click the link"},
        ]
    )

    assert by_template is not None
    assert (by_template.gold, by_template.task_type) == (prompt.gold, prompt.task_type)
    assert prompt.gold not in by_template.alternatives
    assert by_system is not None
    assert (by_system.goal, by_system.gold) == (demo_data.EMAIL, "spam")
    assert demo_data.recognise([{"role": "user", "content": "Write me a poem"}]) is None
