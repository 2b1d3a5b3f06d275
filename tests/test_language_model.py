"""lstmlib.experiments.language_model and lstmlib.experiments.ptb: the model's layout, the
stateful truncated-BPTT trainer, result records, the command line."""
import json
import math
import os

import pytest
import torch
from torch import nn

from lstmlib import BasicLSTMCell, GRUCell, VanillaRNNCell, result_path
from lstmlib.experiments.data import OTHER, Corpus, Vocabulary, limit_vocabulary
from lstmlib.commands.ptb import main
from lstmlib.seeds import seed_base
from lstmlib.experiments.ptb import (ZAREMBA_SMALL, architecture_model,
                                 architecture_record_name,
                                 run_architectures,
                                 summarize_architectures,
                                 zaremba_small_model)
from lstmlib.experiments.language_model import (LanguageModel, LMConfig, RunRecord,
                                    detach_state, divergence_threshold,
                                    diverged, evaluate_nats, load_record,
                                    save_record, train_language_model,
                                    uniform_init_)
from tests.command_line import exits, option_entries, refusal

pytestmark = pytest.mark.usefixtures("float64_and_seeded")


def periodic_corpus(period=5, vocab=7, tokens=600) -> Corpus:
    """A stream that repeats a fixed pattern: perfectly predictable after
    one period, so a trained model must beat the uniform ln V."""
    pattern = torch.tensor([(3 * k + 1) % vocab for k in range(period)])
    stream = pattern.repeat(tokens // period)
    return Corpus(stream, stream[:200], stream[:200],
                  Vocabulary([f"w{k}" for k in range(vocab)]))


def small_model(vocab=7, size=8, cell=BasicLSTMCell) -> LanguageModel:
    return LanguageModel(vocab, [cell(size, size)])


# -- the model ---------------------------------------------------------

def test_logits_shape_and_state_per_layer():
    model = LanguageModel(11, [BasicLSTMCell(4, 6), GRUCell(6, 5)])
    tokens = torch.randint(0, 11, (9, 3))
    logits, state = model(tokens)
    assert logits.shape == (9, 3, 11)
    assert len(state) == 2 and state[1].shape == (3, 5)


def test_state_carries_across_calls():
    """Running two halves with the state carried equals one run."""
    model = LanguageModel(11, [BasicLSTMCell(4, 6), VanillaRNNCell(6, 5)])
    tokens = torch.randint(0, 11, (10, 2))
    whole, _ = model(tokens)
    first, state = model(tokens[:4])
    second, _ = model(tokens[4:], state)
    torch.testing.assert_close(torch.cat([first, second]), whole,
                               rtol=0, atol=1e-12)


def test_lstmlib_and_torch_lstm_agree_with_the_same_weights():
    """A LanguageModel of BasicLSTMCells computes what the same model with
    nn.LSTM computes, once the weights are copied (to_torch)."""
    cells = [BasicLSTMCell(5, 6), BasicLSTMCell(6, 6)]
    ours = LanguageModel(13, cells)
    theirs = LanguageModel(13, [c.to_torch() for c in cells])
    theirs.embedding.load_state_dict(ours.embedding.state_dict())
    theirs.readout.load_state_dict(ours.readout.state_dict())
    tokens = torch.randint(0, 13, (7, 4))
    torch.testing.assert_close(theirs(tokens)[0], ours(tokens)[0],
                               rtol=0, atol=1e-10)


def test_bad_model_arguments():
    with pytest.raises(ValueError, match="at least one layer"):
        LanguageModel(5, [])
    with pytest.raises(ValueError, match="layer 1 expects inputs of size 4"):
        LanguageModel(5, [BasicLSTMCell(3, 6), BasicLSTMCell(4, 4)])
    with pytest.raises(TypeError, match="layer 0: expected an lstmlib Cell"):
        LanguageModel(5, [nn.Linear(3, 3)])
    with pytest.raises(ValueError, match="time-major"):
        LanguageModel(5, [nn.LSTM(3, 3, batch_first=True)])
    model = small_model()
    with pytest.raises(ValueError, match=r"\(T, B\) torch.long"):
        model(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="one entry per layer"):
        model(torch.zeros(3, 2, dtype=torch.long), [None, None])


def test_detach_state_cuts_the_graph_and_keeps_structure():
    x = torch.ones(2, requires_grad=True)
    state = [(x * 2, x * 3), None, x * 4]
    cut = detach_state(state)
    assert isinstance(cut, list) and isinstance(cut[0], tuple)
    assert cut[1] is None
    assert not any(t.requires_grad for t in (*cut[0], cut[2]))
    torch.testing.assert_close(cut[2], x.detach() * 4)


def test_uniform_init_bounds_every_parameter():
    model = uniform_init_(small_model(), 0.1)
    for p in model.parameters():
        assert p.abs().max() <= 0.1
        assert p.abs().max() > 0.05      # drawn, not left at zero
    with pytest.raises(ValueError, match="bound > 0"):
        uniform_init_(model, 0.0)


def test_uniform_init_records_what_it_drew():
    """The model says how its parameters were drawn; a new model says
    nothing (each module keeps its own initialization)."""
    assert small_model().initialization is None
    assert uniform_init_(small_model(), 0.1).initialization == \
        "uniform(-0.1, 0.1)"
    assert uniform_init_(small_model(), 0.05).initialization == \
        "uniform(-0.05, 0.05)"
    assert uniform_init_(small_model(), 1).initialization == \
        "uniform(-1.0, 1.0)"


def test_evaluate_nats_is_the_mean_cross_entropy():
    """Windowed, stateful evaluation equals one pass over the whole
    stream."""
    corpus = periodic_corpus()
    model = small_model()
    stream = corpus.valid
    windowed = evaluate_nats(model, stream, batch_size=1, bptt=7)
    logits, _ = model(stream[:-1, None])
    whole = nn.functional.cross_entropy(logits[:, 0], stream[1:]).item()
    assert windowed == pytest.approx(whole, rel=1e-10)


def test_untrained_model_is_near_uniform():
    model = small_model()
    with torch.no_grad():
        model.readout.weight.zero_()
        model.readout.bias.zero_()
    nats = evaluate_nats(model, periodic_corpus().valid, batch_size=2,
                         bptt=5)
    assert nats == pytest.approx(math.log(7), rel=1e-12)


# -- the configuration ------------------------------------------------

def test_learning_rate_schedule_of_zaremba():
    """lr 1 for epochs 1-4, then halved after every epoch."""
    rates = [ZAREMBA_SMALL.lr_at(e) for e in range(1, 14)]
    assert rates[:4] == [1.0] * 4
    assert rates[4:7] == [0.5, 0.25, 0.125]
    assert rates[-1] == pytest.approx(2.0 ** -9)


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": 0}, "batch_size"),
    ({"optimizer": "rmsprop"}, "'sgd' or 'adam'"),
    ({"lr": -1.0}, "lr > 0"),
    ({"clip_norm": 0.0}, "clip_norm > 0"),
    ({"patience": 0}, "patience"),
    ({"decay_after": -1}, "decay_after"),
    ({"loss_sum_over_time": 1}, "loss_sum_over_time"),
    ({"autocast": "float16"}, "bfloat16"),
])
def test_bad_config(kwargs, message):
    with pytest.raises((TypeError, ValueError), match=message):
        LMConfig(**kwargs)


