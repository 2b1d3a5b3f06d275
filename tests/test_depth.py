"""lstmlib.networks.depth: plain, highway and residual layers, the network builder,
and the Jacobian and gradient measurements of the highway and residual
chapter."""
import pytest
import torch
from torch.autograd import gradcheck
from torch.autograd.functional import jacobian

from lstmlib.networks.depth import (LAYER_KINDS, DeepNetwork, HighwayLayer,
                           PlainLayer, ResidualBlock, deep_network,
                           depth_jacobians, depth_sensitivity,
                           layer_gradient_norms, train_regression_ensemble)
from lstmlib.seeds import seeds as book_seeds
from lstmlib.experiments.training import train_regression

pytestmark = pytest.mark.usefixtures("float64_and_seeded")

N, B = 5, 3


def count(module):
    return sum(p.numel() for p in module.parameters())


# built inside each test, after the fixture has made float64 the default
LAYERS = {
    "plain": lambda: PlainLayer(N),
    "highway": lambda: HighwayLayer(N),
    "highway-uncoupled": lambda: HighwayLayer(N, coupled=False),
    "residual": lambda: ResidualBlock(N),
    "residual-relu-h7": lambda: ResidualBlock(N, hidden_size=7,
                                              nonlinearity="relu"),
}


# -- shapes, layouts and initial values ---------------------------------------
@pytest.mark.parametrize("name", LAYERS)
def test_shapes(name):
    layer = LAYERS[name]()
    x = torch.randn(B, N)
    assert layer(x).shape == (B, N)
    assert layer(torch.randn(2, B, N)).shape == (2, B, N)


def test_parameter_layouts():
    shapes = lambda m: {k: tuple(v.shape) for k, v in m.named_parameters()}
    assert shapes(PlainLayer(N)) == {"W": (N, N), "b": (N,)}
    assert shapes(HighwayLayer(N)) == {"W": (2 * N, N), "b": (2 * N,)}
    assert shapes(HighwayLayer(N, coupled=False)) == {"W": (3 * N, N),
                                                      "b": (3 * N,)}
    assert shapes(ResidualBlock(N, hidden_size=7)) == {
        "W_1": (7, N), "b_1": (7,), "W_2": (N, 7), "b_2": (N,)}


def test_highway_blocks_are_named_after_the_books_symbols():
    """H the candidate, g the transform gate, C the carry gate."""
    assert HighwayLayer(N).gate_names == ("H", "g")
    assert HighwayLayer(N, coupled=False).gate_names == ("H", "g", "C")


def test_highway_gate_biases_start_carrying():
    layer = HighwayLayer(N)
    assert torch.equal(layer.b[N:], torch.full((N,), -2.0))
    free = HighwayLayer(N, coupled=False, gate_bias=-3.0)
    assert torch.equal(free.b[N:2 * N], torch.full((N,), -3.0))
    assert torch.equal(free.b[2 * N:], torch.full((N,), 3.0))
    bound = N ** -0.5
    assert free.W.abs().max() <= bound and free.b[:N].abs().max() <= bound
    g, _ = layer.gates(torch.zeros(1, N))
    assert torch.allclose(g, torch.full((1, N), -2.0).sigmoid())


def test_residual_initial_ranges():
    block = ResidualBlock(4, hidden_size=100)
    assert block.W_1.abs().max() <= 0.5           # 1/√4
    assert block.W_2.abs().max() <= 0.1           # 1/√100
    assert block.W_2.abs().max() > 0.05


# -- the equations ------------------------------------------------------------
def test_plain_layer_by_hand():
    layer, x = PlainLayer(N, "relu"), torch.randn(B, N)
    assert torch.allclose(layer(x), torch.relu(x @ layer.W.T + layer.b),
                          rtol=0, atol=1e-15)


def test_coupled_highway_is_convex_combination():
    layer, x = HighwayLayer(N), torch.randn(B, N)
    g, C = layer.gates(x)
    assert torch.allclose(g + C, torch.ones_like(g), rtol=0, atol=1e-15)
    H = torch.tanh(x @ layer.W[:N].T + layer.b[:N])
    assert torch.allclose(layer(x), H * g + x * C, rtol=0, atol=1e-15)
    # each unit lies between its old value and the candidate
    y = layer(x)
    low, high = torch.minimum(x, H), torch.maximum(x, H)
    assert torch.all(y >= low - 1e-15) and torch.all(y <= high + 1e-15)


def test_uncoupled_with_mirrored_carry_equals_coupled():
    coupled, free = HighwayLayer(N), HighwayLayer(N, coupled=False)
    with torch.no_grad():
        free.W.copy_(torch.cat([coupled.W, -coupled.W[N:]]))
        free.b.copy_(torch.cat([coupled.b, -coupled.b[N:]]))
    x = torch.randn(B, N)
    assert torch.allclose(free(x), coupled(x), rtol=0, atol=1e-15)
    # and with independent carry parameters it is a different function
    assert not torch.allclose(HighwayLayer(N, coupled=False)(x), coupled(x))


