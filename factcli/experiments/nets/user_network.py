"""verify-fact on a network trained in the user's own code.

    fact verify-fact network=my_model.py:build weights=state_dict.pt inputs=train.pt lam=1e-4
    fact verify-fact network=mypkg.models:build weights=w.pt dataset=digits lam=1e-3 loss=cross_entropy

``network`` names a function that takes no arguments and returns the ``torch.nn.Module`` (a file
``path/to/file.py:function`` or an importable ``package.module:function``); ``weights`` is a state
dict saved with ``torch.save(model.state_dict(), path)`` (or a dict holding one under
"state_dict" or "model"), loaded strictly; ``inputs`` is the training data the network was fitted
to (.pt holding {"X": ..., "y": ...} or (X, y); .npz with arrays X and y), else ``dataset=`` (a
built-in one, its training rows); ``lam`` is the weight decay λ of its weight matrices. Integer y
are labels (one-hot for loss=mse), real y are targets as they are. Every problem is caught before
anything is written: one line naming it, and what to do.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch

from factcli.core.losses import CONVENTIONS, make_targets, per_sample_loss
from factcli.errors import FactError

from .data import load_net_data
from .report import report, verified_table

STATE_DICT_KEYS = ("state_dict", "model")


def verify_user_network(cfg, run, device) -> dict:
    model = build_user_network(cfg.network)
    if not any(True for _ in model.parameters()):
        raise FactError(f"network={cfg.network}: the model has no parameters, so no weight matrix to check")
    if cfg.weights is not None:
        load_user_weights(model, cfg.weights, cfg.network)
    broken = next((name for name, p in model.named_parameters() if not torch.isfinite(p).all()), None)
    if broken is not None:
        where = f"weights={cfg.weights}" if cfg.weights is not None else f"network={cfg.network}"
        raise FactError(f"{where}: parameter {broken} holds NaN or infinite values (a diverged training?)")
    model = model.to(device)
    X, labels, described = user_data(cfg)
    if X.is_floating_point() and not torch.isfinite(X).all():
        raise FactError(f"{described}: X holds NaN or infinite values; clean or impute them first")
    X = model_inputs(model, X)
    targets = user_targets(model, X, labels, cfg.loss)
    try:
        table = verified_table(
            cfg, model, (X.to(device), targets.to(device)), per_sample_loss(cfg.loss), cfg.lam
        )
    except (RuntimeError, ValueError) as error:  # a later batch that does not fit, a bad loss shape
        raise FactError(f"FACT could not be computed on {described}: {_first_line(error)}") from None
    rows, reading, plots = report(cfg, run, table, CONVENTIONS[cfg.loss], None)
    return {
        "convergence": reading,
        "source": f"{cfg.network}" + (f" with weights {cfg.weights}" if cfg.weights else ""),
        "dataset": described,
        "train_rows": table.n,
        "lambda": cfg.lam,
        "loss": cfg.loss,
        "loss_convention": CONVENTIONS[cfg.loss],
        "train_loss": table.loss,
        "max_residual": table.max_residual,
        "fact_corr_min": min(r["fact"] for r in rows),
        "layers": rows,
        "skipped_layers": table.skipped,
        "table": "fact_layers.csv",
        "plots": plots,
    }


def build_user_network(spec: str) -> torch.nn.Module:
    """Call the function ``spec`` names (``file.py:function`` or ``package.module:function``)."""
    where, _, name = str(spec).rpartition(":")
    if not where or not name:
        raise FactError(
            f"network={spec}: give the constructor as path/to/file.py:function or package.module:function"
        )
    if where.endswith(".py"):
        path = Path(where).expanduser()
        if not path.is_file():
            raise FactError(f"network={spec}: no such file {path}")
        module_name = f"fact_user_network_{abs(hash(str(path.resolve())))}"
        loader_spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[module_name] = module  # dataclasses and pickling look the module up by name
        try:
            loader_spec.loader.exec_module(module)
        except Exception as error:
            del sys.modules[module_name]
            raise FactError(f"network={spec}: importing {path} failed: {_first_line(error)}") from None
    else:
        try:
            module = importlib.import_module(where)
        except Exception as error:
            raise FactError(
                f"network={spec}: cannot import module {where} ({_first_line(error)}); for a file "
                "give its path ending in .py"
            ) from None
    function = getattr(module, name, None)
    if not callable(function):
        raise FactError(f"network={spec}: {where} has no function {name!r}")
    try:
        model = function()
    except Exception as error:
        raise FactError(f"network={spec}: calling {name}() failed: {_first_line(error)}") from None
    if not isinstance(model, torch.nn.Module):
        raise FactError(f"network={spec}: {name}() returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def load_user_weights(model: torch.nn.Module, path: str, spec: str) -> None:
    """Load a state dict strictly; a misfit names the first key that does not fit."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise FactError(f"weights={path}: no such file")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:
        raise FactError(f"weights={path}: not a readable torch file ({_first_line(error)})") from None
    if isinstance(state, dict) and not _is_state_dict(state):
        state = next((state[k] for k in STATE_DICT_KEYS if _is_state_dict(state.get(k))), state)
    if not _is_state_dict(state):
        raise FactError(
            f"weights={path}: not a state dict (save one with torch.save(model.state_dict(), path))"
        )
    mismatch = first_mismatch(model.state_dict(), state)
    if mismatch is not None:
        raise FactError(f"weights={path} do not fit the network from {spec}: {mismatch}")
    model.load_state_dict(state)


