"""Property tests: arbitrary input never escapes as anything but ExpressionError."""

from __future__ import annotations

import contextlib
import string
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routerapp.expressions import ExpressionError, compile_expression

NAMES = {"response", "complexity", "keywords", "metadata"}
# Fragments of the grammar (and of escapes), so generated text is often almost valid and
# exercises the validator, not just the parser.
TOKENS = [
    "response",
    "complexity",
    "keywords",
    "metadata",
    ".",
    "choices",
    "[",
    "]",
    "(",
    ")",
    "0",
    "-1",
    "'x'",
    "==",
    "and",
    "or",
    "not",
    "in",
    "is",
    "None",
    "len",
    "lower",
    "min",
    "+",
    "*",
    "**",
    "%",
    ",",
    ":",
    "__class__",
    "lambda",
    "for",
    "if",
    "else",
    "{",
    "}",
    "f'",
    ":=",
    "é",
    "\n",
    " ",
    "10**10**10",
    "getattr",
    "'{}'.format",
    "*",
    "=",
    ";",
    "\\",
    "\x00",
]
NAMES_VALUES: dict[str, Any] = {
    "response": {"choices": [{"message": {"content": "hello"}}]},
    "complexity": 5.0,
    "keywords": ["refund"],
    "metadata": {"tier": "free"},
}


def refusal_or_none(action: Callable[[], object]) -> ExpressionError | None:
    """The ExpressionError `action` raises, or None; any other exception fails the test."""
    try:
        action()
    except ExpressionError as error:
        return error
    return None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=string.printable, max_size=80))
def test_random_printable_text_raises_only_expression_error(source: str) -> None:
    error = refusal_or_none(lambda: compile_expression(source, names=NAMES))
    if error is not None:
        assert error.message
        assert error.position is None or 0 <= error.position <= len(source)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=14).map(" ".join))
def test_token_soup_compiles_or_is_refused_and_evaluates_or_fails_cleanly(source: str) -> None:
    try:
        compiled = compile_expression(source, names=NAMES)
    except ExpressionError:
        return
    error = refusal_or_none(lambda: compiled.evaluate(NAMES_VALUES))
    assert error is None or error.message


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_any_unicode_text_raises_only_expression_error(source: str) -> None:
    with contextlib.suppress(ExpressionError):
        compile_expression(source, names=NAMES)
