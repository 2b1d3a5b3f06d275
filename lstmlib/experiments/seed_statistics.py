"""Reporting seed ensembles: what the book asserts about random draws.

A claim about training, or about a random initialisation, is a claim about
a distribution over seeds. The chapters run K seeds (consecutive from the
base of :mod:`lstmlib.seeds`), fix a criterion before looking, and assert
it with one of these summaries; the numbers come from ``scipy.stats``.

* :func:`spread`: the median and a central range of K values (what a
  figure's band shows).
* :func:`success_rate`: k successes in K runs, with an exact
  (Clopper-Pearson) confidence interval for the success probability.
* :func:`mean_interval`: a mean with its Student-t confidence interval
  (the post's "mean ± 95% CI").
* :func:`compare_success`: the success counts of two methods, each run
  on its own draws, compared by Fisher's exact test (assumes only
  independent runs).
* :func:`paired_comparison`: two methods run on the same seeds; the
  per-seed differences, how often each side wins, a sign test (assumes
  only independent seeds), Wilcoxon's signed-rank test (also assumes the
  differences are symmetric about their median) and the paired t interval
  for the mean difference (assumes roughly normal differences).

>>> rate = success_rate(9, 10)
>>> rate.successes, rate.trials, round(rate.low, 3), round(rate.high, 3)
(9, 10, 0.555, 0.997)
>>> s = spread([3.0, 1.0, 2.0, 5.0, 4.0])
>>> s.median, s.minimum, s.maximum
(3.0, 1.0, 5.0)
>>> versus = compare_success(5, 5, 0, 5)
>>> round(versus.p_value, 4)                      # two-sided
0.0079
>>> c = paired_comparison([1.0, 2.0, 3.0, 4.0, 5.0],
...                       [2.0, 3.5, 3.1, 6.0, 5.5], alternative="less")
>>> c.a_better, round(c.sign_p, 4)
(5, 0.0312)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

__all__ = ["Spread", "spread", "Proportion", "success_rate",
           "MeanInterval", "mean_interval", "SuccessComparison",
           "compare_success", "PairedComparison", "paired_comparison"]


def _values(owner: str, values, minimum: int = 1) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size < minimum:
        raise ValueError(f"{owner}: expected a sequence of at least {minimum} "
                         f"numbers, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{owner}: expected finite values, got {values!r}")
    return array


def _check_level(owner: str, name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and 0 < value < 1):
        raise ValueError(f"{owner}: expected 0 < {name} < 1, got {value!r}")


@dataclass(frozen=True)
class Spread:
    """The median of K values and the central ``coverage`` of them
    (``low`` and ``high`` are the matching quantiles), with the extremes."""
    median: float
    low: float
    high: float
    minimum: float
    maximum: float
    count: int
    coverage: float

    def __str__(self) -> str:
        return (f"median {self.median:.4g} "
                f"(central {100 * self.coverage:g}%: "
                f"{self.low:.4g} to {self.high:.4g}; all {self.count}: "
                f"{self.minimum:.4g} to {self.maximum:.4g})")


def spread(values: Sequence[float], coverage: float = 0.8) -> Spread:
    """Median, central ``coverage`` range and extremes of ``values``."""
    array = _values("spread", values)
    _check_level("spread", "coverage", coverage)
    low, median, high = np.quantile(
        array, [(1 - coverage) / 2, 0.5, (1 + coverage) / 2])
    return Spread(float(median), float(low), float(high),
                  float(array.min()), float(array.max()), int(array.size),
                  float(coverage))


@dataclass(frozen=True)
class Proportion:
    """``successes`` of ``trials`` runs, and an exact ``confidence``
    interval ``[low, high]`` for the probability of success."""
    successes: int
    trials: int
    low: float
    high: float
    confidence: float

    @property
    def rate(self) -> float:
        return self.successes / self.trials

    def __str__(self) -> str:
        return (f"{self.successes}/{self.trials} "
                f"({100 * self.confidence:g}% interval for the rate: "
                f"{self.low:.2f} to {self.high:.2f})")


def success_rate(successes: int, trials: int,
                 confidence: float = 0.95) -> Proportion:
    """``successes`` in ``trials`` runs, with the Clopper-Pearson interval
    for the success probability (``scipy.stats.binomtest``)."""
    for name, value in (("successes", successes), ("trials", trials)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"success_rate: expected an int {name}, got "
                            f"{value!r}")
    if trials < 1 or not 0 <= successes <= trials:
        raise ValueError(f"success_rate: expected 0 <= successes <= trials "
                         f"and trials >= 1, got {successes} of {trials}")
    _check_level("success_rate", "confidence", confidence)
    interval = stats.binomtest(int(successes), int(trials)).proportion_ci(
        confidence_level=confidence, method="exact")
    return Proportion(int(successes), int(trials), float(interval.low),
                      float(interval.high), float(confidence))


@dataclass(frozen=True)
class MeanInterval:
    """A mean with its Student-t ``confidence`` interval."""
    mean: float
    low: float
    high: float
    count: int
    confidence: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def __str__(self) -> str:
        return (f"{self.mean:.4g} ± {self.half_width:.2g} "
                f"({100 * self.confidence:g}% interval, n = {self.count})")


def mean_interval(values: Sequence[float],
                  confidence: float = 0.95) -> MeanInterval:
    """The mean of ``values`` and its Student-t interval
    (``scipy.stats.t``); one value gives an infinitely wide interval."""
    array = _values("mean_interval", values)
    _check_level("mean_interval", "confidence", confidence)
    mean = float(array.mean())
    if array.size == 1:
        return MeanInterval(mean, -math.inf, math.inf, 1, float(confidence))
    error = float(stats.sem(array))
    if error == 0.0:
        return MeanInterval(mean, mean, mean, int(array.size),
                            float(confidence))
    low, high = stats.t.interval(confidence, array.size - 1, loc=mean,
                                 scale=error)
    return MeanInterval(mean, float(low), float(high), int(array.size),
                        float(confidence))


_ALTERNATIVES = ("less", "greater", "two-sided")


@dataclass(frozen=True)
class SuccessComparison:
    """The successes of two methods ``a`` and ``b`` (each a
    :class:`Proportion` with its own interval) and the p-value of
    Fisher's exact test of equal success probabilities against
    ``alternative``: ``"greater"`` when a is claimed to succeed more
    often, ``"less"`` when less often, or ``"two-sided"``."""
    a: Proportion
    b: Proportion
    p_value: float
    alternative: str

    def __str__(self) -> str:
        return (f"{self.a.successes}/{self.a.trials} against "
                f"{self.b.successes}/{self.b.trials}; Fisher's exact test "
                f"({self.alternative}) p = {self.p_value:.3g}")


def compare_success(a_successes: int, a_trials: int, b_successes: int,
                    b_trials: int, *, alternative: str = "two-sided",
                    confidence: float = 0.95) -> SuccessComparison:
    """Compare the success counts of two methods run on independent draws
    (``scipy.stats.fisher_exact`` on the 2 x 2 table of successes and
    failures); see :class:`SuccessComparison`."""
    if alternative not in _ALTERNATIVES:
        raise ValueError(f"compare_success: expected alternative in "
                         f"{_ALTERNATIVES}, got {alternative!r}")
    a = success_rate(a_successes, a_trials, confidence)
    b = success_rate(b_successes, b_trials, confidence)
    table = [[a.successes, a.trials - a.successes],
             [b.successes, b.trials - b.successes]]
    p = float(stats.fisher_exact(table, alternative=alternative).pvalue)
    return SuccessComparison(a, b, p, alternative)


@dataclass(frozen=True)
class PairedComparison:
    """Two methods ``a`` and ``b`` measured on the same seeds.

    ``differences`` are ``a - b`` per seed. With ``alternative="less"``
    (smaller is better, e.g. a loss) ``a_better`` counts seeds where
    ``a < b``; with ``"greater"`` where ``a > b``; with ``"two-sided"``
    where ``a < b``. ``sign_p`` and ``wilcoxon_p`` are the p-values of the
    sign test and of Wilcoxon's signed-rank test for that alternative;
    ``mean_low``/``mean_high`` the paired-t ``confidence`` interval for
    the mean difference (one-sided intervals are open on one end)."""
    differences: tuple[float, ...]
    a_better: int
    b_better: int
    ties: int
    sign_p: float
    wilcoxon_p: float
    mean_difference: float
    mean_low: float
    mean_high: float
    alternative: str
    confidence: float
    t_p: float

    @property
    def count(self) -> int:
        return len(self.differences)

    def __str__(self) -> str:
        return (f"a better in {self.a_better}/{self.count} seeds "
                f"(b in {self.b_better}, ties {self.ties}); sign test "
                f"p = {self.sign_p:.3g}, Wilcoxon p = {self.wilcoxon_p:.3g}; "
                f"mean a - b = {self.mean_difference:.4g} "
                f"[{self.mean_low:.4g}, {self.mean_high:.4g}]")


def paired_comparison(a: Sequence[float], b: Sequence[float], *,
                      alternative: str = "two-sided",
                      confidence: float = 0.95) -> PairedComparison:
    """Compare ``a`` and ``b`` seed by seed (``a[i]`` and ``b[i]`` share
    seed ``i``); see :class:`PairedComparison`. Needs at least 2 pairs."""
    x = _values("paired_comparison", a, minimum=2)
    y = _values("paired_comparison", b, minimum=2)
    if x.shape != y.shape:
        raise ValueError(f"paired_comparison: expected a and b of the same "
                         f"length, got {x.size} and {y.size}")
    if alternative not in _ALTERNATIVES:
        raise ValueError(f"paired_comparison: expected alternative in "
                         f"{_ALTERNATIVES}, got {alternative!r}")
    _check_level("paired_comparison", "confidence", confidence)
    d = x - y
    if alternative == "greater":
        a_better, b_better = int(np.sum(d > 0)), int(np.sum(d < 0))
    else:
        a_better, b_better = int(np.sum(d < 0)), int(np.sum(d > 0))
    ties = int(np.sum(d == 0))
    decided = a_better + b_better
    sign_alternative = {"less": "greater", "greater": "greater",
                        "two-sided": "two-sided"}[alternative]
    sign_p = (1.0 if decided == 0 else float(stats.binomtest(
        a_better, decided, 0.5, alternative=sign_alternative).pvalue))
    if np.all(d == 0):
        wilcoxon_p = 1.0
    else:
        wilcoxon_p = float(stats.wilcoxon(x, y, alternative=alternative,
                                          zero_method="wilcox").pvalue)
    mean = float(d.mean())
    if np.all(d == d[0]):
        low = high = mean
        if alternative == "less":
            low = -math.inf
        elif alternative == "greater":
            high = math.inf
        # no spread (scipy's t is undefined): the difference is certain, so
        # only whether its sign is the alternative's counts
        in_direction = {"less": mean < 0, "greater": mean > 0,
                        "two-sided": mean != 0}[alternative]
        t_p = 0.0 if in_direction else 1.0
    else:
        test = stats.ttest_rel(x, y, alternative=alternative)
        interval = test.confidence_interval(confidence)
        low, high = float(interval.low), float(interval.high)
        t_p = float(test.pvalue)
    return PairedComparison(tuple(float(v) for v in d), a_better, b_better,
                            ties, sign_p, wilcoxon_p, mean, low, high,
                            alternative, float(confidence), t_p)
