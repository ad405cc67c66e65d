"""LiveTrace: `session.trace(...)` in a worker thread, seen as a growing Trace while it runs.

Two threads: the decode thread only runs `session.trace(on_token=..., on_step=..., stop=event)`
and appends each told token and each Step to lists; a pump thread wakes when something arrived,
turns the steps into a partial Trace for `on_update` (when steps arrived) and hands the text told
but not scored yet to `on_pending`, then waits at least `interval` seconds before the next redraw.
So the first token shows as soon as it is chosen, the decode loop never waits on the UI, bursts of
steps (the sequence engine emits a chunk at once) cost one redraw, and the kernel's main thread
stays free for the notebook. Runs on one Session take turns (`session_lock`).
When decoding ends (or the stop event is set), the decode thread stops the pump, gives the final
Trace the same trace id as the partial ones (marks made while streaming stay attached) and calls
`on_done(trace, error)`.
"""

from __future__ import annotations

import dataclasses
import html
import threading
import time
import uuid
from collections.abc import Callable

from ..decoding.locore import LocoRE
from ..errors import ConfigError
from ..fingerprint import weights_digest
from ..trace import Spans, Step, Trace

_FALLBACK = threading.RLock()  # for duck-typed sessions without their own lock
# Sequence-engine positions per pass in a live view (unless chunk= is given): saliency arrives every
# LIVE_CHUNK steps; the text of each token is shown before that, as it is chosen (on_token). Toy
# model, 1 CPU thread, 13-token caption, median of 6 runs (LiveTrace.first_*_at): the first
# token after 0.13 s whatever the chunk; first saliency / total 0.26 / 0.69 s with 4, 0.38 / 0.57 s
# with 8, 0.48 / 0.49 s with 16 (all at the end). 8: saliency within ~0.4 s for 16% over 16's total.
LIVE_CHUNK = 8


def session_lock(session) -> threading.RLock:
    """The Session's own lock: two traces on one model at once would mix their attention probes, so
    live views and tuner runs on the same session take turns (Session.trace takes it too)."""
    return getattr(session, "_lock", _FALLBACK)


