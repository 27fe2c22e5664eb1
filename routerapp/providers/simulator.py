"""The built-in simulated upstream: an OpenAI-compatible HTTP server with per-model profiles.

Run it with `uvicorn routerapp.providers.simulator:app --port 8001` (base URL
`http://127.0.0.1:8001/v1`), or in-process with `serve_in_thread()` for tests. A plain ASGI
app with no framework and no blocking calls: latency is `asyncio.sleep`, so one worker holds
thousands of in-flight requests and the simulator is never the bottleneck of a load test.

Endpoints: `POST /v1/chat/completions` (JSON, or SSE when `stream: true`, with a final usage
chunk when `stream_options.include_usage`), `GET /v1/models`, `GET /healthz`. Every response
says it is simulated: header `X-Simulated: true` and `system_fingerprint: "routerapp-simulator"`.

How an answer is made:

1. The request's task type and complexity come from `metadata.task_type` /
   `metadata.complexity` if sent, else from a demo prompt's template (`demo_data.recognise`),
   else from a small heuristic over length and cue words.
2. The answer is "good" with probability `profile.quality_for(task_type, complexity)`. The
   uniform draw behind it depends on the conversation (and `seed`) but not on the model, so a
   stronger model is right on every prompt a weaker one gets right: shadow comparisons then
   show regret in one direction only, as one would expect of real model tiers.
3. Demo prompts: a good answer is the gold answer exactly; a bad one is another label or
   number, or a chatty sentence that fails a "one label only" `success_when`. Other prompts:
   a good answer is plausible text of the profile's verbosity; a bad one is short, sometimes
   cut off with `finish_reason: "length"`.

Everything is seeded from a hash of (model, messages, seed): the same request gives the same
answer, which the tests rely on.

Classifier requests (the router's classifier step, services/classifier.py: a last user message
starting "Label this request (simple or complex):" and quoting the request between `<<<` and
`>>>`) are answered `simple` or `complex`: complex when the quoted request's estimated
complexity is at least CLASSIFIER_COMPLEX_FROM. A bad answer (1 - the profile's
classification quality) is the other label, or, half the time, a sentence (a malformed label).

Faults, as prefixes of the model name (chainable, e.g. `slow-1/fail-500/gpt-4o`):
`fail-<status>/<model>` answers that HTTP status with an OpenAI-style error (500, 429, 401 ...),
`slow-<seconds>/<model>` waits that long first (not scaled), `garbage/<model>` answers 200
with a body that is not valid JSON, `flaky-<p>/<model>` answers 500 with probability p
(deterministic per request), `no-usage/<model>` leaves out `usage` and `no-choices/<model>`
answers an empty `choices` list (upstream quirks the client must survive).
`worse-<task_type>-<q>/<model>` sets the model's quality on that task type to q (a cheap model
gone bad on one kind of request, for shadow-regret tests).

The judge: model `simulator-judge` answers a request built by `routerapp.judging.judge_messages`
with a strict JSON verdict on answer A against answer B, deterministic from both answers'
simulated quality: a demo prompt's answer is good when it is the gold answer, another prompt's
when it is not one of the simulator's vague or cut-off answers.

Latency is scaled by `ROUTERAPP_SIM_LATENCY_SCALE` (float, default 1.0; 0 for tests).

Replay mode: started with `ROUTERAPP_SIM_REPLAY=<RouteBench CSV>` (or `SimulatorApp(replay=...)`),
a request for one of the dataset's two models (`routerapp.replay.answers.MODEL_ARMS`) is
answered as that model did on the row whose prompt is the last user message: "correct" or
"incorrect" from the labels, with the row's recorded token counts as usage. A prompt that is
not in the data is refused (400), so a benchmark never scores an invented answer; every other
model is simulated as above.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import os
import random
import re
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from routerapp import demo_data, judging
from routerapp.demo_data import DEMO_GOALS

if TYPE_CHECKING:  # imported lazily: numpy and the replay package only load in replay mode
    from routerapp.replay.answers import ReplayAnswers

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

FINGERPRINT = "routerapp-simulator"
LATENCY_SCALE_ENV = "ROUTERAPP_SIM_LATENCY_SCALE"
REPLAY_ENV = "ROUTERAPP_SIM_REPLAY"
MAX_BODY_BYTES = 8 * 1024 * 1024
TASK_TYPES = ("classification", "qa", "summarization", "general", "code", "math", "reasoning")


# --------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class ModelProfile:
    """How a simulated model behaves. Quality is P(good answer) = base quality for the task
    type minus `quality_drop_per_complexity` per complexity point (0-10)."""

    name: str
    base_quality: Mapping[str, float]  # by task type; "general" is the fallback
    quality_drop_per_complexity: float
    latency_mean_ms: float
    latency_jitter_ms: float
    latency_per_token_ms: float
    verbosity_tokens: int
    chatty_share: float = 0.5  # of bad label answers, the share that is prose, not a label

    def quality_for(self, task_type: str, complexity: float) -> float:
        base = self.base_quality.get(task_type, self.base_quality["general"])
        quality = base - self.quality_drop_per_complexity * max(0.0, min(10.0, complexity))
        return max(0.02, min(0.995, quality))


def _quality(**by_task: float) -> dict[str, float]:
    return by_task


PROFILES: dict[str, ModelProfile] = {
    # Cheap and quick: near the strong models on classification and simple questions, clearly
    # worse as complexity grows and on code, maths and reasoning.
    "gpt-4o-mini": ModelProfile(
        name="gpt-4o-mini",
        base_quality=_quality(
            classification=0.99,
            qa=0.98,
            summarization=0.93,
            general=0.92,
            code=0.84,
            math=0.80,
            reasoning=0.78,
        ),
        quality_drop_per_complexity=0.03,
        latency_mean_ms=350,
        latency_jitter_ms=120,
        latency_per_token_ms=6,
        verbosity_tokens=120,
        chatty_share=0.5,
    ),
    "gpt-4o": ModelProfile(
        name="gpt-4o",
        base_quality=_quality(
            classification=0.995,
            qa=0.99,
            summarization=0.97,
            general=0.97,
            code=0.95,
            math=0.94,
            reasoning=0.94,
        ),
        quality_drop_per_complexity=0.008,
        latency_mean_ms=700,
        latency_jitter_ms=250,
        latency_per_token_ms=12,
        verbosity_tokens=180,
        chatty_share=0.3,
    ),
    "gpt-4.1-mini": ModelProfile(
        name="gpt-4.1-mini",
        base_quality=_quality(
            classification=0.99,
            qa=0.985,
            summarization=0.95,
            general=0.94,
            code=0.89,
            math=0.86,
            reasoning=0.85,
        ),
        quality_drop_per_complexity=0.022,
        latency_mean_ms=400,
        latency_jitter_ms=140,
        latency_per_token_ms=7,
        verbosity_tokens=140,
        chatty_share=0.45,
    ),
    "gpt-4.1": ModelProfile(
        name="gpt-4.1",
        base_quality=_quality(
            classification=0.995,
            qa=0.99,
            summarization=0.975,
            general=0.97,
            code=0.96,
            math=0.95,
            reasoning=0.95,
        ),
        quality_drop_per_complexity=0.007,
        latency_mean_ms=750,
        latency_jitter_ms=250,
        latency_per_token_ms=12,
        verbosity_tokens=190,
        chatty_share=0.3,
    ),
    # Slow and terse, strong where thinking pays.
    "o3-mini": ModelProfile(
        name="o3-mini",
        base_quality=_quality(
            classification=0.98,
            qa=0.98,
            summarization=0.93,
            general=0.93,
            code=0.96,
            math=0.98,
            reasoning=0.97,
        ),
        quality_drop_per_complexity=0.006,
        latency_mean_ms=2500,
        latency_jitter_ms=900,
        latency_per_token_ms=10,
        verbosity_tokens=90,
        chatty_share=0.2,
    ),
}
DEFAULT_PROFILE = ModelProfile(
    name="default",
    base_quality=_quality(
        classification=0.97,
        qa=0.95,
        summarization=0.9,
        general=0.9,
        code=0.8,
        math=0.75,
        reasoning=0.75,
    ),
    quality_drop_per_complexity=0.02,
    latency_mean_ms=500,
    latency_jitter_ms=200,
    latency_per_token_ms=9,
    verbosity_tokens=150,
    chatty_share=0.4,
)


def profile_for(model: str) -> ModelProfile:
    return PROFILES.get(model, DEFAULT_PROFILE)


# --------------------------------------------------------------------------- faults


@dataclass(frozen=True)
class Faults:
    model: str  # the model name once fault prefixes are removed
    status: int | None = None
    slow_seconds: float = 0.0
    garbage: bool = False
    flaky: float = 0.0
    no_usage: bool = False
    no_choices: bool = False
    worse: tuple[tuple[str, float], ...] = ()  # (task type, quality) overrides


_FAIL = re.compile(r"fail-([1-5]\d\d)")
_SLOW = re.compile(r"slow-(\d+(?:\.\d+)?)")
_FLAKY = re.compile(r"flaky-(0(?:\.\d+)?|1(?:\.0+)?|\.\d+)")
_WORSE = re.compile(r"worse-([a-z_]+)-(0(?:\.\d+)?|1(?:\.0+)?)")


def parse_faults(model: str) -> Faults:
    """Split fault prefixes off a model name.

    >>> parse_faults("slow-2/fail-429/gpt-4o")
    Faults(model='gpt-4o', status=429, slow_seconds=2.0, garbage=False, flaky=0.0, \
no_usage=False, no_choices=False, worse=())
    >>> parse_faults("worse-code-0.2/gpt-4o-mini").worse
    (('code', 0.2),)
    >>> parse_faults("meta-llama/Llama-3-8B").model  # slashes that are no fault stay
    'meta-llama/Llama-3-8B'
    """
    status: int | None = None
    slow = 0.0
    garbage = False
    flaky = 0.0
    flags: set[str] = set()
    worse: list[tuple[str, float]] = []
    while "/" in model:
        head, rest = model.split("/", 1)
        if found := _FAIL.fullmatch(head):
            status = int(found.group(1))
        elif found := _SLOW.fullmatch(head):
            slow += float(found.group(1))
        elif found := _FLAKY.fullmatch(head):
            flaky = float(found.group(1))
        elif found := _WORSE.fullmatch(head):
            worse.append((found.group(1), float(found.group(2))))
        elif head == "garbage":
            garbage = True
        elif head in ("no-usage", "no-choices"):
            flags.add(head)
        else:
            break
        model = rest
    return Faults(
        model=model,
        status=status,
        slow_seconds=slow,
        garbage=garbage,
        flaky=flaky,
        no_usage="no-usage" in flags,
        no_choices="no-choices" in flags,
        worse=tuple(worse),
    )


# --------------------------------------------------------------------------- task heuristic

_CUES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "code",
        (
            "```",
            "def ",
            "function",
            "python",
            "javascript",
            "typescript",
            "sql",
            "code",
            "compile",
            "stack trace",
            "regex",
            "refactor",
        ),
    ),
    (
        "math",
        (
            "calculate",
            "solve",
            "equation",
            "integral",
            "derivative",
            "how many",
            "sum of",
            "percent",
            "probability",
        ),
    ),
    (
        "reasoning",
        (
            "step by step",
            "explain why",
            "prove",
            "reason",
            "plan",
            "compare",
            "trade-off",
            "what if",
        ),
    ),
    ("summarization", ("summarize", "summarise", "summary", "tl;dr", "key points")),
    (
        "classification",
        ("classify", "label", "category", "categorize", "one of", "spam", "sentiment"),
    ),
    ("qa", ("what is", "who is", "when did", "where is", "define")),
)
_BASE_COMPLEXITY = {
    "classification": 2,
    "qa": 2,
    "summarization": 4,
    "general": 3,
    "code": 6,
    "math": 6,
    "reasoning": 7,
}


def _message_text(messages: list[Any]) -> str:
    parts = []
    for message in messages:
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return "\n".join(parts)


def estimate_task(messages: list[Any], *, wants_json: bool = False) -> tuple[str, float]:
    """(task_type, complexity 0-10) from cue words in the last user turn and prompt length.

    Deliberately small and independent of `routerapp.features`: the simulator stands in for
    an upstream, which knows nothing of the router's features.
    """
    last_user = [m for m in messages if isinstance(m, Mapping) and m.get("role") == "user"][-1:]
    lowered = _message_text(last_user or messages).lower()
    task_type = next(
        (name for name, cues in _CUES if any(cue in lowered for cue in cues)), "general"
    )
    tokens = len(_message_text(messages)) / 4
    complexity = _BASE_COMPLEXITY[task_type] + min(3.0, tokens / 300) + (1 if wants_json else 0)
    return task_type, min(10.0, complexity)


# --------------------------------------------------------------------------- answers

_FILLER = (
    "Here is a concise overview of {topic}.",
    "The key point about {topic} is that context matters more than any single rule.",
    "In practice, most teams approach {topic} in three steps: understand, try, measure.",
    "A common pitfall with {topic} is to optimise before the basics are in place.",
    "Start with the simplest option that works, then refine it with real data.",
    "The trade-offs depend on cost, latency and how much quality you need.",
    "For {topic}, a small experiment usually answers the question faster than debate.",
    "Document what you chose and why, so the next person can build on it.",
    "If in doubt, measure: numbers settle most arguments about {topic}.",
    "That said, there are edge cases worth checking before relying on it.",
)
_VAGUE = (
    "I'm not sure I can help with that.",
    "It depends on several factors.",
    "Could you clarify what you mean?",
    "There are many ways to look at {topic}, and",
    "Let me think about {topic} step by step. First, we need to",
)
_CHATTY = (
    "I think this might be {label}-related, but it's hard to say without more context.",
    "Based on the message, it could be {label}, although other categories are possible.",
    "This looks like {label} to me. Let me know if you need a more detailed explanation!",
    "Hmm, probably {label}? The wording is a bit ambiguous.",
)
_STOPWORDS = {
    "about",
    "which",
    "there",
    "their",
    "would",
    "could",
    "should",
    "these",
    "those",
    "where",
    "what",
    "with",
    "from",
    "that",
    "this",
    "your",
    "have",
    "please",
}


def _topic(messages: list[Any]) -> str:
    words = re.findall(r"[A-Za-z][A-Za-z-]{4,}", _message_text(messages[-1:] or messages))
    keep = [w.lower() for w in words if w.lower() not in _STOPWORDS]
    return " ".join(keep[:2]) if keep else "this question"


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4)) if text else 0


def _generic_text(rng: random.Random, topic: str, tokens: int) -> str:
    sentences: list[str] = []
    while _tokens(" ".join(sentences)) < tokens:
        sentences.append(rng.choice(_FILLER).format(topic=topic))
    return " ".join(sentences)


@dataclass
class Answer:
    content: str
    finish_reason: str = "stop"


def _demo_answer(
    match: demo_data.DemoMatch, good: bool, profile: ModelProfile, rng: random.Random
) -> Answer:
    assert match.gold is not None
    if good:
        return Answer(match.gold)
    if match.labels:
        wrong = rng.choice(match.alternatives) if match.alternatives else match.gold
        if rng.random() < profile.chatty_share:
            # Prose instead of a label: fails any "exactly one label" success_when.
            mention = rng.choice(match.labels)
            return Answer(rng.choice(_CHATTY).format(label=mention.replace("_", " ")))
        return Answer(wrong)
    roll = rng.random()
    if roll < profile.chatty_share / 2:
        return Answer("Let me work through this step by step. First, we need to", "length")
    if roll < profile.chatty_share:
        return Answer(
            f"The answer is probably {rng.choice(match.alternatives)}, but I am not "
            "completely sure."
        )
    return Answer(rng.choice(match.alternatives))


def _generic_answer(
    messages: list[Any], good: bool, profile: ModelProfile, rng: random.Random
) -> Answer:
    topic = _topic(messages)
    if good:
        tokens = max(8, int(profile.verbosity_tokens * rng.uniform(0.6, 1.4)))
        return Answer(_generic_text(rng, topic, tokens))
    vague = rng.choice(_VAGUE).format(topic=topic)
    return Answer(vague, "length" if not vague.endswith((".", "?")) else "stop")


CLASSIFIER_REQUEST = re.compile(
    r"^Label this request \(simple or complex\):\n<<<\n(?P<quoted>.*)\n>>>$", re.DOTALL
)
CLASSIFIER_COMPLEX_FROM = 5.0


def _classifier_answer(
    messages: list[Any], profile: ModelProfile, difficulty: random.Random, rng: random.Random
) -> Answer | None:
    """The answer to the router's classifier prompt, or None when this is not one."""
    last = messages[-1] if messages and isinstance(messages[-1], Mapping) else {}
    content = last.get("content")
    found = CLASSIFIER_REQUEST.match(content) if isinstance(content, str) else None
    if found is None:
        return None
    _, complexity = estimate_task([{"role": "user", "content": found.group("quoted")}])
    label = "complex" if complexity >= CLASSIFIER_COMPLEX_FROM else "simple"
    if difficulty.random() < profile.quality_for("classification", 2.0):
        return Answer(label)
    other = "simple" if label == "complex" else "complex"
    if rng.random() < 0.5:
        return Answer(f"I would say this request is probably {other}.")
    return Answer(other)