@pytest.mark.parametrize("coupled", [True, False])
def test_highway_closed_gate_approaches_identity(coupled):
    x = torch.randn(B, N)
    errors = []
    for bias in (-5.0, -10.0, -20.0, -40.0):
        layer = HighwayLayer(N, coupled=coupled, gate_bias=bias)
        errors.append((layer(x) - x).abs().max().item())
    assert errors == sorted(errors, reverse=True)
    assert errors[-1] < 1e-15 and errors[0] > 1e-4


def test_residual_with_silent_last_layer_is_identity():
    block, x = ResidualBlock(N), torch.randn(B, N)
    with torch.no_grad():
        block.W_2.zero_()
        block.b_2.zero_()
    assert torch.equal(block(x), x)


def test_residual_jacobian_is_identity_plus_delta_jacobian():
    block, x = ResidualBlock(N, hidden_size=7), torch.randn(1, N)
    J = jacobian(lambda z: block(z)[0], x)[:, 0]
    slope = 1 - torch.tanh(x[0] @ block.W_1.T + block.b_1) ** 2
    expected = torch.eye(N) + block.W_2 @ torch.diag(slope) @ block.W_1
    assert torch.allclose(J, expected, rtol=0, atol=1e-14)


@pytest.mark.parametrize("name", LAYERS)
def test_gradcheck(name):
    layer = LAYERS[name]()
    x = torch.randn(B, N, requires_grad=True)
    params = tuple(layer.parameters())
    names = [name for name, _ in layer.named_parameters()]

    def f(x, *ps):
        state = dict(zip(names, ps))
        return torch.func.functional_call(layer, state, (x,))
    assert gradcheck(f, (x, *params))


# -- the builder --------------------------------------------------------------
@pytest.mark.parametrize("kind, per_layer", [
    ("plain", N * N + N), ("highway", 2 * (N * N + N)),
    ("residual", 2 * (N * N + N))])
@pytest.mark.parametrize("depth", [1, 4, 13])
def test_builder_counts_parameters(kind, per_layer, depth):
    m, k = 3, 2
    net = deep_network(kind, m, N, k, depth)
    assert isinstance(net, DeepNetwork) and net.depth == depth
    assert all(isinstance(layer, LAYER_KINDS[kind]) for layer in net.layers)
    maps = (m * N + N) + (N * k + k)
    assert count(net) == maps + depth * per_layer
    assert net(torch.randn(B, m)).shape == (B, k)


def test_builder_passes_layer_options():
    net = deep_network("highway", 3, N, 2, 4, coupled=False, gate_bias=-4.0)
    assert all(not layer.coupled and layer.gate_bias == -4.0
               for layer in net.layers)
    assert count(net) == (3 * N + N) + (2 * N + 2) + 4 * 3 * (N * N + N)
    wide = deep_network("residual", 3, N, 2, 2, hidden_size=11)
    assert count(wide.layers[0]) == 2 * N * 11 + 11 + N


def test_representations_compose_the_layers():
    net, u = deep_network("residual", 3, N, 2, 4), torch.randn(B, 3)
    xs = net.representations(u)
    assert len(xs) == 5
    x = net.input_map(u)
    for layer, x_l in zip(net.layers, xs[1:]):
        x = layer(x)
        assert torch.equal(x, x_l)
    assert torch.equal(net(u), net.readout(xs[-1]))


# -- measurements -------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(LAYER_KINDS))
def test_depth_jacobians_and_sensitivity(kind):
    net, u = deep_network(kind, 3, N, 2, 4), torch.randn(B, 3)
    J = depth_jacobians(net, u)
    assert J.shape == (4, B, N, N)
    xs = [x.detach() for x in net.representations(u)]
    for l, layer in enumerate(net.layers):
        for b in range(B):
            exact = jacobian(lambda z, f=layer: f(z[None])[0], xs[l][b])
            assert torch.allclose(J[l, b], exact, rtol=0, atol=1e-14)
    s = depth_sensitivity(net, u)
    assert s.shape == (B, 5)
    product = torch.eye(N).expand(B, N, N)
    for l in range(4, -1, -1):
        assert torch.allclose(s[:, l], torch.linalg.matrix_norm(
            product, ord=2), rtol=1e-12, atol=0)
        if l > 0:
            product = product @ J[l - 1]


def test_silent_residual_network_has_sensitivity_one():
    net = deep_network("residual", 3, N, 2, 30)
    with torch.no_grad():
        for block in net.layers:
            block.W_2.zero_()
            block.b_2.zero_()
    s = depth_sensitivity(net, torch.randn(B, 3))
    assert torch.allclose(s, torch.ones_like(s), rtol=0, atol=1e-13)


