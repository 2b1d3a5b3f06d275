"""Tests of lstmlib.networks.ntm: addressing, reading, writing, the NTM and the
copy task."""
import copy
import math

import pytest
import torch

from lstmlib.networks.ntm import (
    NTM,
    SHARPEN_EPS,
    HeadWeights,
    LSTMTagger,
    NTMState,
    address,
    binary_copy_baseline_bits,
    binary_copy_task,
    content_addressing,
    copy_bits_per_sequence,
    interpolate,
    read,
    sharpen,
    shift,
    train_copy,
    train_copy_side_by_side,
    write,
)

pytestmark = pytest.mark.usefixtures("float64_and_seeded")

B, N, W = 3, 7, 5


def random_weighting(batch=B, slots=N):
    return torch.softmax(2 * torch.randn(batch, slots), dim=-1)


def random_shift(batch=B, size=3):
    return torch.softmax(torch.randn(batch, size), dim=-1)


def assert_weighting(w):
    assert w.shape == (B, N)
    assert (w >= 0).all()
    assert torch.allclose(w.sum(-1), torch.ones(B), rtol=0, atol=1e-12)


def test_every_stage_gives_a_weighting():
    memory, key = torch.randn(B, N, W), torch.randn(B, W)
    beta, g = 5 * torch.rand(B), torch.rand(B)
    gamma = 1 + 3 * torch.rand(B)
    w_c = content_addressing(memory, key, beta)
    assert_weighting(w_c)
    w_g = interpolate(w_c, random_weighting(), g)
    assert_weighting(w_g)
    w_s = shift(w_g, random_shift())
    assert_weighting(w_s)
    w = sharpen(w_s, gamma)
    assert_weighting(w)


def test_address_composes_the_four_stages():
    memory, key, w_prev = torch.randn(B, N, W), torch.randn(B, W), \
        random_weighting()
    beta, g, s = 3 * torch.rand(B), torch.rand(B), random_shift(size=5)
    gamma = 1 + torch.rand(B)
    expected = sharpen(shift(interpolate(
        content_addressing(memory, key, beta), w_prev, g), s), gamma)
    got = address(memory, w_prev, key, beta, g, s, gamma)
    assert torch.equal(got, expected)
    assert_weighting(got)


def test_sharpen_with_gamma_one_is_identity():
    w = random_weighting()
    got = sharpen(w, torch.ones(B))
    assert torch.allclose(got, w, rtol=0, atol=10 * N * SHARPEN_EPS)


def test_sharpen_moves_weight_to_the_maximum():
    w = random_weighting()
    sharper = sharpen(w, torch.full((B,), 3.0))
    top = w.argmax(-1)
    rows = torch.arange(B)
    assert (sharper[rows, top] > w[rows, top]).all()
    assert torch.allclose(sharpen(w, torch.full((B,), 500.0))[rows, top],
                          torch.ones(B), atol=1e-9)


def test_shift_by_zero_is_identity_and_by_one_rotates():
    w = random_weighting()
    delta = torch.zeros(B, 3)
    delta[:, 1] = 1                                    # offset 0
    assert torch.equal(shift(w, delta), w)
    plus_one = torch.zeros(B, 3)
    plus_one[:, 2] = 1                                 # offset +1
    rotated = shift(w, plus_one)
    assert torch.equal(rotated, torch.roll(w, 1, dims=-1))
    assert torch.equal(rotated[:, 1:], w[:, :-1])      # row i -> i + 1
    assert torch.equal(rotated[:, 0], w[:, -1])        # wraps around
    minus_two = torch.zeros(B, 5)
    minus_two[:, 0] = 1                                # offset -2 of 5
    assert torch.equal(shift(w, minus_two), torch.roll(w, -2, dims=-1))


def test_shift_is_the_circular_convolution():
    w, s = random_weighting(), random_shift(size=5)
    expected = torch.zeros(B, N)
    for i in range(N):
        for j in range(N):
            offset = (i - j) % N
            offset = offset - N if offset > N // 2 else offset
            if abs(offset) <= 2:
                expected[:, i] += w[:, j] * s[:, offset + 2]
    assert torch.allclose(shift(w, s), expected, rtol=0, atol=1e-15)


