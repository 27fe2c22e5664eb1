"""RouteBench CSV loading, the score.py cost model, and coarse prompt features.

Any CSV with RouteBench's columns works (id, dataset, subject, prompt, weak_correct,
strong_correct, prompt_chars, weak_response_chars, strong_response_chars); nothing here knows
the dev set's subjects.
"""

from __future__ import annotations

import bisect
import csv
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

# Prompts contain long few-shot blocks and newlines; the default field limit is 128 KiB.
csv.field_size_limit(sys.maxsize)

REQUIRED_COLUMNS = (
    "id",
    "subject",
    "prompt",
    "weak_correct",
    "strong_correct",
    "prompt_chars",
    "weak_response_chars",
    "strong_response_chars",
)


@dataclass(frozen=True)
class Pricing:
    """score.py's cost model: USD per 1M tokens, tokens ~= chars / chars_per_token."""

    weak_in: float = 0.60
    weak_out: float = 0.60
    strong_in: float = 10.0
    strong_out: float = 30.0
    chars_per_token: float = 4.0
    default_response_tokens: float = 1.0
    extra_prompt_tokens: float = 0.0

    def prompt_tokens(self, prompt_chars: NDArray[np.float64]) -> NDArray[np.float64]:
        return prompt_chars / self.chars_per_token + self.extra_prompt_tokens

    def response_tokens(self, response_chars: NDArray[np.float64]) -> NDArray[np.float64]:
        """Charged output tokens; rows without a response length get the default (score.py)."""
        return np.where(
            np.isnan(response_chars),
            self.default_response_tokens,
            response_chars / self.chars_per_token,
        )

    def cost(self, *, strong: bool, prompt_tokens: float, response_tokens: float) -> float:
        price_in, price_out = (
            (self.strong_in, self.strong_out) if strong else (self.weak_in, self.weak_out)
        )
        return (price_in * prompt_tokens + price_out * response_tokens) / 1e6


@dataclass(frozen=True)
class RouteBenchRows:
    ids: list[str]
    subjects: list[str]
    prompts: list[str]
    weak: NDArray[np.int8]
    strong: NDArray[np.int8]
    prompt_chars: NDArray[np.float64]
    weak_response_chars: NDArray[np.float64]
    strong_response_chars: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.ids)


def load_routebench(path: str | Path) -> RouteBenchRows:
    """Rows of a RouteBench CSV in file order; raises ValueError on a missing column."""
    ids: list[str] = []
    subjects: list[str] = []
    prompts: list[str] = []
    weak: list[int] = []
    strong: list[int] = []
    prompt_chars: list[float] = []
    weak_chars: list[float] = []
    strong_chars: list[float] = []
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
        for row in reader:
            ids.append(row["id"])
            subjects.append(row["subject"] or row.get("dataset", "") or "unknown")
            prompts.append(row["prompt"])
            weak.append(int(row["weak_correct"]))
            strong.append(int(row["strong_correct"]))
            prompt_chars.append(float(row["prompt_chars"]))
            weak_chars.append(float(row["weak_response_chars"] or "nan"))
            strong_chars.append(float(row["strong_response_chars"] or "nan"))
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: duplicate ids")
    return RouteBenchRows(
        ids=ids,
        subjects=subjects,
        prompts=prompts,
        weak=np.array(weak, dtype=np.int8),
        strong=np.array(strong, dtype=np.int8),
        prompt_chars=np.array(prompt_chars),
        weak_response_chars=np.array(weak_chars),
        strong_response_chars=np.array(strong_chars),
    )


_DIGITS = re.compile(r"\d")
_QUANTITY = re.compile(
    r"\bhow (many|much)\b|\bcalculate\b|\bcompute\b|\bsolve\b|[=+*/^]", re.IGNORECASE
)


def prompt_feature(prompt: str) -> str:
    """A coarse, label-free feature of the prompt text: "calc" when it asks for arithmetic
    (several digits or quantity cues), else "long"/"short" by length. Only the prompt is read,
    as a router would at request time."""
    digits = len(_DIGITS.findall(prompt))
    if digits >= 6 or (digits >= 2 and _QUANTITY.search(prompt)):
        return "calc"
    return "long" if len(prompt) > 700 else "short"


def length_bucket(prompt_chars: float) -> str:
    """Prompt length in powers of two of 256 characters: "len0" < 256 <= "len1" < 512 ..."""
    return f"len{max(0, min(3, int(math.log2(max(prompt_chars, 1.0) / 128.0))))}"


def length_classes(
    subjects: list[str], prompt_chars: NDArray[np.float64], classes: int, order: list[int]
) -> list[str]:
    """Online, label-free length class of each prompt within its subject: its rank among the
    lengths of the subject's prompts seen *before* it (in request order `order`), cut into
    `classes` equal parts ("len0" = shortest). The first prompt of a subject is in the middle
    class. Only prompt lengths are read, as a router would at request time."""
    seen: dict[str, list[float]] = {}
    result = [""] * len(subjects)
    for row in order:
        lengths = seen.setdefault(subjects[row], [])
        value = float(prompt_chars[row])
        if lengths:
            rank = (bisect.bisect_left(lengths, value) + bisect.bisect_right(lengths, value)) / 2
            fraction = rank / len(lengths)
        else:
            fraction = 0.5
        result[row] = f"len{min(classes - 1, int(fraction * classes))}"
        bisect.insort(lengths, value)
    return result