# -- the trainer ------------------------------------------------------

def quick_config(**kwargs) -> LMConfig:
    base = dict(batch_size=4, bptt=6, epochs=3, optimizer="adam", lr=1e-2,
                clip_norm=1.0, seed=3)
    return LMConfig(**{**base, **kwargs})


def test_training_learns_a_predictable_stream():
    corpus = periodic_corpus()
    model = small_model()
    record = train_language_model(model, corpus, quick_config(epochs=4),
                                  progress=False)
    assert len(record.epochs) == 4
    assert record.epochs[-1].train_nats < record.epochs[0].train_nats
    assert record.best_valid_nats < 0.5 * math.log(7)
    # the model holds the best epoch's parameters, which measure the test
    assert record.test_nats == pytest.approx(
        evaluate_nats(model, corpus.test, batch_size=4, bptt=6), rel=1e-12)


def test_loss_summed_over_time_is_bptt_times_the_learning_rate():
    """Zaremba's loss (sum over the window's steps of the batch mean) has
    bptt times the gradient of the token mean: with plain SGD and no
    clipping, lr η on the sum trains exactly like lr bptt·η on the mean."""
    corpus = periodic_corpus()
    parameters = []
    for summed, lr in ((True, 0.05), (False, 0.3)):
        torch.manual_seed(0)
        model = small_model().double()
        config = quick_config(optimizer="sgd", lr=lr, clip_norm=None,
                              epochs=1, max_train_tokens=4 * 13,
                              loss_sum_over_time=summed)   # 2 windows of 6
        train_language_model(model, corpus, config, test=False,
                             progress=False)
        parameters.append(torch.cat([p.flatten() for p in model.parameters()]))
    assert torch.allclose(parameters[0], parameters[1], rtol=0, atol=1e-12)
    assert ZAREMBA_SMALL.loss_sum_over_time


def test_bfloat16_autocast_trains_and_is_recorded():
    """Under bfloat16 autocast the parameters, their gradients and Adam's
    state stay float32, the record says which precision ran, and the
    model still learns the predictable stream; its first window's loss
    is the float32 loss to bfloat16's precision (3 significant bits
    lost at most of its 8)."""
    corpus = periodic_corpus()
    losses = {}
    for autocast in (None, "bfloat16"):
        torch.manual_seed(0)
        model = small_model().float()
        config = quick_config(epochs=4, autocast=autocast)
        record = train_language_model(model, corpus, config, progress=False)
        assert all(p.dtype == torch.float32 for p in model.parameters())
        losses[autocast] = record.epochs[0].train_nats
        assert record.best_valid_nats < 0.5 * math.log(7)
    assert record.precision == "float32, bfloat16 autocast"
    assert record.config["autocast"] == "bfloat16"
    assert losses["bfloat16"] == pytest.approx(losses[None], rel=0.05)


