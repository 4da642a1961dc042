"""Checkpoints of train-net: model, optimizer, schedule, sampler, config and step in one file.

Written atomically (temporary file, then os.replace), so an interruption leaves the previous
checkpoint intact; a run resumes from it with the same numbers as if never interrupted.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch

from factcli.core.nets import build_model
from factcli.errors import FactError
from factcli.rundir import write_atomic

CHECKPOINT = "checkpoint.pt"


def save_checkpoint(path: Path, payload: dict) -> None:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_atomic(Path(path), buffer.getvalue())


def find_checkpoint(source: str | Path) -> Path:
    """The checkpoint file of ``source``: a checkpoint itself, or a run directory holding one."""
    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / CHECKPOINT).is_file():
            raise FactError(
                f"{path} holds no {CHECKPOINT}: pass the directory of a train-net run (or its "
                "checkpoint file)"
            )
        return path / CHECKPOINT
    if not path.is_file():
        raise FactError(f"no such checkpoint or run directory: {path}")
    return path


def load_checkpoint(path: Path) -> dict:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated or foreign file: say which, in one line
        raise FactError(f"{path} is not a readable train-net checkpoint ({type(error).__name__})") from None
    if not isinstance(payload, dict) or "architecture" not in payload or "model" not in payload:
        raise FactError(f"{path} is not a train-net checkpoint (no model architecture in it)")
    return payload


def check_architecture(expected: dict, found: dict, path: Path) -> None:
    """Refuse a checkpoint whose network differs from the configured one, naming the difference."""
    if expected == found:
        return
    keys = sorted(set(expected) | set(found))
    differences = [f"{k}: {found.get(k)} (checkpoint) vs {expected.get(k)}" for k in keys
                   if expected.get(k) != found.get(k)]  # fmt: skip
    raise FactError(
        f"checkpoint {path} is from another architecture ({'; '.join(differences)}); use a new run "
        "directory or the checkpoint's own model settings"
    )


def model_from_checkpoint(payload: dict, path: Path) -> torch.nn.Module:
    """The checkpoint's network, rebuilt from its architecture, with its weights loaded."""
    try:
        # In the stored precision before loading: a float32 detour would round float64 weights.
        model = build_model(payload["architecture"]).to(getattr(torch, payload.get("dtype", "float32")))
        model.load_state_dict(payload["model"])
    except (TypeError, ValueError, KeyError, RuntimeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise FactError(f"checkpoint {path}: weights do not fit its architecture ({first_line})") from None
    return model
