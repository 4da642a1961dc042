"""Every weight matrix however the forward pass uses it (core/uses.py): tokens, convolutions of any
groups and padding, embeddings, tied weights, attention's Q/K/V blocks, and the weights only the
identity form reaches. Each F is checked against −(1/λ)Wᵀ∇_W L computed here by autograd, in
float64, to 1e-10; eNFA against per-sample brute force where the use is not a plain Linear."""

import pytest
import torch
from torch import nn

from factcli.core import InvalidInput
from factcli.core.layer_table import layer_table
from factcli.core.uses import Capture

LAM = 0.1


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _rel(a, b):
    return ((a - b).norm() / a.norm()).item()


class Tokens(nn.Module):
    """A Linear at every token position, then a mean over positions."""

    def __init__(self):
        super().__init__()
        self.mix = nn.Linear(4, 6)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        return self.head(torch.tanh(self.mix(x)).mean(dim=1))


class Convs(nn.Module):
    """Conv1d with 'same' padding and dilation, a depthwise strided Conv1d, a grouped Conv2d with
    reflect padding (all applied at every patch), then a Linear."""

    def __init__(self):
        super().__init__()
        self.same = nn.Conv1d(4, 4, 3, padding="same", dilation=2)
        self.depthwise = nn.Conv1d(4, 4, 3, stride=2, padding=1, groups=4)
        self.grouped = nn.Conv2d(2, 4, 3, stride=2, padding=1, groups=2, padding_mode="reflect")
        self.head = nn.Linear(4 * 4 + 4 * 2 * 2, 3)

    def forward(self, x):
        h = torch.tanh(self.depthwise(torch.tanh(self.same(x))))  # (b, 4, 4)
        image = x[:, :2].reshape(-1, 2, 4, 2).repeat(1, 1, 1, 2)  # (b, 2, 4, 4)
        g = torch.tanh(self.grouped(image))  # (b, 4, 2, 2)
        return self.head(torch.cat([h.flatten(1), g.flatten(1)], dim=1))


class Attention(nn.Module):
    """Embedding, learned positions (a raw parameter: identity only), self-attention with packed
    Q/K/V, cross-attention against the positions (chunked Q/K/V views), an MLP, unembedding."""

    def __init__(self, vocab=6, d=8, tied=False):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.positions = nn.Parameter(torch.randn(3, d) / 3)
        self.attention = nn.MultiheadAttention(d, 2, batch_first=True)
        self.cross = nn.MultiheadAttention(d, 2, bias=False)
        self.up = nn.Linear(d, 12)
        self.down = nn.Linear(12, d)
        self.unembed = nn.Linear(d, vocab, bias=False)
        if tied:
            self.unembed.weight = self.embed.weight

    def forward(self, tokens):
        h = self.embed(tokens) + self.positions
        h = h + self.attention(h, h, h)[0]
        memory = self.positions.unsqueeze(1).expand(3, h.shape[0], -1)
        h = h + self.cross(h.transpose(0, 1), memory, memory)[0].transpose(0, 1)
        h = h + self.down(torch.tanh(self.up(h)))
        return self.unembed(h[:, -1])


def _blocks(parameter, E):
    return {s: (lambda p, i=i: p[i * E : (i + 1) * E]) for i, s in enumerate("qkv")}


