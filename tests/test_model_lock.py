"""One lock per model object (issue 17.1): a trace in a worker thread (as `lv.view` runs it) and an
`lv.locore` block or a second Session on the same model in another thread never interleave their
patching; the model is bit-identical afterwards and every call gives its solo result, or a clear
ModelBusyError when it waited too long."""

import signal
import threading
import time

import numpy as np
import pytest
import torch

import lvsal_nb as lv
from lvsal_nb.saliency import model_lock

PROMPT = "describe this image ."


@pytest.fixture
def fresh():
    """A Session on its own tiny LLaVA (float64), with a state worth restoring: some parameters
    with requires_grad=True, some False."""
    s = lv.load("tiny:llava", device="cpu", dtype=torch.float64)
    for i, p in enumerate(s.model.parameters()):
        p.requires_grad_(i % 2 == 0)
    return s


def _state(model, inputs):
    """Everything a trace may touch: logits on a fixed input, parameters, requires_grad flags, the
    attention implementation and probe slots."""
    with torch.no_grad():
        logits = model(**inputs).logits.clone()
    return {
        "logits": logits,
        "params": [p.detach().clone() for p in model.parameters()],
        "grad": [p.requires_grad for p in model.parameters()],
        "impl": model.config.text_config._attn_implementation,
        "probes": [n for n, m in model.named_modules() if hasattr(m, "_lvsal_probe")],
        "training": model.training,
    }


def _assert_same_state(a, b):
    assert torch.equal(a["logits"], b["logits"])
    assert all(torch.equal(x, y) for x, y in zip(a["params"], b["params"]))
    assert a["grad"] == b["grad"] and a["impl"] == b["impl"] and a["training"] == b["training"]
    assert a["probes"] == b["probes"] == []


def _same_trace(a, b):
    assert [s.token_id for s in a.records] == [s.token_id for s in b.records]
    for x, y in zip(a.records, b.records):
        assert x.saliency == y.saliency
        np.testing.assert_array_equal(x.row, y.row)


def _locore_generate(model, inputs):
    with lv.locore(model, 0.5):
        with torch.no_grad():
            return model.generate(**inputs, max_new_tokens=6, do_sample=False)[0].tolist()


def _slow_trace_in_thread(s, image, started, out, delay=0.05):
    def on_step(step):
        started.set()
        time.sleep(delay)

    def work():
        try:
            out["trace"] = s.trace(image, PROMPT, max_new_tokens=8, chunk=1, on_step=on_step)
        except BaseException as e:  # noqa: BLE001 - the test inspects it
            out["error"] = e
        finally:
            started.set()

    th = threading.Thread(target=work)
    th.start()
    return th


def test_live_view_and_locore_race_waits_and_restores(fresh, image):
    s = fresh
    inputs = s.adapter.prepare(image, PROMPT).inputs
    before = _state(s.model, inputs)
    solo_trace = s.trace(image, PROMPT, max_new_tokens=8, chunk=1)
    solo_gen = _locore_generate(s.model, inputs)
    _assert_same_state(before, _state(s.model, inputs))

    started, out = threading.Event(), {}
    th = _slow_trace_in_thread(s, image, started, out)
    started.wait(30)
    gen = _locore_generate(s.model, inputs)  # waits for the trace, then runs on a restored model
    th.join(60)
    assert "error" not in out, out.get("error")
    _same_trace(out["trace"], solo_trace)
    assert gen == solo_gen
    _assert_same_state(before, _state(s.model, inputs))


def test_locore_gives_model_busy_error_after_waiting(fresh, image, monkeypatch):
    s = fresh
    inputs = s.adapter.prepare(image, PROMPT).inputs
    before = _state(s.model, inputs)
    solo_trace = s.trace(image, PROMPT, max_new_tokens=8, chunk=1)
    monkeypatch.setattr(model_lock, "WAIT_S", 0.05)
    started, out = threading.Event(), {}
    th = _slow_trace_in_thread(s, image, started, out, delay=0.2)
    started.wait(30)
    with pytest.raises(lv.ModelBusyError, match=r"model is busy.*lv.locore did not start"):
        _locore_generate(s.model, inputs)
    th.join(60)
    assert "error" not in out, out.get("error")
    _same_trace(out["trace"], solo_trace)  # the trace went on undisturbed
    _assert_same_state(before, _state(s.model, inputs))


