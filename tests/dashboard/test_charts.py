"""Chart builders are pure functions: plain dicts in, plotly figure dicts out (no DB)."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np

from dashboard import charts


def test_charts_module_imports_no_orm() -> None:
    tree = ast.parse(Path(charts.__file__).read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any(name.startswith(("django", "routerapp")) for name in imported)


def test_beta_density_of_uniform_prior_is_flat() -> None:
    xs, ys = charts.beta_density(1.0, 1.0, points=5)
    assert xs == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert ys == [1.0] * 5


def test_beta_density_integrates_to_one_and_peaks_at_the_mode() -> None:
    alpha, beta = 30.0, 10.0
    xs, ys = charts.beta_density(alpha, beta)
    area = np.trapezoid(ys, xs)
    assert math.isclose(area, 1.0, abs_tol=0.01)
    mode = (alpha - 1) / (alpha + beta - 2)
    assert abs(xs[int(np.argmax(ys))] - mode) < 0.01


def test_beta_density_stays_finite_for_u_shaped_and_huge_counts() -> None:
    for alpha, beta in [(0.5, 0.5), (5000.0, 20.0), (1e6, 1e6)]:
        _, ys = charts.beta_density(alpha, beta)
        assert all(math.isfinite(y) for y in ys)


def test_posterior_figure_has_a_curve_and_a_mean_marker_per_path_of_the_bucket() -> None:
    rows = [
        {
            "path": "mini",
            "bucket": "",
            "alpha": 9,
            "beta": 3,
            "mean": 0.75,
            "low": 0.5,
            "high": 0.9,
        },
        {
            "path": "big",
            "bucket": "",
            "alpha": 3,
            "beta": 1,
            "mean": 0.75,
            "low": 0.3,
            "high": 0.99,
        },
        {
            "path": "mini",
            "bucket": "complexity:simple",
            "alpha": 2,
            "beta": 2,
            "mean": 0.5,
            "low": 0.1,
            "high": 0.9,
        },
    ]
    figure = charts.posterior_figure(rows, bucket="")
    assert [trace["mode"] for trace in figure["data"]] == ["lines", "markers"] * 2
    # Paths in name order (big, mini), so each keeps its colour across the page's figures.
    assert figure["data"][0]["name"].startswith("big (mean 75.0%")
    assert figure["data"][2]["name"].startswith("mini (mean 75.0%")
    assert figure["data"][1]["x"] == [0.75]
    assert figure["data"][0]["line"]["color"] == charts.color_for(0)
    json.dumps(figure)  # plain data only


def test_share_over_time_is_normalised_per_period() -> None:
    rows = [
        {"period": "2025-01-01T00:00Z", "path": "a", "requests": 3},
        {"period": "2025-01-01T00:00Z", "path": "b", "requests": 1},
        {"period": "2025-01-01T01:00Z", "path": "b", "requests": 2},
    ]
    figure = charts.share_over_time_figure(rows)
    by_name = {trace["name"]: trace["y"] for trace in figure["data"]}
    assert by_name == {"a": [0.75, 0.0], "b": [0.25, 1.0]}


def test_success_rate_figure_skips_periods_without_outcomes_and_keeps_intervals() -> None:
    rows = [
        {"period": "p1", "path": "a", "rate": 0.8, "low": 0.6, "high": 0.9},
        {"period": "p2", "path": "a", "rate": None, "low": None, "high": None},
    ]
    (trace,) = charts.success_rate_figure(rows)["data"]
    assert trace["x"] == ["p1"]
    assert trace["error_y"]["array"] == [0.1]
    assert trace["error_y"]["arrayminus"] == [0.2]


def test_spend_vs_baseline_cumulates_per_period_across_rows() -> None:
    rows = [
        {"period": "d1", "spend": 1, "baseline_spend": 4},
        {"period": "d1", "spend": 1, "baseline_spend": 4},
        {"period": "d2", "spend": 2, "baseline_spend": 3},
    ]
    per_day = charts.spend_vs_baseline_figure(rows, cumulative=False)
    cumulative = charts.spend_vs_baseline_figure(rows, cumulative=True)
    assert per_day["data"][1]["y"] == [2.0, 2.0]
    assert cumulative["data"][0]["y"] == [8.0, 11.0]
    assert cumulative["data"][1]["y"] == [2.0, 4.0]


def test_spend_by_model_stacks_one_trace_per_model() -> None:
    rows = [
        {"period": "d1", "model": "gpt-4o", "spend": 2},
        {"period": "d1", "model": "mini", "spend": 1},
    ]
    figure = charts.spend_by_figure(rows, by="model")
    assert [trace["name"] for trace in figure["data"]] == ["gpt-4o", "mini"]
    assert figure["layout"]["barmode"] == "stack"


def test_cost_per_1k_sorts_cheapest_first_and_sparkline_hides_axes() -> None:
    figure = charts.cost_per_1k_figure(
        [
            {"goal": "g", "path": "big", "cost_per_1k": 5},
            {"goal": "g", "path": "mini", "cost_per_1k": 1},
        ]
    )
    assert figure["data"][0]["y"] == ["g / mini", "g / big"]
    spark = charts.sparkline_figure([1, 2, 3])
    assert spark["layout"]["xaxis"]["visible"] is False


def test_over_time_figure_with_one_period_spans_two_hours_not_milliseconds() -> None:
    from dashboard.charts import share_over_time_figure

    figure = share_over_time_figure(
        [{"period": "2026-11-22T07:00:00+00:00", "path": "mini", "requests": 3}]
    )
    start, end = figure["layout"]["xaxis"]["range"]
    assert start.startswith("2026-11-22T06:00")
    assert end.startswith("2026-11-22T08:00")