def _problem(name):
    torch.manual_seed(3)
    if name == "tokens":
        model, X = Tokens(), torch.randn(11, 5, 4)
        matrices = {"mix": (model.mix.weight, lambda p: p), "head": (model.head.weight, lambda p: p)}
        return model.double(), X.double(), torch.randint(0, 3, (11,)), matrices
    if name == "convs":
        model, X = Convs(), torch.randn(10, 4, 8)
        flat = lambda p: p.reshape(p.shape[0], -1)  # noqa: E731
        matrices = {k: (getattr(model, k).weight, flat) for k in ("same", "depthwise", "grouped", "head")}
        return model.double(), X.double(), torch.randint(0, 3, (10,)), matrices
    tied = name == "attention_tied"
    model = Attention(tied=tied)
    X = torch.randint(0, 6, (12, 3))
    matrices = {
        "embed": (model.embed.weight, (lambda p: p) if tied else (lambda p: p.T)),
        "positions": (model.positions, lambda p: p),
        **{
            f"attention.in_proj_weight[{s}]": (model.attention.in_proj_weight, f)
            for s, f in _blocks(0, 8).items()
        },
        "attention.out_proj": (model.attention.out_proj.weight, lambda p: p),
        **{f"cross.in_proj_weight[{s}]": (model.cross.in_proj_weight, f) for s, f in _blocks(0, 8).items()},
        "cross.out_proj": (model.cross.out_proj.weight, lambda p: p),
        "up": (model.up.weight, lambda p: p),
        "down": (model.down.weight, lambda p: p),
    }
    if not tied:
        matrices["unembed"] = (model.unembed.weight, lambda p: p)
    return model.double(), X, torch.randint(0, 6, (12,)), matrices


@pytest.mark.parametrize("name", ["tokens", "convs", "attention", "attention_tied"])
def test_forward_backward_form_equals_the_autograd_identity_for_every_matrix(name):
    model, X, y, matrices = _problem(name)
    table = layer_table(model, (X, y), "cross_entropy", LAM, batch_size=4)
    assert sorted(r["module"] for r in table.rows) == sorted(matrices)
    loss = nn.functional.cross_entropy(model(X), y)
    for row, stats in zip(table.rows, table.layers, strict=True):
        parameter, cut = matrices[row["module"]]
        (grad,) = torch.autograd.grad(loss, parameter, retain_graph=True)
        W, G = cut(parameter.detach()), cut(grad)
        expected = -(W.T @ G) / LAM  # F = −(1/λ) Wᵀ ∇_W L, by autograd here
        assert _rel(expected, stats.fact) < 1e-10, row["module"]
        if row["module"] == "positions":  # a raw parameter added to the embeddings: identity only
            assert row["form"].startswith("identity only: used by")
            assert stats.fact_per_sample is None and "nfa" not in row
            continue
        assert row["form"] == "identity and per-use", row["module"]
        assert _rel(expected, stats.fact_per_sample) < 1e-10, row["module"]
        assert row["fact_paths_relerr"] < 1e-10
        assert stats.enfa is not None and stats.agop is not None
    if name == "attention_tied":
        assert table.rows[0]["uses"] == "embedding (tied) + linear" and table.rows[0]["shape"] == "6x8"
    if name == "attention":
        assert table.rows[0]["uses"] == "embedding" and table.rows[0]["shape"] == "8x6"  # W = Eᵀ


