"""One run = one directory: config.yaml, metrics.csv, summary.json (written last), plots/.

Every file is written atomically (temporary file in the same directory, then ``os.replace``), so a
crash or Ctrl-C never leaves a half-written result, and ``summary.json`` existing means the run
finished. A sweep directory additionally gets ``sweep.csv``: one row per job, its overrides beside its
summary (``pandas.read_csv(".../sweep.csv")``).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import __version__
from .errors import FactError

log = logging.getLogger("fact")

SUMMARY = "summary.json"
METRICS = "metrics.csv"
CONFIG = "config.yaml"
ERROR = "error.txt"


# --- atomic writes ---------------------------------------------------------------------------


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the new one, never a partial one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a result file is as readable as any other
        with os.fdopen(fd, mode) as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it
    os.umask(mask)
    return mask


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n")


def write_csv(path: Path, rows: list[dict], columns: list[str] | None = None) -> None:
    """Rows of dicts → CSV with a header (columns: the union of keys, in first-seen order)."""
    columns = columns or _columns(rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _csv_value(row.get(key)) for key in columns})
    write_atomic(path, buffer.getvalue())


def _columns(rows: Iterable[dict]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return to_jsonable(value) if not isinstance(value, str) else value


def to_jsonable(obj: Any) -> Any:
    """Plain Python for JSON: tensors, NumPy scalars/arrays, paths; non-finite floats become None."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # torch / numpy
        return to_jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# --- the run directory -----------------------------------------------------------------------


class RunDir:
    """A run's directory. ``RunDir.start`` refuses a directory that already holds a finished run."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.plots = self.path / "plots"
        self._metrics: list[dict] = []
        self._started = time.time()
        self.sweep_dir: Path | None = None  # the sweep this run is a job of (set by job.Job)

    @classmethod
    def start(cls, path: Path, resolved_config_yaml: str) -> RunDir:
        run = cls(path)
        if finished_summary(run.path) is not None:
            raise FactError(
                f"{run.path} already holds a finished run; choose another hydra.run.dir "
                "(or delete that directory to redo it)"
            )
        run.path.mkdir(parents=True, exist_ok=True)
        (run.path / ERROR).unlink(missing_ok=True)
        write_atomic(run.path / CONFIG, resolved_config_yaml)
        return run

    def file(self, name: str) -> Path:
        return self.path / name

    def plot_file(self, name: str) -> Path:
        self.plots.mkdir(exist_ok=True)
        return self.plots / name

    # metrics.csv: one tidy row per step; rewritten atomically on every log (cheap at these sizes)
    def log(self, **row: Any) -> None:
        self._metrics.append(row)
        write_csv(self.path / METRICS, self._metrics)

    def log_many(self, rows: Iterable[dict]) -> None:
        self._metrics.extend(rows)
        write_csv(self.path / METRICS, self._metrics)

    @property
    def metrics(self) -> list[dict]:
        return list(self._metrics)

    def finish(self, summary: dict, *, seed: int | None, command: list[str]) -> dict:
        """Write summary.json last: status, timing, seed, versions and git commit beside the figures."""
        full = {
            "status": "finished",
            **summary,
            "seed": seed,
            "wall_seconds": round(time.time() - self._started, 3),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": command,
            "versions": versions(),
            "git_commit": git_commit(),
        }
        write_json(self.path / SUMMARY, full)
        return full


def finished_summary(directory: Path) -> dict | None:
    """The summary of the run that finished in ``directory``; None when it holds none.

    A summary.json that is empty or not a JSON object (a disk filled up, a hand edit) does not make a
    run finished: it is named in one warning and the run counts as unfinished, to be run again.
    """
    summary, problem = read_summary(directory)
    if problem is not None:
        log.warning("%s", problem)
    return summary


def read_summary(directory: Path) -> tuple[dict | None, str | None]:
    """(the finished run's summary or None, one line naming an unreadable summary.json or None)."""
    path = Path(directory) / SUMMARY
    if not path.is_file():
        return None, None
    try:
        summary = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return None, f"{path} is unreadable ({_first_line(error)}); its job counts as unfinished"
    if not isinstance(summary, dict):
        return None, f"{path} holds no summary (a JSON object); its job counts as unfinished"
    return summary, None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def versions() -> dict:
    import torch

    return {"fact": __version__, "python": platform.python_version(), "torch": torch.__version__}


def git_commit() -> str | None:
    """The commit of the source tree this package runs from, when it is a git checkout."""
    source = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(
        ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        timeout=5,
    ).stdout.strip()
    return out.stdout.strip() + ("+dirty" if dirty else "")


# --- sweeps ----------------------------------------------------------------------------------


def collect_sweep(sweep_dir: Path) -> list[dict]:
    """One row per job directory of a sweep: job, its overrides as columns, status, summary scalars.

    A job whose summary.json or overrides.yaml is unreadable counts as unfinished; its row's
    ``problem`` names the file (``fact sweep-table`` prints it).
    """
    rows = []
    for job in sorted((p for p in Path(sweep_dir).iterdir() if p.is_dir()), key=_job_order):
        overrides_file = job / ".hydra" / "overrides.yaml"
        if not overrides_file.exists():
            continue
        row: dict[str, Any] = {"job": job.name}
        overrides, problem = _read_overrides(overrides_file)
        for override in overrides:
            key, _, value = str(override).partition("=")
            row[key.lstrip("+~")] = value
        summary, summary_problem = read_summary(job)
        problem = problem or summary_problem
        error_file = job / ERROR
        if summary is not None and problem is None:
            row.update(_flatten_scalars(summary))
        else:
            row["status"] = "failed" if error_file.exists() and problem is None else "unfinished"
            if row["status"] == "failed":
                row["error"] = error_file.read_text().strip()
        if problem is not None:
            row["problem"] = problem
        rows.append(row)
    return rows


def _read_overrides(path: Path) -> tuple[list, str | None]:
    """(a job's overrides, None), or ([], one line naming the file) when it is not a YAML list."""
    import yaml

    try:
        overrides = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        return [], f"{path} is unreadable ({_first_line(error)}); its job counts as unfinished"
    if overrides is None:
        return [], None
    if not isinstance(overrides, list):
        return [], f"{path} holds no list of overrides; its job counts as unfinished"
    return overrides, None


def _job_order(path: Path):
    return (0, int(path.name)) if path.name.isdigit() else (1, path.name)


def _flatten_scalars(summary: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in summary.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten_scalars(value, name + "."))
        elif not isinstance(value, list):
            flat[name] = value
    return flat


def write_sweep_table(sweep_dir: Path) -> Path | None:
    rows = collect_sweep(sweep_dir)
    if not rows:
        return None
    path = Path(sweep_dir) / "sweep.csv"
    write_csv(path, rows)
    return path