def test_layer_gradient_norms_match_backward():
    net, u = deep_network("highway", 3, N, 2, 6), torch.randn(B, 3)
    target = torch.randn(B, 2)
    norms = layer_gradient_norms(net, u, target)
    assert all(p.grad is None for p in net.parameters())   # untouched
    torch.nn.functional.mse_loss(net(u), target).backward()
    for norm, layer in zip(norms, net.layers):
        expected = torch.sqrt(sum((p.grad ** 2).sum()
                                  for p in layer.parameters()))
        assert torch.allclose(norm, expected, rtol=1e-13, atol=0)


def test_plain_sensitivity_vanishes_and_residual_does_not():
    u = torch.randn(4, 3)
    plain = depth_sensitivity(deep_network("plain", 3, 8, 1, 40), u)
    res = depth_sensitivity(deep_network("residual", 3, 8, 1, 40), u)
    assert plain[:, 0].max() < 1e-6
    assert res[:, 0].min() > 1


# -- K networks at once -------------------------------------------------------
@pytest.mark.parametrize("kind, options", [
    ("plain", {}), ("highway", {}), ("highway", {"coupled": False}),
    ("residual", {"hidden_size": 7, "nonlinearity": "relu"})])
def test_ensemble_equals_separate_runs(kind, options):
    init, batch_seeds = book_seeds(3, 10), book_seeds(3, 20)
    teacher = torch.randn(2, 3)

    def batches(generator):
        u = torch.randn(6, 3, generator=generator)
        return u, torch.tanh(u @ teacher.T)

    def build(s):
        torch.manual_seed(s)
        return deep_network(kind, 3, N, 2, 4, **options)
    stacked = [build(s) for s in init]
    losses = train_regression_ensemble(stacked, batches, steps=6,
                                       seeds=batch_seeds, lr=0.05,
                                       clip_norm=0.1)
    assert losses.shape == (3, 6)
    for k, s in enumerate(init):
        alone = build(s)
        expected = train_regression(alone, batches, steps=6, lr=0.05,
                                    seed=batch_seeds[k], clip_norm=0.1)
        assert torch.allclose(losses[k], torch.tensor(expected),
                              rtol=1e-10, atol=0)
        for p, q in zip(alone.parameters(), stacked[k].parameters()):
            assert torch.allclose(p, q, rtol=1e-10, atol=1e-12)


def test_ensemble_refuses_mixed_or_bad_input():
    def batches(generator):
        u = torch.randn(4, 3, generator=generator)
        return u, u[:, :2]
    plain, deeper = (deep_network("plain", 3, N, 2, L) for L in (2, 3))
    with pytest.raises(ValueError, match="one architecture"):
        train_regression_ensemble([plain, deeper], batches, steps=1,
                                  seeds=[0, 1])
    with pytest.raises(ValueError, match="one int seed per network"):
        train_regression_ensemble([plain], batches, steps=1, seeds=[0, 1])
    with pytest.raises(TypeError, match="DeepNetworks"):
        train_regression_ensemble([PlainLayer(N)], batches, steps=1,
                                  seeds=[0])


# -- bad input ----------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: PlainLayer(0), lambda: PlainLayer(2.5),
    lambda: HighwayLayer(True), lambda: ResidualBlock(3, hidden_size=0),
    lambda: PlainLayer(3, "softplus"),
    lambda: HighwayLayer(3, gate_bias=float("inf")),
    lambda: deep_network("dense", 2, 3, 1, 2),
    lambda: deep_network("plain", 2, 3, 1, 0),
    lambda: deep_network("plain", 0, 3, 1, 2),
    lambda: DeepNetwork([], 2, 1),
    lambda: DeepNetwork([PlainLayer(3), PlainLayer(4)], 2, 1),
])
def test_bad_construction_raises_value_error(make):
    with pytest.raises(ValueError):
        make()


@pytest.mark.parametrize("make", [
    lambda: HighwayLayer(3, coupled=1),
    lambda: HighwayLayer(3, gate_bias="-2"),
])
def test_bad_option_types_raise_type_error(make):
    with pytest.raises(TypeError):
        make()


@pytest.mark.parametrize("name", LAYERS)
def test_bad_inputs(name):
    layer = LAYERS[name]()
    with pytest.raises(ValueError, match=r"expected x of shape \(B, 5\)"):
        layer(torch.randn(B, N + 1))
    with pytest.raises(ValueError):
        layer(torch.tensor(1.0))
    with pytest.raises(TypeError, match="Tensor"):
        layer([[0.0] * N])
    with pytest.raises(TypeError, match="floating"):
        layer(torch.ones(B, N, dtype=torch.long))


def test_measurements_refuse_other_modules():
    for measure in (depth_jacobians, depth_sensitivity):
        with pytest.raises(TypeError, match="DeepNetwork"):
            measure(PlainLayer(3), torch.randn(2, 3))
    with pytest.raises(TypeError, match="DeepNetwork"):
        layer_gradient_norms(PlainLayer(3), torch.randn(2, 3),
                             torch.randn(2, 3))
    net = deep_network("plain", 3, 4, 1, 2)
    with pytest.raises(ValueError, match=r"\(B, 3\)"):
        depth_sensitivity(net, torch.randn(2, 4))
