"""Text and JSON that must be refused before any view, query or upstream call sees it.

PostgreSQL cannot store a NUL character in `text` or `jsonb` ("string literal cannot contain
NUL"), and a lone UTF-16 surrogate (`"\\ud800"` in JSON) cannot be encoded to UTF-8 at all: both
would surface as a 500 from deep inside a query. Python's JSON decoder recurses once per nesting
level, so a body of 100k nested arrays raises RecursionError. Non-finite numbers (`NaN`,
`Infinity`, `1e400`) are not JSON and cannot be stored in `jsonb`.

Pure: no Django import; the DRF parser and the URL middleware wrap it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# Deep enough for any configuration body or chat request (an OpenAI tool schema is ~10 levels),
# shallow enough that checking it is cheap and nothing recurses near Python's limit (1000).
MAX_JSON_DEPTH = 32

_UNSAFE_CHARACTER = re.compile("[\x00\ud800-\udfff]")


class UnsafeInput(ValueError):
    """Refused input. `path` names where (`messages[0].role`, `extra_params.stop`), or is "" when
    the input as a whole is refused (too deep, not JSON)."""

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.path = path


class TooDeep(UnsafeInput):
    """Nesting past the bound: the body as a whole is refused (`path` says where it went too
    deep, when the decoder got that far)."""


def unsafe_character(text: str) -> str | None:
    """Why `text` cannot be accepted, or None when it can."""
    found = _UNSAFE_CHARACTER.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "NUL characters (\\u0000) are not allowed."
    return f"Lone surrogate characters (U+{ord(found.group()):04X}) are not allowed."


def _join(path: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{path}[{part}]"
    return f"{path}.{part}" if path else part


def json_check(value: Any, *, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise UnsafeInput for the first unsafe string (key or value), non-finite number or
    nesting deeper than `max_depth` (the outermost array or object is level 1). Iterative, so
    it cannot itself run out of stack."""
    pending: list[tuple[Any, str, int]] = [(value, "", 0)]
    while pending:
        item, path, depth = pending.pop()
        if isinstance(item, str):
            reason = unsafe_character(item)
            if reason:
                raise UnsafeInput(reason, path=path)
        elif isinstance(item, float) and not math.isfinite(item):
            raise UnsafeInput("Numbers must be finite.", path=path)
        elif isinstance(item, dict | list):
            if depth + 1 > max_depth:
                raise TooDeep(
                    f"JSON nested deeper than {max_depth} levels is not accepted.", path=path
                )
            if isinstance(item, dict):
                for key, child in item.items():
                    reason = unsafe_character(key)
                    if reason:
                        raise UnsafeInput(f"A key: {reason}", path=path)
                    pending.append((child, _join(path, key), depth + 1))
            else:
                pending.extend(
                    (child, _join(path, index), depth + 1) for index, child in enumerate(item)
                )


def json_loads(text: str | bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`json.loads` that refuses what `json_check` refuses and turns the decoder's own
    RecursionError into UnsafeInput. Other malformed JSON raises ValueError as usual.
    (`NaN` and `Infinity` parse to floats here so that `json_check` can say where they are.)"""
    try:
        value = json.loads(text)
    except RecursionError:
        raise TooDeep(f"JSON nested deeper than {max_depth} levels is not accepted.") from None
    json_check(value, max_depth=max_depth)
    return value
