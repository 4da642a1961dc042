"""The CLI's last resort: an exception nobody turned into a clear message becomes one line.

Hydra's own configuration errors (reaching here when the pre-check was skipped, e.g. with ``-cd``)
are user errors and read as such; anything else is a bug, reported with a pointer to its traceback.
"""

from __future__ import annotations

import os
import tempfile
import time
import traceback


def report(error: BaseException, command) -> str:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(error, HydraException | OmegaConfBaseException):
        from .launch import _explain

        return _explain(error, command)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = os.path.join(tempfile.gettempdir(), f"fact-crash-{stamp}-{os.getpid()}.txt")
    with open(path, "w") as handle:
        handle.write(traceback.format_exc())
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return (
        f"unexpected {type(error).__name__}{': ' + first if first else ''} "
        f"(a bug in fact: the traceback is in {path}; please report it)"
    )
