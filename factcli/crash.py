"""The CLI's last resort: an exception nobody turned into a clear message becomes one line.

Hydra's own configuration errors (reaching here when the pre-check was skipped, e.g. with ``-cd``)
are user errors and read as such, and so is a filesystem that refuses a write (a read-only or full
directory: the user's machine, errors.environment_problem); anything else is a bug, reported with a
pointer to its traceback.
"""

from __future__ import annotations

import os
import tempfile
import time
import traceback

from .errors import environment_problem


def report(error: BaseException, command) -> str:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(error, HydraException | OmegaConfBaseException):
        from .launch import explain

        return explain(error, command)
    problem = environment_problem(error)
    if problem is not None:
        return problem
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = os.path.join(tempfile.gettempdir(), f"fact-crash-{stamp}-{os.getpid()}.txt")
    with open(path, "w") as handle:
        handle.write(traceback.format_exc())
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return (
        f"unexpected {type(error).__name__}{': ' + first if first else ''} "
        f"(a bug in fact: the traceback is in {path}; please report it)"
    )
