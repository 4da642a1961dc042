"""The networks that train-net and verify-fact train: MLPs, a small ConvNet, the §9 quadratic net,
a small transformer.

Every weight matrix W of these networks enters through z = W h (Linear, at every position),
z = W · patch (Conv2d, W reshaped to (out, in·k·k)), an embedding lookup or attention's
projections: the uses core/uses.py reads. Each model carries an
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


class Transformer(nn.Module):
    """A small decoder-free transformer on a fixed number of tokens (the grokking task: a, b).

    tokens → embedding E (vocab × d) + learned positions → ``layers`` residual blocks, each
    multi-head self-attention (``nn.MultiheadAttention``, no biases) then an MLP d → mlp → d,
    → the last position's vector → unembedding (``out_dim`` × d; with ``tied`` it is E itself).
    No normalisation and no biases: every weight is a matrix of FACT, the LayerNorm-free form of
    the one-layer grokking transformers. Inputs are token ids (b, seq_len), or the grokking data's
    concatenated one-hot rows (b, seq_len · vocab), read as their argmax. The activation is smooth
    (GELU by default) so that L_λ has true critical points for the L-BFGS finish to converge to.
    """

    def __init__(
        self,
        vocab: int,
        seq_len: int,
        out_dim: int,
        d_model: int = 32,
        heads: int = 2,
        layers: int = 1,
        mlp: int = 64,
        activation: str = "gelu",
        tied: bool = False,
    ):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model={d_model} must be a multiple of heads={heads}")
        if tied and out_dim != vocab:
            raise ValueError(f"a tied unembedding needs out_dim = vocab, got {out_dim} and {vocab}")
        self.architecture = {
            "kind": "transformer",
            "vocab": int(vocab),
            "seq_len": int(seq_len),
            "out_dim": int(out_dim),
            "d_model": int(d_model),
            "heads": int(heads),
            "layers": int(layers),
            "mlp": int(mlp),
            "activation": activation,
            "tied": bool(tied),
        }
        self.embed = nn.Embedding(vocab, d_model)
        self.positions = nn.Parameter(torch.randn(seq_len, d_model) / d_model**0.5)
        self.blocks = nn.ModuleList(
            _Block(d_model, heads, mlp, activation_module(activation)) for _ in range(layers)
        )
        self.unembed = nn.Linear(d_model, out_dim, bias=False)
        if tied:
            self.unembed.weight = self.embed.weight

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_floating_point():
            vocab = self.architecture["vocab"]
            return x.reshape(x.shape[0], -1, vocab).argmax(dim=-1)
        return x.long()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(self.tokens(x)) + self.positions
        for block in self.blocks:
            h = block(h)
        return self.unembed(h[:, -1])


class _Block(nn.Module):
    def __init__(self, d_model: int, heads: int, mlp: int, activation: nn.Module):
        super().__init__()
        self.attention = nn.MultiheadAttention(d_model, heads, bias=False, batch_first=True)
        self.up = nn.Linear(d_model, mlp, bias=False)
        self.activation = activation
        self.down = nn.Linear(mlp, d_model, bias=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = h + self.attention(h, h, h, need_weights=False)[0]
        return h + self.down(self.activation(self.up(h)))


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
    if kind == "transformer":
        return Transformer(**spec)
    raise ValueError(f"unknown model kind {kind!r}; expected 'mlp', 'conv' or 'transformer'")
