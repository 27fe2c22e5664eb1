"""The simulator's replay mode over real HTTP, with the real `openai` client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from routerapp.providers.simulator import REPLAY_ENV, replay_from_environment, serve_in_thread
from routerapp.replay.answers import STRONG_MODEL, WEAK_MODEL, ReplayAnswers
from routerapp.replay.data import load_routebench
from tests.replay.conftest import SHARED_PROMPT


@pytest.fixture
def replay_client(routebench_csv: Path) -> Iterator[openai.OpenAI]:
    base_url, stop = serve_in_thread(replay=ReplayAnswers.load(routebench_csv))
    try:
        yield openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0)
    finally:
        stop()


def test_the_dataset_models_answer_as_recorded(
    replay_client: openai.OpenAI, routebench_csv: Path
) -> None:
    rows = load_routebench(routebench_csv)
    for index in range(6):
        prompt = rows.prompts[index]
        for model, labels in ((WEAK_MODEL, rows.weak), (STRONG_MODEL, rows.strong)):
            completion = replay_client.chat.completions.create(
                model=model,
                messages=[
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": prompt},
                ],
            )
            assert completion.model == model
            assert completion.choices[0].message.content == (
                "correct" if labels[index] else "incorrect"
            )
            assert completion.usage is not None
            assert completion.usage.prompt_tokens == -(-int(rows.prompt_chars[index]) // 4)
            chars = (
                rows.weak_response_chars if model == WEAK_MODEL else rows.strong_response_chars
            )[index]
            expected_out = 1 if chars != chars else -(-int(chars) // 4)  # NaN: no recorded length
            assert completion.usage.completion_tokens == expected_out


def test_the_user_field_picks_the_row_of_a_shared_prompt(replay_client: openai.OpenAI) -> None:
    first = replay_client.chat.completions.create(
        model=STRONG_MODEL,
        messages=[{"role": "user", "content": SHARED_PROMPT}],
        user="shared0000a1",
    )
    second = replay_client.chat.completions.create(
        model=STRONG_MODEL,
        messages=[{"role": "user", "content": SHARED_PROMPT}],
        user="shared0000b2",
    )
    assert first.choices[0].message.content == "incorrect"
    assert second.choices[0].message.content == "correct"


def test_a_streamed_answer_carries_the_recorded_usage(replay_client: openai.OpenAI) -> None:
    prompt = "Question 1 (arithmetic): what is 1 + 3?\nAnswer:"
    plain = replay_client.chat.completions.create(
        model=WEAK_MODEL, messages=[{"role": "user", "content": prompt}]
    )
    chunks = list(
        replay_client.chat.completions.create(
            model=WEAK_MODEL,
            messages=[{"role": "user", "content": prompt}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert chunks[-1].usage is not None
    assert plain.usage is not None
    assert chunks[-1].usage.completion_tokens == plain.usage.completion_tokens


def test_a_prompt_outside_the_data_is_refused(replay_client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="not in the replay data"):
        replay_client.chat.completions.create(
            model=STRONG_MODEL, messages=[{"role": "user", "content": "Hello there"}]
        )


def test_other_models_are_simulated_exactly_as_without_replay(
    replay_client: openai.OpenAI,
) -> None:
    plain_url, stop = serve_in_thread()
    try:
        plain = openai.OpenAI(base_url=plain_url, api_key="unused", max_retries=0)
        request = {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": SHARED_PROMPT}],
            "seed": 3,
        }
        replayed = replay_client.chat.completions.create(**request)  # type: ignore[call-overload]
        simulated = plain.chat.completions.create(**request)  # type: ignore[call-overload]
    finally:
        stop()
    assert replayed.choices[0].message.content == simulated.choices[0].message.content
    assert replayed.choices[0].message.content not in ("correct", "incorrect")
    assert replayed.usage == simulated.usage


def test_the_environment_names_the_replay_data(
    routebench_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(REPLAY_ENV, raising=False)
    assert replay_from_environment() is None
    monkeypatch.setenv(REPLAY_ENV, str(routebench_csv))
    answers = replay_from_environment()
    assert answers is not None
    assert len(answers) == 40
    monkeypatch.setenv(REPLAY_ENV, str(routebench_csv.with_name("missing.csv")))
    with pytest.raises(FileNotFoundError):
        replay_from_environment()
