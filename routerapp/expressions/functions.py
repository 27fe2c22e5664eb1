"""The functions and operators expressions may use, each bounded in time and size.

Functions are called by name (`len(x)`, `lower(x)`); methods are never reachable, so
`'{}'.format`, `str.join` and friends cannot be used to format or build large strings.

Regular expressions are deliberately absent: a backtracking pattern written by an operator
(`(a+)+$`) can take exponential time on a long response, and Python's `re` cannot be
interrupted. `contains`, `startswith`, `endswith`, `lower` and `in` cover what `success_when`
conditions need, in linear time.

Size limits, checked before the work is done where the work itself could be large:
- numbers: integer results above MAX_INT_BITS bits are refused (`10**10**10` never runs);
- strings built by `+` or `*`: at most MAX_STRING_LENGTH characters;
- lists/tuples built by `+` or `*`: at most MAX_LIST_LENGTH items, and a list holding
  lists cannot be repeated (that is how `[[1]*n]*n` would make an n*n comparison);
- `%` on strings (printf formatting, e.g. `'%*d' % (10**9, 1)`) is refused.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any

from routerapp.expressions.errors import ExpressionError
from routerapp.expressions.views import ListView, MappingView, describe, unwrap

MAX_INT_BITS = 10_000  # ~3000 decimal digits; also under CPython's 4300-digit str() limit
MAX_STRING_LENGTH = 100_000
MAX_LIST_LENGTH = 10_000
_SCALARS = (str, int, float, bool, type(None))


def _check_int(value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ExpressionError(f"number too large (more than {MAX_INT_BITS} bits)")
    return value


def _check_length(length: int, sample: Any) -> None:
    if isinstance(sample, str):
        if length > MAX_STRING_LENGTH:
            raise ExpressionError(
                f"string too long ({length} characters; the limit is {MAX_STRING_LENGTH})"
            )
    elif length > MAX_LIST_LENGTH:
        raise ExpressionError(f"list too long ({length} items; the limit is {MAX_LIST_LENGTH})")


def safe_add(left: Any, right: Any) -> Any:
    if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
        _check_length(len(left) + len(right), left)
    return _check_int(left + right)


def safe_mult(left: Any, right: Any) -> Any:
    for sequence, times in ((left, right), (right, left)):
        if isinstance(sequence, str | list | tuple) and isinstance(times, int):
            _check_length(len(sequence) * max(times, 0), sequence)
            if not isinstance(sequence, str) and any(
                isinstance(item, list | tuple | ListView | MappingView) for item in sequence
            ):
                raise ExpressionError("a list of lists cannot be repeated with '*'")
    return _check_int(left * right)


def safe_power(base: Any, exponent: Any) -> Any:
    # The result has at least exponent * floor(log2(base)) bits: refuse before computing it
    # (and at most twice that, which _check_int then refuses cheaply).
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and exponent > 0
        and abs(base) > 1
        and (exponent > MAX_INT_BITS or (abs(base).bit_length() - 1) * exponent > MAX_INT_BITS)
    ):
        raise ExpressionError(f"number too large: {describe(base)} ** {describe(exponent)}")
    return _check_int(base**exponent)


def safe_mod(left: Any, right: Any) -> Any:
    if isinstance(left, str | bytes):
        raise ExpressionError("'%' string formatting is not allowed")
    return left % right


def _contains(container: Any, item: Any) -> bool:
    return operator.contains(container, unwrap(item))


OPERATORS: dict[type[ast.AST], Callable[..., Any]] = {
    ast.Add: safe_add,
    ast.Sub: operator.sub,
    ast.Mult: safe_mult,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: safe_mod,
    ast.Pow: safe_power,
    ast.Not: operator.not_,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda item, container: _contains(container, item),
    ast.NotIn: lambda item, container: not _contains(container, item),
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}


def _text(value: Any, function: str) -> str:
    if not isinstance(value, str):
        raise ExpressionError(f"{function}() expects text, got {describe(value)}")
    return value


def fn_lower(text: Any) -> str:
    return _text(text, "lower").lower()


def fn_upper(text: Any) -> str:
    return _text(text, "upper").upper()


def fn_strip(text: Any) -> str:
    return _text(text, "strip").strip()


def fn_startswith(text: Any, prefix: Any) -> bool:
    return _text(text, "startswith").startswith(_text(prefix, "startswith"))


def fn_endswith(text: Any, suffix: Any) -> bool:
    return _text(text, "endswith").endswith(_text(suffix, "endswith"))


def fn_contains(container: Any, item: Any) -> bool:
    """`contains(haystack, needle)`: `needle in haystack` for text, lists and mappings."""
    if isinstance(container, str):
        return _text(item, "contains") in container
    if container is None or isinstance(container, int | float):
        raise ExpressionError(
            f"contains() expects text, a list or a mapping, got {describe(container)}"
        )
    return _contains(container, item)


def fn_get(container: Any, key: Any, default: Any = None) -> Any:
    """`get(metadata, 'tier', 'free')`: a field or item, or `default` when it is missing."""
    if not isinstance(container, MappingView | ListView):
        raise ExpressionError(f"get() expects a mapping or a list, got {describe(container)}")
    try:
        return container[key]
    except ExpressionError:
        return default


def fn_str(value: Any = "") -> str:
    # Scalars only: the text of a whole structure can be far larger than the structure
    # (a list repeated by reference), and nothing useful is compared against it.
    if not isinstance(value, _SCALARS):
        raise ExpressionError(f"str() expects a single value, got {describe(value)}")
    return str(value)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": len,
    "lower": fn_lower,
    "upper": fn_upper,
    "strip": fn_strip,
    "startswith": fn_startswith,
    "endswith": fn_endswith,
    "contains": fn_contains,
    "get": fn_get,
    "int": int,
    "float": float,
    "str": fn_str,
    "bool": bool,
    "min": min,
    "max": max,
    "abs": abs,
    "any": any,
    "all": all,
}
