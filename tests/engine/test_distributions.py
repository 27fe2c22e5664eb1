"""posterior_summary against known Beta quantiles (values from scipy.stats.beta.ppf)."""

from __future__ import annotations

import math

import pytest

from routerapp.engine import beta_cdf, posterior_summary


def test_uniform_posterior_has_the_textbook_interval() -> None:
    assert posterior_summary(1.0, 1.0) == pytest.approx((0.5, 0.025, 0.975), abs=1e-9)


def test_beta_2_8_matches_reference_quantiles() -> None:
    # scipy.stats.beta(2, 8).ppf([0.025, 0.975]) = 0.0281449734..., 0.4824965149...
    mean, low, high = posterior_summary(2.0, 8.0)
    assert mean == pytest.approx(0.2)
    assert low == pytest.approx(0.02814497, abs=1e-7)
    assert high == pytest.approx(0.48249651, abs=1e-7)


def test_jeffreys_prior_matches_the_arcsine_closed_form() -> None:
    # Beta(1/2, 1/2) is the arcsine law: F^-1(q) = sin^2(pi q / 2).
    _, low, high = posterior_summary(0.5, 0.5)
    assert low == pytest.approx(math.sin(math.pi * 0.025 / 2) ** 2, abs=1e-9)
    assert high == pytest.approx(math.sin(math.pi * 0.975 / 2) ** 2, abs=1e-9)


def test_power_law_beta_matches_its_closed_form() -> None:
    # Beta(a, 1) has F(x) = x^a, so the quantile is q^(1/a).
    _, low, high = posterior_summary(3.0, 1.0)
    assert low == pytest.approx(0.025 ** (1 / 3), abs=1e-9)
    assert high == pytest.approx(0.975 ** (1 / 3), abs=1e-9)


def test_huge_counts_give_a_narrow_interval_around_the_mean() -> None:
    mean, low, high = posterior_summary(7e8, 3e8)
    sd = math.sqrt(0.7 * 0.3 / 1e9)
    assert mean == pytest.approx(0.7)
    assert low == pytest.approx(0.7 - 1.959964 * sd, abs=1e-8)
    assert high == pytest.approx(0.7 + 1.959964 * sd, abs=1e-8)


def test_beta_cdf_of_beta_2_2_matches_the_polynomial() -> None:
    # F(x) = 3x^2 - 2x^3 for Beta(2, 2).
    for x in (0.1, 0.5, 0.9):
        assert beta_cdf(x, 2.0, 2.0) == pytest.approx(3 * x**2 - 2 * x**3, abs=1e-12)
