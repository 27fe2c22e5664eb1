"""The optional classifier step of a goal (issue 10, "seed approach 2").

Before planning, a cheap model (the goal's classifier path: its provider, model and prices)
labels the request `simple` or `complex` with the goal's `classifier_prompt` (DEFAULT_PROMPT
when blank), through the same `openai`-SDK client as every upstream call, under an asyncio
timeout of `classifier_timeout_seconds`. The label becomes the `classifier_label` feature the
rules see. Whatever happens, the call goes on: on a timeout, an upstream error or an answer
that is not one of the two labels the label is "" and `Classification.status` says why
(stored on the decision). What the classifier call cost (its path's prices x the tokens it
used, also when its answer was malformed) is recorded on the decision and in the hourly
rollup's `classifier_spend`, so savings are net of it.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from routerapp.providers.client import chat
from routerapp.providers.errors import ProviderError
from routerapp.rules import CLASSIFIER_LABELS
from routerapp.selectors.catalog_cache import GoalRoute, PathPlan

OK = "ok"
TIMEOUT = "timeout"
MALFORMED = "malformed"
ERROR = "error"

DEFAULT_PROMPT = (
    "You label requests for an LLM router. Read the request the user message quotes and "
    "answer with exactly one word. Answer simple if a small, cheap model can answer it well: "
    "a short lookup, a classification, an extraction, reformatting, a short factual question. "
    "Answer complex if it needs a strong model: multi-step reasoning, maths, code, a long "
    "document, careful writing or analysis. Answer simple or complex, nothing else."
)
# The quoted request is bounded: a label needs the gist, not a whole pasted document, and the
# classifier's cost grows with what it reads. The newest text is kept (the question asked).
MAX_REQUEST_CHARS = 6000
MAX_LABEL_TOKENS = 8
_LABEL = re.compile(r"^\W*(simple|complex)\W*$", re.IGNORECASE)


@dataclass(frozen=True)
class Classification:
    status: str  # ok | timeout | malformed | error
    label: str  # "simple" | "complex" | "" when not ok
    cost: Decimal
    latency_ms: float
    path: str
    model: str
    tokens_in: int = 0
    tokens_out: int = 0
    detail: str = ""  # what went wrong, or the malformed answer (capped)

    def as_dict(self) -> dict[str, Any]:
        """Stored as `RoutingDecision.classifier`."""
        facts: dict[str, Any] = {
            "status": self.status,
            "label": self.label,
            "latency_ms": round(self.latency_ms, 1),
            "path": self.path,
            "model": self.model,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost_usd": str(self.cost),
        }
        if self.detail:
            facts["detail"] = self.detail
        return facts


def classifier_request_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """The request as the classifier reads it: `role: text` lines (text parts only), the
    newest MAX_REQUEST_CHARS characters."""
    lines = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            content = " ".join(
                str(part.get("text", ""))
                for part in content
                if isinstance(part, Mapping) and part.get("type") == "text"
            )
        if isinstance(content, str) and content:
            lines.append(f"{message.get('role', 'user')}: {content}")
    text = "\n".join(lines)
    return text[-MAX_REQUEST_CHARS:]


def classifier_messages(prompt: str, messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": prompt.strip() or DEFAULT_PROMPT},
        {
            "role": "user",
            "content": "Label this request (simple or complex):\n<<<\n"
            f"{classifier_request_text(messages)}\n>>>",
        },
    ]


def label_parse(content: object) -> str | None:
    """ "simple" / "complex" from an answer that is that one word (any case, punctuation
    around it); None for anything else."""
    if not isinstance(content, str):
        return None
    found = _LABEL.match(content.strip())
    return found.group(1).lower() if found else None


def _params(path: PathPlan) -> dict[str, Any]:
    # The path's own parameters are what its model is known to accept; only the answer's
    # length is the classifier's, under whichever name the path already uses.
    params = dict(path.params)
    key = "max_completion_tokens" if "max_completion_tokens" in params else "max_tokens"
    params[key] = MAX_LABEL_TOKENS
    return params


async def classify(goal: GoalRoute, messages: Sequence[Mapping[str, Any]]) -> Classification | None:
    """Label one request with the goal's classifier path; None when the goal has none.
    Never raises for an upstream failure (see the module docstring)."""
    path = goal.classifier
    if path is None:
        return None
    started = time.perf_counter()

    def outcome(status: str, **facts: Any) -> Classification:
        return Classification(
            status=status,
            label=facts.pop("label", ""),
            cost=facts.pop("cost", Decimal(0)),
            latency_ms=(time.perf_counter() - started) * 1000,
            path=path.name,
            model=path.model,
            **facts,
        )

    try:
        result = await asyncio.wait_for(
            chat(
                path.provider,
                model=path.model,
                messages=classifier_messages(goal.classifier_prompt, messages),
                params=_params(path),
            ),
            timeout=goal.classifier_timeout_seconds,
        )
    except TimeoutError:
        return outcome(TIMEOUT, detail=f"no answer within {goal.classifier_timeout_seconds:g}s")
    except ProviderError as error:
        return outcome(ERROR, detail=error.message[:300])
    cost = path.cost(result.prompt_tokens, result.completion_tokens)
    tokens = {"tokens_in": result.prompt_tokens, "tokens_out": result.completion_tokens}
    try:
        content = result.response["choices"][0]["message"].get("content")
    except (KeyError, IndexError, TypeError, AttributeError):
        content = None
    label = label_parse(content)
    if label is None:
        shown = content[:200] if isinstance(content, str) else repr(content)[:200]
        return outcome(
            MALFORMED,
            cost=cost,
            detail=f"expected one of {', '.join(CLASSIFIER_LABELS)}, got {shown!r}",
            **tokens,
        )
    return outcome(OK, label=label, cost=cost, **tokens)
