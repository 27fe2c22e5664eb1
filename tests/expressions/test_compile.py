"""Save-time validation: what is refused, and where the error points."""

from __future__ import annotations

import pytest

from routerapp.expressions import CompiledExpression, ExpressionError, compile_expression
from routerapp.expressions.validate import MAX_DEPTH, MAX_SOURCE_LENGTH

RESPONSE = {"response"}
FEATURES = {"complexity", "task_type", "keywords", "metadata", "prompt_tokens"}
KALIBR = (
    "response.choices[0].finish_reason == 'stop' and len(response.choices[0].message.content) > 10"
)


def refusal(source: str, names: set[str] = RESPONSE) -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(source, names=names)
    return caught.value


def test_the_kalibr_example_compiles() -> None:
    compiled = compile_expression(KALIBR, names=RESPONSE)
    assert isinstance(compiled, CompiledExpression)
    assert compiled.source == KALIBR


@pytest.mark.parametrize(
    "source",
    [
        "complexity >= 7 and task_type == 'code'",
        "'refund' in keywords",
        "metadata.tier == 'free'",
        "prompt_tokens > 2000",
        "task_type in ['code', 'math'] or task_type in ('a',) or task_type in {'b'}",
        "not (complexity < 3) if prompt_tokens else metadata['tier'] is None",
        "lower(strip(task_type))[:3] == 'cod' and -complexity ** 2 % 3 // 1 != 1.5",
        "max(complexity, 2) - min(1, 2) + abs(-1) > int('3') * float('1.5') / 2",
        "any(keywords) and all([bool(1), str(2) == '2']) and get(metadata, 'x', 0) == 0",
        "contains(keywords, 'a') or startswith(task_type, 'c') or endswith(upper(task_type), 'E')",
    ],
)
def test_rule_conditions_compile(source: str) -> None:
    compile_expression(source, names=FEATURES)


def test_syntax_error_carries_its_position() -> None:
    error = refusal("response.choices[0] ==")
    assert error.message.startswith("syntax error")
    assert (error.line, error.column, error.position) == (1, 23, 22)
    assert "line 1, column 23" in str(error)


def test_syntax_error_on_a_later_line_counts_characters_not_bytes() -> None:
    # The parser reports character offsets; position is the 0-based offset in the source.
    error = refusal("(response.x == 'é'\n and ))")
    assert error.message == "syntax error: unmatched ')'"
    assert (error.line, error.column) == (2, 7)
    assert error.position == len("(response.x == 'é'\n") + 6


def test_unclosed_parenthesis_points_at_it() -> None:
    error = refusal("len(response.choices")
    assert (error.line, error.column, error.position) == (1, 4, 3)


def test_disallowed_node_positions_count_characters_not_bytes() -> None:
    # ast reports UTF-8 byte offsets; 'é' is two bytes but one column.
    error = refusal("'é' == 'é' and (lambda: 1)")
    assert error.message == "lambda functions are not allowed"
    assert (error.line, error.column, error.position) == (1, 17, 16)


def test_private_attribute_error_points_at_the_attribute_name() -> None:
    error = refusal("response.choices.__class__")
    assert "private attribute '__class__'" in error.message
    assert (error.column, error.position) == (18, 17)


def test_unknown_name_is_refused_with_its_position_and_the_available_names() -> None:
    error = refusal("complexity > 3 and tier == 'free'", FEATURES)
    assert error.message.startswith("unknown name 'tier'")
    assert "metadata" in error.message
    assert (error.line, error.column, error.position) == (1, 20, 19)


def test_a_function_used_as_a_value_is_refused() -> None:
    error = refusal("len == 3")
    assert "'len' is a function" in error.message


@pytest.mark.parametrize(
    ("source", "message", "column"),
    [
        ("[c for c in response.choices]", "comprehensions are not allowed", 1),
        ("{c: 1 for c in response.choices}", "comprehensions are not allowed", 1),
        ("{c for c in response.choices}", "comprehensions are not allowed", 1),
        ("len(c for c in response.choices)", "generator expressions are not allowed", 4),
        ("(x := response)", "assignment expressions", 2),
        ("f'{response}' == ''", "f-strings are not allowed", 1),
        ("len(*response.choices)", "starred arguments", 5),
        ("max(response.choices, key=len)", "keyword arguments are not allowed", 23),
        ("{'a': 1} == response", "dict literals are not allowed", 1),
        ("response.choices.pop()", "method calls such as .pop()", 18),
        ("response.id.format(1)", "method calls such as .format()", 13),
        ("'{}'.format", "literals have no fields", 6),
        ("response | 1", "operator '|' is not allowed", 1),
        ("1 << 2", "operator '<<' is not allowed", 1),
        ("~1", "operator '~' is not allowed", 1),
        ("response is 'x'", "'is' compares only with None", 13),
        ("b'x' == response", "bytes literals are not allowed", 1),
        ("1j == response", "complex literals are not allowed", 1),
        ("getattr(response, 'x')", "unknown function 'getattr'", 1),
        ("open('/etc/passwd')", "unknown function 'open'", 1),
        ("response.choices[0]()", "only the listed functions can be called", 1),
    ],
)
def test_disallowed_constructs_are_refused_at_their_position(
    source: str, message: str, column: int
) -> None:
    error = refusal(source)
    assert message in error.message
    assert error.line == 1
    assert error.column == column
    assert error.position == column - 1


@pytest.mark.parametrize(
    "source",
    [
        "response.__class__",
        "().__class__.__bases__[0].__subclasses__()",
        "__import__('os')",
        "'{}'.format",
        "getattr(response, '__class__')",
        "[x for x in range(10**8)]",
        "response._private",
        "import os",
        "lambda: response",
        "exec('1')",
        "eval('1')",
        "type(response)",
        "response.choices.__len__()",
    ],
)
def test_escapes_from_hints_are_refused_at_save_time(source: str) -> None:
    error = refusal(source)
    assert error.line == 1
    assert error.position is not None


def test_too_long_source_is_refused_without_a_position() -> None:
    error = refusal("1" * (MAX_SOURCE_LENGTH + 1))
    assert "too long" in error.message
    assert (error.line, error.column, error.position) == (None, None, None)
    assert "line" not in str(error)


def test_deep_nesting_is_refused() -> None:
    error = refusal("-" * (MAX_DEPTH + 5) + "1")
    assert "nested too deeply" in error.message
    assert error.position == MAX_DEPTH


def test_parser_nesting_limit_becomes_an_expression_error() -> None:
    error = refusal("(" * 300 + "1" + ")" * 300)
    assert error.message.startswith("syntax error")


@pytest.mark.parametrize("source", ["", "   ", "\n"])
def test_empty_expression_is_refused(source: str) -> None:
    assert refusal(source).message == "expression is empty"


def test_null_byte_is_an_expression_error() -> None:
    assert refusal("response\x00").message


def test_names_must_be_a_collection_of_names_not_a_string() -> None:
    with pytest.raises(TypeError):
        compile_expression("response", names="response")


def test_compiling_twice_returns_an_equal_expression() -> None:
    assert compile_expression(KALIBR, names=RESPONSE) == compile_expression(
        KALIBR, names=["response"]
    )


def test_constructing_compiled_expression_directly_validates() -> None:
    with pytest.raises(ExpressionError):
        CompiledExpression("response.__class__", frozenset(RESPONSE))
