"""Around every job, whatever the subcommand: one writer per directory, nothing recorded rewritten by a
refused invocation, every failure recorded.

Before Hydra starts (``preflight``, called by launch.py), with the composed config:
- the config is validated (a single run; a sweep's jobs are validated inside, each recording its own
  failure), so a bad value stops everything before a single file is written;
- the run directory (or a sweep's directory) is resolved and pinned, so Hydra uses exactly the one
  checked; a path that is a file, a finished run, a directory another process holds, or a sweep
  directory holding a sweep of other overrides is refused in one line;
- the directory's lock is taken (rundir_lock); launch.py gives it back when the run or sweep ends,
  and removes the directory again when this invocation created it and left nothing but the lock.

Inside the job (``Job``, Hydra's task function; ``run_job`` its body). ``Job`` is a plain module-level
class, so launchers that run jobs in other processes can ship it: the joblib launcher sends it to loky
worker processes, submitit pickles it into a file that a local process or a SLURM node runs. Nothing a
job does reaches the parent process except through the job's directory (``summary.json``,
``error.txt``); the parent builds ``sweep.csv`` and the exit status from those files (sweep.py).
- Hydra itself writes no ``.hydra/`` (``hydra.output_subdir: null``): this module writes the same three
  files once the job holds its directory, so a refused rerun cannot replace them;
- a sweep job whose directory holds a finished run of the same config is reported done (so an
  interrupted sweep's rerun finishes with status 0); of another config, refused with nothing written;
- any exception becomes a one-line reason, including user code that exits (``sys.exit``, a
  ``KeyboardInterrupt``, which then stops the run or sweep) and a filesystem that refuses a write
  (said to be the machine's, not a bug). A single run that fails before producing anything is rolled
  back: the records it replaced (config.yaml, .hydra/, error.txt) are restored, a directory it created
  is removed, and the CLI prints the reason. A run that produced something, and every sweep job, keeps
  ``error.txt`` beside its results; an unexpected exception (a bug) also leaves ``traceback.txt``.
"""

from __future__ import annotations

import logging
import os
import re
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from . import rundir_lock
from .errors import FactError, environment_problem
from .rundir import CONFIG, ERROR, finished_summary, write_atomic
from .runtime import thread_pools

log = logging.getLogger("fact")

HYDRA_DIR = ".hydra"
HYDRA_FILES = ("config.yaml", "hydra.yaml", "overrides.yaml")
TRACEBACK = "traceback.txt"
RECORDS = (CONFIG, ERROR, TRACEBACK, *(f"{HYDRA_DIR}/{name}" for name in HYDRA_FILES))

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


@dataclass
class Preflight:
    """The run (or sweep) directory checked and locked before Hydra starts."""

    path: Path
    pin: list[str]  # overrides that make Hydra use exactly this directory
    fresh: bool  # this invocation created it (a refused run removes it again)
    lock: rundir_lock.Lock

    def release(self) -> None:
        """Give the lock back; a directory this invocation created and left holding only the lock
        (a run refused after the pre-flight) is removed, so a refusal leaves nothing behind."""
        self.lock.release()
        if self.fresh and self.path.is_dir() and {p.name for p in self.path.iterdir()} <= {rundir_lock.LOCK}:
            (self.path / rundir_lock.LOCK).unlink(missing_ok=True)
            self.path.rmdir()


def preflight(command, cfg, task_overrides: list[str], multirun: bool) -> Preflight:
    """Check and lock the run (or sweep) directory of ``command`` (an entry of commands.COMMANDS).

    ``cfg`` is the composed config with its ``hydra`` node (a sweep's first job);
    ``task_overrides`` are the user's own non-Hydra overrides as typed (they identify a sweep).
    """
    from omegaconf import OmegaConf

    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    raw = OmegaConf.to_container(cfg.hydra.sweep if multirun else cfg.hydra.run, resolve=False)["dir"]
    path = Path(str(OmegaConf.select(cfg, key)))
    if not multirun:
        validate(command, cfg)
    if path.exists() and not path.is_dir():
        raise FactError(f"{key}={path} is a file, not a directory; choose a directory")
    if multirun:
        _refuse_other_sweep(path, task_overrides)
    elif finished_summary(path) is not None:
        raise FactError(
            f"{path} already holds a finished run; choose another {key} (or delete that directory to redo it)"
        )
    fresh = not path.exists()
    lock = rundir_lock.hold(path)
    # A timestamp is resolved anew by every composition: pin the one checked here.
    return Preflight(
        path=path, pin=[f"{key}={quoted(str(path))}"] if "${" in str(raw) else [], fresh=fresh, lock=lock
    )


def quoted(text: str) -> str:
    """``text`` as a quoted value of Hydra's override grammar, read back exactly (quotes, ``${``,
    backslashes before either or at the end are escaped)."""
    text = re.sub(r"(\\+)(?='|\$\{|$)", lambda m: m.group(1) * 2, text)
    return "'" + text.replace("'", "\\'").replace("${", "\\${") + "'"


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
    held_dir: str | None = None  # the run directory the launching process locked (a single run)
    fresh_dir: str | None = None  # that directory, when the launch created it (a refusal removes it)
    # The launching process's thread variables, restored in worker processes before BLAS loads.
    environment: dict[str, str] = field(default_factory=thread_environment)
    # Failures of jobs that ran in this process (a single run); a sweep reads its job directories.
    failures: list[str] = field(default_factory=list)
    # Where every job, in whichever process, appends its failure: for runs with Hydra's own flags,
    # whose sweep directory the launching process never composed.
    failure_log: str | None = None

    def __call__(self, cfg) -> dict | None:
        restore_thread_environment(self.environment)
        from .commands import COMMANDS

        summary, failure = run_job(COMMANDS[self.command_name], self, cfg)
        if failure is not None:
            self.failures.append(failure)
            if self.failure_log is not None:
                with open(self.failure_log, "a", encoding="utf-8") as log_file:  # one short line: one write
                    log_file.write(failure.replace("\n", " ") + "\n")
        return summary


