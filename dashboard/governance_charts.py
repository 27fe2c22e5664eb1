"""The projected effect of a change request as table rows and plotly figures (plain dicts, as in
dashboard/charts.py); no ORM, no Django.

Reads the JSON `services/projection.py::project_change` stored with the request (see
routerapp/projection.py): `current` / `proposed` hold `shares` (path -> share of calls),
`spend`, `baseline_spend`, `savings`, `*_per_month`, `pinned_calls` and `success`
(`{rate, low, high, method, effective_sample_size, calls}` or None); `delta` the differences;
`paths[name]` `{current, proposed, outcomes, logged_success}`; `unsupported` path -> calls that
would move to it without logged outcomes; `notes` plain sentences.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dashboard.charts import Figure, figure_layout

SIDES = ("current", "proposed")
SIDE_COLORS = {"current": "#9ca3af", "proposed": "#2563eb"}
# (key, label, kind) of the goal-wide figures, in reading order.
SUMMARY = (
    ("success", "Success rate (95% interval)", "rate"),
    ("spend", "Spend on the replayed calls", "usd"),
    ("baseline_spend", "Baseline spend (all on the baseline path)", "usd"),
    ("savings", "Savings vs baseline", "usd"),
    ("spend_per_month", "Spend per month", "usd"),
    ("savings_per_month", "Savings per month", "usd"),
    ("pinned_calls", "Calls pinned by a rule", "count"),
    ("baseline", "Baseline path", "text"),
)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _format(value: Any, kind: str) -> str:
    if kind == "rate":
        if not isinstance(value, Mapping) or _number(value.get("rate")) is None:
            return "—"
        rate, low, high = (float(value.get(key) or 0.0) for key in ("rate", "low", "high"))
        return f"{rate:.1%} ({low:.1%}–{high:.1%})"
    if kind == "text":
        return "—" if value in (None, "") else str(value)
    number = _number(value)
    if number is None:
        return "—"
    if kind == "usd":
        sign = "-" if number < 0 else ""
        places = 2 if abs(number) >= 0.01 or number == 0 else 6
        return f"{sign}${abs(number):,.{places}f}"
    return f"{number:,.0f}"


def _side(projection: Mapping[str, Any], side: str) -> Mapping[str, Any]:
    value = projection.get(side)
    return value if isinstance(value, Mapping) else {}


def projection_rows(projection: Mapping[str, Any]) -> list[dict[str, str]]:
    """[{"name", "current", "proposed"}] of the goal-wide figures the projection holds."""
    current, proposed = _side(projection, "current"), _side(projection, "proposed")
    return [
        {
            "name": label,
            "current": _format(current.get(key), kind),
            "proposed": _format(proposed.get(key), kind),
        }
        for key, label, kind in SUMMARY
        if key in current or key in proposed
    ]


def projection_path_rows(projection: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per path: share of calls now and proposed, logged outcomes and success, calls that
    would move to it without logged outcomes."""
    paths = projection.get("paths")
    unsupported = projection.get("unsupported")
    unsupported = unsupported if isinstance(unsupported, Mapping) else {}
    if not isinstance(paths, Mapping):
        return []
    rows = []
    for name in sorted(paths):
        entry = paths[name] if isinstance(paths[name], Mapping) else {}
        rows.append(
            {
                "path": str(name),
                "current": _number(entry.get("current")),
                "proposed": _number(entry.get("proposed")),
                "outcomes": entry.get("outcomes"),
                "logged_success": _number(entry.get("logged_success")),
                "unsupported": unsupported.get(name, 0),
            }
        )
    return rows


def projection_share_figure(projection: Mapping[str, Any]) -> Figure:
    """Share of calls per path, current vs proposed (grouped bars)."""
    rows = projection_path_rows(projection)
    names = [row["path"] for row in rows]
    data = [
        {
            "type": "bar",
            "name": side,
            "x": names,
            "y": [round(row[side] or 0.0, 4) for row in rows],
            "marker": {"color": SIDE_COLORS[side]},
            "hovertemplate": f"{side} %{{x}}: %{{y:.1%}}<extra></extra>",
        }
        for side in SIDES
    ]
    return {
        "data": data,
        "layout": figure_layout(
            title="Share of calls per path",
            barmode="group",
            yaxis={"tickformat": ".0%", "rangemode": "tozero"},
        ),
    }


def projection_success_figure(projection: Mapping[str, Any]) -> Figure:
    """The goal's success rate with its 95% interval, current vs proposed."""
    names, rates, plus, minus, colors = [], [], [], [], []
    for side in SIDES:
        success = _side(projection, side).get("success")
        rate = _number(success.get("rate")) if isinstance(success, Mapping) else None
        if rate is None or not isinstance(success, Mapping):
            continue
        low, high = _number(success.get("low")), _number(success.get("high"))
        names.append(side)
        rates.append(round(rate, 4))
        plus.append(round(max((high if high is not None else rate) - rate, 0.0), 4))
        minus.append(round(max(rate - (low if low is not None else rate), 0.0), 4))
        colors.append(SIDE_COLORS[side])
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "markers",
                "name": "success rate",
                "x": names,
                "y": rates,
                "marker": {"color": colors, "size": 12},
                "error_y": {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus},
                "hovertemplate": "%{x}: %{y:.1%}<extra></extra>",
            }
        ],
        "layout": figure_layout(
            title="Success rate (95% interval)",
            showlegend=False,
            yaxis={"tickformat": ".0%", "range": [0, 1.05]},
        ),
    }


def projection_figures(projection: Mapping[str, Any]) -> list[tuple[str, Figure]]:
    """(element id, figure) pairs for the change-request page; none before any replay."""
    if not projection.get("decisions") or not projection_path_rows(projection):
        return []
    return [
        ("fig-projection-share", projection_share_figure(projection)),
        ("fig-projection-success", projection_success_figure(projection)),
    ]
