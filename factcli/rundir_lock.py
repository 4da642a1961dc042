"""One writer per run directory: an exclusive lock on ``<dir>/.fact.lock``, held for the run's life.

The lock is ``fcntl.flock`` on that file. The kernel drops it when its holder exits, however it exits
(an exception, Ctrl-C, SIGKILL, a crash): a lock can never be left stuck, and a lock file nobody holds
is simply taken. That is the stale-lock rule — a lock is live exactly while its process is. (On NFS,
Linux implements flock with the server's POSIX locks, which the server frees when a client dies.)
The file also records the holder's pid, host and start time, so a refusal can say who holds it.

``hold`` returns the ``Lock``; whoever took it gives it back (``release``). Nothing is
remembered here between calls: flock conflicts between two descriptors even in one process, so the
launching process tells the job which directory it already holds (job.Job.held_dir) instead.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from .errors import FactError

LOCK = ".fact.lock"


class DirectoryInUse(FactError):
    """Another process holds the directory's lock."""


class Lock:
    """A held directory lock; ``fd`` is None where the filesystem (or the OS) has no locks."""

    def __init__(self, directory: Path, fd: int | None):
        self.directory, self.fd = directory, fd

    def release(self) -> None:
        """Give the lock back (the file stays: removing it would race with a process about to lock it)."""
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None


def hold(directory: Path) -> Lock:
    """Take ``directory``'s lock (creating the directory) or refuse in one line if another holds it."""
    directory = Path(directory).resolve()
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no advisory locks to take
        return Lock(directory, None)
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise DirectoryInUse(
            f"{directory} is in use by {holder}; wait for it to finish or choose another run directory"
        ) from None
    except OSError:  # a filesystem without locks: carry on unlocked rather than refuse every run
        os.close(fd)
        return Lock(directory, None)
    os.ftruncate(fd, 0)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} (since {started})\n".encode(), 0)
    return Lock(directory, fd)
