"""The simulated upstream: OpenAI shape, faults, determinism, and model quality differences."""

from __future__ import annotations

import json
from typing import Any

import httpx
import numpy as np
import pytest

from routerapp import demo_data
from routerapp.providers.simulator import (
    DEFAULT_PROFILE,
    PROFILES,
    estimate_task,
    parse_faults,
    profile_for,
    simulate,
)


def _post(base_url: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{base_url}/chat/completions", json=body, timeout=10)


def _answer(model: str, prompt: demo_data.DemoPrompt, **extra: Any) -> str:
    messages = [
        {"role": "system", "content": demo_data.system_prompt(prompt.goal)},
        *prompt.messages,
    ]
    body = {"model": model, "messages": messages, **extra}
    return simulate(body, latency_scale=0.0).choices[0].content


def test_completion_is_openai_shaped_and_says_it_is_simulated(simulator_base_url: str) -> None:
    response = _post(
        simulator_base_url,
        {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "Hello there"}],
        },
    )

    assert response.status_code == 200
    assert response.headers["x-simulated"] == "true"
    body = response.json()
    assert body["id"].startswith("chatcmpl-sim-")
    assert body["object"] == "chat.completion"
    assert body["system_fingerprint"] == "routerapp-simulator"
    assert body["choices"][0]["message"]["role"] == "assistant"
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_models_and_health(simulator_base_url: str) -> None:
    models = httpx.get(f"{simulator_base_url}/models").json()
    health = httpx.get(simulator_base_url.removesuffix("/v1") + "/healthz")

    assert {"gpt-4o-mini", "gpt-4o"} <= {model["id"] for model in models["data"]}
    assert health.json() == {"status": "ok", "simulated": True}
    assert health.headers["x-simulated"] == "true"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"model": "gpt-4o"}, 400),
        ({"messages": [{"role": "user", "content": "hi"}]}, 400),
        ({"model": "gpt-4o", "messages": [], "n": 1}, 400),
        ({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "n": 0}, 400),
    ],
)
def test_bad_requests_get_openai_style_errors(
    simulator_base_url: str, body: dict[str, Any], status: int
) -> None:
    response = _post(simulator_base_url, body)

    assert response.status_code == status
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_invalid_json_and_unknown_routes(simulator_base_url: str) -> None:
    not_json = httpx.post(f"{simulator_base_url}/chat/completions", content=b"{nope")
    unknown = httpx.get(f"{simulator_base_url}/embeddings")

    assert not_json.status_code == 400
    assert unknown.status_code == 404
    assert unknown.json()["error"]["type"] == "not_found_error"


def test_fault_prefixes_are_parsed_and_chain() -> None:
    assert parse_faults("gpt-4o").model == "gpt-4o"
    assert parse_faults("fail-500/gpt-4o").status == 500
    assert parse_faults("slow-0.25/garbage/gpt-4o") == parse_faults("slow-0.25/garbage/gpt-4o")
    chained = parse_faults("slow-0.25/garbage/gpt-4o")
    assert (chained.slow_seconds, chained.garbage, chained.model) == (0.25, True, "gpt-4o")
    assert parse_faults("flaky-0.3/gpt-4o").flaky == 0.3
    # A slash that is no fault belongs to the model name (vLLM / OpenRouter style).
    assert parse_faults("meta-llama/Llama-3-8B").model == "meta-llama/Llama-3-8B"


@pytest.mark.parametrize("status", [500, 429])
def test_fail_fault_answers_the_status(simulator_base_url: str, status: int) -> None:
    response = _post(
        simulator_base_url,
        {
            "model": f"fail-{status}/gpt-4o",
            "messages": [{"role": "user", "content": "hi"}],
        },
    )

    assert response.status_code == status
    assert "simulated upstream failure" in response.json()["error"]["message"]


def test_garbage_fault_answers_invalid_json(simulator_base_url: str) -> None:
    response = _post(
        simulator_base_url,
        {
            "model": "garbage/gpt-4o",
            "messages": [{"role": "user", "content": "hi"}],
        },
    )

    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


def test_stream_is_sse_ending_with_usage_and_done(simulator_base_url: str) -> None:
    with httpx.stream(
        "POST",
        f"{simulator_base_url}/chat/completions",
        json={
            "model": "gpt-4o",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "Tell me about caching"}],
        },
    ) as response:
        assert response.headers["content-type"] == "text/event-stream"
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line]

    assert events[-1] == "[DONE]"
    usage_chunk = json.loads(events[-2])
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["completion_tokens"] > 0


def test_same_request_gives_same_answer_and_seed_changes_it() -> None:
    prompts = demo_data.sample_prompts(demo_data.MIXED, np.random.default_rng(5), 40)

    first = [_answer("gpt-4o-mini", prompt) for prompt in prompts]
    again = [_answer("gpt-4o-mini", prompt) for prompt in prompts]
    seeded = [_answer("gpt-4o-mini", prompt, seed=123) for prompt in prompts]

    assert first == again
    assert first != seeded  # some prompt's draw changes with the seed


