"""Around every job, whatever the subcommand: one writer per directory, nothing recorded rewritten by a
refused invocation, every failure recorded.

Before Hydra starts (``preflight``, called by launch.py), with the composed config:
- the config is validated (a single run; a sweep's jobs are validated inside, each recording its own
  failure), so a bad value stops everything before a single file is written;
- the run directory (or a sweep's directory) is resolved and pinned, so Hydra uses exactly the one
  checked; a path that is a file, a finished run, a directory another process holds, or a sweep
  directory holding a sweep of other overrides is refused in one line;
- the directory's lock is taken (rundir_lock) and kept until the process ends.

Inside the job (``Job``, Hydra's task function; ``run_job`` its body). ``Job`` is a plain module-level
class, so launchers that run jobs in other processes can ship it: the joblib launcher sends it to loky
worker processes, submitit pickles it into a file that a local process or a SLURM node runs. Nothing a
job does reaches the parent process except through the job's directory (``summary.json``,
``error.txt``); the parent builds ``sweep.csv`` and the exit status from those files (sweep.py).
- Hydra itself writes no ``.hydra/`` (``hydra.output_subdir: null``): this module writes the same three
  files once the job holds its directory, so a refused rerun cannot replace them;
- a sweep job whose directory holds a finished run of the same config is reported done (so an
  interrupted sweep's rerun finishes with status 0); of another config, refused with nothing written;
- any exception becomes a one-line reason. A single run that fails before producing anything is rolled
  back: the records it replaced (config.yaml, .hydra/, error.txt) are restored, a directory it created
  is removed, and the CLI prints the reason. A run that produced something, and every sweep job, keeps
  ``error.txt`` beside its results; an unexpected exception (a bug) also leaves ``traceback.txt``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from . import rundir_lock
from .errors import FactError
from .rundir import CONFIG, ERROR, SUMMARY, write_atomic
from .runtime import thread_pools

log = logging.getLogger("fact")

HYDRA_DIR = ".hydra"
HYDRA_FILES = ("config.yaml", "hydra.yaml", "overrides.yaml")
TRACEBACK = "traceback.txt"
RECORDS = (CONFIG, ERROR, TRACEBACK, *(f"{HYDRA_DIR}/{name}" for name in HYDRA_FILES))

_fresh: set[Path] = set()  # run directories this process created (a refused run removes them again)

# What joblib's loky workers find set to cores / n_jobs when they start. BLAS libraries size
# themselves when they load, and scipy's OpenBLAS loaded for one thread factors in another order
# than one loaded for every core (a float32 difference of ~1e-6, enough to flip a tied prediction),
# so a job would give other numbers under another launcher. Every job therefore runs with the
# environment of the process that started the sweep, and takes its share of the cores at run time
# (torch.set_num_threads, threadpoolctl), which gives the same numbers.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMBA_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def thread_environment() -> dict[str, str]:
    return {name: os.environ[name] for name in THREAD_VARIABLES if name in os.environ}


def restore_thread_environment(environment: dict[str, str]) -> None:
    for name in THREAD_VARIABLES:
        if name in environment:
            os.environ[name] = environment[name]
        else:
            os.environ.pop(name, None)


# --- before Hydra ----------------------------------------------------------------------------


def preflight(command, cfg, task_overrides: list[str], multirun: bool) -> list[str]:
    """Check and lock the run (or sweep) directory of ``command`` (an entry of commands.COMMANDS);
    return overrides that pin it for Hydra.

    ``cfg`` is the composed config with its ``hydra`` node (a sweep's first variant);
    ``task_overrides`` are the user's own non-Hydra overrides as typed (they identify a sweep).
    """
    from omegaconf import OmegaConf

    _fresh.clear()
    multirun = multirun or str(cfg.hydra.mode).endswith("MULTIRUN")
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    raw = OmegaConf.to_container(cfg.hydra.sweep if multirun else cfg.hydra.run, resolve=False)["dir"]
    path = Path(str(OmegaConf.select(cfg, key)))
    if not multirun:
        validate(command, cfg)
    if path.exists() and not path.is_dir():
        raise FactError(f"{key}={path} is a file, not a directory; choose a directory")
    if multirun:
        _refuse_other_sweep(path, task_overrides)
    elif (path / SUMMARY).exists():
        raise FactError(
            f"{path} already holds a finished run; choose another {key} (or delete that directory to redo it)"
        )
    pin = _pinned(key, str(path)) if "${now:" in str(raw) else []
    if pin or "${now:" not in str(raw):  # an unpinnable timestamped path is locked inside the job
        fresh = not path.exists()
        rundir_lock.hold(path)
        if fresh:
            _fresh.add(path.resolve())
    return pin


def end() -> None:
    """After the run or sweep: give every lock back and forget which directories were new."""
    rundir_lock.release_all()
    _fresh.clear()


def _pinned(key: str, path: str) -> list[str]:
    """``key='path'``, when the path can be quoted for Hydra's override grammar (else not pinned)."""
    return [f"{key}='{path}'"] if re.fullmatch(r"[^'\"\\$]*", path) else []


def _refuse_other_sweep(sweep_dir: Path, task_overrides: list[str]) -> None:
    """A sweep directory is only ever resumed by the same sweep: other overrides would mix two sweeps."""
    import yaml

    saved = sweep_dir / "multirun.yaml"
    if not saved.is_file():
        return
    try:
        earlier = (yaml.safe_load(saved.read_text()) or {})["hydra"]["overrides"]["task"]
    except (yaml.YAMLError, KeyError, TypeError):
        raise FactError(f"{saved} is unreadable; choose another hydra.sweep.dir") from None
    if sorted(map(str, earlier)) != sorted(task_overrides):
        raise FactError(
            f"{sweep_dir} holds a sweep of other overrides ({' '.join(map(str, earlier)) or 'none'}); "
            "rerun it with those to resume it, or choose another hydra.sweep.dir"
        )


# --- inside Hydra's job ----------------------------------------------------------------------


def validate(command, cfg) -> None:
    """The rules every command shares (schema/_checks.py), then the command's own."""
    from .schema._checks import check_every_value

    check_every_value(cfg)
    command.validate(cfg)


@dataclass
class Job:
    """Hydra's task function for one command, picklable for the joblib and submitit launchers."""

    command_name: str  # the command's entry in commands.COMMANDS
    command_path: str  # as typed (`fact fit-rfm`), recorded in summary.json
    default_threads: int | None = None  # this job's share of the cores when jobs run side by side
    # The launching process's thread variables, restored in worker processes before BLAS loads.
    environment: dict[str, str] = field(default_factory=thread_environment)
    # Failures of jobs that ran in this process (a single run); a sweep reads its job directories.
    failures: list[str] = field(default_factory=list)

    def __call__(self, cfg) -> dict | None:
        restore_thread_environment(self.environment)
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        from .commands import COMMANDS

        try:
            summary, failure = run_job(
                COMMANDS[self.command_name], self.command_path, cfg, self.default_threads
            )
        finally:
            # A sweep's job is over: give its directory back. Worker processes of the joblib launcher
            # live on after the sweep and would otherwise hold it against a rerun that resumes it.
            hydra_cfg = HydraConfig.get()
            if hydra_cfg.mode == RunMode.MULTIRUN:
                rundir_lock.release(Path(hydra_cfg.runtime.output_dir))
        if failure is not None:
            self.failures.append(failure)
        return summary


def run_job(
    command, command_path: str, cfg, default_threads: int | None = None
) -> tuple[dict | None, str | None]:
    """Run one job; return (its summary, None) or (None, one line: why it failed, "job N: ..." in a sweep)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from .core import InvalidInput
    from .rundir import RunDir

    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    path = Path(hydra_cfg.runtime.output_dir)
    label = f"job {hydra_cfg.job.num}" if multirun else str(path)
    try:
        rundir_lock.hold(path)
        done = _finished_already(path, cfg, multirun)
    except FactError as error:  # not this job's directory: write nothing into it
        return None, _labelled(multirun, label, _reason(error))
    if done is not None:
        log.info("%s already finished in %s", label, path)
        return done, None

    snapshot = Snapshot(path, fresh=path.resolve() in _fresh, job_log=f"{hydra_cfg.job.name}.log")
    try:
        _write_hydra_files(path, cfg)
        validate(command, cfg)
        run = RunDir.start(path, _resolved_yaml(cfg))
        run.sweep_dir = Path(hydra_cfg.sweep.dir) if multirun else None
        threads = prepare_process(cfg, default_threads)
        words = [command_path.split()[-1], *hydra_cfg.overrides.task]
        result = {**command.run(cfg, run), "threads": threads, "thread_pools": thread_pools()}
        summary = run.finish(result, seed=cfg.get("seed"), command=words)
        log.info("finished: %s", run.path)
        return summary, None
    except (FactError, InvalidInput) as error:  # core's input errors reach the user as one line too
        reason = _reason(error)
        if multirun or snapshot.produced_results():
            write_atomic(path / ERROR, reason + "\n")
        else:  # refused or failed before producing anything: leave the directory as it was
            snapshot.roll_back()
    except Exception as error:  # a bug: keep its traceback beside the one-line reason
        write_atomic(path / TRACEBACK, traceback.format_exc())
        reason = f"unexpected {type(error).__name__}: {_first_line(error)} (traceback in {path / TRACEBACK})"
        write_atomic(path / ERROR, reason + "\n")
    if multirun:
        log.error("%s failed: %s", label, reason)
    return None, _labelled(multirun, label, reason)


def _labelled(multirun: bool, label: str, reason: str) -> str:
    return f"{label}: {reason}" if multirun else reason


def _finished_already(path: Path, cfg, multirun: bool) -> dict | None:
    """A sweep job's stored summary when its directory finished this very config; refusals otherwise."""
    if not (path / SUMMARY).exists():
        return None
    if multirun and (path / CONFIG).is_file() and (path / CONFIG).read_text() == _resolved_yaml(cfg):
        return json.loads((path / SUMMARY).read_text())
    raise FactError(
        f"{path} already holds a finished run; choose another run directory (or delete it to redo it)"
    )


def _write_hydra_files(path: Path, cfg) -> None:
    """The three files Hydra would have written into .hydra/ (its own writing is switched off)."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    hydra = HydraConfig.instance().cfg
    texts = (OmegaConf.to_yaml(cfg), OmegaConf.to_yaml(hydra), OmegaConf.to_yaml(hydra.hydra.overrides.task))
    for name, text in zip(HYDRA_FILES, texts, strict=True):
        write_atomic(path / HYDRA_DIR / name, text)


def _resolved_yaml(cfg) -> str:
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(cfg, resolve=True)


def prepare_process(cfg, default_threads: int | None) -> int:
    """Threads of every pool (the config's, else this job's share of the cores) and seeds; returns them."""
    from .runtime import seed_everything, set_threads

    requested = cfg.get("threads")
    threads = set_threads(requested if requested is not None else default_threads)
    if cfg.get("seed") is not None:
        seed_everything(int(cfg.seed))
    return threads


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _reason(error: Exception) -> str:
    return _first_line(error)


class Snapshot:
    """What a directory held before a job touched it: the record files' bytes, every other file's stat."""

    def __init__(self, path: Path, *, fresh: bool, job_log: str):
        self.path, self.fresh, self.job_log = Path(path), fresh, job_log
        self.records = {name: _read_bytes(self.path / name) for name in RECORDS}
        self.files = self._other_files()

    def _other_files(self) -> dict[str, tuple[int, int]]:
        skip = {*RECORDS, rundir_lock.LOCK, self.job_log}
        files = {}
        for file in self.path.rglob("*"):
            name = file.relative_to(self.path).as_posix()
            if name not in skip and file.is_file():
                stat = file.stat()
                files[name] = (stat.st_mtime_ns, stat.st_size)
        return files

    def produced_results(self) -> bool:
        return self._other_files() != self.files

    def roll_back(self) -> None:
        for name, content in self.records.items():
            if content is None:
                (self.path / name).unlink(missing_ok=True)
            else:
                write_atomic(self.path / name, content)
        if self.fresh:  # created by this invocation: remove what is left of it
            for name in (self.job_log, rundir_lock.LOCK):
                (self.path / name).unlink(missing_ok=True)
            for folder in (self.path / HYDRA_DIR, self.path / "plots", self.path):
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()


def _read_bytes(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None
