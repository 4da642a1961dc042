"""Which Hydra launcher runs a sweep, checked before Hydra starts, and how many cores each job gets.

A ``-m`` sweep runs its jobs through ``hydra/launcher=...``: ``basic`` (Hydra's default: one after
another in this process), ``joblib`` (parallel worker processes on this machine), ``submitit_local``
(one process per job, all started at once) or ``submitit_slurm`` (one SLURM task per job). The
pre-flight here refuses, as one line and before anything starts, a launcher that does not exist, the
SLURM launcher on a machine without SLURM, and ``device=cuda`` where there is no GPU.

Jobs that run side by side share the cores instead of each taking all of them: a job's torch and
BLAS threads default to cores / (jobs running at once). A config's ``threads`` still wins, and the
job's ``summary.json`` records the threads it used.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from .errors import FactError

LAUNCHER_GROUP = "hydra/launcher"


@dataclass(frozen=True)
class SweepPlan:
    launcher: str  # the hydra/launcher option: basic, joblib, submitit_local, submitit_slurm, ...
    jobs: int  # jobs in the sweep (1 for a single run)
    at_once: int | None  # jobs running side by side on this machine; None: elsewhere (SLURM)
    threads: int | None  # default threads per job; None: the process default (runtime.set_threads)


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, which SLURM and taskset restrict)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def check_launcher_name(command, overrides: list[str]) -> None:
    """An unknown ``hydra/launcher=NAME`` → one line listing the launchers that are installed."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException:
        return  # launch._check_composes reports the syntax error
    names = [v for o in parsed if o.get_key_element().lstrip("+~") == LAUNCHER_GROUP for v in _values(o)]
    if not names:
        return
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(command.config_dir), version_base="1.3"):
            known = GlobalHydra.instance().config_loader().get_group_options(LAUNCHER_GROUP)
    finally:
        GlobalHydra.instance().clear()
    for name in names:
        if name not in known:
            raise FactError(
                f"unknown launcher {name!r}; choose one of {', '.join(known)} "
                "(hydra/launcher=joblib runs the jobs in parallel on this machine)"
            )


def plan_sweep(command, overrides: list[str], multirun: bool) -> SweepPlan:
    """Check the launcher and device the overrides ask for; work out each job's share of the cores.

    ``command`` is an entry of commands.COMMANDS (its schemas registered with Hydra); ``overrides``
    are the user's key=value arguments (no flags), already checked to compose.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(command.config_dir), version_base="1.3"):
            base = [_first_value(o) for o in parsed]
            cfg = compose(config_name=command.config_name, overrides=base, return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()

    launcher = cfg.hydra.runtime.choices.get(LAUNCHER_GROUP) or "basic"
    devices = {str(cfg.get("device", "cpu"))} | {
        value for o in parsed if o.get_key_element() == "device" for value in _values(o)
    }
    if not multirun:
        _check_device(devices)
        return SweepPlan(launcher="basic", jobs=1, at_once=1, threads=None)

    launcher_cfg = cfg.hydra.launcher
    if launcher == "submitit_slurm":
        _check_slurm(launcher_cfg)  # the device is checked on the cluster's nodes, not here
    else:
        _check_device(devices)
    jobs = count_jobs(parsed, dict(cfg.hydra.sweeper.get("params") or {}))
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


def _share(cores: int, at_once: int) -> int:
    """cores / jobs at once, at least 1; never more than $OMP_NUM_THREADS when the user set it."""
    share = max(1, cores // max(1, at_once))
    cap = os.environ.get("OMP_NUM_THREADS", "")
    return min(share, int(cap)) if cap.isdigit() and int(cap) > 0 else share


def count_jobs(parsed, sweeper_params: dict) -> int:
    """Jobs Hydra's basic sweeper makes: the product of the sweeps (config params, then the command)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from_config = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in sweeper_params.items()])
    return len(BasicSweeper.split_arguments([*from_config, *parsed], None)[0])


def _values(override) -> list[str]:
    if override.is_sweep_override():
        return [str(v) for v in override.sweep_string_iterator()]
    return [str(override.get_value_element_as_str())]


def _first_value(override) -> str:
    if not override.is_sweep_override():
        return override.input_line
    prefix = {"ADD": "+", "FORCE_ADD": "++", "DEL": "~"}.get(override.type.name, "")
    return f"{prefix}{override.get_key_element()}={_values(override)[0]}"


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
