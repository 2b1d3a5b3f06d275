"""lstmlib.experiments.training: the models read out what they should, the training
loop is reproducible from its seed, learns an easy instance, and refuses
bad input."""
import math

import pytest
import torch
from torch.nn import functional as F

from lstmlib import BasicLSTMCell, VanillaRNNCell
from lstmlib.experiments.training import (FinalStateClassifier, FinalStateRegressor,
                              PerStepClassifier, per_step_cross_entropy,
                              train_model, train_regression)

pytestmark = pytest.mark.usefixtures("float64_and_seeded")


def echo_batch(generator, T=6, B=16, symbols=4):
    """Symbols in, the same symbols out: solvable step by step."""
    x = torch.randint(0, symbols, (T, B), generator=generator)
    return x, x.clone()


def last_symbol_batch(generator, T=5, B=16, symbols=3):
    """Classify a sequence by its last symbol (ids as one-hot floats)."""
    ids = torch.randint(0, symbols, (T, B), generator=generator)
    return F.one_hot(ids, symbols).double(), ids[-1]


def test_per_step_classifier_reads_every_step():
    torch.manual_seed(1)
    model = PerStepClassifier(VanillaRNNCell(4, 5), 3)
    ids = torch.randint(0, 4, (7, 2))
    logits = model(ids)
    assert logits.shape == (7, 2, 3)
    # symbol ids are one-hot encoded: the same as passing one-hot floats
    assert torch.equal(logits, model(F.one_hot(ids, 4).double()))
    outputs, _ = model.recurrent(F.one_hot(ids, 4).double())
    assert torch.allclose(logits, model.readout(outputs), atol=1e-15)


def test_final_state_classifier_reads_the_last_output():
    torch.manual_seed(2)
    model = FinalStateClassifier(BasicLSTMCell(3, 4), 5)
    assert isinstance(model, FinalStateRegressor)
    x = torch.randn(6, 2, 3)
    outputs, _ = model.recurrent(x)
    assert torch.allclose(model(x), model.readout(outputs[-1]), atol=1e-15)
    ids = torch.randint(0, 3, (6, 2))
    assert torch.equal(model(ids), model(F.one_hot(ids, 3).double()))


def test_per_step_cross_entropy_averages_over_steps_and_sequences():
    logits = torch.randn(4, 3, 5)
    target = torch.randint(0, 5, (4, 3))
    by_hand = -torch.log_softmax(logits, -1).gather(
        2, target.unsqueeze(2)).mean()
    assert per_step_cross_entropy(logits, target).item() == pytest.approx(
        by_hand.item(), rel=1e-12)
    # uniform logits score ln C exactly
    assert per_step_cross_entropy(torch.zeros(4, 3, 5), target).item() == \
        pytest.approx(math.log(5), rel=1e-12)


def fresh_echo_model(seed=0):
    torch.manual_seed(seed)
    return PerStepClassifier(VanillaRNNCell(4, 8), 4)


def test_train_model_is_reproducible_from_the_seed():
    runs = [train_model(fresh_echo_model(), echo_batch,
                        per_step_cross_entropy, steps=15, seed=3)
            for _ in range(2)]
    assert runs[0] == runs[1]                      # identical, not close
    other = train_model(fresh_echo_model(), echo_batch,
                        per_step_cross_entropy, steps=15, seed=4)
    assert other != runs[0]


def test_train_model_learns_easy_instances():
    losses = train_model(fresh_echo_model(), echo_batch,
                         per_step_cross_entropy, steps=150, lr=3e-2)
    assert losses[0] > 0.8 * math.log(4)           # starts near chance
    assert sum(losses[-10:]) / 10 < 0.1            # echoes in the end
    torch.manual_seed(5)
    classifier = FinalStateClassifier(BasicLSTMCell(3, 8), 3)
    losses = train_model(classifier, last_symbol_batch, F.cross_entropy,
                         steps=150, lr=3e-2)
    assert sum(losses[-10:]) / 10 < 0.1 * math.log(3)


def test_train_regression_is_train_model_with_the_squared_error():
    def batch(generator):
        x = torch.randn(4, 8, 2, generator=generator)
        return x, x[0]

    def model():
        torch.manual_seed(6)
        return FinalStateRegressor(VanillaRNNCell(2, 6), 2)

    calls = []
    a = train_regression(model(), batch, steps=12, seed=1,
                         before_step=calls.append)
    b = train_model(model(), batch, F.mse_loss, steps=12, seed=1)
    assert a == b and calls == list(range(13))


def test_stop_below_ends_training_once_the_loss_is_low():
    calls = []
    losses = train_model(fresh_echo_model(), echo_batch,
                         per_step_cross_entropy, steps=1000, lr=3e-2,
                         stop_below=0.2, before_step=calls.append)
    assert 10 <= len(losses) < 1000
    assert sum(losses[-10:]) / 10 < 0.2 <= sum(losses[-11:-1]) / 10
    assert calls[-1] == len(losses)                 # the final call


@pytest.mark.parametrize("bad, error, words", [
    (dict(steps=0), ValueError, "steps"),
    (dict(loss="mse"), TypeError, "loss"),
    (dict(stop_below=float("nan")), ValueError, "stop_below"),
])
def test_train_model_refuses_bad_arguments(bad, error, words):
    arguments = dict(loss=per_step_cross_entropy, steps=3) | bad
    with pytest.raises(error, match=words):
        train_model(fresh_echo_model(), echo_batch, **arguments)


def test_models_refuse_bad_inputs():
    model = fresh_echo_model()
    with pytest.raises(ValueError, match=r"symbol ids in \[0, 4\)"):
        model(torch.tensor([[0, 4]]))
    with pytest.raises(ValueError, match=r"\(T, B\)"):
        model(torch.zeros(2, 3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="num_classes"):
        PerStepClassifier(VanillaRNNCell(2, 3), 0)
    with pytest.raises(ValueError, match="num_classes"):
        FinalStateClassifier(VanillaRNNCell(2, 3), 0)
    with pytest.raises(ValueError, match="per_step_cross_entropy"):
        per_step_cross_entropy(torch.zeros(3, 2, 4),
                               torch.zeros(3, 3, dtype=torch.long))