def read_failures(failure_log: str) -> list[str]:
    """The lines the jobs of a run appended to ``failure_log`` (none: no file)."""
    try:
        with open(failure_log, encoding="utf-8") as log_file:
            return [line.rstrip("\n") for line in log_file if line.strip()]
    except FileNotFoundError:
        return []


def run_job(command, job: Job, cfg) -> tuple[dict | None, str | None]:
    """Run one job; return (its summary, None) or (None, one line: why it failed, "job N: ..." in a sweep)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    path = Path(hydra_cfg.runtime.output_dir)
    label = f"job {hydra_cfg.job.num}" if multirun else str(path)
    held = job.held_dir is not None and path.resolve() == Path(job.held_dir).resolve()
    try:
        # The job's own directory, given back when the job ends: worker processes of the joblib
        # launcher live on after the sweep and would otherwise hold it against a rerun that resumes it.
        lock = None if held else rundir_lock.hold(path)
    except FactError as error:  # not this job's directory: write nothing into it
        return None, _labelled(multirun, label, _reason(error))
    try:
        fresh = job.fresh_dir is not None and path.resolve() == Path(job.fresh_dir).resolve()
        return _run_held(command, job, cfg, path, multirun, label, fresh)
    finally:
        if lock is not None:
            lock.release()


def _run_held(command, job: Job, cfg, path: Path, multirun: bool, label: str, fresh: bool):
    from hydra.core.hydra_config import HydraConfig

    from .core import InvalidInput
    from .rundir import RunDir

    hydra_cfg = HydraConfig.get()
    try:
        done = _finished_already(path, cfg, multirun)
    except FactError as error:  # not this job's directory: write nothing into it
        return None, _labelled(multirun, label, _reason(error))
    if done is not None:
        log.info("%s already finished in %s", label, path)
        return done, None

    snapshot = Snapshot(path, fresh=fresh, job_log=f"{hydra_cfg.job.name}.log")
    interrupted = None
    try:
        _write_hydra_files(path, cfg)
        validate(command, cfg)
        run = RunDir.start(path, _resolved_yaml(cfg))
        run.sweep_dir = Path(hydra_cfg.sweep.dir) if multirun else None
        threads = prepare_process(cfg, job.default_threads)
        words = [job.command_path.split()[-1], *hydra_cfg.overrides.task]
        result = {**command.run(cfg, run), "threads": threads, "thread_pools": thread_pools()}
        summary = run.finish(result, seed=cfg.get("seed"), command=words)
        log.info("finished: %s", run.path)
        return summary, None
    except (FactError, InvalidInput) as error:  # core's input errors reach the user as one line too
        reason = _reason(error)
        _record_or_roll_back(path, reason, multirun, snapshot)
    except KeyboardInterrupt as error:  # Ctrl-C, or user code raising it: stop, resumable
        interrupted, reason = error, _abnormal_exit(error)
        if not multirun:  # a sweep's interrupted job stays unfinished (no error.txt): its rerun resumes
            _record_or_roll_back(path, reason, multirun, snapshot)
    except SystemExit as error:  # user code that exits the process: a failure like any other
        reason = _abnormal_exit(error)
        _record_or_roll_back(path, reason, multirun, snapshot)
    except OSError as error:
        problem = environment_problem(error)
        if problem is None:
            reason = _record_bug(path)
        else:  # the user's filesystem refused: say so; error.txt is written where it still can be
            reason = problem
            _try(lambda: write_atomic(path / ERROR, reason + "\n"))
    except Exception:  # a bug: keep its traceback beside the one-line reason
        reason = _record_bug(path)
    if multirun:
        log.error("%s failed: %s", label, reason)
    if isinstance(interrupted, KeyboardInterrupt):
        raise interrupted  # stop here (a sweep too); what finished is kept, a rerun resumes
    return None, _labelled(multirun, label, reason)


def _record_or_roll_back(path: Path, reason: str, multirun: bool, snapshot: Snapshot) -> None:
    if multirun or snapshot.produced_results():
        write_atomic(path / ERROR, reason + "\n")
    else:  # refused or failed before producing anything: leave the directory as it was
        snapshot.roll_back()


def _record_bug(path: Path) -> str:
    import sys

    error = sys.exc_info()[1]
    write_atomic(path / TRACEBACK, traceback.format_exc())
    reason = f"unexpected {type(error).__name__}: {_first_line(error)} (traceback in {path / TRACEBACK})"
    write_atomic(path / ERROR, reason + "\n")
    return reason


def _abnormal_exit(error: BaseException) -> str:
    if isinstance(error, KeyboardInterrupt):
        return (
            "interrupted (Ctrl-C, or KeyboardInterrupt raised inside the job); "
            "rerun the same command to resume"
        )
    return (
        f"the job's code called sys.exit({error.code!r}), which ends a run before it finishes; "
        "raise an exception instead (its message becomes this line)"
    )


def _try(action) -> None:
    try:
        action()
    except OSError:
        pass


def _labelled(multirun: bool, label: str, reason: str) -> str:
    return f"{label}: {reason}" if multirun else reason


def _finished_already(path: Path, cfg, multirun: bool) -> dict | None:
    """A sweep job's stored summary when its directory finished this very config; refusals otherwise."""
    summary = finished_summary(path)
    if summary is None:
        return None
    if multirun and (path / CONFIG).is_file() and (path / CONFIG).read_text() == _resolved_yaml(cfg):
        return summary
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