def test_adam_is_the_fused_kernel(monkeypatch):
    """Adam's step runs as one fused kernel (``fused=True``)."""
    made = []
    real = torch.optim.Adam

    def spy(*args, **kwargs):
        made.append(kwargs)
        return real(*args, **kwargs)
    monkeypatch.setattr(torch.optim, "Adam", spy)
    train_language_model(small_model(), periodic_corpus(),
                         quick_config(epochs=1), progress=False)
    assert made == [{"lr": 1e-2, "fused": True}]


def test_same_seed_same_metrics():
    records = []
    for _ in range(2):
        torch.manual_seed(0)
        model = small_model(cell=GRUCell)
        records.append(train_language_model(
            model, periodic_corpus(), quick_config(), progress=False))
    a, b = ([(e.train_nats, e.valid_nats) for e in r.epochs]
            for r in records)
    assert a == b


def test_state_is_carried_and_detached_between_windows(monkeypatch):
    """The second window starts from the first window's final state, cut
    from its graph."""
    seen = []
    original = LanguageModel.forward

    def spy(self, tokens, state=None):
        seen.append(state)
        return original(self, tokens, state)

    monkeypatch.setattr(LanguageModel, "forward", spy)
    train_language_model(small_model(), periodic_corpus(),
                         quick_config(epochs=1), test=False, progress=False)
    assert seen[0] is None
    h, c = seen[1][0]
    assert not h.requires_grad and h.abs().sum() > 0


def test_early_stopping(monkeypatch):
    """With patience 2 and a validation loss that only rises after epoch 1,
    training stops after epoch 3 and reports epoch 1 as the best."""
    losses = iter([1.0, 1.5, 1.6, 1.7, 1.8])
    monkeypatch.setattr("lstmlib.experiments.language_model.evaluate_nats",
                        lambda *a, **k: next(losses))
    record = train_language_model(small_model(), periodic_corpus(),
                                  quick_config(epochs=5, patience=2),
                                  test=False, progress=False)
    assert [e.epoch for e in record.epochs] == [1, 2, 3]
    assert record.best_epoch == 1 and record.stopped_early


def test_divergence_is_an_error():
    with pytest.raises(FloatingPointError, match="diverged"):
        train_language_model(small_model(), periodic_corpus(),
                             quick_config(optimizer="sgd", lr=1e300,
                                          clip_norm=None),
                             progress=False)


def test_a_confidently_wrong_model_is_diverged_from_its_first_window():
    # Every logit but one token's is pushed down by 100: the stream never
    # shows that token, so the loss is about 100 nats per token, far above
    # 3 ln 7 = 5.8, whatever the machine's rounding.
    model = small_model()
    with torch.no_grad():
        model.readout.bias.fill_(-100.0)
        model.readout.bias[0] = 100.0
    with pytest.raises(FloatingPointError, match=r"diverged.*above 3 x ln V"):
        train_language_model(model, periodic_corpus(),
                             quick_config(lr=1e-12), progress=False)


def test_divergence_criterion():
    assert divergence_threshold(7) == pytest.approx(3 * math.log(7))
    assert not diverged(math.log(7), 7)          # the uniform predictor
    assert diverged(3.01 * math.log(7), 7)
    assert diverged(float("nan"), 7) and diverged(float("inf"), 7)
    with pytest.raises(ValueError, match="vocab_size"):
        divergence_threshold(0)


def test_trainer_rejects_bad_arguments():
    with pytest.raises(TypeError, match="expected a LanguageModel"):
        train_language_model(nn.Linear(2, 2), periodic_corpus(),
                             quick_config())
    with pytest.raises(TypeError, match="expected an LMConfig"):
        train_language_model(small_model(), periodic_corpus(), {})


# -- records ----------------------------------------------------------

def test_record_round_trip(tmp_path):
    saved = []
    record = train_language_model(small_model(), periodic_corpus(),
                                  quick_config(epochs=2), progress=False,
                                  on_epoch=lambda r: saved.append(
                                      len(r.epochs)))
    assert saved == [1, 2]
    path = save_record(record, tmp_path / "sub" / "run.json")
    loaded = load_record(path)
    assert loaded == record
    data = json.loads(path.read_text())
    for key in ("config", "epochs", "versions", "device", "wall_seconds",
                "started"):
        assert key in data
    assert data["config"]["seed"] == 3 and data["versions"]["torch"]
    assert list(tmp_path.glob("sub/*.part")) == []


