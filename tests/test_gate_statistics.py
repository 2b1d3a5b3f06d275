"""lstmlib.analysis.gate_statistics: the signals of a text, correlations,
saturation and time constants of recorded LSTM states."""
import math

import numpy as np
import pytest
import torch

from lstmlib.analysis.gate_statistics import (
    SATURATION_LEFT, SATURATION_RIGHT, forget_bias_time_constant,
    line_positions, lstm_layer_states, memoryless_correlation,
    saturation_fractions, speaker_name_lines, time_constants,
    unit_correlations)
from lstmlib.cells.lstm import BasicLSTMCell
from lstmlib.cells.recurrent import Recurrent
from lstmlib.cells.vanilla import VanillaRNNCell

pytestmark = pytest.mark.usefixtures("float64_and_seeded")

PLAY = ("First Citizen:\nBefore we proceed, hear me.\n\nAll:\nSpeak, speak.\n"
        "\nROMEO:\nSo: I say.\nNote: no name here:\n")


# -- signals of the text ----------------------------------------------------
def test_line_positions_count_from_each_line_start():
    positions = line_positions(PLAY).tolist()
    line_start = 0
    for k, character in enumerate(PLAY):
        assert positions[k] == k - line_start
        if character == "\n":
            line_start = k + 1
    assert positions[PLAY.index("\n")] == len("First Citizen:")


def test_speaker_names_are_the_lines_after_an_empty_one_ending_in_a_colon():
    marks = speaker_name_lines(PLAY)
    assert marks.shape == (len(PLAY),)
    marked = "".join(c for c, m in zip(PLAY, marks.tolist()) if m)
    assert marked == "First Citizen:\nAll:\nROMEO:\n"     # not "Note: ...:"


@pytest.mark.parametrize("signal", [line_positions, speaker_name_lines])
def test_signals_refuse_what_is_not_text(signal):
    for bad in ("", None, ["a"]):
        with pytest.raises(ValueError, match="non-empty str"):
            signal(bad)


# -- correlations -----------------------------------------------------------
def test_correlations_equal_numpy_for_every_unit_and_shape():
    a, s = torch.randn(200, 3, 5), torch.randn(200, 3)
    a[..., 0] += 3 * s                                   # one correlated unit
    r = unit_correlations(a, s)
    flat_a, flat_s = a.reshape(-1, 5).numpy(), s.reshape(-1).numpy()
    expected = [np.corrcoef(flat_a[:, j], flat_s)[0, 1] for j in range(5)]
    np.testing.assert_allclose(r.numpy(), expected, rtol=0, atol=1e-12)
    assert r[0] > 0.9
    assert torch.allclose(unit_correlations(a.reshape(-1, 5), s.reshape(-1)),
                          r, rtol=0, atol=1e-12)


def test_correlations_ignore_scale_and_shift_and_see_the_sign():
    a, s = torch.randn(100, 4), torch.randn(100)
    r = unit_correlations(a, s)
    assert torch.allclose(unit_correlations(5 * a - 2, s), r, atol=1e-12)
    assert torch.allclose(unit_correlations(-a, s), -r, atol=1e-12)


def test_a_constant_unit_or_signal_correlates_zero():
    a = torch.randn(50, 3)
    a[:, 1] = 2.0
    assert unit_correlations(a, torch.randn(50))[1] == 0
    assert torch.equal(unit_correlations(a, torch.ones(50)), torch.zeros(3))


def test_correlations_refuse_mismatched_shapes():
    with pytest.raises(ValueError, match="activations"):
        unit_correlations(torch.randn(10), torch.randn(10))
    with pytest.raises(ValueError, match="signal of shape"):
        unit_correlations(torch.randn(10, 2, 3), torch.randn(10))


def test_no_function_of_the_current_token_beats_the_memoryless_bar():
    tokens = torch.randint(0, 6, (400,))
    signal = tokens.double() ** 2 / 10 + torch.randn(400)
    eta = memoryless_correlation(signal, tokens)
    assert 0 < eta < 1
    for _ in range(20):
        table = torch.randn(6)                            # any g(x_t)
        r = unit_correlations(table[tokens][:, None], signal)[0]
        assert abs(r) <= eta + 1e-12
    conditional_mean = torch.stack([signal[tokens == v].mean()
                                    for v in range(6)])[tokens]
    r = unit_correlations(conditional_mean[:, None], signal)[0]
    assert r == pytest.approx(eta, abs=1e-12)             # it is reached


