"""One lock per model object: a trace, an analysis and an `lv.locore` block each change the model's
state (attention implementation, probe slots, requires_grad, Qwen's rope_deltas) for their duration,
so two of them on one model, from two threads or two Sessions, would undo each other's changes.

`holding(model)` waits up to `WAIT_S` seconds for the model, then raises ModelBusyError. The same
thread may enter again (a trace inside a `locore` block of its own thread is not a deadlock).
`no_sigint()` defers Ctrl-C while the model is being patched or restored, so an interrupt cannot
leave it half restored.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
import weakref
from collections.abc import Iterator

from torch import nn

from ..errors import ModelBusyError

WAIT_S = 30.0  # how long a second caller waits for a busy model before ModelBusyError
POLL_S = 0.05  # one try at the lock (Ctrl-C is deferred during a try, so at most this long)
_LOCKS: weakref.WeakKeyDictionary[nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_LOCKS_LOCK = threading.Lock()


def lock_of(model: nn.Module) -> threading.RLock:
    """The model object's lock (created on first use; dropped with the model)."""
    with _LOCKS_LOCK:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.RLock()
        return lock


@contextlib.contextmanager
def holding(model: nn.Module, what: str = "this call", wait_s: float | None = None) -> Iterator[None]:
    """Hold the model for the block: wait up to `wait_s` (default WAIT_S) seconds while another
    thread's trace / analysis / locore block holds it, then raise ModelBusyError.

    A Ctrl-C can never leave the lock taken: the lock is taken in short tries, each with Ctrl-C
    deferred (no_sigint) until `acquired` records it, inside the `try` whose `finally` releases it;
    between tries Ctrl-C lands at once (a waiting caller is not stuck for WAIT_S seconds).
    """
    lock = lock_of(model)
    wait = WAIT_S if wait_s is None else wait_s
    deadline = time.monotonic() + max(wait, 0.0)
    acquired = False
    try:
        while True:
            with no_sigint():  # taking the lock and recording it: one step for Ctrl-C
                acquired = lock.acquire(timeout=min(POLL_S, max(deadline - time.monotonic(), 0.0)))
            if acquired:
                break
            if time.monotonic() >= deadline:
                raise ModelBusyError(
                    f"the model is busy: another trace, analysis or lv.locore block (another thread or "
                    f"Session) has held it for more than {wait:g} s, so {what} did not start. Wait for it "
                    "to finish (a viewer's trace: stop it) or use a separate model object"
                )
        yield
    finally:
        if acquired:
            lock.release()


@contextlib.contextmanager
def no_sigint() -> Iterator[None]:
    """Defer SIGINT (Ctrl-C) until the block ends; the KeyboardInterrupt is raised after it. A no-op
    off the main thread (signals are only delivered there) or under a non-default handler."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    try:
        prev = signal.getsignal(signal.SIGINT)
    except (ValueError, OSError):
        prev = None
    if prev is not signal.default_int_handler:
        yield
        return
    caught: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, prev)
        if caught:
            raise KeyboardInterrupt
