"""Where every weight matrix of a network enters its forward pass: the uses FACT's hooks read.

FACT concerns every 2-D weight W of a network (docs/SPEC.md §10). Its identity form
F = −(1/λ) Wᵀ∇_W L needs only the gradient; its forward/backward form needs, for every use of W,
the use's input rows h and the gradient ∇_z l of its output rows z = W h. Those are read here by a
``torch.overrides.TorchFunctionMode`` that sees the calls a forward pass makes, whatever module
makes them:

- ``linear(h, W)`` at any number of positions (tokens, patches: every leading dimension is a
  position), also with a block of W's rows (``W[a:b]``, ``W.chunk(3)``);
- ``conv1d`` / ``conv2d`` (W reshaped to (out, in/groups · kernel), applied at every patch; a grouped
  convolution applies its group's block of rows to its group's patches; any padding);
- ``embedding(tokens, E)``: z = Eᵀ e_token, the input a one-hot row. A weight used only this way is
  read as the matrix Eᵀ (its Gram matrix compares tokens); a weight also applied as z = E h (an
  unembedding tied to the embedding) keeps its stored orientation, and the lookup adds its own term
  to F (see ``fact.batch_statistics``);
- ``multi_head_attention_forward`` (``nn.MultiheadAttention``), evaluated here by its formula so that
  its projections are such linear calls; the packed ``in_proj_weight`` is three matrices, Q, K, V.

Any other use of a weight (a position table added as a raw parameter, ``x @ W``, an attention with
``add_bias_kv``) is legitimate but unread: for that weight only the identity form applies, and the
table says so. Whether the uses read account for all of ∇_W L is checked, not assumed
(``fact.batch_statistics`` rebuilds ∇_W L from them). A use shared by every sample of a batch
(``pos(torch.arange(T))`` broadcast) is read for F, which is linear in its summed gradients; NFA and
eNFA, which need each sample's own gradient, are not computed for that weight, and its row says so.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as nnf
from torch import nn
from torch.overrides import TorchFunctionMode

from factcli.core import InvalidInput


@dataclass(frozen=True)
class WeightMatrix:
    """One weight matrix W of the table: a parameter, or a block of its rows, possibly transposed."""

    name: str  # module path for a module's ``weight``; else the parameter path, with [q] etc. for blocks
    parameter: nn.Parameter = field(repr=False, compare=False)
    rows: tuple[int, int] | None = None  # the block of the parameter's rows (None: all of them)
    transposed: bool = False  # W = Eᵀ: an embedding's table, read as the matrix of z = W e_token
    uses: str = ""  # how the forward pass applies it, e.g. "linear", "embedding + linear (tied)"
    identity_only: str | None = None  # why only F = −(1/λ)Wᵀ∇_W L applies (None: both forms do)

    def of(self, tensor: torch.Tensor) -> torch.Tensor:
        """The matrix this entry means, cut from a parameter-shaped tensor (the weight or its gradient)."""
        matrix = tensor.reshape(tensor.shape[0], -1)
        if self.rows is not None:
            matrix = matrix[self.rows[0] : self.rows[1]]
        return matrix.T if self.transposed else matrix

    @property
    def shape(self) -> tuple[int, int]:
        k, d = self.of(self.parameter.detach()).shape
        return k, d


@dataclass
class Call:
    """One read use of a parameter in a forward pass: z = W[rows] h (``kind`` linear / conv) or an
    embedding lookup; ``z`` is in the autograd graph, so ∇_z l comes from one backward pass."""

    parameter: int  # index into the tracked parameters
    kind: str  # linear | conv | embedding
    h: torch.Tensor  # the input (detached); token indices for an embedding
    z: torch.Tensor  # the output as computed (with any bias)
    rows: tuple[int, int] | None = None  # block of the parameter's rows used (linear only)
    conv: dict | None = None  # stride, padding, dilation, groups of a convolution


_LINEAR = {nnf.linear, torch._C._nn.linear}
_CONV = {nnf.conv1d: 1, nnf.conv2d: 2, torch.conv1d: 1, torch.conv2d: 2}
_EMBEDDING = {nnf.embedding}
_ATTENTION = {nnf.multi_head_attention_forward}
_QUIET = {"__get__", "__set__", "dim", "size", "numel", "is_floating_point", "requires_grad_", "detach"}


class Capture(TorchFunctionMode):
    """Records the read uses of ``parameters`` (``calls``, in forward order), and for every tracked
    parameter the first function that touched it at all (``touched``: order and unread uses)."""

    def __init__(self, parameters: list[nn.Parameter]):
        super().__init__()
        self._parameters = list(parameters)
        self.index = {id(p): i for i, p in enumerate(parameters)}
        self.calls: list[Call] = []
        self.touched: dict[int, str] = {}  # parameter index → name of the first function using it
        self.unread: dict[int, str] = {}  # parameter index → a function that used it unread

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", str(func))
        if name in _QUIET:
            return func(*args, **kwargs)
        if func in _ATTENTION:
            bound = inspect.signature(nnf.multi_head_attention_forward).bind(*args, **kwargs)
            bound.apply_defaults()
            if _attention_supported(bound.arguments) and self._attention_tracked(bound.arguments):
                return attention(bound.arguments, self)
        if func in _LINEAR and len(args) >= 2:
            found = self._tracked(args[1])
            if found is not None:
                index, rows = found
                return self.linear(args[0], index, rows, args[2] if len(args) > 2 else kwargs.get("bias"))
        if func in _CONV and len(args) >= 2 and self._direct(args[1]) is not None:
            return self._conv(func, _CONV[func], args, kwargs)
        if func in _EMBEDDING and len(args) >= 2 and self._direct(args[1]) is not None:
            return self._embedding(args, kwargs)
        for value in _flat(args, kwargs):
            index = self._direct(value) if isinstance(value, torch.Tensor) else None
            if index is None and isinstance(value, torch.Tensor) and value._base is not None:
                index = self._direct(value._base)
            if index is not None:
                self.touched.setdefault(index, name)
                self.unread.setdefault(index, name)
        return func(*args, **kwargs)

    # -- the read uses --------------------------------------------------------------------------
    def linear(self, h, index: int, rows, bias) -> torch.Tensor:
        weight = self.parameter(index)
        block = weight if rows is None else weight[rows[0] : rows[1]]
        with _disabled():
            z = nnf.linear(h, block, bias)
        return self._record(Call(index, "linear", h.detach(), z, rows=rows))

    def _conv(self, func, dims: int, args, kwargs):
        names = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
        given = {**dict(zip(names, args, strict=False)), **kwargs}
        index = self._direct(given["weight"])
        with _disabled():
            z = func(*args, **kwargs)
        conv = {
            "dims": dims,
            "stride": _tuple(given.get("stride", 1), dims),
            "padding": given.get("padding", 0),
            "dilation": _tuple(given.get("dilation", 1), dims),
            "groups": int(given.get("groups", 1)),
            "kernel": tuple(given["weight"].shape[2:]),
        }
        return self._record(Call(index, "conv", given["input"].detach(), z, conv=conv))

    def _embedding(self, args, kwargs):
        names = ("input", "weight", "padding_idx", "max_norm", "norm_type", "scale_grad_by_freq", "sparse")
        given = {**dict(zip(names, args, strict=False)), **kwargs}
        index = self._direct(given["weight"])
        with _disabled():
            z = nnf.embedding(**given)
        tokens = given["input"].detach()
        if given.get("padding_idx") is not None or given.get("max_norm") is not None:
            # The padding row gets no gradient, and max_norm rescales rows in place: recorded as
            # an unread use, the weight falls back to the identity form.
            self.touched.setdefault(index, "embedding")
            self.unread.setdefault(index, "embedding with padding_idx or max_norm")
            return z
        return self._record(Call(index, "embedding", tokens, z))

    def _record(self, call: Call) -> torch.Tensor:
        self.touched.setdefault(call.parameter, call.kind)
        self.calls.append(call)
        # Later in-place operations (ReLU(inplace=True), +=) act on a copy, so the recorded z keeps
        # its value and its gradient is the gradient with respect to z itself.
        return call.z.clone()

    # -- helpers ----------------------------------------------------------------------------------
    def _attention_tracked(self, a: dict) -> bool:
        """Every projection weight of the attention call is tracked (else it is an unread use)."""
        names = (
            ("q_proj_weight", "k_proj_weight", "v_proj_weight")
            if a["use_separate_proj_weight"]
            else (("in_proj_weight",))
        )
        return all(self._direct(a[name]) is not None for name in (*names, "out_proj_weight"))

    def parameter(self, index: int) -> torch.Tensor:
        return self._parameters[index]

    def _direct(self, value) -> int | None:
        return self.index.get(id(value)) if isinstance(value, torch.Tensor) else None

    def _tracked(self, value) -> tuple[int, tuple[int, int] | None] | None:
        """(parameter index, row block) of a weight argument: the parameter itself, or a view of a
        contiguous block of its rows (``W[a:b]``, ``W.chunk``, ``W.split``)."""
        index = self._direct(value)
        if index is not None:
            return index, None
        base = getattr(value, "_base", None)
        index = self._direct(base)
        if index is None or value.dim() != 2 or base.dim() != 2 or value.stride() != base.stride():
            return None
        offset = value.storage_offset() - base.storage_offset()
        if offset % base.stride(0) or value.shape[1] != base.shape[1]:
            return None
        start = offset // base.stride(0)
        return index, (start, start + value.shape[0])


class _disabled:
    """Evaluate without the mode (the recorded call itself, not its insides)."""

    def __enter__(self):
        self._guard = torch._C.DisableTorchFunction()
        self._guard.__enter__()

    def __exit__(self, *exc):
        self._guard.__exit__(*exc)


def _flat(args, kwargs):
    for value in (*args, *kwargs.values()):
        if isinstance(value, list | tuple):
            yield from value
        else:
            yield value


def _tuple(value, dims: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, list | tuple) else (int(value),) * dims


# ------------------------------------------------------------------ attention by its formula


def _attention_supported(a: dict) -> bool:
    return (
        a["bias_k"] is None
        and a["bias_v"] is None
        and not a["add_zero_attn"]
        and a["static_k"] is None
        and a["static_v"] is None
        and (not a["training"] or a["dropout_p"] == 0)
    )


def attention(a: dict, capture: Capture):
    """``multi_head_attention_forward`` (no bias_k/v, zero-attention or dropout) with its four
    projections as read linear calls; the same values as torch's (tested)."""
    query, key, value = a["query"], a["key"], a["value"]
    batched = query.dim() == 3
    if not batched:
        query, key, value = (t.unsqueeze(1) for t in (query, key, value))
    L, N, E = query.shape
    S, heads = key.shape[0], int(a["num_heads"])
    head_dim = E // heads
    bias = a["in_proj_bias"]
    biases = (None, None, None) if bias is None else bias.chunk(3)
    if a["use_separate_proj_weight"]:
        weights = [(capture._direct(a[k]), None) for k in ("q_proj_weight", "k_proj_weight", "v_proj_weight")]
    else:
        packed = capture._direct(a["in_proj_weight"])
        weights = [(packed, (i * E, (i + 1) * E)) for i in range(3)]
    if not a["use_separate_proj_weight"] and query is key and key is value:
        q, k, v = capture.linear(query, packed, None, bias).chunk(3, dim=-1)
    else:
        q, k, v = (
            capture.linear(x, index, rows, b)
            for x, (index, rows), b in zip((query, key, value), weights, biases, strict=True)
        )
    with _disabled():
        q = q.reshape(L, N * heads, head_dim).transpose(0, 1)
        k = k.reshape(S, N * heads, head_dim).transpose(0, 1)
        v = v.reshape(S, N * heads, head_dim).transpose(0, 1)
        scores = (q @ k.transpose(1, 2)) / math.sqrt(head_dim)  # (N·heads, L, S)
        mask = a["attn_mask"]
        if mask is None and a["is_causal"]:
            mask = torch.ones(L, S, dtype=torch.bool, device=scores.device).triu(1)
        scores = _masked(scores, mask)
        padding = a["key_padding_mask"]
        if padding is not None:
            if not batched:
                padding = padding.unsqueeze(0)
            padding = padding.reshape(N, 1, 1, S).expand(N, heads, 1, S).reshape(N * heads, 1, S)
            scores = _masked(scores, padding)
        probabilities = torch.softmax(scores, dim=-1)
        mixed = (probabilities @ v).transpose(0, 1).reshape(L, N, E)
    out = capture.linear(mixed, capture._direct(a["out_proj_weight"]), None, a["out_proj_bias"])
    weights_out = None
    if a["need_weights"]:
        weights_out = probabilities.reshape(N, heads, L, S)
        if a["average_attn_weights"]:
            weights_out = weights_out.mean(dim=1)
        if not batched:
            weights_out = weights_out.squeeze(0)
    return (out if batched else out.squeeze(1)), weights_out


