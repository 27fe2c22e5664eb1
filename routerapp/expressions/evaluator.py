"""Compile once, evaluate many: `compile_expression`, `CompiledExpression`, `evaluate`.

Evaluation runs on simpleeval's `EvalWithCompoundTypes`, narrowed further:
- the tree was validated at compile time (`validate.py`), so only whitelisted nodes, declared
  names and whitelisted functions can appear;
- field access works on `plain_view` views only (every name's value is wrapped), so no
  attribute of a Python object (`str.format`, `__class__`, a method) is ever reachable;
- operators are the bounded ones of `functions.py`;
- every exception raised while evaluating becomes an `ExpressionError` positioned at the
  innermost node that failed ("TypeError: ... (line 1, column 40)"), so the service can record
  a failed outcome with a reason instead of crashing.

Why there is no wall-clock timeout: an expression has no loops (lambdas, comprehensions and
generators are refused; no function takes a callable), at most ~2000 characters and so at most
~1000 nodes, nesting of at most MAX_DEPTH, and each node does work linear in the size of its
operands, which are either the caller's data or values capped by MAX_STRING_LENGTH,
MAX_LIST_LENGTH and MAX_INT_BITS before they are built. The worst case is therefore
(number of nodes) x (size of the data or of a capped value): milliseconds for a normal
response, and no input makes it grow faster than linearly. A timer could not interrupt a
single long C-level operation anyway, which is why the caps are checked before the work.
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from simpleeval import EvalWithCompoundTypes

from routerapp.expressions.errors import ExpressionError
from routerapp.expressions.functions import FUNCTIONS, OPERATORS
from routerapp.expressions.validate import located_error, parse_expression
from routerapp.expressions.views import plain_view, read_field

# Nodes simpleeval would evaluate that our grammar never lets through: removed from the
# evaluator too, so a validation bug cannot reach them.
_UNUSED_NODES = (
    ast.Assign,
    ast.AugAssign,
    ast.Import,
    ast.Dict,
    ast.ListComp,
    ast.GeneratorExp,
    ast.DictComp,
    ast.JoinedStr,
    ast.FormattedValue,
)


@dataclass(frozen=True)
class CompiledExpression:
    """A validated expression; `evaluate(names)` runs it over one set of values.

    Build it with `compile_expression` (constructing it directly validates too). Instances are
    immutable and thread-safe: each evaluation uses its own evaluator.

    >>> expression = compile_expression("prompt_tokens > 2000", names={"prompt_tokens"})
    >>> expression.evaluate({"prompt_tokens": 2500})
    True
    """

    source: str
    names: frozenset[str] = frozenset()
    tree: ast.Expression | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.tree is None:
            tree = parse_expression(self.source, names=self.names, functions=FUNCTIONS)
            object.__setattr__(self, "tree", tree)

    def evaluate(self, names: Mapping[str, Any]) -> Any:
        """The expression's value with `names` bound (mappings and lists are wrapped with
        `plain_view`); raises `ExpressionError` for anything that goes wrong."""
        assert self.tree is not None  # set in __post_init__
        values = {name: plain_view(value, label=name) for name, value in names.items()}
        evaluator = _Evaluator(self.source, values)
        return evaluator.eval(self.source, previously_parsed=self.tree.body)


def compile_expression(source: str, *, names: Collection[str]) -> CompiledExpression:
    """Validate `source` against the grammar and the declared `names`; raise `ExpressionError`
    (with line, column and position when the fault has a place) if it is not acceptable.

    Call it when an expression is saved; the result is cached, so the request path can call
    it again cheaply.

    >>> try:
    ...     compile_expression("len(keyword) > 0", names={"keywords"})
    ... except ExpressionError as error:
    ...     print(error.message, error.line, error.column, error.position)
    unknown name 'keyword'; available: keywords 1 5 4
    """
    if isinstance(names, str):
        raise TypeError("names must be a collection of names, not a single string")
    return _compile(source, frozenset(names))


@lru_cache(maxsize=1024)
def _compile(source: str, names: frozenset[str]) -> CompiledExpression:
    return CompiledExpression(source, names)


def evaluate(source: str, names: Mapping[str, Any]) -> Any:
    """Compile `source` with the keys of `names` declared, then evaluate it over `names`.

    >>> evaluate("'refund' in keywords and metadata.tier == 'free'",
    ...          {"keywords": ["refund"], "metadata": {"tier": "free"}})
    True
    """
    return compile_expression(source, names=names.keys()).evaluate(names)


class _Evaluator(EvalWithCompoundTypes):
    def __init__(self, source: str, names: dict[str, Any]) -> None:
        super().__init__(operators=dict(OPERATORS), functions=dict(FUNCTIONS), names=names)
        # EvalWithCompoundTypes adds list/tuple/dict/set constructors; keep exactly ours.
        self.functions = dict(FUNCTIONS)
        for node_type in _UNUSED_NODES:
            self.nodes.pop(node_type, None)
        self.nodes[ast.Name] = self._eval_variable
        self.nodes[ast.Attribute] = self._eval_field
        self.source = source

    def _eval(self, node: ast.AST) -> Any:
        try:
            return super()._eval(node)
        except ExpressionError as error:
            if error.line is not None:
                raise
            raise self._error(node, error.message) from error
        except Exception as error:
            raise self._error(node, _runtime_message(error)) from error

    def _error(self, node: ast.AST, message: str) -> ExpressionError:
        # Point at the field name or the index that failed, not at the start of `response...`.
        if isinstance(node, ast.Attribute):
            return located_error(self.source, node, message, end_length=len(node.attr))
        if isinstance(node, ast.Subscript):
            return located_error(self.source, node.slice, message)
        return located_error(self.source, node, message)

    def _eval_variable(self, node: ast.Name) -> Any:
        try:
            return self.names[node.id]
        except KeyError:
            raise ExpressionError(f"no value was given for '{node.id}'") from None

    def _eval_field(self, node: ast.Attribute) -> Any:
        return read_field(self._eval(node.value), node.attr)


def _runtime_message(error: Exception) -> str:
    if isinstance(error, ZeroDivisionError):
        return "division by zero"
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
