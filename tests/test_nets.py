"""The networks: layer order, Conv2d as a matrix over patches, the §9 quadratic net, rebuilds."""

import pytest
import torch
from torch import nn

from factcli.core.nets import (
    MLP,
    ConvNet,
    build_model,
    quadratic_net,
)


def weight_layers(model):
    """(name, module) of the Linear / Conv2d layers (module order is forward order in these nets)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear | nn.Conv2d)]


def weight_matrix(module):
    return module.weight.reshape(module.weight.shape[0], -1)


def test_mlp_layers_in_forward_order_with_shapes():
    model = MLP(4, [8, 6, 5], 3, activation="tanh", bias=False)
    layers = weight_layers(model)
    assert [tuple(weight_matrix(m).shape) for _, m in layers] == [(8, 4), (6, 8), (5, 6), (3, 5)]
    assert all(m.bias is None for _, m in layers)
    # Forward order: composing the layers by hand with tanh in between reproduces the model.
    x = torch.randn(7, 4)
    h = x
    for i, (_, m) in enumerate(layers):
        h = m(h) if i == len(layers) - 1 else torch.tanh(m(h))
    torch.testing.assert_close(model(x), h)


def test_conv_layer_is_its_weight_matrix_applied_to_every_patch():
    torch.manual_seed(0)
    model = ConvNet(3, 9, [4, 5], 2, kernel_size=3, stride=2).double()
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    conv = weight_layers(model)[0][1]
    W = weight_matrix(conv)
    assert W.shape == (4, 3 * 3 * 3)
    patches = nn.functional.unfold(x, 3, padding=1, stride=2)  # (2, 27, 25)
    z = (W @ patches + conv.bias[:, None]).reshape(2, 4, 5, 5)
    torch.testing.assert_close(conv(x), z, rtol=0, atol=1e-12)
    assert [type(m).__name__ for _, m in weight_layers(model)] == ["Conv2d", "Conv2d", "Linear"]
    assert model(x.flatten(1)).shape == (2, 2)  # flat rows are reshaped to images


def test_quadratic_net_is_sum_of_squared_projections():
    torch.manual_seed(1)
    model = quadratic_net(3, 7).double()
    x = torch.randn(5, 3, dtype=torch.float64)
    w = weight_matrix(weight_layers(model)[0][1])  # (7, 3)
    a = weight_matrix(weight_layers(model)[1][1])[0]  # (7,)
    expected = ((x @ w.T) ** 2 * a).sum(1, keepdim=True)
    torch.testing.assert_close(model(x), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("activation", ["relu", "softplus", "quadratic", "tanh"])
def test_build_model_rebuilds_the_same_architecture(activation):
    for model in (
        MLP(6, [5, 4], 3, activation=activation, bias=True),
        ConvNet(1, 8, [2], 3, activation=activation, bias=False),
    ):
        rebuilt = build_model(model.architecture)
        assert rebuilt.architecture == model.architecture
        rebuilt.load_state_dict(model.state_dict())
        x = torch.randn(2, *((6,) if isinstance(model, MLP) else (1, 8, 8)))
        torch.testing.assert_close(rebuilt(x), model(x))


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="activation"):
        MLP(2, [3], 1, activation="swish")
