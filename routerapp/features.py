"""Request features for rules and context buckets: `compute_features(messages, ...)`. PURE.

From OpenAI chat messages (string content or a list of parts; only text parts count) and the
caller's metadata this computes the `Features` that rule conditions see (`prompt_tokens`,
`message_count`, `task_type`, `complexity`, `has_json_request`, `reasoning_cues`,
`keywords`, `metadata`, `has_tools`, `system_prompt_tokens`) and the complexity bucket.
`has_tools` says the request offers the model tools (`tools`, or the legacy `functions`);
`system_prompt_tokens` estimates the tokens of its system (and `developer`) messages.

Bounded for huge inputs: tokens are estimated from the total length (no text is copied to do
it), while every pattern match runs on a *scan text* of at most SCAN_LIMIT characters, built
from the newest message backwards (a message too long for what is left of the budget
contributes its beginning and its end) so the question being asked is always seen, even
behind a long system prompt, pasted document or history.

Complexity (0..10, rounded to 2 decimals) adds four signals:

    length      = min(4, log10(1 + prompt_tokens))       # 10 tok -> 1.0, 100 -> 2.0, 10k+ -> 4
    task        = TASK_WEIGHTS[task_type] (0.5 .. 2.5)   # reasoning 2.5, code/math 2, ...
    structured  = 1.0 if has_json_request else 0
    cues        = min(2.5, 0.75 * reasoning_cues)

Buckets: "complexity:simple" below 3.5, "complexity:medium" below 6.5, else "complexity:complex".
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

SCAN_LIMIT = 20_000
SIMPLE_BELOW = 3.5
MEDIUM_BELOW = 6.5
MAX_LENGTH_SCORE = 4.0
MAX_CUE_SCORE = 2.5
CUE_WEIGHT = 0.75
STRUCTURED_SCORE = 1.0
TASK_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        "reasoning": 2.5,
        "code": 2.0,
        "math": 2.0,
        "extraction": 1.0,
        "summarization": 1.0,
        "general": 0.5,
        "classification": 0.5,
    }
)
UNKNOWN_TASK_WEIGHT = 1.0  # a task type named by the caller that the heuristics do not know

# The names a rule condition can use (compile rule expressions against these).
FEATURE_NAMES = frozenset(
    {
        "prompt_tokens",
        "message_count",
        "task_type",
        "complexity",
        "has_json_request",
        "reasoning_cues",
        "keywords",
        "metadata",
        "has_tools",
        "system_prompt_tokens",
    }
)
SYSTEM_ROLES = frozenset({"system", "developer"})

_REASONING_CUES = re.compile(
    r"\b(?:step[- ]by[- ]step|why|explain\w*|prove|proof|analy[sz]\w*|compare|comparison"
    r"|justify|derive|reason(?:ing)?|trade-?offs?|pros and cons|think through)\b",
    re.IGNORECASE,
)
_CODE = re.compile(
    r"```|\bdef\s+\w+\s*\(|\bclass\s+\w+\s*[:({]|\bfunction\s*\w*\s*\(|\bimport\s+[\w.]+"
    r"|#include\b|\b(?:python|javascript|typescript|golang|rust|sql|regex|refactor\w*|debug\w*"
    r"|compil(?:e|er|ing)|stack ?trace|unit tests?)\b",
    re.IGNORECASE,
)
_EQUATION = re.compile(r"\d\s*[-+*/^=<>]\s*\(?\s*[\dxyn]|\b[xyn]\s*[\^=]\s*\d")
_MATH_WORDS = re.compile(
    r"\b(?:how (?:many|much)|calculate|compute|solve|sum of|product of|percent\w*|integral"
    r"|derivative|probability|average|equation)\b",
    re.IGNORECASE,
)
_DIGIT = re.compile(r"\d")
_CLASSIFICATION = re.compile(r"\b(?:classif\w*|label\w*|categor\w*|sentiment)\b", re.IGNORECASE)
_EXTRACTION = re.compile(
    r"\b(?:extract\w*|pull out|parse the|list all|find all|named entities)\b", re.IGNORECASE
)
_SUMMARIZATION = re.compile(
    r"\b(?:summar\w*|tl;?dr|condense|key points|in (?:one|a few) sentences?)\b", re.IGNORECASE
)
_JSON_WORD = re.compile(r"\bjson\b", re.IGNORECASE)
_JSON_FORMATS = frozenset({"json", "json_object", "json_schema"})
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Features:
    """What the router knows about one request before choosing a path."""

    prompt_tokens: int
    message_count: int
    task_type: str
    complexity: float  # 0..10
    has_json_request: bool
    reasoning_cues: int
    keywords: tuple[str, ...]
    # A read-only copy; excluded from hashing because mappings are unhashable.
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)
    has_tools: bool = False
    system_prompt_tokens: int = 0

    def as_names(self) -> dict[str, Any]:
        """The values rule expressions see, as plain JSON-serialisable data (also stored with
        the decision): `metadata` a dict, `keywords` a list."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "message_count": self.message_count,
            "task_type": self.task_type,
            "complexity": self.complexity,
            "has_json_request": self.has_json_request,
            "reasoning_cues": self.reasoning_cues,
            "keywords": list(self.keywords),
            "metadata": dict(self.metadata),
            "has_tools": self.has_tools,
            "system_prompt_tokens": self.system_prompt_tokens,
        }

    def complexity_bucket(self) -> str:
        if self.complexity < SIMPLE_BELOW:
            return "complexity:simple"
        if self.complexity < MEDIUM_BELOW:
            return "complexity:medium"
        return "complexity:complex"


