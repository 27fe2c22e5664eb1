"""POST data for the goal and path forms as a browser sends them unchanged (their initial
values), with some fields changed."""

from __future__ import annotations

from typing import Any

from dashboard.forms import GoalForm, PathForm
from routerapp.models import Goal, Path


def _form_data(form: Any, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if value is None or value is False:
            continue  # an empty field or an unticked box is not sent
        data[name] = "on" if value is True else str(value)
    data.update(changes)
    return {name: value for name, value in data.items() if value is not None}


def goal_data(goal: Goal, **changes: Any) -> dict[str, Any]:
    return _form_data(GoalForm(instance=goal), **changes)


def path_data(path: Path, **changes: Any) -> dict[str, Any]:
    data = _form_data(PathForm(instance=path), **changes)
    data.setdefault("extra_params", "")
    return data