def test_content_addressing_finds_the_matching_row():
    memory = torch.randn(B, N, W)
    target = torch.tensor([2, 0, 6])
    key = 3.0 * memory[torch.arange(B), target]        # same direction
    w_weak = content_addressing(memory, key, torch.full((B,), 1.0))
    w_strong = content_addressing(memory, key, torch.full((B,), 1e3))
    assert (w_strong.argmax(-1) == target).all()
    assert torch.allclose(w_strong[torch.arange(B), target], torch.ones(B),
                          atol=1e-9)
    assert (w_weak.max(-1).values < w_strong.max(-1).values).all()
    uniform = content_addressing(memory, key, torch.zeros(B))
    assert torch.allclose(uniform, torch.full((B, N), 1 / N), atol=1e-15)


def test_content_addressing_is_cosine_similarity():
    memory, key, beta = torch.randn(B, N, W), torch.randn(B, W), \
        torch.rand(B)
    cos = torch.nn.functional.cosine_similarity(memory, key.unsqueeze(1),
                                                dim=-1)
    expected = torch.softmax(beta.unsqueeze(-1) * cos, dim=-1)
    got = content_addressing(memory, key, beta)
    assert torch.allclose(got, expected, rtol=0, atol=1e-9)


def test_interpolation_endpoints():
    w_c, w_prev = random_weighting(), random_weighting()
    assert torch.equal(interpolate(w_c, w_prev, torch.ones(B)), w_c)
    assert torch.equal(interpolate(w_c, w_prev, torch.zeros(B)), w_prev)


def test_erase_with_one_hot_clears_exactly_that_row():
    memory = torch.randn(B, N, W)
    w = torch.zeros(B, N)
    w[:, 4] = 1
    erased = write(memory, w, torch.ones(B, W), torch.zeros(B, W))
    assert not erased[:, 4].any()
    others = [i for i in range(N) if i != 4]
    assert torch.equal(erased[:, others], memory[:, others])


def test_add_adds_the_weighted_vector():
    memory, w, a = torch.randn(B, N, W), random_weighting(), \
        torch.randn(B, W)
    added = write(memory, w, torch.zeros(B, W), a)
    expected = memory + w.unsqueeze(-1) * a.unsqueeze(1)
    assert torch.allclose(added, expected, rtol=0, atol=1e-15)


def test_write_is_erase_then_add():
    memory, w = torch.randn(B, N, W), random_weighting()
    e, a = torch.rand(B, W), torch.randn(B, W)
    expected = torch.empty(B, N, W)
    for b in range(B):
        for i in range(N):
            expected[b, i] = memory[b, i] * (1 - w[b, i] * e[b]) \
                + w[b, i] * a[b]
    assert torch.allclose(write(memory, w, e, a), expected, rtol=0,
                          atol=1e-14)


def test_one_hot_write_then_read_returns_the_added_vector():
    memory, a = torch.randn(B, N, W), torch.randn(B, W)
    w = torch.zeros(B, N)
    w[:, 3] = 1
    stored = write(memory, w, torch.ones(B, W), a)
    assert torch.equal(read(stored, w), a)


def test_read_is_the_weighted_sum_of_rows():
    memory, w = torch.randn(B, N, W), random_weighting()
    expected = torch.stack([sum(w[b, i] * memory[b, i] for i in range(N))
                            for b in range(B)])
    assert torch.allclose(read(memory, w), expected, rtol=0, atol=1e-14)


def test_gradcheck_address_read_write():
    b, n, width = 2, 5, 3

    def fn(memory, w_prev, key, beta, g, s_raw, gamma, e, a):
        w = address(memory, w_prev, key, beta, g,
                    torch.softmax(s_raw, -1), gamma)
        return read(write(memory, w, e, a), w)

    inputs = (torch.randn(b, n, width), random_weighting(b, n),
              torch.randn(b, width), 2 * torch.rand(b) + 0.1,
              torch.rand(b), torch.randn(b, 3), 1 + torch.rand(b),
              torch.rand(b, width), torch.randn(b, width))
    inputs = tuple(t.clone().requires_grad_() for t in inputs)
    assert torch.autograd.gradcheck(fn, inputs)