def test_record_stores_the_initialization(tmp_path):
    """model["init"] is written by the initializer, survives a round
    trip, and is absent when no initializer drew the whole model."""
    config = quick_config(epochs=1)
    drawn = train_language_model(uniform_init_(small_model(), 0.1),
                                 periodic_corpus(), config, test=False,
                                 progress=False)
    assert drawn.model["init"] == "uniform(-0.1, 0.1)"
    loaded = load_record(save_record(drawn, tmp_path / "drawn.json"))
    assert loaded.model["init"] == "uniform(-0.1, 0.1)"
    own = train_language_model(small_model(), periodic_corpus(), config,
                               test=False, progress=False)
    assert "init" not in own.model
    assert set(drawn.model) == set(own.model) | {"init"}


def test_records_without_init_still_load():
    """The committed records predate model["init"] and load as they are."""
    record = load_record(result_path("zaremba_small/torch.json"))
    assert "init" not in record.model
    assert record.model["vocab_size"] == 10_000


def test_save_record_leaves_no_partial_file(tmp_path):
    record = RunRecord(name="x", model={}, config={"bad": object()})
    with pytest.raises(TypeError):
        save_record(record, tmp_path / "run.json")
    assert list(tmp_path.iterdir()) == []


def test_saved_record_has_the_usual_permissions(tmp_path):
    """Readable like any file the user creates, not 0600 like mkstemp's."""
    umask = os.umask(0o022)
    try:
        path = save_record(RunRecord(name="x", model={}, config={}),
                           tmp_path / "run.json")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_load_record_rejects_unknown_fields(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"name": "x", "model": {}, "config": {},
                                "surprise": 1}))
    with pytest.raises(ValueError, match="unknown fields"):
        load_record(path)


# -- vocabulary limit -------------------------------------------------

def test_limit_vocabulary_keeps_the_most_frequent():
    vocab = Vocabulary(["a", "b", "c", "d"])
    stream = torch.tensor([0, 1, 2, 3, 0])
    small = limit_vocabulary(Corpus(stream, stream, stream, vocab), 3)
    assert small.vocab.itos == ["a", "b", OTHER]
    assert small.train.tolist() == [0, 1, 2, 2, 0]
    with pytest.raises(ValueError, match="2 <= size <= 4"):
        limit_vocabulary(Corpus(stream, stream, stream, vocab), 5)


# -- experiments ------------------------------------------------------

def test_zaremba_small_model_layout():
    for implementation in ("lstmlib", "torch"):
        model = zaremba_small_model(10_000, implementation)
        # 4.65 M parameters: embedding and read-out 2 x 2.0 M, two LSTM
        # layers of 4 * 200 * (200 + 200) + biases
        lstm = 2 * (4 * 200 * 400 + 4 * 200)
        extra = 2 * 4 * 200 if implementation == "torch" else 0
        expected = 10_000 * 200 + 200 * 10_000 + 10_000 + lstm + extra
        assert sum(p.numel() for p in model.parameters()) == expected
        assert max(p.abs().max().item() for p in model.parameters()) <= 0.1
        assert model.initialization == "uniform(-0.1, 0.1)"
    with pytest.raises(ValueError, match="'lstmlib' or 'torch'"):
        zaremba_small_model(10, "jax")


def test_architecture_model_uses_the_post_variant():
    model = architecture_model(50, 5, state_size=6)
    cell = model.layers[0].cell
    assert (cell.diff1, cell.diff2, cell.diff3) == (False, True, False)
    assert model.embedding.embedding_dim == 6
    with pytest.raises(ValueError, match="variant in"):
        architecture_model(50, 9)


def test_summary_mean_and_interval():
    def record(variant, lr, nats):
        return RunRecord(name=f"variant {variant}, lr {lr}, trial 0",
                         model={}, config={"lr": lr}, best_valid_nats=nats)
    rows = summarize_architectures([record(2, 1e-3, 5.0), record(2, 1e-3,
                                                                 5.2),
                                    record(1, 1e-3, 4.0),
                                    record(1, 3e-3, 4.5)])
    assert [(r["lr"], r["variant"]) for r in rows] == [(3e-3, 1), (1e-3, 1),
                                                       (1e-3, 2)]
    two = rows[2]
    assert two["valid_nats"] == pytest.approx(5.1)
    # t_{0.975,1} * s / sqrt(2) with s = 0.1414...
    assert two["ci95_nats"] == pytest.approx(12.7062047 * 0.1, rel=1e-6)
    assert math.isnan(rows[0]["ci95_nats"])


def _claim_record(variant, seed, nats, lr=1e-3):
    return RunRecord(name=f"variant {variant}, lr {lr:g}, trial {seed}",
                     model={}, config={"lr": lr, "seed": seed},
                     best_valid_nats=nats)