class LiveTrace:
    """A trace being generated. Build, `start()`, then `stop()` / `wait()`.

    Args:
        session: a lvsal_nb Session.
        image, prompt, **trace_kwargs: as for `Session.trace` (on_step and stop are taken here).
        on_update: called with a partial Trace (from the pump thread) when steps arrived.
        on_pending: called with the text pieces of the tokens chosen but not scored yet (steps
            `len(partial())` on; from the pump thread) after every redraw; [] once all are scored.
        on_done: called with (final Trace or None, exception or None) from the decode thread.
        interval: least seconds between two redraws while tokens arrive. Default: 0.15.
    """

    def __init__(
        self,
        session,
        image,
        prompt: str,
        *,
        on_update: Callable[[Trace], None] | None = None,
        on_pending: Callable[[list[str]], None] | None = None,
        on_done: Callable[[Trace | None, BaseException | None], None] | None = None,
        interval: float = 0.15,
        **trace_kwargs,
    ):
        for k in ("on_step", "on_token", "stop"):
            if k in trace_kwargs:
                raise ConfigError(f"a live view sets {k}= itself; drop it (use LiveTrace.stop() to stop)")
        self.session, self.image, self.prompt, self.kwargs = session, image, prompt, trace_kwargs
        self.kwargs.setdefault("chunk", LIVE_CHUNK)  # stream: tokens every few steps, not all at the end
        self.on_update, self.on_pending, self.on_done = on_update, on_pending, on_done
        self.interval = interval
        self.trace_id = uuid.uuid4().hex[:12]
        self.trace: Trace | None = None  # the final trace, once done
        self.error: BaseException | None = None
        self.ui_error: BaseException | None = None  # the last exception of on_update, if any
        self.started = self.finished_at = None
        self.first_step_at: float | None = None  # time.monotonic() when the first step arrived
        self.first_token_at: float | None = None  # ... and the first token was told
        self._steps: list[Step] = []
        self._told: list[str] = []  # text piece of every token chosen so far (index = step)
        self._lock = threading.Lock()
        self._dirty = False  # steps arrived since the last redraw
        self._wake = threading.Event()  # a token or step arrived (or decoding ended)
        self._stop, self._finished = threading.Event(), threading.Event()
        model = getattr(session, "model", None)  # the marks' content key names the weights (fingerprint.py)
        self._weights = weights_digest(model) if hasattr(model, "state_dict") else None
        self._skeleton = self._prepare()  # errors in the image or prompt surface here, not in a thread
        self._threads: list[threading.Thread] = []

    def _prepare(self) -> Trace:
        """An empty Trace with the prompt's tokens, spans, image and layers (from the adapter only)."""
        ad = self.session.adapter
        n = self.kwargs.get("max_new_tokens", 64)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:  # fail here, not later in the thread
            raise ConfigError(f"max_new_tokens must be an integer >= 1, got {n!r}")
        loc = self.kwargs.get("locore")
        if isinstance(loc, (int, float)) and not isinstance(loc, bool):
            self.kwargs["locore"] = LocoRE(beta=float(loc))  # validates beta
        prepared = ad.prepare(self.image, self.prompt)
        ids = prepared.input_ids[0].tolist()
        tokens = ad.context_tokens(ids, prepared.spans.image)
        layers = list(ad.check_layers(self.kwargs.get("layers")))
        cfg = {
            "layers": layers,
            "context": self.kwargs.get("context", "text"),
            "engine": "live",
            "model_id": self.session.model_id,
            "seed": self.kwargs.get("seed", 0),
            "weights_digest": self._weights,
        }
        return Trace(
            records=[],
            token_ids=ids,
            tokens=tokens,
            spans=prepared.spans,
            config=cfg,
            prompt=self.prompt,
            image_digest=prepared.image_digest,
            image_grid=prepared.image_grid,
            image_png=prepared.image_png,
            trace_id=self.trace_id,
        )

    # ---- control ------------------------------------------------------------------------------
    def start(self) -> LiveTrace:
        """Start decoding (one thread) and the view pump (another); returns self. Once only."""
        if self._threads:
            raise ConfigError("this LiveTrace was started already; make a new one to trace again")
        self.started = time.monotonic()
        self._threads = [
            threading.Thread(target=self._pump, name="lvsal-pump", daemon=True),
            threading.Thread(target=self._decode, name="lvsal-decode", daemon=True),
        ]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        """Ask decoding to stop after the current step; the partial trace is kept."""
        self._stop.set()

    @property
    def running(self) -> bool:
        """True from `start` until decoding ended (finished, stopped or failed)."""
        return bool(self._threads) and not self._finished.is_set()

    @property
    def stopped(self) -> bool:
        """True once `stop` was asked (decoding may still be finishing its step)."""
        return self._stop.is_set()

    def wait(self, timeout: float | None = None) -> Trace:
        """Block until decoding ends; returns the final Trace, re-raising a decode error."""
        if not self._threads:
            raise ConfigError("the live trace was not started; call start() first")
        self._threads[1].join(timeout)
        if self._threads[1].is_alive():
            raise TimeoutError(f"the trace is still running after {timeout} s; call stop() to end it early")
        if self.error is not None:
            raise self.error
        return self.trace  # type: ignore[return-value]

    # ---- the partial trace ----------------------------------------------------------------------
    def partial(self) -> Trace:
        """The steps so far as a Trace (spans, tokens and token ids grown to match)."""
        with self._lock:
            steps = list(self._steps)
        sk = self._skeleton
        n = len(sk.token_ids)
        sp = sk.spans
        spans = Spans(system=sp.system, image=sp.image, prompt=sp.prompt, output=(n, n + len(steps)))
        ids = sk.token_ids + [s.token_id for s in steps]
        return dataclasses.replace(  # the skeleton's prompt, image, config, trace id and start time
            sk,
            records=steps,
            token_ids=ids,
            tokens=self.session.adapter.context_tokens(ids, sp.image),
            spans=spans,
            interrupted=self.stopped,
        )

    def pending(self) -> list[str]:
        """Text pieces of the tokens chosen but not scored yet (those after the partial trace's)."""
        with self._lock:
            return self._told[len(self._steps) :]

    # ---- threads ------------------------------------------------------------------------------
    def _on_token(self, t: int, token_id: int, piece: str) -> None:
        with self._lock:
            if self.first_token_at is None:
                self.first_token_at = time.monotonic()
            del self._told[t:]  # (t == len: the usual case)
            self._told.append(piece)
        self._wake.set()

    def _on_step(self, step: Step) -> None:
        with self._lock:
            if self.first_step_at is None:
                self.first_step_at = time.monotonic()
            self._steps.append(step)
            if len(self._told) < len(self._steps):  # a session that tells no tokens
                self._told.append(step.token)
            self._dirty = True
        self._wake.set()

    def _pump(self) -> None:
        while True:
            self._wake.wait()
            if self._finished.is_set():
                return
            self._wake.clear()
            with self._lock:
                dirty, self._dirty = self._dirty, False
            try:
                if dirty and self.on_update is not None:
                    self.on_update(self.partial())
                if self.on_pending is not None:
                    self.on_pending(self.pending())
            except Exception as e:  # a broken redraw must not stop the next ones (or decoding)
                self.ui_error = e
            if self._finished.wait(self.interval):  # at most one redraw per interval
                return

    def _decode(self) -> None:
        tr, err = None, None
        try:
            with session_lock(self.session):  # waits for a run still going on this session
                # one id from the first step on: marks made while streaming stay attached
                tr = self.session.trace(
                    self.image,
                    self.prompt,
                    on_token=self._on_token,
                    on_step=self._on_step,
                    stop=self._stop,
                    trace_id=self.trace_id,
                    **self.kwargs,
                )
            if tr is not None and self._weights and "weights_digest" not in tr.config:
                tr = dataclasses.replace(tr, config={**tr.config, "weights_digest": self._weights})
        except BaseException as e:  # shown by the viewer, re-raised by wait()
            err = e
        self.trace, self.error = tr, err
        self.finished_at = time.monotonic()
        self._finished.set()
        self._wake.set()
        self._threads[0].join()  # no partial redraw after the final one
        if self.on_done is not None:
            self.on_done(tr, err)


def pending_line(told: list[str], pending: list[str]) -> str:
    """The "decoding…" status line of a live view, as HTML: the text whose saliency is shown
    (`told`: the partial trace's token pieces) and, greyed, the tokens chosen but not scored yet
    (`pending`). Pieces carry their own spacing."""
    grey = "color:var(--jp-ui-font-color3,#999);font-style:italic"
    wait = html.escape("".join(pending))
    tail = f"<span class='lvsal-pending' style='{grey}'>{wait}</span>" if wait else ""
    return (
        f"<i>decoding… {len(told) + len(pending)} tokens</i> · "
        f"<span class='lvsal-told'>{html.escape(''.join(told))}</span>{tail}"
    )


def pending_status(viewer) -> Callable[[list[str]], None]:
    """An `on_pending` for a viewer with `.state` (ViewerState) and `.status` (an HTML widget): its
    status line shows the text so far, the not yet scored tail greyed (`pending_line`)."""

    def show(pending: list[str]) -> None:
        with viewer.state.lock:
            told = [s.token for s in viewer.state.trace.records]
            viewer.status.value = pending_line(told, pending)

    return show
