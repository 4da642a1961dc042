"""One job of any subcommand: the task function every Hydra launcher runs.

``Job`` is a plain module-level class, so launchers that run jobs in other processes can ship it:
the joblib launcher sends it to loky worker processes, submitit pickles it into a file that a local
process or a SLURM node runs. Nothing a job does reaches the parent process except through the
job's directory, so everything the sweep needs afterwards is written there: ``summary.json`` when
the job finished, ``error.txt`` (one line) when it failed. The parent builds ``sweep.csv`` and the
exit status from those files (see sweep.py), whichever launcher ran the jobs.

A job whose directory already holds a finished run of the same configuration is kept, not redone:
rerunning an interrupted sweep with the same ``hydra.sweep.dir`` finishes only what is missing.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from .core import InvalidInput
from .errors import FactError

log = logging.getLogger("fact")

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


@dataclass
class Job:
    command_name: str  # the command's entry in commands.COMMANDS (fit-rfm), recorded in summary.json
    default_threads: int | None = None  # this job's share of the cores when jobs run side by side
    # The launching process's thread variables, restored in worker processes before BLAS loads.
    environment: dict[str, str] = field(default_factory=thread_environment)
    # Failures of jobs that ran in this process (a single run); a sweep reads its job directories.
    failures: list[str] = field(default_factory=list)

    def __call__(self, cfg) -> dict | None:
        restore_thread_environment(self.environment)
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode
        from omegaconf import OmegaConf

        from .commands import COMMANDS
        from .rundir import CONFIG, SUMMARY, RunDir

        hydra_cfg = HydraConfig.get()
        multirun = hydra_cfg.mode == RunMode.MULTIRUN
        num = hydra_cfg.job.num if multirun else None  # a single run has no job number
        output_dir = Path(hydra_cfg.runtime.output_dir)
        command = COMMANDS[self.command_name]
        words = [self.command_name, *hydra_cfg.overrides.task]
        resolved = OmegaConf.to_yaml(cfg, resolve=True)
        try:
            if multirun and (output_dir / SUMMARY).exists():
                return self._kept(output_dir, resolved, CONFIG, SUMMARY)
            command.validate(cfg)
            run = RunDir.start(output_dir, resolved)
            run.sweep_dir = Path(hydra_cfg.sweep.dir) if multirun else None
            threads = prepare_process(cfg, self.default_threads)
            result = {**command.run(cfg, run), "threads": threads}
            summary = run.finish(result, seed=cfg.get("seed"), command=words)
            log.info("finished: %s", run.path)
            return summary
        except (FactError, InvalidInput) as error:  # core's input errors are one line too
            self._failed(output_dir, one_line(error), multirun, num)
        except Exception as error:
            if not multirun:
                raise  # a single run's unexpected error shows its traceback
            # In a sweep it must not stop the other jobs: the traceback goes to the job's log.
            log.exception("job %s crashed", num)
            self._failed(output_dir, f"{type(error).__name__}: {one_line(error)}", multirun, num)
        return None

    def _kept(self, output_dir: Path, resolved: str, config_file: str, summary_file: str) -> dict:
        stored = output_dir / config_file
        if not stored.exists() or stored.read_text() != resolved:
            raise FactError(
                f"{output_dir} already holds a finished job of another configuration; "
                "choose another hydra.sweep.dir"
            )
        log.info("job %s finished earlier; kept as it is", output_dir)
        return json.loads((output_dir / summary_file).read_text())

    def _failed(self, output_dir: Path, message: str, multirun: bool, num) -> None:
        from .rundir import ERROR, SUMMARY, write_atomic

        self.failures.append(message)
        if not (output_dir / SUMMARY).exists():  # a finished run is never touched
            write_atomic(output_dir / ERROR, message + "\n")
        if multirun:  # a single run's error is printed once, by the CLI
            log.error("job %s failed: %s", num, message)


def restore_thread_environment(environment: dict[str, str]) -> None:
    for name in THREAD_VARIABLES:
        if name in environment:
            os.environ[name] = environment[name]
        else:
            os.environ.pop(name, None)


def one_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def prepare_process(cfg, default_threads: int | None) -> int:
    """Threads (the config's, else this job's share of the cores) and seeds; returns the threads."""
    from .runtime import seed_everything, set_threads

    requested = cfg.get("threads")
    threads = set_threads(requested if requested is not None else default_threads)
    limit_blas_threads(threads)
    if cfg.get("seed") is not None:
        seed_everything(int(cfg.seed))
    return threads


def limit_blas_threads(count: int) -> None:
    """NumPy's BLAS (OpenBLAS / MKL) gets torch's share too: side-by-side jobs must not oversubscribe."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # comes with scikit-learn; without it only torch is limited
        return
    threadpool_limits(limits=count, user_api="blas")