def test_post_claims_cover_the_posts_four_statements():
    from lstmlib.cells.lstm import LSTM_VARIANTS
    from lstmlib.experiments.ptb import NO_EFFECT_CLAIM, POST_CLAIMS
    assert len(POST_CLAIMS) == 4 and NO_EFFECT_CLAIM in POST_CLAIMS

    def differs_only_in(a, b, name):
        va, vb = LSTM_VARIANTS[a], LSTM_VARIANTS[b]
        return {k for k in va if va[k] != vb[k]} == {name}
    # each difference's claim compares pairs that differ in it alone
    for claim, name, without in [("difference 3 hurts", "diff3", True),
                                 (NO_EFFECT_CLAIM, "diff1", True)]:
        for a, b in POST_CLAIMS[claim]:
            assert differs_only_in(a, b, name)
            assert LSTM_VARIANTS[a][name] is not without
    for a, b in POST_CLAIMS["difference 2 recovers what difference 3 loses"]:
        assert differs_only_in(a, b, "diff2") and LSTM_VARIANTS[a]["diff2"]
        assert LSTM_VARIANTS[a]["diff3"]
    assert {b for _, b in POST_CLAIMS["architecture 5 has the lowest loss"]
            } == set(LSTM_VARIANTS) - {5}


def test_post_claim_tests_pair_by_seed_and_adjust_together():
    from lstmlib.experiments.ptb import post_claim_tests
    seeds = range(5)
    records = ([_claim_record(5, s, 4.0 + 0.01 * s) for s in seeds]
               + [_claim_record(1, s, 4.2 + 0.01 * s + 0.001 * (s % 2))
                  for s in seeds]
               + [_claim_record(7, s, 3.5 + 0.02 * s) for s in seeds]
               + [_claim_record(8, s, 4.0 + 0.05 * (-1) ** s)
                  for s in (0, 1, 2)]
               + [_claim_record(2, 0, 9.0)]            # one seed: not tested
               + [_claim_record(1, s, 1.0, lr=3e-3) for s in seeds])
    tests = post_claim_tests(records, 1e-3)
    found = {(t.claim, t.a, t.b): t for t in tests}
    assert list(found) == [("architecture 5 has the lowest loss", 5, 1),
                           ("architecture 5 has the lowest loss", 5, 7),
                           ("architecture 5 has the lowest loss", 5, 8),
                           ("difference 3 hurts", 1, 7)]
    five_one = found["architecture 5 has the lowest loss", 5, 1]
    assert five_one.seeds == (0, 1, 2, 3, 4)
    assert five_one.verdict == "replicates"      # 5 lower in every seed
    assert five_one.one_sided.mean_difference == pytest.approx(-0.2004)
    assert five_one.perplexity_ratio == pytest.approx(math.exp(-0.2004))
    assert five_one.low < -0.2004 < five_one.high < 0
    assert found["difference 3 hurts", 1, 7].verdict == "reversed"
    assert found["architecture 5 has the lowest loss", 5, 7].verdict == \
        "reversed"
    five_eight = found["architecture 5 has the lowest loss", 5, 8]
    assert five_eight.seeds == (0, 1, 2)
    assert five_eight.verdict == "too few seeds"     # fewer than 5
    assert math.isnan(five_eight.adjusted_p)
    assert post_claim_tests(records, 1e-3, min_seeds=3)[2].verdict == \
        "undecided"
    # Benjamini-Hochberg over the three judged: never below the raw p
    judged = [t for t in tests if t.verdict != "too few seeds"]
    raw = [t.one_sided.t_p for t in judged]
    assert len(judged) == 3
    assert all(t.adjusted_p >= p for t, p in zip(judged, raw))
    assert max(t.adjusted_p for t in judged) == pytest.approx(max(raw))
    assert post_claim_tests(records, 1e-4) == []


def test_no_effect_claim_is_tested_both_ways():
    from lstmlib.experiments.ptb import NO_EFFECT_CLAIM, post_claim_tests
    near = [_claim_record(v, s, 4.0 + 0.01 * ((s * v) % 3))
            for v in (1, 2) for s in range(5)]
    (test,) = post_claim_tests(near, 1e-3)
    assert test.claim == NO_EFFECT_CLAIM and test.verdict == "replicates"
    assert test.one_sided.alternative == "two-sided"
    apart = [_claim_record(1, s, 4.0 + 0.01 * s) for s in range(5)] + [
        _claim_record(2, s, 3.0 + 0.01 * s * s) for s in range(5)]
    (test,) = post_claim_tests(apart, 1e-3)
    assert test.verdict == "an effect"


def test_architecture_records_load_finished_runs_only(tmp_path):
    from lstmlib.experiments.ptb import load_architecture_records
    for variant, seed in [(8, 1), (1, 0), (8, 0)]:
        save_record(_claim_record(variant, seed, 4.0), tmp_path /
                    architecture_record_name(variant, 1e-3, seed))
    save_record(_claim_record(5, 0, 4.0), tmp_path / "variant5_lr1e-03_"
                "trial0.partial.json")
    records = load_architecture_records(tmp_path)
    assert [r.name for r in records] == ["variant 1, lr 0.001, trial 0",
                                         "variant 8, lr 0.001, trial 0",
                                         "variant 8, lr 0.001, trial 1"]
    with pytest.raises(FileNotFoundError, match="folder of sweep records"):
        load_architecture_records(tmp_path / "absent")


