"""lossless.stats: paired intervals, non-inferiority, binomial error, bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from lossless import stats


def test_paired_interval_is_the_t_interval_of_the_differences():
    a = np.array([0.81, 0.79, 0.84, 0.80, 0.83])
    r = np.array([0.80, 0.80, 0.82, 0.81, 0.80])
    ci = stats.paired_interval(a, r)
    d = a - r
    half = scipy.stats.t.ppf(0.975, 4) * d.std(ddof=1) / math.sqrt(5)
    assert ci.mean == pytest.approx(d.mean(), abs=1e-15)
    assert (ci.low, ci.high) == pytest.approx((d.mean() - half, d.mean() + half), abs=1e-15)
    assert ci.n == 5 and ci.sd == pytest.approx(d.std(ddof=1))
    assert ci.half_width == pytest.approx(half)
    # non-inferiority: the lower end above -margin
    assert ci.noninferior(0.02) == (ci.low > -0.02)
    assert ci.noninferior(-ci.low + 1e-9) and not ci.noninferior(-ci.low - 1e-9)
    assert "n = 5" in str(ci)


def test_paired_interval_covers_at_its_level():
    # coverage of the true mean over many Gaussian samples: 95 % +- 3 standard errors
    rng = np.random.default_rng(0)
    covered = 0
    trials = 2000
    for _ in range(trials):
        ci = stats.paired_interval(rng.normal(0.3, 1, 8), np.zeros(8))
        covered += ci.low < 0.3 < ci.high
    se = math.sqrt(0.95 * 0.05 / trials)
    assert abs(covered / trials - 0.95) < 3 * se


def test_one_pair_gives_an_infinite_interval_and_no_verdict():
    ci = stats.paired_interval([0.9], [0.8])
    assert ci.low == -math.inf and ci.high == math.inf and math.isnan(ci.sd)
    assert not ci.noninferior(0.5)


def test_bad_input():
    with pytest.raises(ValueError, match="r"):
        stats.paired_interval([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="a"):
        stats.paired_interval([1.0, math.nan], [1.0, 1.0])
    with pytest.raises(ValueError, match="level"):
        stats.paired_interval([1.0, 2.0], [1.0, 1.0], level=1.0)
    with pytest.raises(ValueError, match="margin"):
        stats.paired_interval([1.0, 2.0], [1.0, 1.0]).noninferior(-0.1)
    with pytest.raises(ValueError, match="accuracy"):
        stats.binomial_se(1.2, 100)
    with pytest.raises(ValueError, match="n_test"):
        stats.binomial_se(0.5, 0)
    with pytest.raises(ValueError, match="rows"):
        stats.bootstrap_interval(np.ones(1), np.mean, np.random.default_rng(0))
    with pytest.raises(TypeError, match="statistic"):
        stats.bootstrap_interval(np.ones(3), 3, np.random.default_rng(0))


def test_binomial_se():
    assert stats.binomial_se(0.9, 1000) == pytest.approx(math.sqrt(0.09 / 1000))
    np.testing.assert_allclose(stats.binomial_se(np.array([0.5, 1.0]), 100), [0.05, 0.0])


def test_bootstrap_interval_of_a_mean_matches_the_normal_interval():
    rng = np.random.default_rng(1)
    x = rng.normal(2.0, 1.0, 200)
    est, lo, hi = stats.bootstrap_interval(x, np.mean, np.random.default_rng(2), n_boot=4000)
    half = 1.96 * x.std(ddof=1) / math.sqrt(x.size)
    assert est == pytest.approx(x.mean())
    assert lo == pytest.approx(x.mean() - half, abs=0.25 * half)
    assert hi == pytest.approx(x.mean() + half, abs=0.25 * half)
    # a statistic undefined on some resamples gives an infinite upper end
    est, lo, hi = stats.bootstrap_interval(
        np.array([0.0, 1.0, 2.0]), lambda s: 1.0 / s.min() if s.min() > 0 else math.nan,
        np.random.default_rng(3), n_boot=500)
    assert hi == math.inf
