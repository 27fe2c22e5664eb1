"""Run time: the Kalibr example, rule conditions, limits, and errors that become
ExpressionError with a reason the service can record."""

from __future__ import annotations

import time
from typing import Any

import pytest

from routerapp.expressions import ExpressionError, compile_expression, evaluate, plain_view

KALIBR = (
    "response.choices[0].finish_reason == 'stop' and len(response.choices[0].message.content) > 10"
)


def failure(source: str, names: dict[str, Any]) -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        evaluate(source, names)
    return caught.value


def test_kalibr_example_passes_on_a_complete_answer(completion: dict[str, Any]) -> None:
    assert evaluate(KALIBR, {"response": completion}) is True


def test_kalibr_example_fails_on_a_truncated_answer(completion: dict[str, Any]) -> None:
    completion["choices"][0]["finish_reason"] = "length"
    assert evaluate(KALIBR, {"response": completion}) is False


def test_compiled_expression_evaluates_many_responses(completion: dict[str, Any]) -> None:
    compiled = compile_expression(KALIBR, names={"response"})
    short = {"choices": [{"finish_reason": "stop", "message": {"content": "ok"}}]}
    assert compiled.evaluate({"response": completion}) is True
    assert compiled.evaluate({"response": short}) is False


def test_item_access_and_slices_work_like_attribute_access(completion: dict[str, Any]) -> None:
    names = {"response": completion}
    assert evaluate("response['choices'][0]['message']['content'][-5:]", names) == "days."
    assert evaluate("response.usage.total_tokens <= 40", names) is True
    assert evaluate("response.choices[-1].message.refusal is None", names) is True
    assert evaluate("'refund' in lower(response.choices[0].message.content)", names) is True
    assert evaluate("len(response.choices[0:1]) == 1 and 'usage' in response", names) is True


def test_an_already_wrapped_response_is_accepted(completion: dict[str, Any]) -> None:
    # The service passes plain_view(response); errors still name the value "response".
    names = {"response": plain_view(completion)}
    assert evaluate(KALIBR, names) is True
    assert "response.choices[0]" in failure("response.choices[0].text", names).message


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("complexity >= 7 and task_type == 'code'", True),
        ("'refund' in keywords", True),
        ("'invoice' in keywords", False),
        ("metadata.tier == 'free'", True),
        ("metadata['tier'] == 'free' and metadata.region.name == 'eu'", True),
        ("prompt_tokens > 2000", True),
        ("task_type in ['code', 'math']", True),
        ("'plan' in metadata and metadata.plan == 'pro'", False),  # short-circuits a missing field
        ("get(metadata, 'plan', 'none') == 'none'", True),
        ("len(keywords) == 2 and keywords[1] == 'urgent'", True),
        ("not has_json_request or reasoning_cues > 3", True),
    ],
)
def test_rule_conditions_over_features(source: str, expected: bool) -> None:
    features = {
        "prompt_tokens": 2400,
        "message_count": 3,
        "task_type": "code",
        "complexity": 7.5,
        "has_json_request": False,
        "reasoning_cues": 2,
        "keywords": ["refund", "urgent"],
        "metadata": {"tier": "free", "region": {"name": "eu"}},
    }
    assert evaluate(source, features) is expected


def test_missing_field_names_the_path_and_points_at_the_field(
    completion: dict[str, Any],
) -> None:
    error = failure("response.choices[0].message.contnt == ''", {"response": completion})
    assert error.message == "response.choices[0].message has no field 'contnt'"
    assert (error.line, error.column, error.position) == (1, 29, 28)


def test_index_out_of_range_is_an_expression_error(completion: dict[str, Any]) -> None:
    error = failure("response.choices[3].finish_reason == 'stop'", {"response": completion})
    assert error.message == "response.choices has no item [3] (it has 1 item)"
    assert error.column == 18


def test_reading_a_field_of_none_is_an_expression_error(completion: dict[str, Any]) -> None:
    completion["choices"][0]["message"]["content"] = None
    error = failure("len(response.choices[0].message.content.text) > 0", {"response": completion})
    assert error.message == "cannot read field 'text' of None"


def test_type_error_is_an_expression_error(completion: dict[str, Any]) -> None:
    completion["choices"][0]["message"]["content"] = None
    error = failure(KALIBR, {"response": completion})
    assert error.message.startswith("TypeError: object of type 'NoneType' has no len()")
    assert error.position is not None


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("1 / 0 > 1", "division by zero"),
        ("int('abc') > 1", "ValueError"),
        ("lower(response.created) == ''", "lower() expects text"),
        ("response.choices.index == 0", "response.choices is a list; it has no field 'index'"),
        ("response.choices['a']", "its index must be an integer"),
        ("response['missing']", "response has no key 'missing'"),
        ("response.id.upper", "cannot read field 'upper' of str"),
        ("response > 1", "TypeError"),
        ("str(response) == ''", "str() expects a single value"),
        ("'%s' % response.id", "'%' string formatting is not allowed"),
        ("10.0 ** 400 > 1", "OverflowError"),
        ("min([]) > 1", "ValueError"),
    ],
)
def test_runtime_failures_become_expression_errors(
    completion: dict[str, Any], source: str, message: str
) -> None:
    assert message in failure(source, {"response": completion}).message


def test_a_declared_but_missing_name_is_an_expression_error() -> None:
    compiled = compile_expression("metadata.tier == 'free'", names={"metadata"})
    with pytest.raises(ExpressionError, match="no value was given for 'metadata'"):
        compiled.evaluate({})


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("'a' * 10**9 == ''", "string too long"),
        ("10**10**10 > 1", "number too large"),
        ("2**20000 > 1", "number too large"),
        ("9**9**9 > 1", "number too large"),
        ("[1] * 10**6 == []", "list too long"),
        ("[[1] * 100] * 100 == []", "a list of lists cannot be repeated"),
        ("'ab' * 40000 + 'c' * 40000 == ''", "string too long"),
        ("(10**3000) * (10**3000) > 1", "number too large"),
    ],
)
def test_size_limits_refuse_before_doing_the_work(source: str, message: str) -> None:
    started = time.perf_counter()
    error = failure(source, {"response": {}})
    assert message in error.message
    assert time.perf_counter() - started < 0.5


def test_results_just_under_the_limits_are_computed() -> None:
    assert evaluate("len('a' * 100000)", {}) == 100000
    assert evaluate("2 ** 9999 > 1", {}) is True


def test_worst_case_expression_over_a_large_response_stays_fast() -> None:
    # Every node is linear in its operands and there are no loops: ~100 scans of 1 MB.
    content = "word " * 200_000
    response = {"choices": [{"message": {"content": content}}]}
    source = " and ".join(["'zzz' not in response.choices[0].message.content"] * 35)
    started = time.perf_counter()
    assert evaluate(source, {"response": response}) is True
    assert time.perf_counter() - started < 2.0


def test_evaluation_never_mutates_the_data(completion: dict[str, Any]) -> None:
    view = plain_view(completion)
    with pytest.raises(AttributeError):
        view.id = "x"
    assert evaluate("response.id", {"response": completion}) == "chatcmpl-9x2Kq7ZfJ3bW1"
