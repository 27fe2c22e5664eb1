"""Save-time validation: parse an expression and check every node against a whitelist.

The grammar is the Python expression subset operators need for `success_when` and rule
conditions: literals (str, int, float, bool, None, and lists/tuples/sets of them), names,
field and item access, slices, arithmetic (`+ - * / // % **`), comparisons (including `in`,
and `is`/`is not` against None/True/False only), `and`/`or`/`not`, `x if c else y`, and calls
of the whitelisted functions by name with positional arguments.

Everything else is refused here, with the offending node's position, so a bad expression never
reaches the request path: lambdas, comprehensions and generators (the only loops Python
expressions have), `:=`, f-strings, starred arguments, keyword arguments, dict literals,
bitwise operators, method calls (`'{}'.format`, `x.lower()`), any attribute starting with `_`,
and names that are neither declared nor functions. Statements such as `import` are already
syntax errors in expression mode.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Collection, Iterator

from routerapp.expressions.errors import ExpressionError

MAX_SOURCE_LENGTH = 2000
MAX_DEPTH = 50  # AST depth; the evaluator recurses once per level

_OPERATORS: dict[type[ast.AST], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
}
_REFUSED_OPERATORS: dict[type[ast.AST], str] = {
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.MatMult: "@",
    ast.Invert: "~",
}
_UNARY = (ast.Not, ast.USub, ast.UAdd)
_COMPARE = (
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.In,
    ast.NotIn,
    ast.Is,
    ast.IsNot,
)
_CONSTANT_TYPES = (str, int, float, bool, type(None))
_REFUSED_NODES: dict[type[ast.AST], str] = {
    ast.Lambda: "lambda functions are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "generator expressions are not allowed",
    ast.NamedExpr: "assignment expressions (:=) are not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.Starred: "starred arguments (*x) are not allowed",
    ast.Dict: "dict literals are not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
}
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def parse_expression(
    source: str, *, names: Collection[str], functions: Collection[str]
) -> ast.Expression:
    """Parse and validate `source`; return its tree or raise `ExpressionError` with a position."""
    if not isinstance(source, str):
        raise ExpressionError(f"an expression must be a string, not {type(source).__name__}")
    if len(source) > MAX_SOURCE_LENGTH:
        raise ExpressionError(
            f"expression is too long ({len(source)} characters; the limit is {MAX_SOURCE_LENGTH})"
        )
    if not source.strip():
        raise ExpressionError("expression is empty", line=1, column=1, position=0)
    try:
        # In eval mode an expression cut short at the very end ("a ==") is reported at
        # offset 0; a trailing newline makes the parser point at the end instead.
        tree = ast.parse(source + "\n", mode="eval")
    except SyntaxError as error:
        raise _syntax_error(source, error) from None
    except (ValueError, RecursionError, MemoryError, OverflowError) as error:
        # ValueError: null bytes; the others: pathological nesting the parser gave up on.
        raise ExpressionError(f"invalid expression: {error}") from None
    _Checker(source, names=names, functions=functions).check(tree)
    return tree


def _syntax_error(source: str, error: SyntaxError) -> ExpressionError:
    message = error.msg or "invalid syntax"
    if error.lineno is None:
        return ExpressionError(f"syntax error: {message}")
    lines = _LINE_BREAK.split(source)
    line = min(max(error.lineno, 1), len(lines))
    # The parser reports character offsets, 1-based; EOF errors may point one past the end.
    column = min(max(error.offset or 1, 1), len(lines[line - 1]) + 1)
    return ExpressionError(
        f"syntax error: {message}",
        line=line,
        column=column,
        position=_offset(lines, line, column),
    )


def _offset(lines: list[str], line: int, column: int) -> int:
    # Line breaks are counted as one character each; a "\r\n" source is rare enough here.
    return sum(len(text) + 1 for text in lines[: line - 1]) + column - 1


def located_error(
    source: str, node: ast.AST, message: str, *, end_length: int | None = None
) -> ExpressionError:
    """`ExpressionError(message)` positioned at `node` of `source` (used for run-time errors)."""
    return _Checker(source, names=(), functions=()).error(node, message, end_length=end_length)


def _is_singleton(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and any(
        node.value is singleton for singleton in (None, True, False)
    )


class _Checker:
    def __init__(self, source: str, *, names: Collection[str], functions: Collection[str]) -> None:
        self.source = source
        self.lines = _LINE_BREAK.split(source)
        self.names = frozenset(names)
        self.functions = frozenset(functions)

    def check(self, tree: ast.Expression) -> None:
        # Iterative on purpose: a 2000-character `- - - ... 1` is ~1000 levels deep, more than
        # a recursive walk should be trusted with; MAX_DEPTH then protects the evaluator.
        stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
        while stack:
            node, depth = stack.pop()
            if depth > MAX_DEPTH:
                raise self.error(node, f"expression is nested too deeply (limit {MAX_DEPTH})")
            for child in self.children(node):
                stack.append((child, depth + 1))

    def children(self, node: ast.AST) -> Iterator[ast.AST]:
        """Check one node; yield the sub-expressions still to check."""
        refused = _REFUSED_NODES.get(type(node))
        if refused is not None:
            raise self.error(node, refused)
        if isinstance(node, ast.Constant):
            if not isinstance(node.value, _CONSTANT_TYPES):
                raise self.error(node, f"{type(node.value).__name__} literals are not allowed")
        elif isinstance(node, ast.Name):
            self.check_name(node)
        elif isinstance(node, ast.Attribute):
            if node.attr.startswith("_"):
                raise self.error(
                    node,
                    f"private attribute '{node.attr}' is not allowed",
                    end_length=len(node.attr),
                )
            if isinstance(node.value, (ast.Constant, ast.List, ast.Tuple, ast.Set)):
                raise self.error(
                    node, f"literals have no fields ('.{node.attr}')", end_length=len(node.attr)
                )
            yield node.value
        elif isinstance(node, ast.Subscript):
            yield node.value
            yield node.slice
        elif isinstance(node, ast.Slice):
            yield from (part for part in (node.lower, node.upper, node.step) if part is not None)
        elif isinstance(node, ast.BinOp):
            self.check_operator(node, node.op)
            yield node.left
            yield node.right
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, _UNARY):
                self.check_operator(node, node.op)
            yield node.operand
        elif isinstance(node, ast.BoolOp):
            yield from node.values
        elif isinstance(node, ast.Compare):
            self.check_compare(node)
            yield node.left
            yield from node.comparators
        elif isinstance(node, ast.IfExp):
            yield from (node.test, node.body, node.orelse)
        elif isinstance(node, ast.Call):
            yield from self.check_call(node)
        elif isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            yield from node.elts
        else:
            raise self.error(node, f"{type(node).__name__} is not allowed in an expression")

    def check_name(self, node: ast.Name) -> None:
        if node.id in self.names:
            return
        if node.id in self.functions:
            raise self.error(node, f"'{node.id}' is a function; call it, e.g. {node.id}(...)")
        raise self.error(node, f"unknown name '{node.id}'; available: {self.available()}")

    def check_operator(self, node: ast.AST, operator: ast.AST) -> None:
        if type(operator) in _OPERATORS:
            return
        symbol = _REFUSED_OPERATORS.get(type(operator), type(operator).__name__)
        raise self.error(node, f"operator '{symbol}' is not allowed")

    def check_compare(self, node: ast.Compare) -> None:
        for operator, right in zip(node.ops, node.comparators, strict=True):
            if not isinstance(operator, _COMPARE):
                raise self.error(node, f"comparison {type(operator).__name__} is not allowed")
            # Identity of strings and numbers is a CPython accident; only singletons are safe.
            if isinstance(operator, (ast.Is, ast.IsNot)) and not _is_singleton(right):
                raise self.error(
                    right, "'is' compares only with None, True or False; use == instead"
                )

    def check_call(self, node: ast.Call) -> Iterator[ast.AST]:
        if isinstance(node.func, ast.Attribute) and not node.func.attr.startswith("_"):
            raise self.error(
                node.func,
                f"method calls such as .{node.func.attr}() are not allowed; "
                f"use the functions {self.function_list()}",
                end_length=len(node.func.attr),
            )
        if not isinstance(node.func, ast.Name):
            # Report what the callee is (a private attribute, a lambda...) when that is refused.
            list(self.children(node.func))
            raise self.error(node.func, "only the listed functions can be called")
        if node.func.id not in self.functions:
            raise self.error(
                node.func,
                f"unknown function '{node.func.id}'; available: {self.function_list()}",
            )
        if node.keywords:
            raise self.error(node.keywords[0], "keyword arguments are not allowed")
        yield from node.args

    def available(self) -> str:
        return ", ".join(sorted(self.names)) or "(none)"

    def function_list(self) -> str:
        return ", ".join(sorted(self.functions))

    def error(
        self, node: ast.AST, message: str, *, end_length: int | None = None
    ) -> ExpressionError:
        """An error at `node`; with `end_length`, at the last `end_length` characters of it
        (how an attribute name is pointed at rather than the start of `response.__class__`)."""
        line, column = self.location(node, end_length=end_length)
        if line is None or column is None:
            return ExpressionError(message)
        return ExpressionError(
            message, line=line, column=column, position=_offset(self.lines, line, column)
        )

    def location(self, node: ast.AST, *, end_length: int | None) -> tuple[int | None, int | None]:
        if end_length is not None:
            line = getattr(node, "end_lineno", None)
            byte_offset = getattr(node, "end_col_offset", None)
        else:
            line, byte_offset = getattr(node, "lineno", None), getattr(node, "col_offset", None)
        if line is None or byte_offset is None or not 1 <= line <= len(self.lines):
            return None, None
        # ast offsets count UTF-8 bytes; editors count characters.
        text = self.lines[line - 1].encode("utf-8")[:byte_offset].decode("utf-8", "replace")
        column = len(text) + 1 - (end_length or 0)
        return line, max(column, 1)
