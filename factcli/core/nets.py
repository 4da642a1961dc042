"""The networks that train-net and verify-fact train: MLPs, a small ConvNet, the §9 quadratic net.

Every weight matrix W of these networks enters only through z = W h (Linear) or z = W · patch
(Conv2d, W reshaped to (out, in·k·k)), which is what FACT needs. Each model carries an
``architecture`` dict: enough to rebuild it (``build_model``) and to check that a checkpoint
matches the configured network.
"""

from __future__ import annotations

import torch
from torch import nn

from factcli.choices import ACTIVATIONS


class Square(nn.Module):
    """Quadratic activation σ(z) = z² (the §9 network and the grokking MLP)."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z * z


def activation_module(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "gelu":  # x·Φ(x): ReLU-like but smooth, so L_λ has true critical points to converge to
        return nn.GELU()
    if name == "softplus":
        return nn.Softplus()
    if name == "tanh":
        return nn.Tanh()
    if name == "quadratic":
        return Square()
    raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")


class MLP(nn.Module):
    """x ↦ W_L σ(… σ(W_1 x + b_1) …) + b_L, one output per class (or regression target)."""

    def __init__(
        self,
        in_dim: int,
        hidden: list[int] | tuple[int, ...],
        out_dim: int,
        activation: str = "relu",
        bias: bool = True,
    ):
        super().__init__()
        self.architecture = {
            "kind": "mlp",
            "in_dim": int(in_dim),
            "hidden": [int(w) for w in hidden],
            "out_dim": int(out_dim),
            "activation": activation,
            "bias": bool(bias),
        }
        widths = [in_dim, *hidden]
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(fan_in, fan_out, bias=bias), activation_module(activation)]
        layers.append(nn.Linear(widths[-1], out_dim, bias=bias))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.flatten(1))


class ConvNet(nn.Module):
    """Conv2d layers (stride 2 shrinks the image, padding keeps it aligned), then a linear head.

    No pooling or normalization: every layer is z = W h with h independent of W, so each Conv2d
    is a FACT weight matrix of shape (out, in·k·k) applied at every patch position.
    """

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        channels: list[int] | tuple[int, ...],
        out_dim: int,
        kernel_size: int = 3,
        stride: int = 2,
        activation: str = "relu",
        bias: bool = True,
    ):
        super().__init__()
        self.architecture = {
            "kind": "conv",
            "in_channels": int(in_channels),
            "image_size": int(image_size),
            "channels": [int(c) for c in channels],
            "out_dim": int(out_dim),
            "kernel_size": int(kernel_size),
            "stride": int(stride),
            "activation": activation,
            "bias": bool(bias),
        }
        padding = kernel_size // 2
        layers: list[nn.Module] = []
        size, fan_in = image_size, in_channels
        for fan_out in channels:
            layers += [
                nn.Conv2d(fan_in, fan_out, kernel_size, stride=stride, padding=padding, bias=bias),
                activation_module(activation),
            ]
            size = (size + 2 * padding - kernel_size) // stride + 1
            fan_in = fan_out
        layers += [nn.Flatten(1), nn.Linear(fan_in * size * size, out_dim, bias=bias)]
        self.layers = nn.Sequential(*layers)
        self.input_shape = (in_channels, image_size, image_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.reshape(-1, *self.input_shape))


def quadratic_net(in_dim: int, width: int, out_dim: int = 1) -> MLP:
    """docs/SPEC.md §9: f(x) = Σ_j a_j (w_jᵀ x)², no biases (an MLP with one quadratic hidden layer)."""
    return MLP(in_dim, [width], out_dim, activation="quadratic", bias=False)


def build_model(architecture: dict) -> nn.Module:
    """Rebuild a network from its ``architecture`` dict (as stored in a checkpoint)."""
    spec = dict(architecture)
    kind = spec.pop("kind")
    if kind == "mlp":
        return MLP(**spec)
    if kind == "conv":
        return ConvNet(**spec)
    raise ValueError(f"unknown model kind {kind!r}; expected 'mlp' or 'conv'")


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every Linear / Conv2d, in forward order.

    Our networks register their layers in the order they apply them, so module order is forward
    order. Conv2d must be plain (groups = 1, zero padding) so that W is one (out, in·k·k) matrix.
    """
    found = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            if module.groups != 1 or module.padding_mode != "zeros":
                raise ValueError(f"layer {name}: only groups=1, zero-padded Conv2d is supported")
            found.append((name, module))
        elif isinstance(module, nn.Linear):
            found.append((name, module))
    return found


def weight_matrix(module: nn.Module) -> torch.Tensor:
    """The layer's weight as the matrix W of z = W h: (out, in) or (out, in·k·k) for Conv2d."""
    return module.weight.reshape(module.weight.shape[0], -1)
