"""Recorded answers of a RouteBench CSV, for the simulator's replay mode (no Django).

The simulator started with `ROUTERAPP_SIM_REPLAY=<csv>` answers a RouteBench prompt sent to
one of the dataset's two models as that model did: right or wrong from the labels, with the
row's token counts as usage so the router charges the row's real cost. Only correctness and
lengths are recorded (no answer text), so the content says which it was: "correct" or
"incorrect".

A request is matched to its row by the exact text of its last user message. A few prompts
occur under two subjects with different labels; a `hint` naming the row id (the bench sends
it as the OpenAI `user` field, which the router forwards upstream) picks the row then.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from routerapp.replay.data import Pricing, RouteBenchRows, load_routebench

# The models RouteBench's labels come from (see its README), and the arm names themselves.
WEAK_MODEL = "mistralai/Mixtral-8x7B-Instruct-v0.1"
STRONG_MODEL = "gpt-4-1106-preview"
MODEL_ARMS = {WEAK_MODEL: "weak", STRONG_MODEL: "strong", "weak": "weak", "strong": "strong"}
CORRECT, INCORRECT = "correct", "incorrect"


class PromptNotFound(LookupError):
    """The prompt text is not a prompt of the replay data."""


@dataclass(frozen=True)
class ReplayAnswer:
    row_id: str
    arm: str  # "weak" or "strong"
    correct: bool
    prompt_tokens: int
    completion_tokens: int

    @property
    def content(self) -> str:
        return CORRECT if self.correct else INCORRECT


class ReplayAnswers:
    """Row lookup by prompt text. Token counts follow `Pricing` (chars / chars_per_token,
    rounded up to whole tokens as a provider bills them; rows without a response length get
    `default_response_tokens`)."""

    def __init__(self, rows: RouteBenchRows, pricing: Pricing | None = None) -> None:
        pricing = pricing or Pricing()
        self._rows = rows
        self._by_prompt: dict[str, list[int]] = {}
        for i, prompt in enumerate(rows.prompts):
            self._by_prompt.setdefault(prompt, []).append(i)
        self._prompt_tokens = [math.ceil(t) for t in pricing.prompt_tokens(rows.prompt_chars)]
        self._response_tokens = {
            "weak": [math.ceil(t) for t in pricing.response_tokens(rows.weak_response_chars)],
            "strong": [math.ceil(t) for t in pricing.response_tokens(rows.strong_response_chars)],
        }

    @classmethod
    def load(cls, path: str | Path) -> ReplayAnswers:
        return cls(load_routebench(path))

    def __len__(self) -> int:
        return len(self._rows)

    @staticmethod
    def arm_for(model: str) -> str | None:
        """The arm ("weak" or "strong") whose labels answer for `model`, else None."""
        return MODEL_ARMS.get(model)

    def answer(self, *, model: str, prompt: str, hint: str | None = None) -> ReplayAnswer:
        """How `model` answered `prompt`; raises KeyError for a model without labels and
        PromptNotFound for a prompt not in the data."""
        arm = self.arm_for(model)
        if arm is None:
            raise KeyError(f"no recorded answers for model {model!r}")
        candidates = self._by_prompt.get(prompt)
        if not candidates:
            raise PromptNotFound("the prompt is not in the replay data")
        row = candidates[0]
        if hint is not None and len(candidates) > 1:
            row = next((i for i in candidates if self._rows.ids[i] == hint), row)
        labels = self._rows.strong if arm == "strong" else self._rows.weak
        return ReplayAnswer(
            row_id=self._rows.ids[row],
            arm=arm,
            correct=bool(labels[row]),
            prompt_tokens=self._prompt_tokens[row],
            completion_tokens=self._response_tokens[arm][row],
        )
