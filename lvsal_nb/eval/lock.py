"""One `lvsal eval` per run folder: a lock file that holds the owner's pid.

    with run_lock(out):          # RunBusyError when another live process holds it
        ...                      # write run.json, results.jsonl, traces/, summaries

The lock is an OS lock (`fcntl.flock`) on `<out>/.lvsal-eval.lock`, so it dies with its process:
a lock left by a killed run (SIGKILL, a crash, a reboot) is simply taken over. The file's content
(pid, host, start time) is for the message the second process prints. Without `fcntl` (Windows),
or on a file system that refuses `flock`, the pid in the file decides: a lock whose pid no longer
runs on this host is taken over.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lvsal_nb.errors import FileWriteError, RunBusyError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

LOCK_NAME = ".lvsal-eval.lock"


def _holder(path: Path) -> dict:
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        return d if isinstance(d, dict) else {}
    except (OSError, ValueError):
        return {}


def _alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _busy(out: Path, holder: dict) -> RunBusyError:
    who = f"pid {holder.get('pid', '?')}"
    if holder.get("host"):
        who += f" on {holder['host']}"
    if holder.get("started"):
        who += f", started {holder['started']}"
    return RunBusyError(
        f"another lvsal eval ({who}) is running on the run folder {out}; wait for it to finish or stop "
        f"it, or pass another --out (two runs on one folder would write the same answers twice)"
    )


@contextmanager
def run_lock(out: str | Path) -> Iterator[None]:
    """Hold the run folder's lock for the block. Raises RunBusyError naming the holder's pid."""
    out = Path(out)
    path = out / LOCK_NAME
    me = {"pid": os.getpid(), "host": socket.gethostname(),
          "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}  # fmt: skip
    fd = _acquire(out, path, me)
    try:
        yield
    finally:
        try:
            os.unlink(path)  # while still holding it: a waiting opener sees a new inode and retries
        except OSError:
            pass
        os.close(fd)


def _acquire(out: Path, path: Path, me: dict) -> int:
    for _ in range(5):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise FileWriteError(
                f"cannot create the lock file {path} ({e.strerror}); choose a writable --out"
            ) from e
        locked = False
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = True
            except OSError as e:
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise _busy(out, _holder(path)) from None
                # ENOLCK / EOPNOTSUPP (some network file systems): fall back to the pid in the file
            if locked:  # the file we locked must still be the one at `path` (not unlinked by a finishing run)
                try:
                    same = os.fstat(fd).st_ino == os.stat(path).st_ino
                except FileNotFoundError:
                    same = False
                if not same:
                    os.close(fd)
                    continue
        if not locked:
            holder = _holder(path)
            if holder.get("pid") not in (None, me["pid"]) and (
                holder.get("host") != me["host"] or _alive(holder.get("pid"))
            ):
                os.close(fd)
                raise _busy(out, holder)
        data = json.dumps(me).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        return fd
    raise RunBusyError(f"could not take the lock of {out} (it kept changing); retry in a moment")