def first_mismatch(expected: dict, found: dict) -> str | None:
    """The first key (in the model's order) missing, of another shape, or not in the model."""
    for key, value in expected.items():
        if key not in found:
            return f"first mismatching key {key!r}: in the model, missing from the file"
        if tuple(found[key].shape) != tuple(value.shape):
            return (
                f"first mismatching key {key!r}: shape {list(found[key].shape)} in the file, "
                f"{list(value.shape)} in the model"
            )
    extra = next((key for key in found if key not in expected), None)
    if extra is not None:
        return f"first mismatching key {extra!r}: in the file, not in the model"
    return None


def _is_state_dict(value) -> bool:
    return (
        isinstance(value, dict) and bool(value) and all(isinstance(v, torch.Tensor) for v in value.values())
    )


def user_data(cfg) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(X, y, description): the ``inputs`` file, else the training rows of ``dataset``."""
    if cfg.inputs is None:
        data = load_net_data(cfg.dataset, cfg.data, cfg.seed)
        return data.X_train, data.y_train, f"the training rows of {data.description}"
    X, y = read_data_file(cfg.inputs)
    return X, y, f"{cfg.inputs} ({len(y)} rows)"


def read_data_file(path: str) -> tuple[torch.Tensor, torch.Tensor]:
    file = Path(path).expanduser()
    if not file.is_file():
        raise FactError(f"inputs={path}: no such file")
    if file.suffix == ".npz":
        try:
            with np.load(file, allow_pickle=False) as arrays:
                X, y = (torch.from_numpy(np.asarray(arrays[k])) for k in ("X", "y"))
        except KeyError:
            raise FactError(f"inputs={path}: the .npz file needs arrays named X and y") from None
        except Exception as error:
            raise FactError(f"inputs={path}: not a readable .npz file ({_first_line(error)})") from None
    elif file.suffix == ".pt":
        try:
            payload = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as error:
            raise FactError(f"inputs={path}: not a readable torch file ({_first_line(error)})") from None
        if isinstance(payload, dict) and {"X", "y"} <= set(payload):
            X, y = payload["X"], payload["y"]
        elif isinstance(payload, tuple | list) and len(payload) == 2:
            X, y = payload
        else:
            raise FactError(f'inputs={path}: the .pt file must hold {{"X": ..., "y": ...}} or (X, y)')
        if not (isinstance(X, torch.Tensor) and isinstance(y, torch.Tensor)):
            raise FactError(f"inputs={path}: X and y must be tensors")
    else:
        raise FactError(f"inputs={path}: use a .pt file ({{'X', 'y'}} or (X, y)) or an .npz file (X, y)")
    if X.shape[0] != y.shape[0] or X.shape[0] == 0:
        raise FactError(f"inputs={path}: X has {X.shape[0]} rows and y has {y.shape[0]}; they must match")
    return X, y


def model_inputs(model, X: torch.Tensor) -> torch.Tensor:
    """Integer X as the model takes it: token ids stay integers for a model that looks them up
    (an embedding); for a model that needs real inputs they are read as floats."""
    if X.is_floating_point():
        return X
    parameter = next(model.parameters())
    try:
        with torch.no_grad():
            model.eval()(X[:2].to(parameter.device))
        return X
    except Exception:  # e.g. a Linear refusing integer rows: read them as numbers
        return X.to(parameter.dtype)


def user_targets(model, X: torch.Tensor, labels: torch.Tensor, loss: str) -> torch.Tensor:
    """Targets in the loss's form, after checking on two rows that the data fit the model."""
    parameter = next(model.parameters())
    rows = (
        X[:2].to(parameter.device, parameter.dtype) if X.is_floating_point() else X[:2].to(parameter.device)
    )
    with torch.no_grad():
        try:
            probe = model.eval()(rows)
        except Exception as error:
            raise FactError(
                f"inputs of shape {list(X.shape[1:])} per row do not fit the network: {_first_line(error)}"
            ) from None
    if not isinstance(probe, torch.Tensor):
        raise FactError(f"the network returns a {type(probe).__name__}; FACT needs it to return one tensor")
    outputs = probe.reshape(probe.shape[0], -1).shape[1]
    if labels.is_floating_point():
        if loss != "mse":
            raise FactError(f"real-valued y (regression targets) need loss=mse, not loss={loss}")
        if labels.reshape(len(labels), -1).shape[1] != outputs:
            raise FactError(
                f"y has {labels.reshape(len(labels), -1).shape[1]} values per row, the network "
                f"{outputs} outputs"
            )
        return labels.reshape(len(labels), *probe.shape[1:])
    if int(labels.max()) >= outputs or int(labels.min()) < 0:
        raise FactError(
            f"labels range over {int(labels.min())}..{int(labels.max())} but the network has "
            f"{outputs} outputs"
        )
    return make_targets(labels, outputs, loss, torch.float64)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__