def test_architectures_sweep_resumes(tmp_path, monkeypatch):
    """Records are written per run; a second call trains nothing."""
    corpus = periodic_corpus(vocab=7, tokens=400)
    monkeypatch.setattr("lstmlib.experiments.ptb.load_ptb", lambda root: corpus)
    base = quick_config(epochs=1, batch_size=2, bptt=5)
    paths = run_architectures(tmp_path, variants=[1, 8], lrs=[1e-2],
                              trials=2, base=base, state_size=4,
                              progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        architecture_record_name(v, 1e-2, k) for v in (1, 8)
        for k in (0, 1))            # no checkpoint or partial record left
    stamps = [p.stat().st_mtime_ns for p in paths]
    run_architectures(tmp_path, variants=[1, 8], lrs=[1e-2], trials=2,
                      base=base, state_size=4, progress=False)
    assert [p.stat().st_mtime_ns for p in paths] == stamps
    seeds = {load_record(p).config["seed"] for p in paths}
    assert seeds == {3, 4}
    with pytest.raises(ValueError, match="expected 0 <= first_trial < "
                       "trials, got first_trial=2, trials=2"):
        run_architectures(tmp_path, variants=[1], lrs=[1e-2], trials=2,
                          first_trial=2, base=base, progress=False)


def test_command_line_help(capsys):
    out, _ = exits(main, ["--help"], capsys, 0)
    assert "zaremba-small" in out and "architectures" in out


def test_command_line_zaremba_writes_a_record(tmp_path, monkeypatch):
    corpus = periodic_corpus(vocab=9, tokens=2000)
    monkeypatch.setattr("lstmlib.commands.ptb.load_ptb", lambda root: corpus)
    monkeypatch.setattr("lstmlib.commands.ptb.zaremba_small_model",
                        lambda vocab, impl: uniform_init_(LanguageModel(
                            vocab, [BasicLSTMCell(6, 6)]), 0.1))
    out = tmp_path / "z.json"
    assert main(["zaremba-small", "--epochs", "1", "--out", str(out)]) == 0
    record = load_record(out)
    assert record.model["init"] == "uniform(-0.1, 0.1)"
    assert record.command.endswith(f"--epochs 1 --out {out}")
    assert record.config["lr"] == 1.0 and record.test_nats is not None
    assert record.config["loss_sum_over_time"] is True
    assert record.precision == str(torch.get_default_dtype())[6:]  # dtype,
    assert "git_commit" in record.versions          # the source's commit
    assert main(["zaremba-small", "--epochs", "1", "--loss", "token-mean",
                 "--out", str(out)]) == 0
    assert load_record(out).config["loss_sum_over_time"] is False
    assert main(["zaremba-small", "--epochs", "1", "--precision", "bfloat16",
                 "--out", str(out)]) == 0
    record = load_record(out)
    assert record.config["autocast"] == "bfloat16"
    assert record.precision.endswith(", bfloat16 autocast")


# -- the command line guides -----------------------------------------------


@pytest.mark.parametrize("experiment", ["zaremba-small", "architectures"])
def test_every_option_says_what_it_is_and_its_default(experiment, capsys):
    entries = option_entries(exits(main, [experiment, "--help"], capsys, 0)[0])
    assert len(entries) >= 10
    for entry in entries:
        assert "(default: " in entry or "(required" in entry, entry


@pytest.mark.parametrize("argv, expected", [
    (["zaremba-small", "--epochs", "0"],
     "argument --epochs: expected a positive integer, got '0'"),
    (["zaremba-small", "--epochs", "two"],
     "argument --epochs: expected a positive integer, got 'two'"),
    (["architectures", "--lrs", "1e-3", "-1"],
     "argument --lrs: expected a number > 0, got '-1'"),
    (["architectures", "--lrs", "nan"],
     "argument --lrs: expected a number > 0, got 'nan'"),
    (["architectures", "--state-size", "-4"],
     "argument --state-size: expected a positive integer, got '-4'"),
    (["architectures", "--trials", "0"],
     "argument --trials: expected a positive integer, got '0'"),
    (["architectures", "--trials", "5", "--first-trial", "5"],
     "argument --first-trial: expected a trial below --trials 5, got 5"),
    (["architectures", "--first-trial", "-1"],
     "argument --first-trial: expected an integer >= 0, got '-1'"),
    (["architectures", "--vocab-limit", "1"],
     "argument --vocab-limit: expected an integer >= 2, got '1'"),
    (["zaremba-small", "--seed", "-1"],
     "argument --seed: expected an integer >= 0, got '-1'"),
    (["zaremba-small", "--threads", "0"],
     "argument --threads: expected a positive integer, got '0'"),
    (["zaremba-small", "--max-train-tokens", "0"],
     "argument --max-train-tokens: expected a positive integer, got '0'"),
    (["zaremba-small", "--data", "/no/such/folder"],
     "argument --data: expected an existing folder, got '/no/such/folder'"),
    (["zaremba-small", "--device", "gpu"],
     "argument --device: expected a torch device such as 'cpu' or 'cuda', "
     "got 'gpu'"),
])
def test_bad_values_are_one_line_errors_at_parse_time(argv, expected,
                                                      capsys, tmp_path):
    out = ["--out", str(tmp_path / "r.json")] if argv[0] == "zaremba-small" \
        else ["--out-dir", str(tmp_path)]
    assert refusal(main, argv + out, capsys).endswith(f"error: {expected}")
    assert list(tmp_path.iterdir()) == []               # nothing ran


