"""One writer per run directory: an exclusive lock on ``<dir>/.fact.lock``, held for the run's life.

The lock is ``fcntl.flock`` on that file. The kernel drops it when its holder exits, however it exits
(an exception, Ctrl-C, SIGKILL, a crash): a lock can never be left stuck, and a lock file nobody holds
is simply taken. That is the stale-lock rule — a lock is live exactly while its process is. (On NFS,
Linux implements flock with the server's POSIX locks, which the server frees when a client dies.)
The file also records the holder's pid, host and start time, so a refusal can say who holds it.

A process may take the same directory's lock more than once (the CLI takes it before Hydra starts, the
job wrapper again inside the job): later calls are no-ops.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from .errors import FactError

LOCK = ".fact.lock"

_held: dict[Path, int] = {}  # directory → open file descriptor of its lock file


class DirectoryInUse(FactError):
    """Another process holds the directory's lock."""


def hold(directory: Path) -> None:
    """Take ``directory``'s lock (creating the directory) or refuse in one line if another holds it."""
    directory = Path(directory).resolve()
    if directory in _held:
        return
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no advisory locks to take
        return
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
        return
    os.ftruncate(fd, 0)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} (since {started})\n".encode(), 0)
    _held[directory] = fd


def holds(directory: Path) -> bool:
    return Path(directory).resolve() in _held


def release(directory: Path) -> None:
    """Give the lock back (the file stays: removing it would race with a process about to lock it)."""
    fd = _held.pop(Path(directory).resolve(), None)
    if fd is not None:
        os.close(fd)  # closing the descriptor drops the flock


def release_all() -> None:
    for directory in list(_held):
        release(directory)