def test_gradcheck_ntm():
    ntm = NTM(2, 2, controller_size=3, memory_slots=4, memory_width=2)
    x = torch.randn(3, 2, 2, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: ntm(x)[0], (x,))
    assert torch.autograd.gradcheck(
        lambda heads_w: torch.func.functional_call(
            ntm, {"heads.weight": heads_w}, (x.detach(),))[0],
        (ntm.heads.weight.detach().clone().requires_grad_(),))


def test_ntm_shapes_and_weights():
    T, batch, m, out = 6, 4, 3, 2
    ntm = NTM(m, out, controller_size=10, memory_slots=N,
              memory_width=W)
    x = torch.randn(T, batch, m)
    y, state = ntm(x)
    assert y.shape == (T, batch, out)
    assert isinstance(state, NTMState)
    assert state.memory.shape == (batch, N, W)
    assert state.h.shape == state.c.shape == (batch, 10)
    assert state.r.shape == (batch, W)
    y2, _, weights = ntm(x, return_weights=True)
    assert isinstance(weights, HeadWeights)
    assert torch.equal(y, y2)
    for w in weights:
        assert w.shape == (T, batch, N)
        assert (w >= 0).all()
        assert torch.allclose(w.sum(-1), torch.ones(T, batch), atol=1e-12)
    assert torch.equal(weights.read[-1], state.w_read)
    _, before_last = ntm(x[:-1])                       # before step T
    assert torch.allclose(state.r, read(before_last.memory, state.w_read),
                          rtol=0, atol=1e-15)          # reads M_{t-1}
    w_write = weights.write[-1]
    assert torch.allclose(state.memory,
                          write(before_last.memory, w_write,
                                *ntm_erase_add(ntm, state.h)),
                          rtol=0, atol=1e-15)


def ntm_erase_add(ntm, h):
    """e_t, a_t from the controller output, as NTM.step computes them."""
    W = ntm.memory_width
    _, erase, add = ntm.heads(h).split([ntm.heads.out_features - 2 * W,
                                        W, W], dim=-1)
    return torch.sigmoid(erase), torch.tanh(add)


def test_ntm_runs_step_by_step_and_resumes_from_a_state():
    ntm = NTM(3, 2, controller_size=6, memory_slots=6, memory_width=4)
    x = torch.randn(5, 2, 3)
    y, final = ntm(x)
    y_a, mid = ntm(x[:2])
    y_b, final_b = ntm(x[2:], mid)
    assert torch.allclose(torch.cat([y_a, y_b]), y, rtol=0, atol=1e-15)
    assert torch.allclose(final_b.memory, final.memory, rtol=0, atol=1e-15)


def test_ntm_parameter_count_does_not_depend_on_memory_slots():
    def count(model):
        return sum(p.numel() for p in model.parameters())
    small = NTM(5, 4, controller_size=16, memory_slots=8, memory_width=6)
    large = NTM(5, 4, controller_size=16, memory_slots=512, memory_width=6)
    assert count(small) == count(large)
    m, n, width, S = 5, 16, 6, 3
    expected = (4 * n * (n + m + width + 1)                # controller
                + (n + 1) * (2 * (width + S + 3) + 2 * width)  # heads
                + (n + width + 1) * 4)                     # read-out
    assert count(small) == expected


def test_initial_state():
    ntm = NTM(2, 2, controller_size=3, memory_slots=4, memory_width=2,
              memory_init=0.5)
    s = ntm.initial_state(2)
    assert torch.equal(s.memory, torch.full((2, 4, 2), 0.5))
    assert torch.equal(s.w_read, torch.tensor([[1.0, 0, 0, 0]] * 2))
    assert not s.h.any() and not s.c.any() and not s.r.any()


def test_determinism():
    def run():
        torch.manual_seed(3)
        ntm = NTM(5, 4, controller_size=8, memory_slots=6, memory_width=4)
        losses = train_copy(ntm, steps=3, lengths=[1, 2], width=4,
                            batch_size=4, seed=7)
        return losses, ntm.readout.weight.detach().clone()
    (l1, w1), (l2, w2) = run(), run()
    assert l1 == l2
    assert torch.equal(w1, w2)