def test_latency_is_scaled() -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}

    assert simulate(body, latency_scale=0.0).latency_seconds == 0.0
    assert simulate(body, latency_scale=1.0).latency_seconds > 0.1
    assert simulate(body, latency_scale=0.5).latency_seconds == pytest.approx(
        simulate(body, latency_scale=1.0).latency_seconds / 2
    )


def test_unknown_models_get_the_default_profile() -> None:
    assert profile_for("my-local-llama") is DEFAULT_PROFILE
    assert profile_for("gpt-4o") is PROFILES["gpt-4o"]


def test_mini_is_worse_on_complex_tasks_close_on_simple_ones() -> None:
    mini, strong = PROFILES["gpt-4o-mini"], PROFILES["gpt-4o"]

    assert strong.quality_for("math", 8) - mini.quality_for("math", 8) > 0.2
    assert strong.quality_for("classification", 1) - mini.quality_for("classification", 1) < 0.05


def test_strong_model_beats_mini_on_complex_demo_prompts() -> None:
    prompts = demo_data.sample_prompts(demo_data.MIXED, np.random.default_rng(2024), 300)
    complex_prompts = [p for p in prompts if p.task_type in ("code", "math", "reasoning")]

    def accuracy(model: str) -> float:
        correct = sum(demo_data.is_correct(p, _answer(model, p)) for p in complex_prompts)
        return correct / len(complex_prompts)

    mini, strong = accuracy("gpt-4o-mini"), accuracy("gpt-4o")

    # Profiles give ~0.58 vs ~0.89 here; with ~190 prompts one standard error is ~0.035,
    # so a 0.15 margin fails only if the profiles change, not by chance.
    assert len(complex_prompts) > 150
    assert strong - mini > 0.15
    assert strong > 0.8


def test_mini_is_nearly_as_good_on_email_classification() -> None:
    prompts = demo_data.sample_prompts(demo_data.EMAIL, np.random.default_rng(7), 300)

    def accuracy(model: str) -> float:
        return sum(demo_data.is_correct(p, _answer(model, p)) for p in prompts) / len(prompts)

    mini, strong = accuracy("gpt-4o-mini"), accuracy("gpt-4o")

    # Profiles give ~0.93 vs ~0.98 (standard error ~0.015 each).
    assert mini > 0.87
    assert strong - mini < 0.1


def test_label_answers_are_exact_labels_or_fail_a_one_label_check() -> None:
    prompts = demo_data.sample_prompts(demo_data.TRIAGE, np.random.default_rng(3), 300)
    labels = set(demo_data.labels(demo_data.TRIAGE))

    answers = [(p, _answer("gpt-4o-mini", p)) for p in prompts]

    right = [a for p, a in answers if demo_data.is_correct(p, a)]
    chatty = [a for _, a in answers if a not in labels]
    assert all(a in labels for a in right)  # a good answer is the gold label, exactly
    assert chatty  # some bad answers are prose that a success_when on labels rejects
    assert all(len(a) > 20 for a in chatty)


def test_a_stronger_model_is_right_wherever_a_weaker_one_is() -> None:
    prompts = demo_data.sample_prompts(demo_data.MIXED, np.random.default_rng(11), 200)

    for prompt in prompts:
        if demo_data.is_correct(prompt, _answer("gpt-4o-mini", prompt)):
            assert demo_data.is_correct(prompt, _answer("gpt-4o", prompt))


def test_metadata_task_type_overrides_the_heuristic() -> None:
    messages = [{"role": "user", "content": "Tell me something"}]
    easy = {
        "model": "gpt-4o-mini",
        "messages": messages,
        "metadata": {"task_type": "classification", "complexity": 0},
    }
    hard = {**easy, "metadata": {"task_type": "reasoning", "complexity": 10}}

    def good_rate(body: dict[str, Any]) -> float:
        answers = [
            simulate({**body, "seed": seed}, latency_scale=0).choices[0] for seed in range(200)
        ]
        return sum(len(a.content) > 100 for a in answers) / len(answers)

    assert good_rate(easy) > good_rate(hard) + 0.3


def test_heuristic_reads_cue_words_and_length() -> None:
    def task(text: str) -> tuple[str, float]:
        return estimate_task([{"role": "user", "content": text}])

    assert task("Write a Python function to parse dates")[0] == "code"
    assert task("Summarize this article")[0] == "summarization"
    assert task("Explain step by step why the sky is blue")[0] == "reasoning"
    assert task("Summarize this: " + "word " * 2000)[1] > task("Summarize this")[1]


def test_generic_prompts_get_text_of_profile_verbosity_and_respect_max_tokens() -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Tell me about dogs"}]}
    free = simulate(body, latency_scale=0).choices[0]
    capped = simulate({**body, "max_tokens": 10}, latency_scale=0).choices[0]

    assert free.finish_reason == "stop"
    assert len(free.content) > 4 * 50
    assert capped.finish_reason == "length"
    assert len(capped.content) <= 40


def test_json_response_format_gets_json_content() -> None:
    body = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "Capital of Japan?"}],
        "response_format": {"type": "json_object"},
    }

    content = simulate(body, latency_scale=0).choices[0].content

    assert isinstance(json.loads(content), dict)