def _json_content(content: str, response_format: Mapping[str, Any], rng: random.Random) -> str:
    """Wrap an answer as JSON when the request asks for structured output."""
    if response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {}
        properties = schema.get("properties") or {}
        if properties:
            return json.dumps(
                {name: _fake_value(spec, content, rng) for name, spec in properties.items()}
            )
    return json.dumps({"answer": content})


def _fake_value(spec: Any, content: str, rng: random.Random) -> Any:
    spec = spec if isinstance(spec, Mapping) else {}
    if spec.get("enum"):
        return rng.choice(list(spec["enum"]))
    kind = spec.get("type")
    if kind in ("number", "integer"):
        low, high = spec.get("minimum", 0), spec.get("maximum", 1 if kind == "number" else 10)
        return rng.uniform(low, high) if kind == "number" else rng.randint(int(low), int(high))
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "array":
        return []
    if kind == "object":
        return {}
    return content


# --------------------------------------------------------------------------- the request


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400, param: str | None = None) -> None:
        super().__init__(message)
        self.message, self.status, self.param = message, status, param


def _seed_for(*parts: Any) -> int:
    material = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    return int.from_bytes(hashlib.sha256(material.encode()).digest()[:8], "big")


@dataclass
class Completion:
    """One simulated completion: the answer(s), usage, and how long it should take."""

    model: str
    choices: list[Answer]
    prompt_tokens: int
    latency_seconds: float
    per_token_seconds: float
    request_id: str = field(default_factory=lambda: f"chatcmpl-sim-{uuid.uuid4().hex[:24]}")
    created: int = field(default_factory=lambda: int(time.time()))
    # Replay mode bills the recorded answer's length, not the stand-in content's.
    recorded_completion_tokens: int | None = None

    @property
    def completion_tokens(self) -> int:
        if self.recorded_completion_tokens is not None:
            return self.recorded_completion_tokens
        return sum(_tokens(choice.content) for choice in self.choices)

    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }

    def body(self) -> dict[str, Any]:
        return {
            "id": self.request_id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": FINGERPRINT,
            "choices": [
                {
                    "index": index,
                    "message": {"role": "assistant", "content": answer.content},
                    "logprobs": None,
                    "finish_reason": answer.finish_reason,
                }
                for index, answer in enumerate(self.choices)
            ],
            "usage": self.usage(),
        }