def test_train_copy_lowers_the_loss_of_an_lstm():
    torch.manual_seed(0)
    lstm = LSTMTagger(4, 3, 16)
    losses = train_copy(lstm, steps=60, lengths=[1, 2], width=3,
                        batch_size=16, lr=1e-2)
    assert sum(losses[-10:]) / 10 < 0.8 * sum(losses[:10]) / 10


def test_binary_copy_task_layout():
    gen = torch.Generator().manual_seed(0)
    x, target = binary_copy_task(5, 3, 4, generator=gen)
    assert x.shape == (7, 5, 5) and target.shape == (3, 5, 4)
    assert torch.equal(x[:3, :, :4], target)
    assert not x[:3, :, 4].any()                       # no delimiter yet
    assert torch.equal(x[3], torch.tensor([0.0, 0, 0, 0, 1]).expand(5, 5))
    assert not x[4:].any()                             # answer phase
    assert set(target.unique().tolist()) <= {0.0, 1.0}
    gen2 = torch.Generator().manual_seed(0)
    x2, target2 = binary_copy_task(5, 3, 4, generator=gen2)
    assert torch.equal(x, x2) and torch.equal(target, target2)


def test_baseline_is_one_bit_per_bit():
    L, width = 4, 6
    assert binary_copy_baseline_bits(L, width) == 24.0
    _, target = binary_copy_task(1000, L, width)
    half = torch.zeros_like(target)                    # logit 0 = 1/2
    got = copy_bits_per_sequence(half, target).item()
    assert math.isclose(got, binary_copy_baseline_bits(L, width),
                        rel_tol=1e-12)
    perfect = 50 * (2 * target - 1)
    assert copy_bits_per_sequence(perfect, target).item() < 1e-15


def test_bad_inputs():
    memory, w = torch.randn(B, N, W), random_weighting()
    with pytest.raises(TypeError, match="memory"):
        content_addressing(memory.tolist(), torch.randn(B, W),
                           torch.ones(B))
    with pytest.raises(ValueError, match=r"key of shape \(B, W\)"):
        content_addressing(memory, torch.randn(B, W + 1), torch.ones(B))
    with pytest.raises(ValueError, match="beta"):
        content_addressing(memory, torch.randn(B, W), torch.ones(B, 1))
    with pytest.raises(ValueError, match="w_prev"):
        interpolate(w, torch.randn(B, N + 1), torch.ones(B))
    with pytest.raises(ValueError, match="S odd"):
        shift(w, torch.ones(B, 2) / 2)
    with pytest.raises(ValueError, match="S odd"):
        shift(w, torch.ones(B, N + 2) / (N + 2))
    with pytest.raises(ValueError, match="gamma"):
        sharpen(w, torch.ones(B + 1))
    with pytest.raises(ValueError, match=r"w of shape \(B, N\)"):
        read(memory, w[:, :-1])
    with pytest.raises(ValueError, match="erase"):
        write(memory, w, torch.ones(B, W - 1), torch.ones(B, W))
    with pytest.raises(ValueError, match="memory_slots"):
        NTM(3, 2, memory_slots=0)
    with pytest.raises(ValueError, match="shift_range"):
        NTM(3, 2, memory_slots=4, shift_range=2)
    ntm = NTM(3, 2, controller_size=4, memory_slots=5, memory_width=3)
    with pytest.raises(ValueError, match=r"\(T >= 1, B, 3\)"):
        ntm(torch.randn(4, 2, 5))
    with pytest.raises(TypeError, match="dtype"):
        ntm(torch.randn(4, 2, 3, dtype=torch.float32))
    with pytest.raises(TypeError, match="NTMState"):
        ntm(torch.randn(4, 2, 3), (torch.zeros(2, 4),))
    with pytest.raises(ValueError, match="length"):
        binary_copy_task(2, 0, 3)
    with pytest.raises(ValueError, match="logits"):
        copy_bits_per_sequence(torch.zeros(2, 3, 4), torch.zeros(2, 3, 5))


