"""lstmlib.experiments.char_lm, its command line (at a tiny size) and the
text-activation picture."""
import json
import math

import matplotlib
import pytest
import torch

from lstmlib.analysis.gate_statistics import unit_correlations
from lstmlib.analysis.lstm_backward import LSTMStates
from lstmlib.cells.lstm import BasicLSTMCell
from lstmlib.cells.recurrent import Recurrent
from lstmlib.commands.char_lm import main
from lstmlib.display.text_activations import (NEWLINE_GLYPH,
                                              draw_text_activation)
from lstmlib.experiments.char_lm import (CHAR_LM_FULL, TEXT_SIGNALS,
                                         char_language_model,
                                         char_model_states, gate_report,
                                         random_windows)
from lstmlib.experiments.data import CharCorpus, Vocabulary
from lstmlib.experiments.training import PerStepClassifier
from tests.command_line import exits, refusal

matplotlib.use("Agg")

PLAY = ("ROMEO:\nBut soft, what light through yonder window breaks?\n\n"
        "JULIET:\nAy me.\n\nROMEO:\nShe speaks.\nO, speak again.\n\n") * 30


def small_corpus() -> CharCorpus:
    """A play of a few thousand characters, split 80 / 10 / 10."""
    vocab = Vocabulary(sorted(set(PLAY)))
    ids = vocab.encode(list(PLAY))
    a, b = int(0.8 * len(ids)), int(0.9 * len(ids))
    return CharCorpus(ids[:a], ids[a:b], ids[b:], vocab)


def test_random_windows_are_reproducible_next_character_pairs():
    stream = torch.arange(1000)
    x, y = random_windows(stream, 20, 4, torch.Generator().manual_seed(3))
    assert x.shape == y.shape == (20, 4)
    assert torch.equal(y, x + 1)
    assert torch.equal(x[1:], x[:-1] + 1)                # contiguous windows
    again, _ = random_windows(stream, 20, 4, torch.Generator().manual_seed(3))
    assert torch.equal(x, again)
    assert int(y.max()) < 1000
    with pytest.raises(ValueError, match="at least"):
        random_windows(torch.arange(10), 10, 2, torch.Generator())


def test_the_full_scale_model_and_its_training():
    model = char_language_model(65)
    assert [layer.cell.state_size for layer in model.layers] == [256, 256]
    assert model.embedding.embedding_dim == 64
    cell = model.layers[0].cell
    assert torch.all(cell.b[256:512] == 1.0)             # b_f = 1
    assert CHAR_LM_FULL.optimizer == "adam" and CHAR_LM_FULL.clip_norm == 5.0
    with pytest.raises(ValueError, match="state_size"):
        char_language_model(65, state_size=0)


@pytest.mark.usefixtures("float64_and_seeded")
def test_states_of_both_kinds_of_model_are_their_layers_outputs():
    tokens = torch.randint(0, 7, (15, 2))
    one_hot = PerStepClassifier(BasicLSTMCell(7, 5), 7)
    (kept,) = char_model_states(one_hot, tokens)
    outputs, _ = one_hot.recurrent(torch.nn.functional.one_hot(tokens, 7)
                                   .double())
    torch.testing.assert_close(kept.h[1:], outputs, rtol=0, atol=1e-12)

    model = char_language_model(7, layers=2, state_size=4, embedding_size=3)
    kept = char_model_states(model, tokens)
    x = model.embedding(tokens)
    for layer, states in zip(model.layers, kept):
        x, _ = layer(x)
        torch.testing.assert_close(states.h[1:], x, rtol=0, atol=1e-12)
    (one_stream,) = char_model_states(one_hot, tokens[:, 0])
    assert one_stream.h.shape == (16, 1, 5)
    with pytest.raises(TypeError, match="PerStepClassifier"):
        char_model_states(Recurrent(BasicLSTMCell(7, 5)), tokens)
    with pytest.raises(ValueError, match="torch.long"):
        char_model_states(one_hot, tokens.double())


