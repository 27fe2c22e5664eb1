"""A tiny RouteBench-shaped CSV built in the test (the real data lives outside the repo)."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

COLUMNS = [
    "id",
    "dataset",
    "subject",
    "prompt",
    "weak_correct",
    "strong_correct",
    "prompt_chars",
    "weak_response_chars",
    "strong_response_chars",
]
# One prompt under both subjects with different labels, as a few RouteBench prompts are.
SHARED_PROMPT = "Which organ filters the blood?\nA. liver\nB. kidney\nC. lung\nD. skin\nAnswer:"


def routebench_rows(count: int = 40, seed: int = 7) -> list[dict[str, str]]:
    """`count` rows over two subjects: "arithmetic" records response lengths (GSM8K-like),
    "trivia" does not (MMLU-like: one output token). The strong model is right more often."""
    rng = random.Random(seed)
    rows = []
    for index in range(count - 2):
        subject = "arithmetic" if index % 2 else "trivia"
        prompt = f"Question {index} ({subject}): what is {index} + {3 * index}?\nAnswer:"
        rows.append(
            {
                "id": f"{index:012x}",
                "dataset": "gsm8k" if subject == "arithmetic" else "mmlu",
                "subject": subject,
                "prompt": prompt,
                "weak_correct": str(int(rng.random() < 0.5)),
                "strong_correct": str(int(rng.random() < 0.85)),
                "prompt_chars": str(len(prompt)),
                "weak_response_chars": str(rng.randint(40, 400)) if subject == "arithmetic" else "",
                "strong_response_chars": str(rng.randint(40, 400))
                if subject == "arithmetic"
                else "",
            }
        )
    for row_id, subject, weak, strong in (
        ("shared0000a1", "trivia", "1", "0"),
        ("shared0000b2", "arithmetic", "0", "1"),
    ):
        rows.append(
            {
                "id": row_id,
                "dataset": "mmlu",
                "subject": subject,
                "prompt": SHARED_PROMPT,
                "weak_correct": weak,
                "strong_correct": strong,
                "prompt_chars": str(len(SHARED_PROMPT)),
                "weak_response_chars": "",
                "strong_response_chars": "",
            }
        )
    return rows


def write_routebench(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def routebench_csv(tmp_path: Path) -> Path:
    return write_routebench(tmp_path / "routebench.csv", routebench_rows())
