"""The one error type the CLI turns into a single clear line and a non-zero exit, and the
filesystem errors that are the user's environment rather than a bug."""

from __future__ import annotations

import errno


class FactError(Exception):
    """A problem the user can fix: the message names it and says what to do.

    Raised below the CLI by loaders, schemas and experiments (core/ raises its own
    ``core.InvalidInput``, a ValueError, which the job wrapper in job.py reports the same way).
    The CLI prints ``error: <message>`` as one line and exits with status 1; nothing else is printed.
    """


# A directory the user cannot write to, a full or read-only disk: what the user's machine refused.
_ENVIRONMENT = {
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "the filesystem is read-only",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.ENOTDIR: "a part of that path is a file, not a directory",
    errno.ENAMETOOLONG: "the name is too long for the filesystem",
}


def environment_problem(error: BaseException) -> str | None:
    """One line for an OSError the user's filesystem raised (None for any other error)."""
    if not isinstance(error, OSError) or error.errno not in _ENVIRONMENT:
        return None
    where = error.filename or "a file"
    return (
        f"cannot write {where}: {_ENVIRONMENT[error.errno]}; this is the machine's filesystem, "
        "not fact: choose a directory you can write to (hydra.run.dir=DIR), or free the space"
    )
