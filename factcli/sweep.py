"""A sweep's table, ``sweep.csv``, built from its job directories whichever launcher ran the jobs.

Jobs may run in other processes or on other machines, so nothing is collected from them in memory:
when the multirun ends, the ``SweepTable`` callback (listed in conf/hydra/fact.yaml, run by Hydra in
the process that started the sweep) reads every job directory — ``summary.json`` for a finished job,
``error.txt`` for a failed one — and writes one row per job. ``fact sweep-table DIR`` does the same
for a sweep that was interrupted, and reruns the sweep's other end-of-sweep callbacks (the parity
phase-transition plot) from the ``multirun.yaml`` Hydra left in it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from hydra.experimental.callback import Callback

from .errors import FactError
from .rundir import collect_sweep, write_sweep_table

log = logging.getLogger("fact")


class SweepTable(Callback):
    def on_multirun_end(self, config, **kwargs) -> None:
        path = write_sweep_table(Path(config.hydra.sweep.dir))
        if path is not None:
            log.info("sweep table: %s", path)


def failed_jobs(sweep_dir: Path) -> list[str]:
    """``job N: reason`` for each failed job of the sweep, in job order."""
    rows = collect_sweep(sweep_dir)
    return [f"job {row['job']}: {row.get('error', '')}" for row in rows if row.get("status") == "failed"]


def rebuild(sweep_dir: Path) -> tuple[Path, list[str]]:
    """Rewrite ``sweep.csv`` (and rerun the sweep's other end-of-sweep callbacks) from the job
    directories; return its path and one line per job file that could not be read."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FactError(
            f"{sweep_dir} is not a directory; give a sweep directory (runs/<subcommand>/multirun_<time>)"
        )
    path = write_sweep_table(sweep_dir)
    if path is None:
        raise FactError(
            f"{sweep_dir} holds no sweep jobs (no <job>/.hydra/overrides.yaml); "
            "give a sweep directory (runs/<subcommand>/multirun_<time>)"
        )
    for callback, config in _other_callbacks(sweep_dir):
        callback.on_multirun_end(config=config)
    return path, [row["problem"] for row in collect_sweep(sweep_dir) if row.get("problem")]


def _other_callbacks(sweep_dir: Path):
    """The end-of-sweep callbacks recorded in the sweep's multirun.yaml, besides this table."""
    from hydra.utils import get_class
    from omegaconf import OmegaConf, open_dict

    stored = sweep_dir / "multirun.yaml"
    if not stored.exists():
        return
    config = OmegaConf.load(stored)
    with open_dict(config):
        config.hydra.sweep.dir = str(sweep_dir)
    for spec in (config.hydra.get("callbacks") or {}).values():
        cls = get_class(spec["_target_"])
        if cls is not SweepTable:
            yield cls(**{k: v for k, v in spec.items() if k != "_target_"}), config