# -- train_copy_side_by_side ---------------------------------------------
def _copy_models(kind, seeds):
    models = []
    for s in seeds:
        torch.manual_seed(s)
        models.append(NTM(5, 4, controller_size=8, memory_slots=6,
                          memory_width=4) if kind == "ntm"
                      else LSTMTagger(5, 4, 8))
    return models


def _alone(model, seed, lengths, steps=4):
    """train_copy on a copy: (losses, parameters after training)."""
    model = copy.deepcopy(model)
    losses = train_copy(model, steps=steps, lengths=lengths, width=4,
                        batch_size=3, lr=1e-2, seed=seed)
    return losses, [p.detach() for p in model.parameters()]


def _close(a, b, tol=1e-10):
    return all(abs(x - y) < tol for x, y in zip(a, b)) and len(a) == len(b)


@pytest.mark.parametrize("kind", ["ntm", "lstm"])
def test_side_by_side_model_0_is_train_copy(kind):
    seeds = [4, 5, 6]
    models = _copy_models(kind, seeds)
    expected = _alone(models[0], seeds[0], [1, 2, 3])
    losses = train_copy_side_by_side(models, steps=4, lengths=[1, 2, 3],
                                     width=4, batch_size=3, lr=1e-2,
                                     seeds=seeds)
    assert len(losses) == 3 and all(len(run) == 4 for run in losses)
    assert _close(losses[0], expected[0])
    for p, q in zip(models[0].parameters(), expected[1]):
        assert torch.allclose(p, q, rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind", ["ntm", "lstm"])
def test_side_by_side_with_one_length_is_k_runs(kind):
    seeds = [0, 1, 2]
    models = _copy_models(kind, seeds)
    expected = [_alone(m, s, [2]) for m, s in zip(models, seeds)]
    losses = train_copy_side_by_side(models, steps=4, lengths=[2], width=4,
                                     batch_size=3, lr=1e-2, seeds=seeds)
    for model, run, (alone_losses, alone_params) in zip(models, losses,
                                                        expected):
        assert _close(run, alone_losses)
        for p, q in zip(model.parameters(), alone_params):
            assert torch.allclose(p, q, rtol=0, atol=1e-10)


def test_side_by_side_clips_each_model_alone():
    # a tiny clip norm: every model's step is clipped, by its own norm
    seeds = [0, 1]
    models = _copy_models("lstm", seeds)
    expected = [copy.deepcopy(m) for m in models]
    for m, s in zip(expected, seeds):
        train_copy(m, steps=2, lengths=[1], width=4, batch_size=3,
                   lr=1e-2, seed=s, clip_norm=1e-3)
    train_copy_side_by_side(models, steps=2, lengths=[1], width=4,
                            batch_size=3, lr=1e-2, seeds=seeds,
                            clip_norm=1e-3)
    for m, e in zip(models, expected):
        for p, q in zip(m.parameters(), e.parameters()):
            assert torch.allclose(p, q, rtol=0, atol=1e-10)


class _Scaled(torch.nn.Module):
    """A model with a parameter that acts outside F.linear."""

    def __init__(self):
        super().__init__()
        self.inner = LSTMTagger(5, 4, 8)
        self.scale = torch.nn.Parameter(torch.ones(4))

    def forward(self, x):
        return self.inner(x) * self.scale


def test_side_by_side_refuses_what_it_cannot_stack():
    models = _copy_models("lstm", [0, 1])
    kwargs = dict(steps=1, lengths=[1], width=4, batch_size=2)
    with pytest.raises(ValueError, match="one int seed per model"):
        train_copy_side_by_side(models, seeds=[0], **kwargs)
    with pytest.raises(TypeError, match="one class"):
        train_copy_side_by_side([models[0], _copy_models("ntm", [0])[0]],
                                seeds=[0, 1], **kwargs)
    with pytest.raises(TypeError, match="other than through F.linear"):
        train_copy_side_by_side([_Scaled(), _Scaled()], seeds=[0, 1],
                                **kwargs)