def test_a_signal_of_the_token_alone_is_fully_memoryless():
    tokens = torch.randint(0, 4, (30, 2))
    assert memoryless_correlation(torch.tensor([1., 5., 2., 0.])[tokens],
                                  tokens) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="token ids"):
        memoryless_correlation(torch.randn(30), torch.randn(30))
    with pytest.raises(ValueError, match="tokens' shape"):
        memoryless_correlation(torch.randn(29), torch.zeros(30).long())


# -- saturation -------------------------------------------------------------
def test_saturation_fractions_count_by_hand():
    g = torch.tensor([[0.05, 0.95], [0.5, 0.99], [0.09, 0.91], [0.1, 0.9]])
    left, right = saturation_fractions(g)
    assert left.tolist() == [0.5, 0.0]                   # 0.1 is not < 0.1
    assert right.tolist() == [0.0, 0.75]                 # 0.9 is not > 0.9
    assert (SATURATION_LEFT, SATURATION_RIGHT) == (0.1, 0.9)
    gates = torch.rand(30, 4, 7)
    left, right = saturation_fractions(gates, left=0.3, right=0.6)
    assert left.shape == right.shape == (7,)
    assert torch.allclose(left, (gates < 0.3).double().mean((0, 1)))
    assert (left + right <= 1).all()


def test_saturation_thresholds_are_checked():
    with pytest.raises(ValueError, match="0 < left < right < 1"):
        saturation_fractions(torch.rand(5, 2), left=0.9, right=0.1)
    with pytest.raises(ValueError, match="gates"):
        saturation_fractions(torch.rand(5))


# -- time constants ---------------------------------------------------------
def test_a_constant_gate_has_its_own_time_constant():
    f = torch.tensor([0.5, 0.9, 0.99]).expand(40, 3)
    assert torch.allclose(time_constants(f), -1 / torch.log(f[0]),
                          rtol=1e-12)


def test_time_constant_gives_the_carousels_decay_over_the_sequence():
    f = torch.rand(100, 2, 6) * 0.5 + 0.5                # varying gates
    tau = time_constants(f)
    kept = f.reshape(200, 6).prod(0)                     # Π_t f_t per unit
    assert torch.allclose(kept, torch.exp(-200 / tau), rtol=1e-9)


def test_a_gate_stuck_at_one_never_forgets_and_bad_gates_are_refused():
    f = torch.ones(10, 2)
    f[:, 0] = 0.5
    tau = time_constants(f)
    assert math.isfinite(tau[0]) and tau[1] == math.inf
    for bad in (torch.zeros(3, 2), torch.full((3, 2), 1.5)):
        with pytest.raises(ValueError, match=r"\(0, 1\]"):
            time_constants(bad)


def test_the_forget_bias_time_constant():
    assert forget_bias_time_constant(1.0) == pytest.approx(
        -1 / math.log(1 / (1 + math.exp(-1.0))), rel=1e-14)
    assert forget_bias_time_constant(1.0) == pytest.approx(3.1922, abs=1e-4)
    assert forget_bias_time_constant(12.0) == pytest.approx(
        math.exp(12.0) + 0.5, rel=1e-6)                  # τ ≈ e^b + 1/2
    assert forget_bias_time_constant(-800.0) == pytest.approx(1 / 800)
    f = torch.sigmoid(torch.tensor(2.0)).expand(5, 1)
    assert time_constants(f)[0] == pytest.approx(
        forget_bias_time_constant(2.0), rel=1e-12)


# -- recorded states of stacked layers --------------------------------------
def test_layer_states_are_the_stacked_layers_outputs():
    cells = [BasicLSTMCell(3, 5), BasicLSTMCell(5, 4)]
    x = torch.randn(12, 2, 3)
    recorded = lstm_layer_states(cells, x)
    inputs = x
    for cell, kept in zip(cells, recorded):
        outputs, (h_T, c_T) = Recurrent(cell, fused=False)(inputs)
        assert kept.h.shape == (13, 2, cell.state_size)
        assert torch.equal(kept.h[0], torch.zeros(2, cell.state_size))
        torch.testing.assert_close(kept.h[1:], outputs, rtol=0, atol=1e-12)
        torch.testing.assert_close(kept.c[-1], c_T, rtol=0, atol=1e-12)
        assert kept.f.shape == (12, 2, cell.state_size)
        inputs = outputs


def test_layer_states_need_basic_lstms():
    with pytest.raises(TypeError, match="BasicLSTMCell"):
        lstm_layer_states([VanillaRNNCell(3, 4)], torch.randn(5, 1, 3))
    with pytest.raises(TypeError, match="BasicLSTMCell"):
        lstm_layer_states([], torch.randn(5, 1, 3))
