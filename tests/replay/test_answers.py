"""Replay-mode answers: which row and which label answer a request (pure, no server)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from routerapp.replay.answers import (
    STRONG_MODEL,
    WEAK_MODEL,
    PromptNotFound,
    ReplayAnswers,
)
from routerapp.replay.data import load_routebench
from tests.replay.conftest import SHARED_PROMPT


@pytest.fixture
def answers(routebench_csv: Path) -> ReplayAnswers:
    return ReplayAnswers.load(routebench_csv)


def test_each_model_answers_with_its_own_label_and_recorded_lengths(
    routebench_csv: Path, answers: ReplayAnswers
) -> None:
    rows = load_routebench(routebench_csv)
    for index, prompt in enumerate(rows.prompts):
        if prompt == SHARED_PROMPT:
            continue
        weak = answers.answer(model=WEAK_MODEL, prompt=prompt)
        strong = answers.answer(model=STRONG_MODEL, prompt=prompt)
        assert (weak.row_id, strong.row_id) == (rows.ids[index], rows.ids[index])
        assert (weak.arm, strong.arm) == ("weak", "strong")
        assert weak.correct == bool(rows.weak[index])
        assert strong.correct == bool(rows.strong[index])
        assert weak.content == ("correct" if rows.weak[index] else "incorrect")
        # score.py's tokens (chars / 4), rounded up to whole tokens as a provider bills them.
        assert weak.prompt_tokens == strong.prompt_tokens == math.ceil(rows.prompt_chars[index] / 4)
        if rows.subjects[index] == "arithmetic":
            assert strong.completion_tokens == math.ceil(rows.strong_response_chars[index] / 4)
            assert weak.completion_tokens == math.ceil(rows.weak_response_chars[index] / 4)
        else:  # no recorded response: one output token, as score.py charges it
            assert weak.completion_tokens == strong.completion_tokens == 1


def test_the_arm_names_answer_like_the_dataset_models(answers: ReplayAnswers) -> None:
    prompt = "Question 3 (arithmetic): what is 3 + 9?\nAnswer:"
    assert answers.answer(model="strong", prompt=prompt) == answers.answer(
        model=STRONG_MODEL, prompt=prompt
    )
    assert ReplayAnswers.arm_for("gpt-4o-mini") is None


def test_a_row_id_hint_picks_between_rows_that_share_a_prompt(answers: ReplayAnswers) -> None:
    first = answers.answer(model=WEAK_MODEL, prompt=SHARED_PROMPT, hint="shared0000a1")
    second = answers.answer(model=WEAK_MODEL, prompt=SHARED_PROMPT, hint="shared0000b2")
    assert (first.row_id, first.correct) == ("shared0000a1", True)
    assert (second.row_id, second.correct) == ("shared0000b2", False)
    # Without a usable hint the first row in file order answers.
    assert answers.answer(model=WEAK_MODEL, prompt=SHARED_PROMPT).row_id == "shared0000a1"
    assert answers.answer(model=WEAK_MODEL, prompt=SHARED_PROMPT, hint="nope").row_id == (
        "shared0000a1"
    )


def test_a_hint_never_overrides_the_prompt(answers: ReplayAnswers) -> None:
    prompt = "Question 0 (trivia): what is 0 + 0?\nAnswer:"
    assert answers.answer(model=WEAK_MODEL, prompt=prompt, hint="shared0000b2").row_id == (
        f"{0:012x}"
    )


def test_unknown_prompts_and_models_are_refused(answers: ReplayAnswers) -> None:
    with pytest.raises(PromptNotFound):
        answers.answer(model=WEAK_MODEL, prompt="Question 0 (trivia): what is 0 + 0?")
    with pytest.raises(KeyError, match="gpt-4o"):
        answers.answer(model="gpt-4o", prompt=SHARED_PROMPT)
