"""Ctrl-C during a trace (issue 17.3): the partial Trace returned is a prefix of the uninterrupted
trace, step by step (indices 0..n-1 once each, same tokens, same saliency), and the model is
restored. KeyboardInterrupt is injected at every call of each place it can land (chunk boundaries,
inside a forward between two layers' cache writes, inside the analysis, inside step delivery), for
both engines; then real SIGINTs at random times."""

import random
import signal
import threading
import time

import numpy as np
import pytest
from transformers.cache_utils import DynamicLayer

from lvsal_nb.decoding import runs
from lvsal_nb.decoding.loop import StepLoop
from lvsal_nb.saliency import sequence, step
from lvsal_nb.saliency.sequence import SequenceEngine

PROMPT = "describe this image ."
SETTINGS = {
    "sequence": dict(max_new_tokens=5, chunk=2, alternatives=1),
    "step": dict(max_new_tokens=5, engine="step", alternatives=1),
}
# (owner, attribute) of every function a KeyboardInterrupt is injected into, per engine
POINTS = {
    "sequence": [
        (SequenceEngine, "_chunk"),  # a chunk boundary
        (DynamicLayer, "update"),  # inside a forward: some layers' keys written, others not
        (sequence, "saliency_rows"),  # inside the analysis
        (sequence, "context_scores"),
        (StepLoop, "forward"),  # generation
        (runs.sampling, "choose_p"),
        (runs, "plain_step"),  # delivery
        (runs.Detok, "piece"),
        ("on_step", None),
    ],
    "step": [
        (StepLoop, "forward"),
        (StepLoop, "score"),
        (step, "saliency_rows"),
        (runs, "plain_step"),
        (runs.Detok, "push"),
        ("on_step", None),
    ],
}


class Inject:
    """Raise KeyboardInterrupt at the i-th call (0-based) of the wrapped function."""

    def __init__(self, i):
        self.i, self.calls, self.fired = i, 0, False

    def wrap(self, fn):
        def wrapper(*args, **kwargs):
            self.tick()
            return fn(*args, **kwargs)

        return wrapper

    def tick(self):
        n, self.calls = self.calls, self.calls + 1
        if n == self.i:
            self.fired = True
            raise KeyboardInterrupt


def _assert_prefix(part, full):
    n = len(part)
    assert [s.step for s in part.records] == list(range(n))
    assert n <= len(full)
    for a, b in zip(part.records, full.records):
        assert (a.token_id, a.token, a.position) == (b.token_id, b.token, b.position)
        assert a.saliency == pytest.approx(b.saliency, abs=1e-12)
        assert [c.token_id for c in a.candidates] == [c.token_id for c in b.candidates]
        sal_b = [c.saliency for c in b.candidates]
        assert [c.saliency for c in a.candidates] == pytest.approx(sal_b, abs=1e-12)
        np.testing.assert_allclose(a.row, b.row, rtol=0, atol=1e-7)  # rows are stored in float32
    assert part.token_ids == full.token_ids[: len(part.token_ids)]


def _assert_restored(session):
    model = session.model
    assert session.adapter.text_config._attn_implementation != "lvsal"
    assert not any(hasattr(m, "_lvsal_probe") for m in model.modules())


@pytest.mark.parametrize("engine", ["sequence", "step"])
def test_interrupt_at_every_point_returns_a_prefix(llava_session, image, engine, monkeypatch):
    full = llava_session.trace(image, PROMPT, **SETTINGS[engine])
    assert len(full) == 5
    for owner, name in POINTS[engine]:
        for i in range(500):
            inj = Inject(i)
            with monkeypatch.context() as m:
                kw = dict(SETTINGS[engine])
                if owner == "on_step":
                    kw["on_step"] = lambda s, inj=inj: inj.tick()
                else:
                    m.setattr(owner, name, inj.wrap(getattr(owner, name)))
                part = llava_session.trace(image, PROMPT, **kw)
            _assert_restored(llava_session)
            where = f"{engine}: KeyboardInterrupt at call {i} of {name or owner}"
            if not inj.fired:  # past the last call: the full trace
                assert i > 0 and not part.interrupted, where
                _assert_prefix(part, full)
                assert len(part) == len(full)
                break
            assert part.interrupted, where
            try:
                _assert_prefix(part, full)
            except AssertionError as e:
                raise AssertionError(f"{where}: {e}") from e
        else:
            pytest.fail(f"{name} was called more than 500 times")


class _Sigint:
    """Sends SIGINT to the main thread after `delay` seconds unless disarmed first."""

    def __init__(self, delay):
        self.lock, self.armed, self.sent = threading.Lock(), True, False
        self.timer = threading.Timer(delay, self._fire)
        self.timer.start()

    def _fire(self):
        with self.lock:
            if self.armed:
                self.sent = True
                signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    def disarm(self):
        with self.lock:
            self.armed = False
        self.timer.cancel()


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="needs the main thread")
def test_real_sigints_at_random_times(llava_session, image):
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    rng = random.Random(17)
    fulls, durations = {}, {}
    for engine in SETTINGS:
        t0 = time.perf_counter()
        fulls[engine] = llava_session.trace(image, PROMPT, **SETTINGS[engine])
        durations[engine] = time.perf_counter() - t0
    outcomes = {"returned": 0, "raised": 0, "complete": 0}
    for k in range(30):
        engine = ("sequence", "step")[k % 2]
        sig = _Sigint(rng.uniform(0, 1.2 * durations[engine]))
        part = None
        try:
            try:
                part = llava_session.trace(image, PROMPT, **SETTINGS[engine])
            finally:
                sig.disarm()
            time.sleep(0.02)  # a signal sent just before disarming lands here, inside the try
        except KeyboardInterrupt:
            pass
        _assert_restored(llava_session)
        if part is None:
            outcomes["raised"] += 1  # landed before tracing started or after it ended
            continue
        outcomes["complete" if not part.interrupted else "returned"] += 1
        _assert_prefix(part, fulls[engine])
        if not part.interrupted:
            assert len(part) == len(fulls[engine])
    assert outcomes["returned"] >= 5, outcomes  # most signals landed inside a trace
