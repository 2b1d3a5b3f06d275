"""lstmlib.experiments.tasks: the synthetic long-range tasks follow their published
rules, are reproducible from a seed, and their chance baselines are what the
module says (exact values checked against simulation)."""
import math

import pytest
import torch

from lstmlib.experiments.tasks import (ADDING_BASELINE_MSE, ADDING_HOCHREITER_TOLERANCE,
                           COPY_BLANK, COPY_DELIMITER,
                           TEMPORAL_ORDER_BASELINE_ACCURACY,
                           TEMPORAL_ORDER_BASELINE_CROSS_ENTROPY,
                           TEMPORAL_ORDER_CLASSES, TEMPORAL_ORDER_SYMBOLS,
                           adding_hochreiter_baseline_accuracy,
                           adding_hochreiter_baseline_mse, adding_problem,
                           copy_memory, copy_memory_baseline,
                           delayed_recall, temporal_order)

pytestmark = pytest.mark.usefixtures("float64_and_seeded")


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def test_delayed_recall_still_works():
    x, v = delayed_recall(3, 5, 2, generator=seeded())
    assert x.shape == (5, 3, 2) and torch.equal(x[0], v)


@pytest.mark.parametrize("variant", ["le", "hochreiter"])
def test_adding_problem_is_reproducible_from_the_seed(variant):
    a = adding_problem(8, 40, generator=seeded(3), variant=variant)
    b = adding_problem(8, 40, generator=seeded(3), variant=variant)
    c = adding_problem(8, 40, generator=seeded(4), variant=variant)
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert not torch.equal(a[1], c[1])


def test_adding_le_structure():
    T, B = 51, 500
    x, target = adding_problem(B, T, generator=seeded(), dtype=torch.float64)
    assert x.shape == (T, B, 2) and target.shape == (B, 1)
    assert x.dtype == target.dtype == torch.float64
    values, markers = x[..., 0], x[..., 1]
    assert values.min() >= 0 and values.max() <= 1
    assert set(markers.unique().tolist()) == {0.0, 1.0}
    half = T // 2
    assert torch.all(markers[:half].sum(0) == 1)
    assert torch.all(markers[half:].sum(0) == 1)
    assert torch.allclose(target[:, 0], (values * markers).sum(0))
    # both halves are used in full: every position gets marked sometimes
    assert torch.all(markers.sum(1) > 0)


def test_adding_le_baseline_is_one_sixth():
    # exact value: Var(X1 + X2) = 2 * Var(U(0, 1)) = 2/12
    assert ADDING_BASELINE_MSE == pytest.approx(2 / 12, abs=1e-15)
    _, target = adding_problem(200_000, 4, generator=seeded(),
                               dtype=torch.float64)
    mse = ((target - 1) ** 2).mean().item()
    # standard error of the mean of (S - 1)^2 is about 0.0004 here
    assert mse == pytest.approx(ADDING_BASELINE_MSE, abs=0.002)


def _hochreiter_sequences(x):
    """Unpad: each sequence starts at its first nonzero marker."""
    for b in range(x.shape[1]):
        start = int(torch.nonzero(x[:, b, 1])[0])
        yield x[start:, b]