def test_attention_by_its_formula_equals_torchs():
    torch.manual_seed(0)
    packed = nn.MultiheadAttention(8, 2, batch_first=True).double()
    separate = nn.MultiheadAttention(8, 4, kdim=5, vdim=3).double()
    x = torch.randn(3, 4, 8, dtype=torch.float64)
    keys, values = torch.randn(6, 3, 5, dtype=torch.float64), torch.randn(6, 3, 3, dtype=torch.float64)
    padding = torch.tensor([[0.0] * 5 + [float("-inf")]] * 3, dtype=torch.float64)
    additive = torch.randn(4, 6, dtype=torch.float64)
    calls = [
        (packed, (x, x, x), {}),
        (packed, (x, x, x), {"attn_mask": torch.ones(4, 4, dtype=torch.bool).triu(1), "is_causal": True}),
        (packed, (x, x, x), {"average_attn_weights": False}),
        (packed, (x[0], x[0], x[0]), {}),  # unbatched
        (separate, (x.transpose(0, 1), keys, values), {"key_padding_mask": padding, "attn_mask": additive}),
    ]
    for module, args, kwargs in calls:
        expected = module(*args, **kwargs)
        capture = Capture(list(module.parameters()))
        with capture:
            found = module(*args, **kwargs)
        assert capture.calls, "the projections were read"
        for a, b in zip(expected, found, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_enfa_of_an_embedding_and_a_grouped_conv_against_per_sample_brute_force():
    model, X, y, _ = _problem("convs")
    table = layer_table(model, (X, y), "cross_entropy", LAM, batch_size=3)
    conv = model.grouped
    E = torch.zeros(9, 9, dtype=torch.float64)
    W = conv.weight.detach().reshape(4, -1)
    for x, t in zip(X, y, strict=True):
        image = x[None, :2].reshape(1, 2, 4, 2).repeat(1, 1, 1, 2)
        padded = nn.functional.pad(image, (1, 1, 1, 1), mode="reflect")
        rows = nn.functional.unfold(padded, 3, stride=2)[0].T.clone().requires_grad_()  # (P, 18)
        z = torch.cat([rows[:, :9] @ W[:2].T, rows[:, 9:] @ W[2:].T], dim=1) + conv.bias  # (P, 4)
        g = torch.tanh(z.T.reshape(1, 4, 2, 2))
        h = torch.tanh(model.depthwise(torch.tanh(model.same(x[None]))))
        loss = nn.functional.cross_entropy(model.head(torch.cat([h.flatten(1), g.flatten(1)], 1)), t[None])
        (grad,) = torch.autograd.grad(loss, rows)  # ∂l/∂patch through W only, per group and patch
        E += grad[:, :9].T @ grad[:, :9] + grad[:, 9:].T @ grad[:, 9:]
    assert _rel(E / len(y), table.layers[[r["module"] for r in table.rows].index("grouped")].enfa) < 1e-10

    model, X, y, _ = _problem("attention")
    table = layer_table(model, (X, y), "cross_entropy", LAM, nfa=False)
    embed = model.embed.weight.detach()
    E = torch.zeros(6, 6, dtype=torch.float64)
    for tokens, t in zip(X, y, strict=True):
        z = embed[tokens].clone().requires_grad_()  # the lookup's output, one row per position
        h = z + model.positions
        h = h[None] + model.attention(h[None], h[None], h[None])[0]
        memory = model.positions.unsqueeze(1)
        h = h + model.cross(h.transpose(0, 1), memory, memory)[0].transpose(0, 1)
        h = h + model.down(torch.tanh(model.up(h)))
        loss = nn.functional.cross_entropy(model.unembed(h[:, -1]), t[None])
        (dz,) = torch.autograd.grad(loss, z)
        g = dz @ embed.T  # g = Wᵀ ∇_z l with W = Eᵀ: one row per position, in token space
        E += g.T @ g
    assert _rel(E / len(y), table.layers[0].enfa) < 1e-10


class Unread(nn.Module):
    """A Linear also applied as x @ W.T (not a read use), and a 1-D raw scale."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.scale = nn.Parameter(torch.ones(4))
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(torch.tanh(self.lin(x) + x @ self.lin.weight.T) * self.scale)


def test_weights_used_elsewhere_keep_the_identity_and_non_matrices_are_skipped_with_reasons():
    torch.manual_seed(0)
    model = Unread().double()
    X, Y = torch.randn(9, 4, dtype=torch.float64), torch.randn(9, 2, dtype=torch.float64)
    table = layer_table(model, (X, Y), "mse", LAM)
    lin, head = table.rows
    assert lin["form"] == "identity only: also used by matmul, which the forward/backward form does not read"
    assert head["form"] == "identity and per-use"
    (grad,) = torch.autograd.grad(nn.functional.mse_loss(model(X), Y), model.lin.weight)
    assert _rel(-(model.lin.weight.T @ grad) / LAM, table.layers[0].fact) < 1e-10
    assert table.skipped == [
        {"module": "(model)", "type": "Unread", "parameter": "scale",
         "reason": "not a matrix: a 1-D parameter of shape (4,)"},
    ]  # fmt: skip


def test_bad_models_and_inputs_are_one_line():
    X, Y = torch.randn(6, 3), torch.randn(6, 2)
    with pytest.raises(InvalidInput, match="uses no weight matrix"):
        layer_table(nn.Sequential(nn.Tanh()), (X, Y[:, :1].expand(6, 3)), "mse", 0.1)
    broken = nn.Linear(3, 2)
    with torch.no_grad():
        broken.weight[0, 0] = float("nan")
    with pytest.raises(InvalidInput, match="parameter weight holds NaN"):
        layer_table(broken, (X, Y), "mse", 0.1)
    with pytest.raises(InvalidInput, match="inputs hold NaN"):
        layer_table(nn.Linear(3, 2), (X.masked_fill(X > 1, float("nan")), Y), "mse", 0.1)
    with pytest.raises(InvalidInput, match="forward pass cannot run on the data"):
        layer_table(nn.Linear(3, 2), (torch.ones(6, 3, dtype=torch.long), Y), "mse", 0.1)


@pytest.mark.parametrize("tied", [False, True])
def test_the_transformer_of_train_net_has_every_matrix_in_its_table(tied):
    from factcli.core.nets import Transformer, build_model

    torch.manual_seed(0)
    model = Transformer(7, 2, 7, d_model=8, heads=2, mlp=12, tied=tied).double()
    assert type(build_model(model.architecture)) is Transformer
    X = torch.nn.functional.one_hot(torch.randint(0, 7, (15, 2)), 7).reshape(15, 14).double()
    table = layer_table(model, (X, torch.randint(0, 7, (15,))), "cross_entropy", LAM)
    names = ["embed", "positions", *(f"blocks.0.attention.in_proj_weight[{s}]" for s in "qkv")]
    names += ["blocks.0.attention.out_proj", "blocks.0.up", "blocks.0.down"] + ([] if tied else ["unembed"])
    assert [r["module"] for r in table.rows] == names
    assert table.rows[0]["shape"] == ("7x8" if tied else "8x7")
    for row in table.rows:
        if row["module"] != "positions":
            assert row["fact_paths_relerr"] < 1e-10 and "nfa" in row
    assert table.skipped == []


class BroadcastPositions(nn.Module):
    """Token embeddings plus position embeddings looked up once, ``pos(arange(T))``, and broadcast
    over the batch: the position table's rows carry gradients summed over the samples."""

    def __init__(self):
        super().__init__()
        self.tokens = nn.Embedding(6, 5)
        self.pos = nn.Embedding(3, 5)
        self.head = nn.Linear(5, 4)

    def forward(self, x):
        h = self.tokens(x) + self.pos(torch.arange(x.shape[1]))
        return self.head(torch.tanh(h).mean(dim=1))


def test_a_use_shared_by_the_batch_keeps_fact_exact_and_reports_no_nfa():
    torch.manual_seed(0)
    model = BroadcastPositions().double()
    X, y = torch.randint(0, 6, (8, 3)), torch.randint(0, 4, (8,))
    table = layer_table(model, (X, y), "cross_entropy", LAM, batch_size=4)
    rows = {r["module"]: (r, s) for r, s in zip(table.rows, table.layers, strict=True)}
    loss = nn.functional.cross_entropy(model(X), y)
    (grad,) = torch.autograd.grad(loss, model.pos.weight)
    W = model.pos.weight.detach().T  # read as Eᵀ: its Gram matrix compares positions
    row, stats = rows["pos"]
    assert _rel(-(W.T @ grad.T) / LAM, stats.fact_per_sample) < 1e-10  # F is linear in the gradients
    assert stats.enfa is None and stats.agop is None and "nfa" not in row
    assert "shared by every sample" in row["uses"]
    row, stats = rows["tokens"]  # a per-sample use beside it keeps every statistic
    assert stats.enfa is not None and stats.agop is not None and "nfa" in row