def _number_field(body: Mapping[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest(f"'{name}' must be a positive integer", param=name)
    return value


def simulate(
    body: Mapping[str, Any],
    *,
    latency_scale: float,
    quality_override: Mapping[str, float] | None = None,
) -> Completion:
    """The answer to a validated chat-completion body (model name without fault prefixes).
    `quality_override`: the model's quality per task type, where the `worse-` fault sets it."""
    model = str(body["model"])
    messages: list[Any] = list(body["messages"])
    profile = profile_for(model)
    raw_format = body.get("response_format")
    response_format: Mapping[str, Any] = raw_format if isinstance(raw_format, Mapping) else {}
    wants_json = response_format.get("type") in ("json_object", "json_schema")
    seed = body.get("seed")
    raw_metadata = body.get("metadata")
    metadata: Mapping[str, Any] = raw_metadata if isinstance(raw_metadata, Mapping) else {}
    match = demo_data.recognise(messages)
    if match is not None:
        task_type, complexity = match.task_type, float(match.complexity)
    else:
        task_type, complexity = estimate_task(messages, wants_json=wants_json)
    if isinstance(metadata.get("task_type"), str):
        task_type = metadata["task_type"]
    if isinstance(metadata.get("complexity"), int | float):
        complexity = float(metadata["complexity"])
    quality = profile.quality_for(task_type, complexity)
    if quality_override and task_type in quality_override:
        quality = quality_override[task_type]
    # The goodness draw ignores the model (see the module docstring); the wording doesn't.
    difficulty = random.Random(_seed_for("difficulty", messages, seed))
    rng = random.Random(_seed_for(model, messages, seed))
    max_tokens = _number_field(body, "max_completion_tokens") or _number_field(body, "max_tokens")
    n = min(_number_field(body, "n") or 1, 8)
    choices = []
    for _ in range(n):
        classified = _classifier_answer(messages, profile, difficulty, rng)
        if classified is not None:
            choices.append(classified)
            continue
        good = difficulty.random() < quality
        if match is not None and match.gold is not None:
            answer = _demo_answer(match, good, profile, rng)
        else:
            answer = _generic_answer(messages, good, profile, rng)
        if wants_json and answer.finish_reason == "stop":
            answer = Answer(_json_content(answer.content, response_format, rng))
        if max_tokens is not None and _tokens(answer.content) > max_tokens:
            answer = Answer(answer.content[: max_tokens * 4], "length")
        choices.append(answer)
    completion_tokens = sum(_tokens(answer.content) for answer in choices)
    jitter = rng.uniform(-1.0, 1.0) * profile.latency_jitter_ms
    latency_ms = max(20.0, profile.latency_mean_ms + jitter)
    latency_ms += profile.latency_per_token_ms * completion_tokens
    return Completion(
        model=model,
        choices=choices,
        prompt_tokens=sum(_tokens(_message_text([m])) + 3 for m in messages),
        latency_seconds=latency_ms / 1000 * latency_scale,
        per_token_seconds=profile.latency_per_token_ms / 1000 * latency_scale,
    )


# --------------------------------------------------------------------------- the judge

JUDGE_MODEL = "simulator-judge"


def simulated_answer_good(conversation: list[Any], answer: Mapping[str, Any]) -> bool:
    """Whether `simulate` made this answer as a good one: a demo prompt's gold answer (also
    inside a JSON wrapper), or for other prompts an answer that finished and is not one of
    the vague answers `_generic_answer` gives when its quality draw fails."""
    content = answer.get("content")
    if not isinstance(content, str) or not content.strip():
        return False
    if answer.get("finish_reason") not in (None, "", "stop"):
        return False
    text = content.strip()
    if text.startswith("{"):
        with contextlib.suppress(ValueError):
            wrapped = json.loads(text)
            if isinstance(wrapped, dict) and isinstance(wrapped.get("answer"), str):
                text = wrapped["answer"].strip()
    match = demo_data.recognise(conversation)
    if match is not None and match.gold is not None:
        return text == match.gold
    topic = _topic(conversation)
    return text not in {vague.format(topic=topic) for vague in _VAGUE}


def simulate_judge(body: Mapping[str, Any], *, latency_scale: float) -> Completion:
    """The simulator as an LLM judge: A against B, from each answer's simulated quality."""
    messages = list(body["messages"])
    request = judging.judge_request_parse(messages)
    if request is None:
        raise BadRequest(
            f"{JUDGE_MODEL} only answers judge requests (routerapp.judging.judge_messages)",
            param="messages",
        )
    first = simulated_answer_good(request.conversation, request.first)
    second = simulated_answer_good(request.conversation, request.second)
    if first == second:
        verdict, delta = "same", 0.0
        reason = f"Both answers are {'right' if first else 'wrong'} (simulated judge)."
    elif first:
        verdict, delta, reason = "better", 1.0, "A is right and B is not (simulated judge)."
    else:
        verdict, delta, reason = "worse", -1.0, "B is right and A is not (simulated judge)."
    content = json.dumps({"verdict": verdict, "score_delta": delta, "reason": reason})
    profile = profile_for(JUDGE_MODEL)
    return Completion(
        model=JUDGE_MODEL,
        choices=[Answer(content)],
        prompt_tokens=sum(_tokens(_message_text([m])) + 3 for m in messages),
        latency_seconds=profile.latency_mean_ms / 1000 * latency_scale,
        per_token_seconds=profile.latency_per_token_ms / 1000 * latency_scale,
    )


def replay_completion(
    body: Mapping[str, Any], answers: ReplayAnswers, *, latency_scale: float
) -> Completion | None:
    """The recorded answer when the model is one of the replay data's, else None (simulate)."""
    from routerapp.replay.answers import PromptNotFound

    model = str(body["model"])
    if answers.arm_for(model) is None:
        return None
    messages = list(body["messages"])
    last_user = [m for m in messages if isinstance(m, Mapping) and m.get("role") == "user"][-1:]
    hint = body.get("user") if isinstance(body.get("user"), str) else None
    try:
        answer = answers.answer(model=model, prompt=_message_text(last_user), hint=hint)
    except PromptNotFound as error:
        raise BadRequest(f"{error} (replay mode, model {model})", param="messages") from None
    n = min(_number_field(body, "n") or 1, 8)
    profile = profile_for(model)
    rng = random.Random(_seed_for(model, messages, body.get("seed")))
    jitter = rng.uniform(-1.0, 1.0) * profile.latency_jitter_ms
    latency_ms = max(20.0, profile.latency_mean_ms + jitter)
    return Completion(
        model=model,
        choices=[Answer(answer.content) for _ in range(n)],
        prompt_tokens=answer.prompt_tokens,
        latency_seconds=latency_ms / 1000 * latency_scale,
        per_token_seconds=0.0,
        recorded_completion_tokens=answer.completion_tokens * n,
    )


def replay_from_environment() -> ReplayAnswers | None:
    """The replay data named by `ROUTERAPP_SIM_REPLAY`, loaded once at start-up; a bad path
    stops the server with the reason rather than failing every request."""
    path = os.environ.get(REPLAY_ENV, "").strip()
    if not path:
        return None
    from routerapp.replay.answers import ReplayAnswers

    return ReplayAnswers.load(path)


def _validate(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise BadRequest("the request body must be a JSON object")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise BadRequest("'model' is required", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array", param="messages")
    for message in messages:
        if not isinstance(message, Mapping) or "role" not in message:
            raise BadRequest("each message needs a 'role'", param="messages")
    return body


# --------------------------------------------------------------------------- ASGI plumbing


def _headers(content_type: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", content_type.encode()),
        (b"x-simulated", b"true"),
        (b"cache-control", b"no-store"),
    ]


async def _send_bytes(send: Send, status: int, body: bytes, content_type: str) -> None:
    await send({"type": "http.response.start", "status": status, "headers": _headers(content_type)})
    await send({"type": "http.response.body", "body": body})


async def _send_json(send: Send, status: int, payload: Any) -> None:
    await _send_bytes(send, status, json.dumps(payload).encode(), "application/json")


def _error_body(message: str, *, status: int, param: str | None = None) -> dict[str, Any]:
    kind = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        429: "rate_limit_exceeded",
    }.get(status, "server_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": kind}}


async def _read_body(receive: Receive) -> bytes | None:
    """The request body, or None if the client went away or sent too much."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BadRequest("request body too large", status=413)
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _sleep_unless_disconnected(receive: Receive, seconds: float) -> bool:
    """Sleep; return False early if the client disconnects (its timeout fired), so abandoned
    requests stop costing a task and a socket."""
    if seconds <= 0:
        return True

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait_for(asyncio.shield(watcher), timeout=seconds)
    except TimeoutError:
        return True
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    return False


def _chunk(completion: Completion, choices: list[dict[str, Any]], **extra: Any) -> bytes:
    payload: dict[str, Any] = {
        "id": completion.request_id,
        "object": "chat.completion.chunk",
        "created": completion.created,
        "model": completion.model,
        "system_fingerprint": FINGERPRINT,
        "choices": choices,
        **extra,
    }
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def _pieces(text: str) -> list[str]:
    # Roughly token-sized pieces that concatenate back to the exact text.
    return re.findall(r"\S+\s*|\s+", text) or [""]


async def _stream(
    send: Send, receive: Receive, completion: Completion, *, include_usage: bool
) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": _headers("text/event-stream")}
    )
    # OpenAI sends `usage: null` on every chunk but the last when usage was asked for.
    extra: dict[str, Any] = {"usage": None} if include_usage else {}

    async def emit(data: bytes) -> None:
        await send({"type": "http.response.body", "body": data, "more_body": True})

    for index, answer in enumerate(completion.choices):
        first = {
            "index": index,
            "delta": {"role": "assistant", "content": ""},
            "logprobs": None,
            "finish_reason": None,
        }
        await emit(_chunk(completion, [first], **extra))
        for piece in _pieces(answer.content):
            if not await _sleep_unless_disconnected(receive, completion.per_token_seconds):
                return
            delta = {
                "index": index,
                "delta": {"content": piece},
                "logprobs": None,
                "finish_reason": None,
            }
            await emit(_chunk(completion, [delta], **extra))
        last = {
            "index": index,
            "delta": {},
            "logprobs": None,
            "finish_reason": answer.finish_reason,
        }
        await emit(_chunk(completion, [last], **extra))
    if include_usage:
        await emit(_chunk(completion, [], usage=completion.usage()))
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})


class SimulatorApp:
    """The ASGI application. `latency_scale=None` reads `ROUTERAPP_SIM_LATENCY_SCALE` per
    request (so a running server can be slowed down or sped up by its environment)."""

    def __init__(
        self, *, latency_scale: float | None = None, replay: ReplayAnswers | None = None
    ) -> None:
        self.latency_scale = latency_scale
        self.replay = replay

    def _scale(self) -> float:
        if self.latency_scale is not None:
            return self.latency_scale
        try:
            return max(0.0, float(os.environ.get(LATENCY_SCALE_ENV, "1.0")))
        except ValueError:
            return 1.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"].rstrip("/") or "/"
        try:
            if path == "/v1/chat/completions":
                if method != "POST":
                    raise BadRequest("use POST", status=405)
                await self._completions(receive, send)
            elif path == "/v1/models" and method == "GET":
                await _send_json(
                    send,
                    200,
                    {
                        "object": "list",
                        "data": [
                            {"id": name, "object": "model", "created": 0, "owned_by": FINGERPRINT}
                            for name in PROFILES
                        ],
                    },
                )
            elif path == "/healthz" and method in ("GET", "HEAD"):
                await _send_json(send, 200, {"status": "ok", "simulated": True})
            else:
                raise BadRequest(f"no route for {method} {path}", status=404)
        except BadRequest as error:
            await _send_json(
                send,
                error.status,
                _error_body(error.message, status=error.status, param=error.param),
            )

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _completions(self, receive: Receive, send: Send) -> None:
        raw = await _read_body(receive)
        if raw is None:
            return
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise BadRequest("the request body is not valid JSON") from None
        body = dict(_validate(body))
        faults = parse_faults(body["model"])
        body["model"] = faults.model
        stream = bool(body.get("stream"))
        if not await _sleep_unless_disconnected(receive, faults.slow_seconds):
            return
        flaky = faults.flaky and random.Random(_seed_for("flaky", body)).random() < faults.flaky
        if faults.status is not None or flaky:
            status = faults.status or 500
            await _send_json(
                send,
                status,
                _error_body(
                    f"simulated upstream failure (HTTP {status}) for {faults.model}", status=status
                ),
            )
            return
        if faults.garbage:
            if stream:
                await _send_bytes(
                    send,
                    200,
                    b'data: {"id": "chatcmpl-sim-garbage", "choices": [{oops\n\ndata: [DONE]\n\n',
                    "text/event-stream",
                )
            else:
                await _send_bytes(
                    send,
                    200,
                    b'{"id": "chatcmpl-sim-garbage", "choices": [<html>',
                    "application/json",
                )
            return
        completion = None
        if self.replay is not None:
            completion = replay_completion(body, self.replay, latency_scale=self._scale())
        if completion is None and faults.model == JUDGE_MODEL:
            completion = simulate_judge(body, latency_scale=self._scale())
        if completion is None:
            completion = simulate(
                body, latency_scale=self._scale(), quality_override=dict(faults.worse)
            )
        if stream:
            # Time to first token; the rest is paced per piece in `_stream`.
            if not await _sleep_unless_disconnected(
                receive,
                completion.latency_seconds
                - completion.per_token_seconds * completion.completion_tokens,
            ):
                return
            options = body.get("stream_options")
            include_usage = isinstance(options, Mapping) and bool(options.get("include_usage"))
            await _stream(send, receive, completion, include_usage=include_usage)
            return
        if not await _sleep_unless_disconnected(receive, completion.latency_seconds):
            return
        response = completion.body()
        if faults.no_usage:
            del response["usage"]
        if faults.no_choices:
            response["choices"] = []
        await _send_json(send, 200, response)


app = SimulatorApp(replay=replay_from_environment())


# --------------------------------------------------------------------------- in-process server


def serve_in_thread(
    port: int = 0,
    *,
    host: str = "127.0.0.1",
    latency_scale: float | None = 0.0,
    replay: ReplayAnswers | None = None,
) -> tuple[str, Callable[[], None]]:
    """Serve the simulator with uvicorn in a daemon thread, for tests and scripts.

    Returns (base_url ending in `/v1`, stop). `port=0` picks a free port. Latency defaults to
    zero so test suites stay fast; pass None to honour `ROUTERAPP_SIM_LATENCY_SCALE`. Fault
    delays (`slow-<s>/`) are never scaled. `replay` serves recorded answers (replay mode).
    """
    import uvicorn  # only needed here; keeps `import simulator` light for the ASGI server

    # Bind first so the caller learns the port before the server starts, with no race for it.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(
        SimulatorApp(latency_scale=latency_scale, replay=replay),
        log_level="warning",
        lifespan="off",
        loop="asyncio",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"simulator:{bound_port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError(f"simulator did not start on {host}:{bound_port}")
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

    return f"http://{host}:{bound_port}/v1", stop


__all__ = [
    "DEFAULT_PROFILE",
    "DEMO_GOALS",
    "JUDGE_MODEL",
    "PROFILES",
    "ModelProfile",
    "SimulatorApp",
    "app",
    "estimate_task",
    "parse_faults",
    "profile_for",
    "replay_completion",
    "serve_in_thread",
    "simulate",
    "simulate_judge",
]