def estimate_tokens(text: str) -> int:
    """About one token per four characters; at least 1 for non-empty text.

    >>> estimate_tokens(""), estimate_tokens("hi"), estimate_tokens("12345678")
    (0, 1, 2)
    """
    return estimate_tokens_of_length(len(text))


def estimate_tokens_of_length(chars: int) -> int:
    return (chars + 3) // 4


def _has_tools(tools: Any) -> bool:
    if tools is None:
        return False
    if isinstance(tools, str | bytes):
        raise ValueError("tools must be a list of tool definitions, not a string")
    try:
        return len(tools) > 0
    except TypeError:
        raise ValueError(f"tools must be a list, got {type(tools).__name__}") from None


def compute_features(
    messages: Sequence[Mapping[str, Any]],
    *,
    metadata: Mapping[str, Any] | None = None,
    response_format: Any = None,
    keywords: Collection[str] = (),
    tools: Any = None,
) -> Features:
    """Features of one chat request; raises ValueError naming the first malformed input.

    `task_type` comes from `metadata["task_type"]` when given (lower-cased), else from the
    heuristics of `guess_task_type`. `keywords` lists which of the given keywords occur in the
    scan text (case-insensitive, whole words), in the order given. `tools`: the request's
    `tools` (or legacy `functions`) value; any non-empty one makes `has_tools` true.
    """
    texts = _message_texts(messages)
    metadata = _checked_metadata(metadata)
    keyword_list = _checked_keywords(keywords)

    total_chars = sum(len(text) for text in texts) + max(len(texts) - 1, 0)
    prompt_tokens = (total_chars + 3) // 4
    system_chars = sum(
        len(text)
        for message, text in zip(messages, texts, strict=True)
        if message.get("role") in SYSTEM_ROLES
    )
    scan = _scan_text(texts)

    cues = len(_REASONING_CUES.findall(scan))
    # Each question beyond the first is one more thing to reason about.
    cues += max(scan.count("?") - 1, 0)
    has_json_request = _wants_json(response_format) or bool(_JSON_WORD.search(scan))
    task_type = _task_type_from(metadata) or guess_task_type(scan, reasoning_cues=cues)

    length_score = min(MAX_LENGTH_SCORE, math.log10(1 + prompt_tokens))
    task_score = TASK_WEIGHTS.get(task_type, UNKNOWN_TASK_WEIGHT)
    structured_score = STRUCTURED_SCORE if has_json_request else 0.0
    cue_score = min(MAX_CUE_SCORE, CUE_WEIGHT * cues)
    complexity = round(min(10.0, length_score + task_score + structured_score + cue_score), 2)

    return Features(
        prompt_tokens=prompt_tokens,
        message_count=len(texts),
        task_type=task_type,
        complexity=complexity,
        has_json_request=has_json_request,
        reasoning_cues=cues,
        keywords=_matched_keywords(scan, keyword_list),
        metadata=MappingProxyType(dict(metadata)),
        has_tools=_has_tools(tools),
        system_prompt_tokens=estimate_tokens_of_length(system_chars),
    )