def test_two_sessions_on_one_model_from_two_threads(fresh, image):
    s1 = fresh
    s2 = lv.load(s1.model, s1.processor)  # a second Session on the same model object
    inputs = s1.adapter.prepare(image, PROMPT).inputs
    before = _state(s1.model, inputs)
    solo_seq = s1.trace(image, PROMPT, max_new_tokens=8, chunk=2)
    solo_step = s2.trace(image, PROMPT, max_new_tokens=8, engine="step", alternatives=1)
    results, errors = {}, []
    barrier = threading.Barrier(2)

    def run(name, sess, **kw):
        try:
            barrier.wait(10)
            for i in range(3):
                results[(name, i)] = sess.trace(
                    image, PROMPT, max_new_tokens=8, on_step=lambda st: time.sleep(0.005), **kw
                )
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [
        threading.Thread(target=run, args=("seq", s1), kwargs=dict(chunk=2)),
        threading.Thread(target=run, args=("step", s2), kwargs=dict(engine="step", alternatives=1)),
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors, errors
    for i in range(3):
        _same_trace(results[("seq", i)], solo_seq)
        _same_trace(results[("step", i)], solo_step)
    _assert_same_state(before, _state(s1.model, inputs))


def test_lock_is_per_model_object_and_reentrant(fresh):
    other = lv.load("tiny:llava", device="cpu")
    assert model_lock.lock_of(fresh.model) is model_lock.lock_of(fresh.model)
    assert model_lock.lock_of(fresh.model) is not model_lock.lock_of(other.model)
    with model_lock.holding(fresh.model), model_lock.holding(fresh.model):  # same thread: no deadlock
        pass


class _SigintOnAcquire:
    """The model's real lock, but a real SIGINT arrives the moment its `nth` acquire (0-based) has
    taken it: the Ctrl-C lands between taking the lock and the `try` that releases it (issue 17).
    `signal.raise_signal` runs the Python handler before it returns, so with the default handler the
    KeyboardInterrupt comes out of `acquire` with the lock already held."""

    def __init__(self, real, nth):
        self.real, self.nth, self.calls, self.fired = real, nth, 0, False

    def acquire(self, *args, **kwargs):
        got = self.real.acquire(*args, **kwargs)
        n, self.calls = self.calls, self.calls + 1
        if got and n == self.nth:
            self.fired = True
            signal.raise_signal(signal.SIGINT)
        return got

    def release(self):
        self.real.release()


def _free_for_another_thread(lock) -> bool:
    got = []

    def take():
        ok = lock.acquire(timeout=1.0)
        got.append(ok)
        if ok:
            lock.release()

    t = threading.Thread(target=take)
    t.start()
    t.join()
    return got == [True]


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="needs the main thread")
@pytest.mark.parametrize("nth", [0, 1], ids=["Session-lock", "attached-lock"])
def test_ctrl_c_right_after_taking_the_lock_leaves_it_free(fresh, image, nth, monkeypatch):
    """nth=0: Session.trace's own `_locked`; nth=1: the (re-entrant) take inside `attached`."""
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    inputs = fresh.adapter.prepare(image, PROMPT).inputs
    before = _state(fresh.model, inputs)
    want = fresh.trace(image, PROMPT, max_new_tokens=3)
    real = model_lock.lock_of(fresh.model)
    inject = _SigintOnAcquire(real, nth)
    monkeypatch.setattr(model_lock, "lock_of", lambda model: inject)
    with pytest.raises(KeyboardInterrupt):
        fresh.trace(image, PROMPT, max_new_tokens=3)
    monkeypatch.undo()
    assert inject.fired
    assert _free_for_another_thread(real)  # on the old code the lock stayed held: every later call hung
    _assert_same_state(_state(fresh.model, inputs), before)
    _same_trace(fresh.trace(image, PROMPT, max_new_tokens=3), want)


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="needs the main thread")
def test_ctrl_c_while_waiting_for_a_busy_model_is_not_deferred(fresh, monkeypatch):
    """The lock is taken in short tries with Ctrl-C deferred only during each: a Ctrl-C while waiting
    still lands at once (as a plain `acquire(timeout=...)`, which a signal interrupts), not after
    the whole wait."""
    real = model_lock.lock_of(fresh.model)
    held = threading.Event()
    done = threading.Event()

    def hold():
        with model_lock.holding(fresh.model):
            held.set()
            done.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(5)
    timer = threading.Timer(0.3, lambda: signal.pthread_kill(threading.main_thread().ident, signal.SIGINT))
    timer.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt):
            with model_lock.holding(fresh.model, wait_s=5.0):
                pass
        waited = time.perf_counter() - t0
    finally:
        done.set()
        t.join()
        timer.cancel()
    assert waited < 2.5  # well before the 5 s wait ends (slack for a loaded host)
    assert _free_for_another_thread(real)
