"""Statistics of a comparison across seeds: paired intervals, non-inferiority, test error.

The verdict of the practice study (book ``ch-verdict-report``) compares a method with a
reference on the same seeds (same data draw, same test set), so it uses the paired
differences ``d_s = a_s - r_s``: their mean, and a Student-t interval
``mean ± t_{n-1, 1-α/2} s / sqrt(n)`` (eq-stats-paired). A method is **non-inferior**
at margin ``m`` when the interval's lower end is above ``-m`` (eq-stats-noninferior);
the margin is fixed before the results are read. The binomial standard error
``sqrt(a (1 - a) / n_test)`` (eq-stats-binomial) is what one test set alone adds to an
accuracy. :func:`bootstrap_interval` resamples seeds for a statistic with no closed
form (the width at which a fitted law reaches a target).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.stats

from lossless import _checks

__all__ = ["PairedInterval", "paired_interval", "binomial_se", "bootstrap_interval"]


@dataclass(frozen=True)
class PairedInterval:
    """Mean paired difference and its two-sided Student-t interval.

    Attributes
    ----------
    mean, low, high : float
        ``mean(a - r)`` and the interval's ends (``low = high = mean`` and a
        ``half_width`` of inf when there is one pair only).
    n : int
        Number of pairs.
    sd : float
        Standard deviation of the differences (``ddof = 1``; NaN for one pair).
    level : float
    """

    mean: float
    low: float
    high: float
    n: int
    sd: float
    level: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0

    def noninferior(self, margin: float) -> bool:
        """True when the whole interval lies above ``-margin`` (eq-stats-noninferior)."""
        margin = _checks.real(margin, "margin", low=0.0)
        return bool(self.n >= 2 and self.low > -margin)

    def __str__(self) -> str:
        return f"{self.mean:+.4f} [{self.low:+.4f}, {self.high:+.4f}] (n = {self.n})"


def paired_interval(a: Any, r: Any, *, level: float = 0.95) -> PairedInterval:
    """Student-t interval for the mean of the paired differences ``a - r`` (eq-stats-paired).

    Parameters
    ----------
    a, r : array_like, shape (n,)
        The method's and the reference's values on the same ``n`` seeds, in the same
        order; finite.
    level : float, default 0.95
        Two-sided confidence level, in (0, 1).

    Returns
    -------
    PairedInterval
        With one pair, the interval is infinite (``low = -inf``, ``high = inf``).
    """
    a = _checks.real_array(a, "a", ndim=1)
    r = _checks.real_array(r, "r", ndim=1, shape=a.shape)
    level = _checks.fraction(level, "level", low_open=True)
    d = a - r
    n = d.size
    mean = float(np.mean(d))
    if n < 2:
        return PairedInterval(mean, -math.inf, math.inf, n, math.nan, level)
    sd = float(np.std(d, ddof=1))
    half = float(scipy.stats.t.ppf(0.5 + level / 2.0, n - 1)) * sd / math.sqrt(n)
    return PairedInterval(mean, mean - half, mean + half, n, sd, level)


def binomial_se(accuracy: Any, n_test: int) -> np.ndarray | float:
    """Standard error ``sqrt(a (1 - a) / n_test)`` of an accuracy on ``n_test`` samples
    (eq-stats-binomial): the test set's own noise, with the network fixed."""
    acc = np.asarray(_checks.real_array(np.atleast_1d(accuracy), "accuracy")).reshape(
        np.shape(accuracy))
    if np.any((acc < 0) | (acc > 1)):
        raise ValueError(f"accuracy must lie in [0, 1], got {_checks.describe(accuracy)}")
    n = _checks.integer(n_test, "n_test", minimum=1)
    se = np.sqrt(acc * (1.0 - acc) / n)
    return float(se) if se.ndim == 0 else se


def bootstrap_interval(samples: Any, statistic: Callable[[np.ndarray], float],
                       rng: np.random.Generator, *, n_boot: int = 2000,
                       level: float = 0.95) -> tuple[float, float, float]:
    """Percentile bootstrap over the rows of ``samples`` (one row per seed).

    Parameters
    ----------
    samples : array_like, shape (n, ...)
        Independent replicates (seeds) in the first axis, n >= 2.
    statistic : callable
        Maps an array like ``samples`` (rows resampled with replacement) to a float;
        it may return inf or NaN for a resample where it is undefined (such resamples
        count in the interval as +inf, so a statistic that often diverges gives an
        infinite upper end rather than a falsely narrow interval).
    rng : numpy.random.Generator
    n_boot : int, default 2000
    level : float, default 0.95

    Returns
    -------
    (estimate, low, high)
        The statistic on ``samples`` and the percentile interval.
    """
    X = np.asarray(samples, dtype=float)
    if X.ndim < 1 or X.shape[0] < 2:
        raise ValueError(f"samples must hold at least 2 rows (seeds), got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("samples must be finite (no NaN or inf)")
    statistic = _checks.check_callable(statistic, "statistic")
    rng = _checks.numpy_generator(rng, "rng")
    n_boot = _checks.integer(n_boot, "n_boot", minimum=100)
    level = _checks.fraction(level, "level", low_open=True)
    estimate = float(statistic(X))
    values = np.empty(n_boot)
    for b in range(n_boot):
        v = float(statistic(X[rng.integers(0, X.shape[0], X.shape[0])]))
        values[b] = v if math.isfinite(v) else math.inf
    # inverted-CDF quantiles: no interpolation (which would turn inf - inf into NaN)
    lo, hi = np.quantile(values, [0.5 - level / 2.0, 0.5 + level / 2.0],
                         method="inverted_cdf")
    return estimate, float(lo), float(hi)