def guess_task_type(text: str, *, reasoning_cues: int = 0) -> str:
    """The first matching of code, classification, extraction, summarization, math,
    reasoning (2+ reasoning cues), general.

    Explicit instructions (classify, extract, summarise) rank above math because a text to
    summarise often contains numbers; code fences and code keywords rank first because they
    are the least ambiguous.
    """
    if _CODE.search(text):
        return "code"
    if _CLASSIFICATION.search(text):
        return "classification"
    if _EXTRACTION.search(text):
        return "extraction"
    if _SUMMARIZATION.search(text):
        return "summarization"
    if _EQUATION.search(text) or (_MATH_WORDS.search(text) and _DIGIT.search(text)):
        return "math"
    if reasoning_cues >= 2:
        return "reasoning"
    return "general"


def _message_texts(messages: Any) -> list[str]:
    if isinstance(messages, str | bytes | Mapping) or not isinstance(messages, Sequence):
        raise ValueError(f"messages must be a list of chat messages, got {type(messages).__name__}")
    if not messages:
        raise ValueError("messages must not be empty")
    return [_message_text(message, index) for index, message in enumerate(messages)]


def _message_text(message: Any, index: int) -> str:
    if not isinstance(message, Mapping):
        raise ValueError(f"messages[{index}] must be an object, got {type(message).__name__}")
    if "content" not in message:
        # Assistant turns that only call tools legitimately carry no content.
        if message.get("tool_calls") or message.get("function_call"):
            return ""
        raise ValueError(f"messages[{index}] has no content")
    content = message["content"]
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence) and not isinstance(content, bytes | Mapping):
        return "\n".join(_part_texts(content, index))
    raise ValueError(
        f"messages[{index}].content must be a string or a list of parts, "
        f"got {type(content).__name__}"
    )


def _part_texts(parts: Sequence[Any], index: int) -> list[str]:
    texts = []
    for part_index, part in enumerate(parts):
        if not isinstance(part, Mapping):
            raise ValueError(
                f"messages[{index}].content[{part_index}] must be an object, "
                f"got {type(part).__name__}"
            )
        # Images, audio and files have no text to measure; only text parts count.
        if part.get("type") == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise ValueError(f"messages[{index}].content[{part_index}].text must be a string")
            texts.append(text)
    return texts


def _checked_metadata(metadata: Any) -> Mapping[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ValueError(f"metadata must be an object, got {type(metadata).__name__}")
    return metadata


def _checked_keywords(keywords: Any) -> list[str]:
    if isinstance(keywords, str | bytes):
        raise ValueError("keywords must be a collection of strings, not a single string")
    result: list[str] = []
    for keyword in keywords:
        if not isinstance(keyword, str):
            raise ValueError(f"keywords must be strings, got {type(keyword).__name__}")
        if keyword.strip() and keyword not in result:
            result.append(keyword)
    return result


def _task_type_from(metadata: Mapping[str, Any]) -> str | None:
    task_type = metadata.get("task_type")
    if task_type is None:
        return None
    if not isinstance(task_type, str):
        raise ValueError(f"metadata.task_type must be a string, got {type(task_type).__name__}")
    return task_type.strip().lower() or None


def _scan_text(texts: list[str]) -> str:
    pieces: list[str] = []
    budget = SCAN_LIMIT
    for text in reversed(texts):
        if budget <= 0:
            break
        if len(text) <= budget:
            piece = text
        else:
            # Instructions sit before or after pasted material ("<doc> ... Summarise the
            # above"), so a truncated message keeps its beginning and its end.
            half = budget // 2
            piece = text[:half] + "\n" + text[len(text) - (budget - half - 1) :]
        pieces.append(piece)
        budget -= len(piece) + 1
    return "\n".join(reversed(pieces))


def _wants_json(response_format: Any) -> bool:
    if response_format is None:
        return False
    if isinstance(response_format, str):
        kind: Any = response_format
    elif isinstance(response_format, Mapping):
        kind = response_format.get("type")
    else:  # an SDK object such as openai's ResponseFormatJSONObject
        kind = getattr(response_format, "type", None)
    return isinstance(kind, str) and kind.lower() in _JSON_FORMATS


def _matched_keywords(scan: str, keywords: list[str]) -> tuple[str, ...]:
    if not keywords:
        return ()
    lowered = scan.lower()
    words = set(_WORD.findall(lowered))
    matched = []
    for keyword in keywords:
        needle = keyword.strip().lower()
        # One-word keywords are a set lookup, so a long keyword list stays cheap; phrases and
        # keywords with punctuation ("c++", "step by step") need a bounded regex search.
        if _WORD.fullmatch(needle):
            found = needle in words
        else:
            pattern = r"(?<!\w)" + re.escape(needle) + r"(?!\w)"
            found = re.search(pattern, lowered) is not None
        if found:
            matched.append(keyword)
    return tuple(matched)
