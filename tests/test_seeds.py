"""lstmlib.seeds (the seed knob) and lstmlib.experiments.seed_statistics."""
import math
import statistics

import pytest
import torch
from scipy import stats

from lstmlib import (LMConfig, SEED_VARIABLE, generator, manual_seed,
                     mean_interval, paired_comparison, seed, seed_base,
                     seeds, spread, success_rate)
from lstmlib.experiments.long_range import lag_model
from lstmlib.seeds import seed_or_base
from lstmlib.experiments.training import train_regression


# -- the knob -----------------------------------------------------------

def test_base_is_zero_when_unset(monkeypatch):
    monkeypatch.delenv(SEED_VARIABLE, raising=False)
    assert seed_base() == 0 and seed(3) == 3
    assert seeds(4, offset=2) == [2, 3, 4, 5]


def test_base_moves_every_seed(monkeypatch):
    monkeypatch.setenv(SEED_VARIABLE, "1000")
    assert seed_base() == 1000 and seed(7) == 1007
    assert seeds(3) == [1000, 1001, 1002]
    assert manual_seed(5) == 1005
    drawn = torch.rand(3)
    torch.manual_seed(1005)
    assert torch.equal(drawn, torch.rand(3))
    assert torch.equal(torch.rand(2, generator=generator(1)),
                       torch.rand(2, generator=torch.Generator()
                                  .manual_seed(1001)))


def test_library_defaults_follow_the_base(monkeypatch):
    monkeypatch.setenv(SEED_VARIABLE, "1000")
    assert seed_or_base(None) == 1000 and seed_or_base(4) == 4
    assert LMConfig().seed == 1000
    a = lag_model("basic LSTM", "adding")
    b = lag_model("basic LSTM", "adding", seed=1000)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(),
                                                 b.parameters()))
    model = lag_model("vanilla RNN", "adding", seed=1)
    state = {k: v.clone() for k, v in model.state_dict().items()}

    def batch(g):
        x = torch.randn(5, 4, 2, generator=g)
        return x, x.sum(0)[:, :1]
    first = train_regression(model, batch, steps=3)
    model.load_state_dict(state)
    again = train_regression(model, batch, steps=3, seed=1000)
    assert first == again


@pytest.mark.parametrize("value", ["x", "-1", "1.5"])
def test_bad_base_is_an_error(monkeypatch, value):
    monkeypatch.setenv(SEED_VARIABLE, value)
    with pytest.raises(ValueError, match="LSTMLIB_SEED: expected a "
                                         "non-negative integer"):
        seed_base()


def test_bad_arguments():
    with pytest.raises(ValueError, match="offset"):
        seed(-1)
    with pytest.raises(ValueError, match="count"):
        seeds(0)
    with pytest.raises(TypeError, match="seed"):
        seed_or_base(1.0)


# -- statistics -----------------------------------------------------------

def test_success_rate_is_clopper_pearson():
    rate = success_rate(7, 10)
    # Clopper-Pearson from the beta quantiles, written out.
    assert rate.low == pytest.approx(stats.beta.ppf(0.025, 7, 4))
    assert rate.high == pytest.approx(stats.beta.ppf(0.975, 8, 3))
    assert rate.rate == 0.7
    assert success_rate(0, 5).low == 0 and success_rate(5, 5).high == 1
    with pytest.raises(ValueError, match="successes <= trials"):
        success_rate(6, 5)
    with pytest.raises(TypeError, match="int successes"):
        success_rate(2.0, 5)


def test_spread():
    s = spread(range(11), coverage=0.8)
    assert (s.median, s.low, s.high) == pytest.approx((5, 1, 9))
    assert (s.minimum, s.maximum, s.count) == (0, 10, 11)
    with pytest.raises(ValueError, match="finite"):
        spread([1.0, math.nan])
    with pytest.raises(ValueError, match="at least 1"):
        spread([])


def test_mean_interval_is_student_t():
    values = [5.0, 5.2]
    interval = mean_interval(values)
    # t_{0.975,1} * s / sqrt(2), s = 0.1414...
    assert interval.half_width == pytest.approx(12.7062047 * 0.1, rel=1e-6)
    assert interval.mean == pytest.approx(5.1)
    assert math.isinf(mean_interval([1.0]).half_width)


def test_paired_comparison():
    a = [1.0, 2.0, 3.0, 4.0, 5.0]
    b = [2.0, 3.5, 3.1, 6.0, 5.5]
    less = paired_comparison(a, b, alternative="less")
    assert (less.a_better, less.b_better, less.ties) == (5, 0, 0)
    assert less.sign_p == pytest.approx(1 / 32)
    assert less.wilcoxon_p == pytest.approx(1 / 32)
    assert less.mean_difference == pytest.approx(-1.02)
    assert less.mean_low == -math.inf and less.mean_high < 0
    greater = paired_comparison(b, a, alternative="greater")
    assert greater.a_better == 5 and greater.sign_p == pytest.approx(1 / 32)
    two = paired_comparison(a, b)
    assert two.sign_p == pytest.approx(2 / 32)
    same = paired_comparison(a, a)
    assert same.ties == 5 and same.sign_p == 1 and same.wilcoxon_p == 1
    d = [x - y for x, y in zip(a, b)]               # the paired t by hand
    t = statistics.mean(d) / (statistics.stdev(d) / math.sqrt(5))
    assert less.t_p == pytest.approx(stats.t.cdf(t, 4))
    assert two.t_p == pytest.approx(2 * stats.t.cdf(t, 4))
    assert greater.t_p == pytest.approx(less.t_p)
    shifted = paired_comparison(a, [x + 1 for x in a], alternative="less")
    assert shifted.t_p == 0 and paired_comparison(
        a, [x + 1 for x in a], alternative="greater").t_p == 1
    assert same.t_p == 1
    with pytest.raises(ValueError, match="same length"):
        paired_comparison(a, b[:4])
    with pytest.raises(ValueError, match="alternative"):
        paired_comparison(a, b, alternative="smaller")


def test_compare_success_is_fisher_exact():
    from lstmlib.experiments.seed_statistics import compare_success
    # 5/5 against 0/5: the one table as extreme, C(10, 5) = 252 tables
    versus = compare_success(5, 5, 0, 5, alternative="greater")
    assert versus.p_value == pytest.approx(1 / 252)
    assert compare_success(5, 5, 0, 5).p_value == pytest.approx(2 / 252)
    # hypergeometric tail, written out: P(X >= 4), X ~ H(10, 5, 5)
    tail = sum(math.comb(5, k) * math.comb(5, 5 - k) for k in (4, 5)) / 252
    assert compare_success(4, 5, 1, 5, alternative="greater").p_value \
        == pytest.approx(tail)
    assert compare_success(0, 5, 5, 5, alternative="less").p_value \
        == pytest.approx(1 / 252)
    assert versus.a.rate == 1 and versus.b.rate == 0
    assert "p = 0.00397" in str(versus)
    with pytest.raises(ValueError, match="alternative"):
        compare_success(1, 5, 2, 5, alternative="better")
    with pytest.raises(ValueError, match="successes <= trials"):
        compare_success(6, 5, 2, 5)
