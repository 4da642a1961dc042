"""Which Hydra launcher runs a sweep, checked before Hydra starts, and how many cores each job gets.

A ``-m`` sweep runs its jobs through ``hydra/launcher=...``: ``basic`` (Hydra's default: one after
another in this process), ``joblib`` (parallel worker processes on this machine), ``submitit_local``
(one process per job, all started at once) or ``submitit_slurm`` (one SLURM task per job). The
pre-flight here refuses, as one line and before anything starts, the SLURM launcher on a machine
without SLURM and ``device=cuda`` where there is no GPU (a launcher that does not exist is refused
where the overrides are composed, launch.prepare, like any other unknown option of a config group).

Jobs that run side by side share the cores instead of each taking all of them: a job's torch and
BLAS threads default to cores / (jobs running at once). A config's ``threads`` still wins, and the
job's ``summary.json`` records the threads it used.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass

from .errors import FactError
from .runtime import usable_cores

LAUNCHER_GROUP = "hydra/launcher"


@dataclass(frozen=True)
class SweepPlan:
    launcher: str  # the hydra/launcher option: basic, joblib, submitit_local, submitit_slurm, ...
    jobs: int  # jobs in the sweep (1 for a single run)
    at_once: int | None  # jobs running side by side on this machine; None: elsewhere (SLURM)
    threads: int | None  # default threads per job; None: the process default (runtime.set_threads)


def plan_sweep(cfg, parsed, multirun: bool) -> SweepPlan:
    """Check the launcher and device a composition asks for; work out each job's share of the cores.

    ``cfg`` is the first job's config with its ``hydra`` node (launch.prepare composes it once);
    ``parsed`` are the sweep's overrides from Hydra's parser: the sweeper's own parameters, then the
    command line's.
    """
    launcher = cfg.hydra.runtime.choices.get(LAUNCHER_GROUP) or "basic"
    devices = {str(cfg.get("device", "cpu"))} | {
        value.split("=", 1)[1]
        for override, values in zip(parsed, job_choices(parsed), strict=True)
        if override.key_or_group == "device"
        for value in values
    }
    if not multirun:
        _check_device(devices)
        return SweepPlan(launcher="basic", jobs=1, at_once=1, threads=None)

    launcher_cfg = cfg.hydra.launcher
    if launcher == "submitit_slurm":
        _check_slurm(launcher_cfg)  # the device is checked on the cluster's nodes, not here
    else:
        _check_device(devices)
    jobs = job_count(parsed)
    cores = usable_cores()
    if launcher == "joblib":
        if int(launcher_cfg.n_jobs) == 0:
            raise FactError(
                "hydra.launcher.n_jobs=0 runs nothing; use a positive count, or -1 for every core"
            )
        workers = int(launcher_cfg.n_jobs)
        at_once = min(jobs, workers if workers > 0 else max(1, cores + 1 + workers))
        threads = _share(cores, at_once)
    elif launcher == "submitit_local":
        at_once = jobs  # the local executor starts every job at once
        cpus = launcher_cfg.get("cpus_per_task")
        threads = int(cpus) if cpus else _share(cores, at_once)
    elif launcher == "submitit_slurm":
        at_once = None
        cpus = launcher_cfg.get("cpus_per_task")
        threads = int(cpus) if cpus else None  # the node's allocation decides (CPU affinity)
    else:  # basic, or a launcher this tool knows nothing about: the process default
        at_once = 1 if launcher == "basic" else None
        threads = None
    return SweepPlan(launcher=launcher, jobs=jobs, at_once=at_once, threads=threads)


def job_choices(parsed) -> list[list[str]]:
    """Each override's assignments as Hydra's basic sweeper writes them: one per value of a sweep."""
    choices = []
    for override in parsed:
        if not override.is_sweep_override():
            choices.append([override.input_line])
        elif override.is_discrete_sweep():
            key = override.get_key_element()
            choices.append([f"{key}={value}" for value in override.sweep_string_iterator()])
        else:
            raise FactError(
                f"{override.input_line}: an interval sweep needs an optimizing sweeper; "
                "list the values (key=a,b,c) or use range(start,stop,step)"
            )
    return choices


def job_count(parsed) -> int:
    """Jobs Hydra's basic sweeper makes: the product of the sweeps' sizes, a key given later replacing
    an earlier one (the sweeper's own parameters come first, then the command line)."""
    per_key = {
        override.get_key_element(): len(values)
        for override, values in zip(parsed, job_choices(parsed), strict=True)
    }
    return math.prod(per_key.values())


def _share(cores: int, at_once: int) -> int:
    """cores / jobs at once, at least 1; never more than $OMP_NUM_THREADS when the user set it."""
    share = max(1, cores // max(1, at_once))
    cap = os.environ.get("OMP_NUM_THREADS", "")
    return min(share, int(cap)) if cap.isdigit() and int(cap) > 0 else share


def _check_slurm(launcher_cfg) -> None:
    if shutil.which("sbatch") is None:
        partition = launcher_cfg.get("partition")
        where = f"partition {partition!r}" if partition else "no hydra.launcher.partition"
        raise FactError(
            f"hydra/launcher=submitit_slurm needs SLURM, but sbatch is not on PATH here ({where}); "
            "run the sweep on the cluster's login node with hydra.launcher.partition=NAME, or use "
            "hydra/launcher=joblib (or submitit_local) on this machine"
        )


def _check_device(devices: set[str]) -> None:
    if "cuda" not in devices:
        return
    import torch

    if not torch.cuda.is_available():
        raise FactError(
            "device=cuda but no CUDA device is available on this machine; use device=cpu or device=auto, "
            "or run on a machine with a GPU"
        )