def test_cuda_without_cuda_is_said_plainly(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    last = refusal(main, ["zaremba-small", "--device", "cuda",
                          "--out", str(tmp_path / "r.json")], capsys)
    assert "argument --device: expected a device this machine has, got " \
           "'cuda': CUDA is not available here" in last


def test_the_sweep_prints_one_line_per_epoch(tmp_path, monkeypatch, capsys):
    """Whether or not output is a terminal (here: captured, not one), each
    epoch of each run prints its metrics, the time so far and left."""
    corpus = periodic_corpus(vocab=7, tokens=400)
    monkeypatch.setattr("lstmlib.experiments.ptb.load_ptb",
                        lambda root: corpus)
    assert main(["architectures", "--out-dir", str(tmp_path),
                 "--variants", "1", "8", "--lrs", "1e-2", "--trials", "1",
                 "--epochs", "2", "--patience", "2", "--state-size", "4",
                 "--max-train-tokens", "300"]) == 0
    lines = capsys.readouterr().out.splitlines()
    epochs = [line for line in lines if ": epoch " in line]
    assert [line.split(":")[0:2] for line in epochs] == [
        [f"variant {v}, lr 0.01, trial 0", f" epoch {e}/2"]
        for v in (1, 8) for e in (1, 2)]
    assert all("valid" in line and "min so far" in line and "min left" in line
               for line in epochs)


def test_sweep_coverage_reads_each_records_command(tmp_path, monkeypatch):
    """A sweep run in pieces (trial by trial, as the committed one was)
    covers what its commands asked for; a missing run, a record its
    command did not ask for and a record under the wrong name are named."""
    from lstmlib.commands.ptb import architecture_coverage
    corpus = periodic_corpus(vocab=7, tokens=400)
    monkeypatch.setattr("lstmlib.experiments.ptb.load_ptb",
                        lambda root: corpus)
    common = ["architectures", "--out-dir", str(tmp_path), "--lrs", "1e-2",
              "--epochs", "1", "--state-size", "4",
              "--max-train-tokens", "200", "--no-progress"]
    for trials in ("1", "2"):
        assert main(common + ["--variants", "1", "8",
                              "--trials", trials]) == 0
    coverage = architecture_coverage(tmp_path)
    assert coverage.complete and coverage.records == 4
    assert len(coverage.commands) == 2
    assert sorted(coverage.expected) == [(v, 1e-2, k) for v in (1, 8)
                                         for k in (0, 1)]
    (tmp_path / architecture_record_name(8, 1e-2, 1)).unlink()
    coverage = architecture_coverage(tmp_path)
    assert coverage.missing == [(8, 1e-2, 1)] and not coverage.unexpected
    moved = tmp_path / architecture_record_name(1, 1e-2, 1)
    moved.rename(tmp_path / architecture_record_name(1, 1e-2, 7))
    coverage = architecture_coverage(tmp_path)
    assert coverage.unexpected == [
        f"{tmp_path / architecture_record_name(1, 1e-2, 7)}: should be "
        f"{architecture_record_name(1, 1e-2, 1)}"]
    # one architecture's seeds spread over processes: trial 2 on its own
    assert main(common + ["--variants", "8", "--trials", "3",
                          "--first-trial", "2"]) == 0
    coverage = architecture_coverage(tmp_path)
    assert (8, 1e-2, 2) in coverage.expected and (8, 1e-2, 2) not in \
        coverage.missing
    assert load_record(tmp_path / architecture_record_name(8, 1e-2, 2)
                       ).config["seed"] == 2 + seed_base()
    record = load_record(tmp_path / architecture_record_name(1, 1e-2, 0))
    record.config["patience"] = 5
    save_record(record, tmp_path / architecture_record_name(1, 1e-2, 0))
    assert any("configuration differs from its command's in ['patience']"
               in line for line in architecture_coverage(tmp_path).unexpected)


def test_committed_sweep_records_are_what_their_commands_asked_for():
    from lstmlib.commands.ptb import architecture_coverage
    from lstmlib.experiments.ptb import load_architecture_records
    coverage = architecture_coverage()
    assert coverage.unexpected == []
    assert coverage.records == len(load_architecture_records())
    for record in load_architecture_records():
        assert record.versions["git_dirty"] is False
        assert len(record.versions["git_commit"]) == 40
        # bfloat16 autocast where the CPU has bfloat16 arithmetic, float32
        # where it has not; the record says which, as its command asked
        precision = record.config["autocast"] or "float32"
        assert f" --precision {precision} " in record.command
        assert record.precision == {
            "bfloat16": "float32, bfloat16 autocast",
            "float32": "float32"}[precision]
        assert record.model["vocab_size"] == 10_000


def test_the_coverage_option_runs_nothing(tmp_path, capsys):
    assert main(["architectures", "--coverage", "--out-dir",
                 str(tmp_path)]) == 0
    assert list(tmp_path.iterdir()) == []
    assert "0 finished records of 0 asked for" in capsys.readouterr().out


class _Killed(Exception):
    """Stands for the process being killed after an epoch."""


def _kill_after(epoch):
    def on_epoch(record):
        if len(record.epochs) == epoch:
            raise _Killed
    return on_epoch


@pytest.mark.parametrize("killed_after", [1, 3])
def test_a_stopped_run_continues_from_its_checkpoint_exactly(tmp_path,
                                                             killed_after):
    corpus = periodic_corpus()
    config = quick_config(epochs=4, autocast="bfloat16")

    def fresh():
        torch.manual_seed(11)
        return small_model()
    whole_model = fresh()
    whole = train_language_model(whole_model, corpus, config, progress=False)
    checkpoint = tmp_path / "run.checkpoint.pt"
    first_start = []
    kill = _kill_after(killed_after)
    with pytest.raises(_Killed):
        train_language_model(fresh(), corpus, config, progress=False,
                             checkpoint=checkpoint,
                             on_epoch=lambda r: first_start.append(
                                 r.started) or kill(r))
    assert checkpoint.is_file()
    model = fresh()
    seen = []
    resumed = train_language_model(model, corpus, config, progress=False,
                                   checkpoint=checkpoint,
                                   on_epoch=lambda r: seen.append(
                                       len(r.epochs)))
    assert seen == list(range(killed_after + 1, 5))   # only the rest ran
    for key in ("train_nats", "valid_nats", "lr", "epoch"):
        assert [getattr(e, key) for e in resumed.epochs] == [
            getattr(e, key) for e in whole.epochs]
    assert (resumed.best_epoch, resumed.best_valid_nats, resumed.test_nats
            ) == (whole.best_epoch, whole.best_valid_nats, whole.test_nats)
    assert all(torch.equal(a, b) for a, b in zip(
        model.state_dict().values(), whole_model.state_dict().values()))
    assert whole.resumed == [] and [set(r) for r in resumed.resumed] == [
        {"at", "git_commit", "git_dirty"}]
    assert resumed.started == first_start[0]       # the first start's
    # started again from the finished run's checkpoint: no epoch, same end
    again = train_language_model(fresh(), corpus, config, progress=False,
                                 checkpoint=checkpoint,
                                 on_epoch=lambda r: seen.append(0))
    assert 0 not in seen and again.test_nats == whole.test_nats
    assert len(again.resumed) == 2


def test_a_run_that_had_stopped_early_stays_stopped(tmp_path):
    """A run killed after the epoch that met its patience (before the
    test loss was measured) ends at once when started again."""
    corpus = periodic_corpus()
    config = quick_config(epochs=6, patience=2)
    checkpoint = tmp_path / "c.pt"
    with pytest.raises(_Killed):
        train_language_model(small_model(), corpus, config, progress=False,
                             checkpoint=checkpoint, on_epoch=_kill_after(2))
    state = torch.load(checkpoint, weights_only=False)
    state["record"]["best_epoch"] = 0        # as if 2 epochs of no progress
    state["record"]["best_valid_nats"] = -1.0
    torch.save(state, checkpoint)
    seen = []
    again = train_language_model(small_model(), corpus, config,
                                 progress=False, checkpoint=checkpoint,
                                 on_epoch=seen.append)
    assert seen == [] and len(again.epochs) == 2 and again.stopped_early
    assert again.test_nats is not None


def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    corpus = periodic_corpus()
    checkpoint = tmp_path / "c.pt"
    with pytest.raises(_Killed):
        train_language_model(small_model(), corpus, quick_config(),
                             progress=False, checkpoint=checkpoint,
                             on_epoch=_kill_after(1))
    with pytest.raises(ValueError, match="belongs to another run"):
        train_language_model(small_model(), corpus, quick_config(lr=0.5),
                             progress=False, checkpoint=checkpoint)