def _masked(scores: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return scores
    if mask.dtype == torch.bool:
        return scores.masked_fill(mask, float("-inf"))
    return scores + mask


def discover(model: nn.Module, example: torch.Tensor) -> tuple[list[WeightMatrix], list[dict]]:
    """The weight matrices ``model``'s forward pass on ``example`` uses, in the order it first uses
    them, and the parametrised things left out, each with its reason."""
    named = list(model.named_parameters())
    parameters = [p for _, p in named]
    capture = Capture(parameters)
    try:
        with torch.enable_grad(), capture:  # with grad: torch's fused inference paths skip attention
            model(example)
    except InvalidInput:
        raise
    except Exception as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InvalidInput(
            f"the model's forward pass cannot run on the data ({type(error).__name__}: {message}); "
            "give inputs of the shape and dtype the model takes"
        ) from None
    kinds: dict[int, list[str]] = {}
    for call in capture.calls:
        kinds.setdefault(call.parameter, [])
        if call.kind not in kinds[call.parameter]:
            kinds[call.parameter].append(call.kind)
    owners = _owners(model)
    blocks = _blocks(model)
    matrices, skipped = [], []
    for index in sorted(capture.touched, key=list(capture.touched).index):
        name, parameter = named[index]
        module_name, module = owners[id(parameter)]
        read = kinds.get(index, [])
        matrix_like = parameter.dim() == 2 or (parameter.dim() > 2 and read == ["conv"])
        if not matrix_like:
            skipped.append(_skip(name, module, _not_a_matrix(parameter, module)))
            continue
        label = module_name if name.endswith(".weight") or name == "weight" else name
        label = label or "(model)"
        transposed = read == ["embedding"]
        uses = " + ".join(_use_name(kind, read, module) for kind in read) or "unread"
        why = None
        if not read:
            why = f"used by {capture.touched[index]}, not by a linear, convolution or embedding call"
        elif index in capture.unread:
            why = f"also used by {capture.unread[index]}, which the forward/backward form does not read"
        parts = blocks.get(id(parameter), [(None, None)])
        for suffix, rows in parts:
            matrices.append(
                WeightMatrix(
                    label if suffix is None else f"{name}[{suffix}]",
                    parameter,
                    rows,
                    transposed,
                    uses if suffix is None else f"{uses} ({suffix} block)",
                    why,
                )
            )
    seen = {id(m.parameter) for m in matrices} | {id(named[i][1]) for i in capture.touched}
    for name, parameter in named:
        if id(parameter) in seen:
            continue
        module_name, module = owners[id(parameter)]
        if parameter.dim() >= 2:
            skipped.append(_skip(name, module, "never used in the forward pass"))
        elif not _is_bias_of_read(module):
            skipped.append(_skip(name, module, _not_a_matrix(parameter, module)))
    return matrices, _merge(skipped)


def _use_name(kind: str, kinds: list[str], module) -> str:
    if kind == "embedding" and len(kinds) > 1:
        return "embedding (tied)"
    if kind == "conv" and getattr(module, "groups", 1) != 1:
        return f"conv (groups={module.groups})"
    return kind


def _not_a_matrix(parameter, module) -> str:
    if isinstance(module, nn.modules.batchnorm._NormBase | nn.LayerNorm | nn.GroupNorm):
        return "normalisation layer: its scale and shift are not a weight matrix W of z = W h"
    return f"not a matrix: a {parameter.dim()}-D parameter of shape {tuple(parameter.shape)}"


def _is_bias_of_read(module) -> bool:
    return isinstance(module, nn.Linear | nn.modules.conv._ConvNd | nn.MultiheadAttention)


def _skip(name: str, module, reason: str) -> dict:
    owner = name.rpartition(".")[0] or "(model)"
    return {"module": owner, "type": type(module).__name__, "reason": reason, "parameter": name}


def _merge(skipped: list[dict]) -> list[dict]:
    """One entry per module and reason (a LayerNorm's weight and bias are one line)."""
    merged: dict[tuple[str, str], dict] = {}
    for entry in skipped:
        key = (entry["module"], entry["reason"])
        if key in merged:
            merged[key]["parameter"] += f", {entry['parameter']}"
        else:
            merged[key] = dict(entry)
    return list(merged.values())


def _owners(model: nn.Module) -> dict[int, tuple[str, nn.Module]]:
    owners: dict[int, tuple[str, nn.Module]] = {}
    for module_name, module in model.named_modules():
        for parameter in module.parameters(recurse=False):
            owners.setdefault(id(parameter), (module_name, module))
    return owners


def _blocks(model: nn.Module) -> dict[int, list[tuple[str, tuple[int, int]]]]:
    """Parameters that are several matrices side by side: attention's packed Q, K, V projections."""
    blocks = {}
    for module in model.modules():
        if isinstance(module, nn.MultiheadAttention) and module.in_proj_weight is not None:
            E = module.embed_dim
            blocks[id(module.in_proj_weight)] = [("q", (0, E)), ("k", (E, 2 * E)), ("v", (2 * E, 3 * E))]
    return blocks


# ------------------------------------------------------------------ rows of one call


def call_rows(call: Call, dz: torch.Tensor):
    """The call as (input rows H, output-gradient rows ∇z, block of the parameter's rows) triples,
    positions flattened: one triple for a linear call, one per group for a convolution. For an
    embedding H is the token indices (the one-hot rows, by index)."""
    if call.kind == "linear":
        return [(call.h.reshape(-1, call.h.shape[-1]), dz.reshape(-1, dz.shape[-1]), call.rows)]
    if call.kind == "embedding":
        return [(call.h.reshape(-1), dz.reshape(-1, dz.shape[-1]), None)]
    return _conv_rows(call, dz)


def _conv_rows(call: Call, dz: torch.Tensor):
    conv = call.conv
    h = call.h
    if conv["dims"] == 1:  # a Conv1d is a Conv2d of height 1
        h, dz = h.unsqueeze(-2), dz.unsqueeze(-2)
    if h.dim() == 3:  # unbatched input
        h, dz = h.unsqueeze(0), dz.unsqueeze(0)
    kernel = conv["kernel"]
    dims = conv["dims"]
    stride = conv["stride"] if dims == 2 else (1, *conv["stride"])
    dilation = conv["dilation"] if dims == 2 else (1, *conv["dilation"])
    kernel = kernel if dims == 2 else (1, *kernel)
    h = nnf.pad(h, _explicit_padding(conv["padding"], kernel, dilation, dims))
    patches = nnf.unfold(h, kernel, dilation, 0, stride).transpose(1, 2)  # (b, P, in·k), channel-major
    grads = dz.reshape(dz.shape[0], dz.shape[1], -1).transpose(1, 2)  # (b, P, out)
    groups = conv["groups"]
    width, out = patches.shape[-1] // groups, grads.shape[-1] // groups
    return [
        (
            patches[..., g * width : (g + 1) * width].reshape(-1, width),
            grads[..., g * out : (g + 1) * out].reshape(-1, out),
            (g * out, (g + 1) * out),
        )
        for g in range(groups)
    ]


def _explicit_padding(padding, kernel, dilation, dims: int) -> tuple[int, ...]:
    """F.pad's (left, right, top, bottom) for torch's padding argument (numbers, 'valid', 'same')."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        pads = []
        for k, d in zip(reversed(kernel), reversed(dilation), strict=True):
            total = d * (k - 1)
            pads += [total // 2, total - total // 2]
        return tuple(pads)
    padding = _tuple(padding, dims)
    if dims == 1:
        padding = (0, *padding)
    return (padding[1], padding[1], padding[0], padding[0])
