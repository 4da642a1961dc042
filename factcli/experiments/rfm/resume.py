"""fit-rfm's finished units of selection, kept in the run directory so that an interrupted fit resumes.

Selection (grid.py) is made of units, each finished as a whole:

- a stage-0 unit: one kernel's (row normalization, bandwidth), every ridge solved with that kernel
  matrix (``kernel_stage``'s inner loop); kept: its candidates, the grid points no precision solved,
  and the solver's state (precision, CG budget) before and after it, which a later unit inherits;
- a path unit: one feature-learning path (kernel, bandwidth, normalization, ridge), t = 1..T
  (``feature_stage``'s inner loop); kept: its candidates, whether an inaccurate solve stopped it, and
  every iterate's M (``selection/path_<i>.npy``: the chosen one's M goes into the refits).

``<run>/selection/units.json`` lists them with the config and a fingerprint of the data that made
them; it is rewritten atomically as each unit finishes (as metrics.csv is), and the run directory has
one writer (rundir_lock), so no lock is taken here. A rerun in the same directory reuses every unit
it finds: scores are read back exactly (JSON keeps a float's shortest repr, .npy its bytes), the
solver's state is restored as the unit left it, and a path whose stage-0 start was reused has that
start's fits recomputed from the state the unit began in. The resumed selection therefore equals the
uninterrupted one, number for number. Settings that shape selection must match, as train-net's
resume requires (nets/train.py); a rerun with others is refused in one line naming the keys.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch

from factcli.errors import FactError
from factcli.messages import as_override
from factcli.rundir import write_atomic, write_json

from ..nets.train import resume_changes
from .grid import Candidate, kernel_stage

log = logging.getLogger("fact")

FOLDER = "selection"
INDEX = "units.json"
# What may differ between the interrupted run and its rerun: output and hardware only (as for train-net).
RESUME_MAY_CHANGE = ("plots", "threads", "device", "memory_limit_gb")
FLOAT_FIELDS = {f.name for f in fields(Candidate) if f.type == "float"}


@dataclass
class Stage0Unit:
    candidates: list[Candidate]
    unsolved: int
    precisions: set
    before: dict  # the solver's state when the unit began (its fits are recomputed from it)
    after: dict  # and when it ended (the next unit of the same work starts from it)


@dataclass
class PathUnit:
    candidates: list[Candidate]
    failed: int  # 1 when an inaccurate solve stopped the path
    precisions: set
    Ms: dict  # Candidate -> M


class Units:
    """The finished units of one fit-rfm run directory: looked up by grid.py, added as they finish."""

    def __init__(self, run_dir: Path, config: dict, fingerprint: str, device, progress=None):
        self.folder = Path(run_dir) / FOLDER
        self.config, self.fingerprint, self.device = config, fingerprint, device
        self.progress = progress
        self.stage0s: dict[tuple, dict] = {}
        self.paths: dict[tuple, dict] = {}
        self.reused = {"points": 0, "paths": 0}
        self.total = {"points": 0, "paths": 0}
        self.recomputed: dict[tuple, dict] = {}  # stage-0 fits of reused units, made again for a path
        self._before: dict | None = None
        self._load()

    # ----------------------------------------------------------------------------- stage 0

    def stage0(self, kernel: str, normalize: bool, bandwidth: float, work) -> Stage0Unit | None:
        """The stored unit (the work's state set as it left it), or None: compute it."""
        stored = self.stage0s.get((kernel, bool(normalize), float(bandwidth)))
        self._before = solver_state(work)
        if stored is None:
            return None
        unit = Stage0Unit(
            [candidate_of(c) for c in stored["candidates"]],
            int(stored["unsolved"]),
            set(stored["precisions"]),
            stored["before"],
            stored["after"],
        )
        restore_solver_state(work, unit.after)
        self._count("points", len(unit.candidates) + unit.unsolved, reused=True)
        if self.progress is not None:
            self.progress.advance(len(unit.candidates), "reused")
        return unit

    def keep_stage0(self, kernel, normalize, bandwidth, work, candidates, unsolved, precisions) -> None:
        key = (kernel, bool(normalize), float(bandwidth))
        self.stage0s[key] = {
            "kernel": kernel,
            "normalize": bool(normalize),
            "bandwidth": float(bandwidth),
            "candidates": [candidate_record(c) for c in candidates],
            "unsolved": int(unsolved),
            "precisions": sorted(precisions),
            "before": self._before,
            "after": solver_state(work),
        }
        self._count("points", len(candidates) + unsolved, reused=False)
        self._save()

    def start_fit(self, task, stage, spec, options, split, bandwidth, normalize, ridge):
        """The stage-0 fit a path starts from when its unit was reused (its fits are not in memory):
        the unit is solved again from the solver state it began in, giving the same fits."""
        key = (stage.kernel, bool(normalize), float(bandwidth))
        stored = self.stage0s.get(key)
        solved = stored is not None and any(c["ridge"] == float(ridge) for c in stored["candidates"])
        if not solved:
            return None  # not a reused unit, or stage 0 could not solve this point in any precision
        if key not in self.recomputed:
            log.info(
                "recomputing the stage-0 fits at %s L=%.3g, x/|x|=%s (kept as scores only) for its paths",
                stage.kernel, bandwidth, "yes" if normalize else "no",
            )  # fmt: skip
            one = replace(spec, bandwidths=(float(bandwidth),), bandwidth_unit="absolute")
            one = replace(one, normalizations=(bool(normalize),))
            again = kernel_stage(task, stage.kernel, one, options, split, units=_Restore(stored["before"]))
            self.recomputed[key] = again.solves
        return self.recomputed[key].get((float(bandwidth), bool(normalize), float(ridge)))

    # ----------------------------------------------------------------------------- paths

    def path(self, kernel: str, bandwidth: float, normalize: bool, ridge: float) -> PathUnit | None:
        stored = self.paths.get((kernel, float(bandwidth), bool(normalize), float(ridge)))
        if stored is None:
            return None
        candidates = [candidate_of(c) for c in stored["candidates"]]
        Ms = {}
        if candidates:
            stack = np.load(self.folder / stored["M_file"])
            Ms = {c: torch.tensor(M, device=self.device) for c, M in zip(candidates, stack, strict=True)}
        self._count("paths", 1, reused=True)
        if self.progress is not None:
            self.progress.advance(len(candidates), "reused")
        return PathUnit(candidates, int(stored["failed"]), set(stored["precisions"]), Ms)

    def keep_path(self, kernel, bandwidth, normalize, ridge, candidates, Ms, failed, precisions) -> None:
        key = (kernel, float(bandwidth), bool(normalize), float(ridge))
        name = f"path_{len(self.paths)}.npy"
        if candidates:
            buffer = io.BytesIO()
            np.save(buffer, np.stack([Ms[c].detach().cpu().numpy() for c in candidates]))
            write_atomic(self.folder / name, buffer.getvalue())
        self.paths[key] = {
            "kernel": kernel,
            "bandwidth": float(bandwidth),
            "normalize": bool(normalize),
            "ridge": float(ridge),
            "candidates": [candidate_record(c) for c in candidates],
            "failed": int(failed),
            "precisions": sorted(precisions),
            "M_file": name,
        }
        self._count("paths", 1, reused=False)
        self._save()

    # ----------------------------------------------------------------------------- records

    def report(self) -> str | None:
        """One line saying what was reused; None when nothing was."""
        if not any(self.reused.values()):
            return None
        points, paths = self.reused, self.total
        return (
            f"reused {points['points']} of {paths['points']} stage-0 grid points and "
            f"{points['paths']} of {paths['paths']} feature-learning paths from the interrupted run "
            f"({self.folder})"
        )

    def summary(self) -> dict:
        return {"stage0_points": self.reused["points"], "paths": self.reused["paths"]}

    def _count(self, what: str, count: int, reused: bool) -> None:
        self.total[what] += count
        if reused:
            self.reused[what] += count

    def _save(self) -> None:
        write_json(
            self.folder / INDEX,
            {
                "config": self.config,
                "data": self.fingerprint,
                "stage0": list(self.stage0s.values()),
                "paths": list(self.paths.values()),
            },
        )

    def _load(self) -> None:
        path = self.folder / INDEX
        if not path.is_file():
            return
        try:
            stored = json.loads(path.read_text())
            saved_config, data = stored["config"], stored["data"]
            stage0s, paths = stored["stage0"], stored["paths"]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
            raise FactError(
                f"{path} is unreadable ({type(error).__name__}); delete {self.folder} to start selection "
                "again, or use a new run directory"
            ) from None
        changed = resume_changes(self.config, saved_config or {})
        fixed = {key: pair for key, pair in changed.items() if not key.startswith(RESUME_MAY_CHANGE)}
        if fixed:
            listed = ", ".join(
                f"{key}={as_override(old)} (interrupted run) vs {as_override(new)}"
                for key, (old, new) in fixed.items()
            )
            raise FactError(
                f"{path} was made with other settings that a resume cannot change: {listed}; "
                "rerun with the interrupted run's values, or use a new run directory"
            )
        if data != self.fingerprint:
            raise FactError(
                f"{path} was made from other data (the dataset's rows or values changed since); "
                "use a new run directory"
            )
        for unit in stage0s:
            self.stage0s[(unit["kernel"], unit["normalize"], float(unit["bandwidth"]))] = unit
        for unit in paths:
            key = (unit["kernel"], float(unit["bandwidth"]), unit["normalize"], float(unit["ridge"]))
            self.paths[key] = unit


class _Restore:
    """Units for recomputing one stored stage-0 unit: the work starts in the state it began in."""

    def __init__(self, state: dict):
        self.state = state

    def stage0(self, kernel, normalize, bandwidth, work):
        restore_solver_state(work, self.state)
        return None

    def keep_stage0(self, *args) -> None:
        pass


def solver_state(work) -> dict:
    """What a solver's work carries from one unit to the next: its precision once a solve escalated,
    and (Nyström) its raised CG budget (solvers.Work.escalate)."""
    state = {"dtype": str(work.dtype).removeprefix("torch.")}
    if hasattr(work, "max_iters"):
        state["max_iters"] = int(work.max_iters)
    return state


def restore_solver_state(work, state: dict) -> None:
    work.dtype = getattr(torch, state["dtype"])
    if "max_iters" in state:
        work.max_iters = int(state["max_iters"])


def candidate_record(candidate: Candidate) -> dict:
    return asdict(candidate)  # non-finite floats become None in the JSON (rundir.to_jsonable)


def candidate_of(record: dict) -> Candidate:
    values = {
        key: (math.nan if value is None and key in FLOAT_FIELDS else value) for key, value in record.items()
    }
    return Candidate(**values)


def fingerprint(*arrays) -> str:
    """A digest of the arrays selection reads (features, targets, the tuning rows)."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array.detach().cpu().numpy() if hasattr(array, "detach") else array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]