def test_adding_hochreiter_structure():
    T, B = 100, 300
    x, target = adding_problem(B, T, generator=seeded(), variant="hochreiter",
                               dtype=torch.float64)
    assert x.shape == (T + T // 10, B, 2) and target.shape == (B, 1)
    lengths, zeroed = [], 0
    for b, seq in enumerate(_hochreiter_sequences(x)):
        n = seq.shape[0]
        lengths.append(n)
        assert T <= n <= T + T // 10
        values, markers = seq[:, 0], seq[:, 1]
        assert values.abs().max() <= 1
        marked = torch.nonzero(markers == 1)[:, 0].tolist()
        assert len(marked) == 2
        assert marked[0] < 10 and marked[1] < T // 2
        assert markers[-1] == -1
        assert markers[0] == (1 if 0 in marked else -1)
        if 0 in marked:
            assert values[0] == 0
            zeroed += 1
        others = [t for t in range(1, n - 1) if t not in marked]
        assert torch.all(markers[others] == 0)
        x1_plus_x2 = values[marked].sum()
        assert target[b, 0] == pytest.approx(0.5 + x1_plus_x2 / 4)
    assert min(lengths) < max(lengths)  # lengths really vary
    assert 0 < zeroed < B // 4  # expected B q = 300 (0.1 + 0.9/49) ~ 35


def test_adding_hochreiter_marks_follow_the_paper():
    # the reading: one mark uniform among the first 10 pairs, the other
    # uniform among the first T/2 - 1 pairs still unmarked, which are the
    # positions 0 ... T/2 - 1 other than the first mark
    T, B = 40, 20_000
    x, _ = adding_problem(B, T, generator=seeded(5), variant="hochreiter")
    early, late = [], []                  # the two marks, in order
    for b in range(B):
        start = int(torch.nonzero(x[:, b, 1])[0])
        marked = torch.nonzero(x[start:, b, 1] == 1)[:, 0].tolist()
        early.append(marked[0])
        late.append(marked[1])
    early, late = torch.tensor(early), torch.tensor(late)
    assert early.max() < 10 and late.max() == T // 2 - 1   # reached
    # position 0 is marked with probability q = 1/10 + (9/10)/(T/2 - 1)
    q = (early == 0).double().mean().item()
    assert q == pytest.approx(0.1 + 0.9 / (T // 2 - 1), abs=0.01)
    # the second mark lies in 10 ... T/2 - 1 with probability
    # (T/2 - 10)/(T/2 - 1); binomial standard error ~ 0.0035
    beyond = (late >= 10).double().mean().item()
    assert beyond == pytest.approx((T // 2 - 10) / (T // 2 - 1), abs=0.015)


def test_adding_hochreiter_baseline_formulas():
    # q = 1/10 + (9/10)/(T//2 - 1); T = 20: q = 1/5
    assert adding_hochreiter_baseline_mse(20) == pytest.approx(1.8 / 48)
    assert adding_hochreiter_baseline_accuracy(20) == pytest.approx(
        0.16 - 0.8 * 0.16 ** 2 / 4)
    # long sequences: q -> 1/10
    assert adding_hochreiter_baseline_mse(10 ** 6) == pytest.approx(
        1.9 / 48, abs=1e-6)


@pytest.mark.parametrize("length", [20, 100])
def test_adding_hochreiter_baselines_match_simulation(length):
    _, target = adding_problem(20_000, length, generator=seeded(1),
                               variant="hochreiter", dtype=torch.float64)
    error = target - 0.5
    # standard error of the mean squared error ~ 0.0003
    assert (error ** 2).mean().item() == pytest.approx(
        adding_hochreiter_baseline_mse(length), abs=0.0015)
    correct = (error.abs() < ADDING_HOCHREITER_TOLERANCE).double().mean()
    # binomial standard error sqrt(0.15 * 0.85 / 20000) ~ 0.0025
    assert correct.item() == pytest.approx(
        adding_hochreiter_baseline_accuracy(length), abs=0.01)


@pytest.mark.parametrize("bad", [
    dict(length=1), dict(length=10, variant="hochreiter"),
    dict(length=20, variant="arjovsky"), dict(length=2.5)])
def test_adding_problem_refuses_bad_arguments(bad):
    with pytest.raises(ValueError, match="adding_problem"):
        adding_problem(4, **bad)


@pytest.mark.parametrize("delay", [1, 7, 100])
def test_copy_memory_structure(delay):
    B = 64
    x, target = copy_memory(B, delay, generator=seeded())
    T = delay + 20
    assert x.shape == target.shape == (T, B)
    assert x.dtype == target.dtype == torch.long
    data = x[:10]
    assert data.min() >= 1 and data.max() <= 8
    assert torch.all(x[10:delay + 9] == COPY_BLANK)  # delay - 1 blanks
    assert torch.all(x[delay + 9] == COPY_DELIMITER)
    assert torch.all(x[delay + 10:] == COPY_BLANK)
    assert torch.all(target[:delay + 10] == COPY_BLANK)
    assert torch.equal(target[delay + 10:], data)
    # the delimiter appears exactly once per sequence, ten steps before the
    # recall starts
    assert torch.all((x == COPY_DELIMITER).sum(0) == 1)


def test_copy_memory_is_reproducible_and_uses_all_symbols():
    a = copy_memory(16, 5, generator=seeded(2))
    b = copy_memory(16, 5, generator=seeded(2))
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert set(a[0][:10].unique().tolist()) == set(range(1, 9))


@pytest.mark.parametrize("delay", [1, 10, 100])
def test_copy_memory_baseline_is_the_memoryless_cross_entropy(delay):
    assert copy_memory_baseline(delay) == pytest.approx(
        10 * math.log(8) / (delay + 20), rel=1e-12)
    _, target = copy_memory(256, delay, generator=seeded())
    T = delay + 20
    # the memoryless strategy: blank surely until the recall, then uniform
    # over the 8 data symbols
    probabilities = torch.zeros(T, 256, 10)
    probabilities[:delay + 10, :, COPY_BLANK] = 1
    probabilities[delay + 10:, :, 1:9] = 1 / 8
    p_target = probabilities.gather(2, target.unsqueeze(2))
    cross_entropy = -p_target.log().mean().item()
    assert cross_entropy == pytest.approx(copy_memory_baseline(delay),
                                          rel=1e-12)


def test_copy_memory_refuses_bad_arguments():
    with pytest.raises(ValueError, match="delay"):
        copy_memory(4, 0)
    with pytest.raises(ValueError, match="batch_size"):
        copy_memory(0, 5)


def _temporal_sequences(x):
    """Unpad: symbol ids of each sequence from its E on."""
    for b in range(x.shape[1]):
        present = x[:, b].sum(-1) > 0
        start = int(torch.nonzero(present)[0])
        yield x[start:, b].argmax(-1)


@pytest.mark.parametrize("length", [20, 100, 200])
def test_temporal_order_structure(length):
    B = 400
    x, target = temporal_order(B, length, generator=seeded(),
                               dtype=torch.float64)
    longest = length + length // 10
    assert x.shape == (longest, B, len(TEMPORAL_ORDER_SYMBOLS))
    assert x.dtype == torch.float64
    assert target.shape == (B,) and target.dtype == torch.long
    # one-hot where present, all zeros in the front padding
    assert set(x.unique().tolist()) == {0.0, 1.0}
    assert set(x.sum(-1).unique().tolist()) <= {0.0, 1.0}
    E, B_, X, Y = (TEMPORAL_ORDER_SYMBOLS.index(s) for s in "EBXY")
    lengths, t1s, t2s = [], [], []
    for b, ids in enumerate(_temporal_sequences(x)):
        n = ids.shape[0]
        lengths.append(n)
        assert length <= n <= longest
        assert ids[0] == E and ids[-1] == B_
        assert ((ids == E).sum(), (ids == B_).sum()) == (1, 1)
        relevant = torch.nonzero((ids == X) | (ids == Y))[:, 0] + 1
        assert len(relevant) == 2                 # exactly two X/Y
        t1, t2 = relevant.tolist()                # positions from 1
        assert length // 10 <= t1 <= length // 5
        assert length // 2 <= t2 <= length // 2 + length // 10
        t1s.append(t1)
        t2s.append(t2)
        others = ids[1:-1][(ids[1:-1] != X) & (ids[1:-1] != Y)]
        assert others.min() >= 4 and others.max() <= 7   # a, b, c, d
        order = "".join("X" if ids[t - 1] == X else "Y" for t in (t1, t2))
        assert TEMPORAL_ORDER_CLASSES[target[b]] == order
    # the ranges are used in full
    assert (min(lengths), max(lengths)) == (length, longest)
    assert (min(t1s), max(t1s)) == (length // 10, length // 5)
    assert (min(t2s), max(t2s)) == (length // 2, length // 2 + length // 10)


def test_temporal_order_default_is_the_papers_setting():
    # Hochreiter & Schmidhuber 1997, exp. 6a: length 100-110, t1 in 10-20,
    # t2 in 50-60 (positions counted from 1)
    x, _ = temporal_order(2000, generator=seeded(1))
    assert x.shape[0] == 110
    t1s, t2s = set(), set()
    for ids in _temporal_sequences(x):
        relevant = (torch.nonzero((ids == 2) | (ids == 3))[:, 0] + 1).tolist()
        t1s.add(relevant[0])
        t2s.add(relevant[1])
    assert t1s == set(range(10, 21)) and t2s == set(range(50, 61))


def test_temporal_order_classes_are_balanced_and_chance_is_a_quarter():
    assert TEMPORAL_ORDER_BASELINE_ACCURACY == 0.25
    assert TEMPORAL_ORDER_BASELINE_CROSS_ENTROPY == pytest.approx(
        math.log(4), rel=1e-15)
    _, target = temporal_order(40_000, 20, generator=seeded(2))
    frequencies = torch.bincount(target, minlength=4).double() / 40_000
    # binomial standard error sqrt(3/16 / 40000) ~ 0.002
    assert torch.allclose(frequencies, torch.full((4,), 0.25), atol=0.01)
    # the best constant answer (the most frequent class) scores about 1/4,
    # and uniform probabilities score exactly ln 4
    assert frequencies.max().item() == pytest.approx(
        TEMPORAL_ORDER_BASELINE_ACCURACY, abs=0.01)
    uniform = torch.zeros(40_000, 4)
    assert torch.nn.functional.cross_entropy(uniform, target).item() == \
        pytest.approx(TEMPORAL_ORDER_BASELINE_CROSS_ENTROPY, rel=1e-12)


def test_temporal_order_is_reproducible_from_the_seed():
    a = temporal_order(16, 30, generator=seeded(3))
    b = temporal_order(16, 30, generator=seeded(3))
    c = temporal_order(16, 30, generator=seeded(4))
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert not torch.equal(a[0], c[0])


@pytest.mark.parametrize("bad", [dict(length=19), dict(length=0),
                                 dict(length=50.0), dict(batch_size=0)])
def test_temporal_order_refuses_bad_arguments(bad):
    arguments = dict(batch_size=4, length=100) | bad
    with pytest.raises(ValueError, match="temporal_order"):
        temporal_order(**arguments)
