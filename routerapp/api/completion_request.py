"""The body of `POST /v1/chat/completions`, judged in one place before anything is stored or
sent upstream.

`completion_request_parse(raw, goal_header=...)` turns the raw body into a `CompletionRequest`
or raises `InvalidRequest` whose `param` names the offending field (`messages[0].role`,
`metadata.tier`, `temperature` ...), as OpenAI does. In order:

1. JSON: a UTF-8 JSON object nested at most `MAX_DEPTH` levels (deeper bodies are refused,
   also those too deep for the JSON parser itself).
2. Every key and string at any depth: no NUL character and no unpaired UTF-16 surrogate
   (`"\\ud800"` parses to one). PostgreSQL and UTF-8 encoders refuse both, so they would fail
   only after the upstream call was paid for. Every number is finite (`1e400` parses to
   infinity, `NaN` to NaN).
3. Fields: the router's own (`ROUTER_FIELDS`) and the OpenAI fields forwarded upstream
   (`PASSTHROUGH_FIELDS`), each with the type and range OpenAI documents. `extra_headers`,
   `extra_query` and `extra_body` are refused: callers never choose what routerapp sends
   upstream beyond these fields. Any other field is refused as OpenAI refuses it.

Pure: no Django and no database; the view reads the body and the header and hands them over.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NoReturn

from routerapp.errors import InvalidRequest
from routerapp.input_safety import UnsafeInput, json_loads

GOAL_MODEL_PREFIX = "goal/"
# Tool and response-format JSON schemas are the deepest legitimate bodies: OpenAI allows 10
# levels of schema objects (about 25 JSON levels with their wrappers); 64 leaves room.
MAX_DEPTH = 64
# OpenAI allows 16 metadata keys of 64 characters with values of 512; routerapp's metadata
# feeds rules and buckets, so it is more generous, but bounded: it is stored with every call.
MAX_METADATA_KEYS = 64
MAX_METADATA_KEY_CHARS = 128
MAX_METADATA_VALUE_CHARS = 4096
MAX_TOKENS_LIMIT = 2**31 - 1  # upstream servers hold token counts in 32-bit integers
MESSAGE_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_ROLES = frozenset(MESSAGE_ROLES)
# Steer routerapp itself; never forwarded (the stream's options are set per upstream call).
ROUTER_FIELDS = frozenset(
    {"model", "goal", "messages", "metadata", "stream", "stream_options", "n"}
)
# SDK call options, not request fields: a caller must not set upstream headers (e.g. another
# `Authorization`), query strings or raw body fields through routerapp.
REFUSED_FIELDS = frozenset({"extra_headers", "extra_query", "extra_body"})
_SHOWN_KEY_CHARS = 64

Check = Callable[[Any, str], None]


def _fail(param: str | None, message: str) -> NoReturn:
    raise InvalidRequest(message, param=param)


@dataclass(frozen=True)
class CompletionRequest:
    """A judged request: the goal's slug, the messages, the router's metadata, whether to
    stream, and the allow-listed OpenAI fields to forward (None values left out)."""

    goal: str
    messages: list[dict[str, Any]]
    metadata: dict[str, Any] | None
    stream: bool
    passthrough: dict[str, Any]


# --------------------------------------------------------------------------- field checks


def _integer(low: int, high: int) -> Check:
    def check(value: Any, param: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            _fail(param, f"'{param}' must be an integer from {low} to {high}.")

    return check


def _number(low: float, high: float) -> Check:
    def check(value: Any, param: str) -> None:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            _fail(param, f"'{param}' must be a number from {low:g} to {high:g}.")

    return check


def _boolean(value: Any, param: str) -> None:
    if not isinstance(value, bool):
        _fail(param, f"'{param}' must be a boolean.")


def _string(value: Any, param: str) -> None:
    if not isinstance(value, str):
        _fail(param, f"'{param}' must be a string.")


def _object(value: Any, param: str) -> None:
    if not isinstance(value, dict):
        _fail(param, f"'{param}' must be an object.")


def _strings(value: Any, param: str) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        _fail(param, f"'{param}' must be an array of strings.")


def _typed_objects(value: Any, param: str) -> None:
    """An array of objects, each with a string `type` (tools)."""
    if not isinstance(value, list) or len(value) > 128:
        _fail(param, f"'{param}' must be an array of at most 128 objects.")
    for index, item in enumerate(value):
        where = f"{param}[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            _fail(where, f"'{where}' must be an object with a string 'type'.")
        if item["type"] == "function" and not (
            isinstance(item.get("function"), dict) and isinstance(item["function"].get("name"), str)
        ):
            _fail(f"{where}.function", f"'{where}.function' must be an object with a 'name'.")


def _named_objects(value: Any, param: str) -> None:
    """An array of objects, each with a string `name` (the legacy `functions`)."""
    if not isinstance(value, list) or len(value) > 128:
        _fail(param, f"'{param}' must be an array of at most 128 objects.")
    for index, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            _fail(f"{param}[{index}]", f"'{param}[{index}]' must be an object with a 'name'.")


def _choice(words: tuple[str, ...], key: str) -> Check:
    """One of `words`, or an object with a string `key` (tool_choice, function_call)."""

    def check(value: Any, param: str) -> None:
        if isinstance(value, str) and value in words:
            return
        if isinstance(value, dict) and isinstance(value.get(key), str):
            return
        _fail(param, f"'{param}' must be one of {', '.join(words)} or an object with '{key}'.")

    return check


def _stop(value: Any, param: str) -> None:
    if isinstance(value, str):
        return
    if (
        not isinstance(value, list)
        or len(value) > 4
        or not all(isinstance(item, str) for item in value)
    ):
        _fail(param, f"'{param}' must be a string or an array of up to 4 strings.")


def _logit_bias(value: Any, param: str) -> None:
    _object(value, param)
    for token, bias in value.items():
        if not (token.isascii() and token.isdigit()):
            _fail(param, f"'{param}' maps token ids (digits) to biases.")
        _number(-100, 100)(bias, f"{param}.{token[:_SHOWN_KEY_CHARS]}")


def _response_format(value: Any, param: str) -> None:
    kinds = ("text", "json_object", "json_schema")
    if not isinstance(value, dict) or value.get("type") not in kinds:
        _fail(f"{param}.type", f"'{param}.type' must be one of {', '.join(kinds)}.")
    if value["type"] == "json_schema":
        _object(value.get("json_schema"), f"{param}.json_schema")


def _stream_options(value: Any, param: str) -> None:
    _object(value, param)
    if value.get("include_usage") is not None:
        _boolean(value["include_usage"], f"{param}.include_usage")


def _n(value: Any, param: str) -> None:
    _integer(1, 128)(value, param)
    if value > 1:
        # One call is one decision, one answer judged by success_when and one outcome learned;
        # n answers would need n outcomes for a single decision.
        _fail(
            param,
            "'n' greater than 1 is not supported: routerapp routes, records and learns one "
            "answer per call. Send n separate requests instead.",
        )


# OpenAI chat-completion fields forwarded to the provider, with OpenAI's types and ranges.
# Provider-specific parameters (vLLM's top_k ...) belong in a path's `extra_params`.
PASSTHROUGH_FIELDS: Mapping[str, Check] = MappingProxyType(
    {
        "temperature": _number(0, 2),
        "top_p": _number(0, 1),
        "max_tokens": _integer(1, MAX_TOKENS_LIMIT),
        "max_completion_tokens": _integer(1, MAX_TOKENS_LIMIT),
        "presence_penalty": _number(-2, 2),
        "frequency_penalty": _number(-2, 2),
        "stop": _stop,
        "seed": _integer(-(2**63), 2**63 - 1),
        "logprobs": _boolean,
        "top_logprobs": _integer(0, 20),
        "logit_bias": _logit_bias,
        "response_format": _response_format,
        "tools": _typed_objects,
        "tool_choice": _choice(("none", "auto", "required"), "type"),
        "parallel_tool_calls": _boolean,
        "functions": _named_objects,
        "function_call": _choice(("none", "auto"), "name"),
        "user": _string,
        "reasoning_effort": _string,
        "verbosity": _string,
        "service_tier": _string,
        "store": _boolean,
        "modalities": _strings,
        "audio": _object,
        "prediction": _object,
        "web_search_options": _object,
        "prompt_cache_key": _string,
        "safety_identifier": _string,
    }
)


# --------------------------------------------------------------------------- the whole body


def _decode(raw: bytes) -> dict[str, Any]:
    """The body as an object: JSON, with every key and string storable and sendable (no NUL, no
    lone surrogate), every number finite and at most `MAX_DEPTH` levels of nesting."""
    try:
        body = json_loads(raw or b"null", max_depth=MAX_DEPTH)
    except UnsafeInput as error:
        _fail(error.path or None, error.message)
    except (ValueError, UnicodeDecodeError) as error:
        _fail(None, f"The body is not valid JSON: {error}.")
    if not isinstance(body, dict):
        _fail(None, "The body must be a JSON object.")
    return body


def _messages(value: Any) -> list[dict[str, Any]]:
    if value is None:
        _fail("messages", "Missing required parameter: 'messages'.")
    if not isinstance(value, list) or not value:
        _fail("messages", "'messages' must be a non-empty array.")
    for index, message in enumerate(value):
        # The common message is {"role": ..., "content": "..."}: checked without building names.
        if type(message) is not dict:
            _fail(f"messages[{index}]", f"messages[{index}] must be an object.")
        role = message.get("role")
        if not isinstance(role, str) or role not in _ROLES:
            _fail(
                f"messages[{index}].role",
                f"messages[{index}].role must be one of {', '.join(MESSAGE_ROLES)}.",
            )
        if type(message.get("content")) is not str or len(message) > 2:
            _message_rest(message, f"messages[{index}]")
    return value


def _message_rest(message: dict[str, Any], where: str) -> None:
    """Content other than a string, and the optional fields of a message."""
    if "content" in message:
        _content(message["content"], f"{where}.content")
    elif not (message.get("tool_calls") or message.get("function_call")):
        # Only an assistant turn that calls tools may leave its content out.
        _fail(f"{where}.content", f"Missing required parameter: '{where}.content'.")
    for name in ("name", "tool_call_id"):
        if message.get(name) is not None:
            _string(message[name], f"{where}.{name}")
    if message.get("tool_calls") is not None:
        _typed_objects(message["tool_calls"], f"{where}.tool_calls")


def _content(content: Any, param: str) -> None:
    if content is None or isinstance(content, str):
        return
    if not isinstance(content, list):
        _fail(param, f"{param} must be a string or an array of parts.")
    for index, part in enumerate(content):
        where = f"{param}[{index}]"
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            _fail(where, f"{where} must be an object with a string 'type'.")
        if part["type"] == "text" and not isinstance(part.get("text"), str):
            _fail(f"{where}.text", f"{where}.text must be a string.")


def _metadata(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        _fail("metadata", "'metadata' must be an object.")
    if len(value) > MAX_METADATA_KEYS:
        _fail("metadata", f"'metadata' may hold at most {MAX_METADATA_KEYS} keys.")
    for key, item in value.items():
        if len(key) > MAX_METADATA_KEY_CHARS:
            _fail(
                "metadata", f"'metadata' keys may be at most {MAX_METADATA_KEY_CHARS} characters."
            )
        where = f"metadata.{key[:_SHOWN_KEY_CHARS]}"
        if isinstance(item, str):
            if len(item) > MAX_METADATA_VALUE_CHARS:
                _fail(where, f"'{where}' may be at most {MAX_METADATA_VALUE_CHARS} characters.")
        elif item is None or not isinstance(item, int | float):  # bools are ints
            _fail(where, f"'{where}' must be a string, a number or a boolean.")
    return value


def _goal(body: dict[str, Any], goal_header: str | None) -> str:
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        _fail("model", "'model' must be a string.")
    goal = body.get("goal")
    if goal is not None and not isinstance(goal, str):
        _fail("goal", "'goal' must be a string.")
    if model and model.startswith(GOAL_MODEL_PREFIX):
        return model[len(GOAL_MODEL_PREFIX) :]
    if goal_header:
        return goal_header
    if goal:
        return goal
    _fail("model", "Name a goal: model 'goal/<slug>', the X-Router-Goal header, or a 'goal' field.")


def completion_request_parse(raw: bytes, *, goal_header: str | None = None) -> CompletionRequest:
    """Judge a raw request body; raises `InvalidRequest` naming the first problem's `param`."""
    body = _decode(raw)
    passthrough = {}
    for name, value in body.items():
        check = PASSTHROUGH_FIELDS.get(name)
        if check is not None:
            if value is not None:
                check(value, name)
                passthrough[name] = value
        elif name in REFUSED_FIELDS:
            _fail(
                name,
                f"'{name}' is not accepted: callers cannot set the headers, query or body "
                "routerapp sends upstream. Send OpenAI fields at the top level of the body.",
            )
        elif name not in ROUTER_FIELDS:
            shown = name[:_SHOWN_KEY_CHARS]
            _fail(shown, f"Unrecognized request argument supplied: {shown}")
    messages = _messages(body.get("messages"))
    goal = _goal(body, goal_header)
    metadata = _metadata(body.get("metadata"))
    stream = body.get("stream")
    if stream is not None:
        _boolean(stream, "stream")
    if body.get("stream_options") is not None:
        _stream_options(body["stream_options"], "stream_options")
    if body.get("n") is not None:
        _n(body["n"], "n")
    return CompletionRequest(
        goal=goal,
        messages=messages,
        metadata=metadata,
        stream=bool(stream),
        passthrough=passthrough,
    )