def test_gate_report_holds_plain_numbers_that_agree_with_the_measurements():
    corpus = small_corpus()
    torch.manual_seed(0)
    model = char_language_model(len(corpus.vocab), layers=2, state_size=6,
                                embedding_size=4)
    tokens = corpus.test[:200]
    text = "".join(corpus.vocab.decode(tokens))
    states = char_model_states(model, tokens)
    report = gate_report(states, text, trace_length=50)
    json.dumps(report)                                   # JSON-ready
    assert report["text"] == text[:50]
    assert report["initial_time_constant"] == pytest.approx(3.1922, abs=1e-4)
    assert set(report["memoryless_r"]) == set(TEXT_SIGNALS)
    assert len(report["layers"]) == 2
    for layer, kept in zip(report["layers"], states):
        for gate in "ifo":
            fractions = layer["saturation"][gate]
            assert len(fractions["left"]) == len(fractions["right"]) == 6
            assert fractions["right_mean"] == pytest.approx(
                sum(fractions["right"]) / 6)
        assert len(layer["time_constants"]["units"]) == 6
        for name, make in TEXT_SIGNALS.items():
            best = layer["signals"][name]
            part = {"h": kept.h[1:, 0], "c": kept.c[1:, 0]}[best["part"]]
            r = unit_correlations(part, make(text))
            assert best["r"] == pytest.approx(r[best["unit"]].item())
            assert abs(best["r"]) >= r.abs().max().item() - 1e-6
            assert len(best["trace"]) == 50
    with pytest.raises(ValueError, match="one stream"):
        gate_report(states, text[:-1])


def test_a_forget_gate_stuck_open_gives_an_infinite_time_constant():
    text = "ab\nab\n"
    T, n = len(text), 4
    f = torch.full((T, 1, n), 0.5)
    f[..., 3] = 1.0                                      # never forgets
    h = torch.randn(T + 1, 1, n)
    states = LSTMStates(h, h.clone(), f, f, f, f)
    taus = gate_report([states], text)["layers"][0]["time_constants"]
    assert math.isinf(taus["units"][3]) and math.isinf(taus["max"])
    assert taus["median"] == pytest.approx(1 / math.log(2))
    assert math.isinf(taus["q90"])                       # not nan


def test_the_command_at_a_tiny_size_writes_a_record(tmp_path, monkeypatch,
                                                    capsys):
    monkeypatch.setattr("lstmlib.commands.char_lm.load_tiny_shakespeare",
                        lambda root: small_corpus())
    out = tmp_path / "char_lm.json"
    argv = ["--layers", "1", "--state-size", "6", "--embedding-size", "4",
            "--epochs", "2", "--batch-size", "4", "--bptt", "10",
            "--analysis-chars", "120", "--seed", "3", "--out", str(out)]
    returned = main(argv)
    record = json.loads(out.read_text())
    assert record == json.loads(json.dumps(returned))
    assert record["command"] == ("python -m lstmlib.commands.char_lm "
                                 + " ".join(argv))
    for key in ("date", "machine", "versions", "analysis"):
        assert record[key]
    assert record["versions"]["torch"]
    run = record["run"]
    assert [e["epoch"] for e in run["epochs"]] == [1, 2]
    assert run["config"]["seed"] == 3 and run["config"]["bptt"] == 10
    assert run["test_nats"] is not None
    for when in ("before_training", "after_training"):
        assert len(record[when]["layers"]) == 1
        assert len(record[when]["text"]) == 120
    assert "record:" in capsys.readouterr().out
    again = main(argv)                                   # deterministic
    assert [e["valid_nats"] for e in again["run"]["epochs"]] == \
        [e["valid_nats"] for e in run["epochs"]]
    assert again["after_training"] == record["after_training"]


def test_the_command_explains_itself_and_refuses_bad_options(capsys):
    out, _ = exits(main, ["--help"], capsys, 0)
    assert "--state-size" in out and "--analysis-chars" in out
    for bad in (["--state-size", "0"], ["--lr", "-1"], ["--seed", "-2"]):
        assert f"argument {bad[0]}: expected" in refusal(
            main, bad + ["--out", "never.json"], capsys)


def test_text_activation_draws_a_cell_and_a_glyph_per_character():
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    text = "ab\ncde\nf"
    colours = draw_text_activation(ax, text, torch.linspace(-1, 2, 8))
    assert len(ax.patches) == len(ax.texts) == 8
    assert [t.get_text() for t in ax.texts].count(NEWLINE_GLYPH) == 2
    assert ax.get_xlim() == (0, 4) and ax.get_ylim() == (-3, 0)
    assert colours.norm.vmin == -2 and colours.norm.vmax == 2
    with pytest.raises(ValueError, match="one value per character"):
        draw_text_activation(ax, text, [0.0])
    plt.close(fig)
