"""Plotly figures as plain dicts, built from selector rows (plain dicts); no ORM, no Django.

Every builder returns `{"data": [...], "layout": {...}}`, which a template emits with
`json_script` and static/dashboard/js/charts.js draws with `Plotly.react`. The Beta density is
computed here with numpy and math.lgamma, so the page needs no scipy.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np

Figure = dict[str, Any]
Row = Mapping[str, Any]

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#ca8a04")
DENSITY_POINTS = 201


def figure_layout(*, title: str = "", height: int = 320, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "height": height,
        "margin": {"l": 48, "r": 16, "t": 36 if title else 12, "b": 40},
        "autosize": True,
        "legend": {"orientation": "h", "y": -0.2},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
    }
    if title:
        layout["title"] = {"text": title, "font": {"size": 14}}
    layout.update(extra)
    return layout


def _time_axis(periods: Sequence[str]) -> dict[str, Any]:
    """A date axis; one lone period gets an hour either side, or plotly zooms to milliseconds."""
    axis: dict[str, Any] = {"type": "date"}
    if len(set(periods)) == 1:
        try:
            moment = datetime.fromisoformat(str(periods[0]))
        except ValueError:
            return axis
        axis["range"] = [
            (moment - timedelta(hours=1)).isoformat(),
            (moment + timedelta(hours=1)).isoformat(),
        ]
    return axis


def color_for(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def beta_density(
    alpha: float, beta: float, *, points: int = DENSITY_POINTS
) -> tuple[list[float], list[float]]:
    """x in [0, 1] (mean +- 6 sd, clipped) and the Beta(alpha, beta) density at each x.

    Computed in log space (lgamma) so large counts do not overflow; the end points are kept
    finite (a density that diverges at 0 or 1 is clipped to its largest interior value).

    >>> xs, ys = beta_density(1.0, 1.0, points=3)
    >>> xs, [round(y, 6) for y in ys]
    ([0.0, 0.5, 1.0], [1.0, 1.0, 1.0])
    """
    if alpha <= 0 or beta <= 0:
        raise ValueError("alpha and beta must be positive")
    mean = alpha / (alpha + beta)
    sd = math.sqrt(alpha * beta / ((alpha + beta) ** 2 * (alpha + beta + 1)))
    # A sharp posterior is drawn over its own +-6 sd, not over [0, 1] where it would be a spike.
    low, high = max(0.0, mean - 6 * sd), min(1.0, mean + 6 * sd)
    xs = np.linspace(low, high, points)
    log_norm = math.lgamma(alpha + beta) - math.lgamma(alpha) - math.lgamma(beta)
    inner = np.clip(xs, 1e-12, 1 - 1e-12)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        ys = np.exp(log_norm + (alpha - 1) * np.log(inner) + (beta - 1) * np.log1p(-inner))
    if points > 2:  # the ends diverge when alpha or beta < 1: clip them to the interior maximum
        interior = ys[1:-1][np.isfinite(ys[1:-1])]
        cap = float(interior.max()) if interior.size else 0.0
        ys = np.where(np.isfinite(ys), np.minimum(ys, cap), cap)
    return [round(float(x), 6) for x in xs], [round(float(y), 6) for y in ys]


def posterior_figure(rows: Sequence[Row], *, bucket: str = "") -> Figure:
    """Beta density per path of one bucket, with its mean and 95% interval in the hover."""
    data: list[dict[str, Any]] = []
    # Paths in name order, as in the over-time figures, so a path keeps its colour on the page.
    in_bucket = sorted((r for r in rows if r["bucket"] == bucket), key=lambda r: str(r["path"]))
    for index, row in enumerate(in_bucket):
        xs, ys = beta_density(float(row["alpha"]), float(row["beta"]))
        color = color_for(index)
        label = f"{row['path']} (mean {row['mean']:.1%}, 95% {row['low']:.1%}–{row['high']:.1%})"
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": label,
                "x": xs,
                "y": ys,
                "line": {"color": color, "width": 2},
                "fill": "tozeroy",
                "hovertemplate": f"{row['path']}<br>p=%{{x:.3f}}<br>"
                "density=%{y:.2f}<extra></extra>",
            }
        )
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "showlegend": False,
                "name": f"{row['path']} mean",
                "x": [row["mean"]],
                "y": [0],
                "marker": {"color": color, "size": 9, "symbol": "diamond"},
                "error_x": {
                    "type": "data",
                    "symmetric": False,
                    "array": [row["high"] - row["mean"]],
                    "arrayminus": [row["mean"] - row["low"]],
                    "color": color,
                },
                "hovertemplate": f"{row['path']} mean %{{x:.3f}}<extra></extra>",
            }
        )
    return {
        "data": data,
        "layout": figure_layout(
            title=f"Posterior success rate{' — ' + bucket if bucket else ''}",
            xaxis={"title": {"text": "success rate"}, "tickformat": ".0%"},
            legend={"orientation": "h", "y": -0.32},
            yaxis={"title": {"text": "density"}, "rangemode": "tozero"},
        ),
    }


def _pivot(
    rows: Iterable[Row], *, series_key: str, value_key: str
) -> tuple[list[str], dict[str, dict[str, float]]]:
    periods: OrderedDict[str, None] = OrderedDict()
    series: dict[str, dict[str, float]] = {}
    for row in rows:
        period = str(row["period"])
        periods[period] = None
        bucket = series.setdefault(str(row[series_key]), {})
        bucket[period] = bucket.get(period, 0.0) + float(row[value_key] or 0)
    return sorted(periods), series


def share_over_time_figure(rows: Sequence[Row]) -> Figure:
    """Stacked traffic share per path per period; rows: period, path, requests."""
    periods, series = _pivot(rows, series_key="path", value_key="requests")
    totals = {p: sum(s.get(p, 0.0) for s in series.values()) for p in periods}
    data = []
    for index, (name, values) in enumerate(sorted(series.items())):
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "stackgroup": "share",
                "name": name,
                "x": periods,
                "y": [
                    round(values.get(p, 0.0) / totals[p], 4) if totals[p] else 0.0 for p in periods
                ],
                "line": {"color": color_for(index)},
                "hovertemplate": f"{name} %{{y:.1%}}<extra></extra>",
            }
        )
    return {
        "data": data,
        "layout": figure_layout(
            title="Traffic share over time",
            xaxis=_time_axis(periods),
            yaxis={"tickformat": ".0%", "range": [0, 1]},
        ),
    }


def success_rate_figure(rows: Sequence[Row]) -> Figure:
    """Success rate per path per period with its 95% interval; rows: period, path, rate, low, high.
    Periods without outcomes (rate None) are left as gaps."""
    by_path: dict[str, list[Row]] = {}
    for row in rows:
        if row.get("rate") is not None:
            by_path.setdefault(str(row["path"]), []).append(row)
    data = []
    for index, (name, points) in enumerate(sorted(by_path.items())):
        points = sorted(points, key=lambda r: str(r["period"]))
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": name,
                "x": [str(p["period"]) for p in points],
                "y": [round(float(p["rate"]), 4) for p in points],
                "error_y": {
                    "type": "data",
                    "symmetric": False,
                    "color": color_for(index),
                    "array": [round(float(p["high"]) - float(p["rate"]), 4) for p in points],
                    "arrayminus": [round(float(p["rate"]) - float(p["low"]), 4) for p in points],
                },
                "line": {"color": color_for(index)},
                "hovertemplate": f"{name} %{{y:.1%}}<extra></extra>",
            }
        )
    return {
        "data": data,
        "layout": figure_layout(
            title="Success rate per path (95% interval)",
            xaxis=_time_axis([str(row["period"]) for row in rows]),
            yaxis={"tickformat": ".0%", "range": [0, 1.05]},
        ),
    }


def sparkline_figure(
    values: Sequence[float], *, periods: Sequence[str] | None = None, color: str = PALETTE[0]
) -> Figure:
    """A tiny line without axes, for tables."""
    x = list(periods) if periods is not None else list(range(len(values)))
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "x": x,
                "y": [float(v) for v in values],
                "line": {"color": color, "width": 1.5},
                "fill": "tozeroy",
                "hoverinfo": "x+y",
                "showlegend": False,
            }
        ],
        "layout": {
            "height": 40,
            "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
            "autosize": True,
            "xaxis": {"visible": False},
            "yaxis": {"visible": False, "rangemode": "tozero"},
            "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": "rgba(0,0,0,0)",
        },
        "config": {"staticPlot": True},
    }


def spend_vs_baseline_figure(rows: Sequence[Row], *, cumulative: bool) -> Figure:
    """Actual vs baseline spend per period (bars) or cumulated (lines); rows: period, spend,
    baseline_spend (any number of rows per period: they are summed)."""
    periods, spend = _pivot(
        ({**r, "series": "spend"} for r in rows), series_key="series", value_key="spend"
    )
    _, baseline = _pivot(
        ({**r, "series": "baseline"} for r in rows), series_key="series", value_key="baseline_spend"
    )
    actual = [spend.get("spend", {}).get(p, 0.0) for p in periods]
    base = [baseline.get("baseline", {}).get(p, 0.0) for p in periods]
    if cumulative:
        actual, base = list(np.cumsum(actual)), list(np.cumsum(base))
    kind = {"type": "scatter", "mode": "lines"} if cumulative else {"type": "bar"}
    data = [
        {
            **kind,
            "name": "baseline spend",
            "x": periods,
            "y": [round(float(v), 6) for v in base],
            "marker": {"color": "#9ca3af"},
            "line": {"color": "#6b7280", "dash": "dash"},
        },
        {
            **kind,
            "name": "actual spend",
            "x": periods,
            "y": [round(float(v), 6) for v in actual],
            "marker": {"color": PALETTE[0]},
            "line": {"color": PALETTE[0]},
        },
    ]
    title = "Cumulative spend vs baseline" if cumulative else "Spend vs baseline per period"
    return {
        "data": data,
        "layout": figure_layout(
            title=title, barmode="group", yaxis={"tickprefix": "$", "rangemode": "tozero"}
        ),
    }


def spend_by_figure(rows: Sequence[Row], *, by: str) -> Figure:
    """Actual spend per period stacked by `by` (goal or model)."""
    periods, series = _pivot(rows, series_key=by, value_key="spend")
    data = [
        {
            "type": "bar",
            "name": name,
            "x": periods,
            "y": [round(values.get(p, 0.0), 6) for p in periods],
            "marker": {"color": color_for(i)},
        }
        for i, (name, values) in enumerate(sorted(series.items()))
    ]
    return {
        "data": data,
        "layout": figure_layout(
            title=f"Spend by {by}",
            barmode="stack",
            yaxis={"tickprefix": "$", "rangemode": "tozero"},
        ),
    }


def cost_per_1k_figure(rows: Sequence[Row]) -> Figure:
    """Horizontal bars of cost per 1,000 requests per path; rows: goal, path, cost_per_1k."""
    rows = sorted(rows, key=lambda r: float(r["cost_per_1k"] or 0))
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "x": [round(float(r["cost_per_1k"] or 0), 4) for r in rows],
                "y": [f"{r['goal']} / {r['path']}" for r in rows],
                "marker": {"color": PALETTE[0]},
                "hovertemplate": "%{y}: $%{x:.4f} per 1k requests<extra></extra>",
            }
        ],
        "layout": figure_layout(
            title="Cost per 1k requests",
            height=max(200, 60 + 28 * len(rows)),
            xaxis={"tickprefix": "$"},
            yaxis={"automargin": True},
        ),
    }


def _rgba(color: str, alpha: float) -> str:
    """'#rrggbb' as 'rgba(r,g,b,alpha)' (a band in its line's colour)."""
    red, green, blue = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def regret_rate_figure(rows: Sequence[Row], *, thresholds: Mapping[str, float]) -> Figure:
    """Downgrade-regret rate per goal per period with its 95% Wilson interval as a band, and
    each goal's alert threshold as a dashed line in the goal's colour; rows: period, goal,
    judged, regret_rate, low, high. Periods without a judged comparison are gaps."""
    by_goal: dict[str, list[Row]] = {}
    for row in rows:
        if row.get("regret_rate") is not None:
            by_goal.setdefault(str(row["goal"]), []).append(row)
    goals = sorted(set(by_goal) | set(thresholds))
    data: list[dict[str, Any]] = []
    shapes: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for index, goal in enumerate(goals):
        color = color_for(index)
        points = sorted(by_goal.get(goal, []), key=lambda r: str(r["period"]))
        if points:
            x = [str(p["period"]) for p in points]
            highs = [round(float(p["high"]), 4) for p in points]
            lows = [round(float(p["low"]), 4) for p in points]
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": f"{goal} 95% interval",
                    "x": x + x[::-1],
                    "y": highs + lows[::-1],
                    "fill": "toself",
                    "fillcolor": _rgba(color, 0.15),
                    "line": {"width": 0, "color": color},
                    "hoverinfo": "skip",
                    "showlegend": False,
                }
            )
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": goal,
                    "x": x,
                    "y": [round(float(p["regret_rate"]), 4) for p in points],
                    "customdata": [
                        [low, high, int(p["judged"])]
                        for low, high, p in zip(lows, highs, points, strict=True)
                    ],
                    "line": {"color": color},
                    "hovertemplate": f"{goal} %{{y:.1%}} (95% %{{customdata[0]:.1%}}–"
                    "%{customdata[1]:.1%}, %{customdata[2]} judged)<extra></extra>",
                }
            )
        if goal in thresholds:
            threshold = float(thresholds[goal])
            shapes.append(
                {
                    "type": "line",
                    "xref": "paper",
                    "x0": 0,
                    "x1": 1,
                    "yref": "y",
                    "y0": threshold,
                    "y1": threshold,
                    "line": {"color": color, "dash": "dash", "width": 1.5},
                }
            )
            annotations.append(
                {
                    "xref": "paper",
                    "x": 1,
                    "xanchor": "right",
                    "yref": "y",
                    "y": threshold,
                    "yanchor": "bottom",
                    "text": f"{goal} threshold {threshold:.1%}",
                    "showarrow": False,
                    "font": {"size": 11, "color": color},
                }
            )
    highest = max(
        [float(row["high"]) for points in by_goal.values() for row in points]
        + [float(t) for t in thresholds.values()]
        + [0.05]
    )
    return {
        "data": data,
        "layout": figure_layout(
            title="Downgrade-regret rate (95% interval) and alert threshold",
            xaxis=_time_axis([str(row["period"]) for row in rows]),
            yaxis={"tickformat": ".0%", "range": [0, min(1.0, highest * 1.15)]},
            shapes=shapes,
            annotations=annotations,
        ),
    }


FUNNEL_COLORS = {
    "judged": "#16a34a",
    "unjudgeable": "#ca8a04",
    "shadow_failed": "#dc2626",
    "over_budget": "#9333ea",
    "dropped": "#4b5563",
    "pending": "#2563eb",
}


def regret_funnel_figure(funnel: Mapping[str, int]) -> Figure:
    """Where every sampled call ended: one horizontal bar per funnel state."""
    states = [state for state in FUNNEL_COLORS if state in funnel]
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "x": [int(funnel[state]) for state in states],
                "y": [state.replace("_", " ") for state in states],
                "marker": {"color": [FUNNEL_COLORS[state] for state in states]},
                "hovertemplate": "%{y}: %{x}<extra></extra>",
            }
        ],
        "layout": figure_layout(
            title="Sampled calls by funnel state",
            height=260,
            xaxis={"rangemode": "tozero"},
            yaxis={"automargin": True, "autorange": "reversed"},
        ),
    }
