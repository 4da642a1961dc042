"""Hydra callback that writes a sweep's table when a multirun ends."""

from __future__ import annotations

import logging
from pathlib import Path

from hydra.experimental.callback import Callback

from .rundir import write_sweep_table


class SweepTable(Callback):
    def on_multirun_end(self, config, **kwargs) -> None:
        path = write_sweep_table(Path(config.hydra.sweep.dir))
        if path is not None:
            logging.getLogger("fact").info("sweep table: %s", path)
