"""plain_view: attribute and item access over nested data, read-only, clear errors."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest

from routerapp.expressions import ExpressionError, plain_view


def test_attribute_and_item_access_reach_the_same_data(completion: dict[str, Any]) -> None:
    view = plain_view(completion, label="response")
    assert view.choices[0].message.content == view["choices"][0]["message"]["content"]
    assert view.usage.total_tokens == 40
    assert len(view.choices) == 1
    assert "usage" in view
    assert [choice.finish_reason for choice in view.choices] == ["stop"]


def test_views_compare_equal_to_the_data_they_wrap(completion: dict[str, Any]) -> None:
    view = plain_view(completion)
    assert view.usage == {"prompt_tokens": 31, "completion_tokens": 9, "total_tokens": 40}
    assert view.choices[0:1] == completion["choices"]
    assert "stop" not in view.choices


def test_fields_named_like_dict_methods_are_fields() -> None:
    # Views have no public attributes of their own, so no data field is shadowed.
    view = plain_view({"items": [1], "get": "g", "keys": 3})
    assert (view.items[0], view.get, view.keys) == (1, "g", 3)


def test_missing_field_raises_expression_error_naming_the_path(
    completion: dict[str, Any],
) -> None:
    view = plain_view(completion, label="response")
    with pytest.raises(ExpressionError, match=r"response.choices\[0\] has no field 'text'"):
        _ = view.choices[0].text


def test_private_names_are_not_fields() -> None:
    view = plain_view({"_secret": 1, "__class__": 2})
    with pytest.raises(AttributeError):
        _ = view._secret
    assert view["_secret"] == 1  # item access is plain data access


def test_views_are_read_only(completion: dict[str, Any]) -> None:
    view = plain_view(completion)
    with pytest.raises(AttributeError):
        view.model = "other"
    with pytest.raises(TypeError):
        view["model"] = "other"
    assert completion["model"] == "gpt-4o-mini-2024-07-18"


def test_scalars_pass_through_and_models_are_dumped() -> None:
    class Model:
        def model_dump(self) -> dict[str, Any]:
            return {"choices": []}

    assert plain_view("text") == "text"
    assert plain_view(None) is None
    assert plain_view(Model()).choices == []


def test_views_survive_copy_and_pickle_probes(completion: dict[str, Any]) -> None:
    # Tools (debuggers, loggers, copy) probe dunder attributes; they must not see fields.
    view = plain_view(completion)
    assert copy.copy(view) == completion
    assert pickle.loads(pickle.dumps(view)) == completion
