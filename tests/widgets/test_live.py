"""Live views: decoding in a worker thread, views updated while steps arrive, Stop keeps a partial trace."""

import threading

import pytest

import lvsal_nb as lv
from lvsal_nb.errors import ConfigError
from lvsal_nb.widgets import view
from lvsal_nb.widgets.live import LiveTrace
from lvsal_nb.widgets.viewer import TraceViewer

PROMPT = "describe this image ."


def wait_for_steps(v, n, timeout=10.0):
    """Poll until the viewer shows n steps; returns once that render is done (renders hold the lock)."""
    for _ in range(int(timeout / 0.02)):
        if v.state.n_steps == n:
            break
        threading.Event().wait(0.02)
    with v.state.lock:  # the render of that update has finished once we get the lock
        return v.state.n_steps


def wait_for_figures(v, timeout=10.0) -> bool:
    """Poll until a live viewer has added its Bokeh figures (TraceViewer.live shows text first)."""
    for _ in range(int(timeout / 0.02)):
        if v.figures_shown:
            break
        threading.Event().wait(0.02)
    with v.state.lock:
        return v.figures_shown


class GatedSession:
    """A Session whose trace pauses after `gate` steps until released (or stopped): lets a test
    look at the viewer while decoding is provably still running."""

    def __init__(self, session, gate: int):
        self.inner, self.gate = session, gate
        self.adapter, self.model_id = session.adapter, session.model_id
        self.reached, self.release = threading.Event(), threading.Event()

    def trace(self, image, prompt, *, on_step, stop, **kw):
        def step(s):
            on_step(s)
            if s.step + 1 == self.gate:
                self.reached.set()
                while not (self.release.is_set() or stop.is_set()):
                    self.release.wait(0.01)

        return self.inner.trace(image, prompt, on_step=step, stop=stop, **kw)


def test_live_view_ends_with_all_steps_shown(llava_session, image, store):
    kw = dict(max_new_tokens=9, sgrs=lv.SGRS(alpha=1.0), seed=3)
    v = view(llava_session, image, PROMPT, store=store, **kw)
    tr = v.wait(timeout=60)
    ref = llava_session.trace(image, PROMPT, **kw)  # the same run, not streamed
    assert [s.token_id for s in tr.records] == [s.token_id for s in ref.records]
    assert tr.config["engine"] == "step" and not tr.interrupted
    assert v.trace is tr and v.live_trace.trace is tr
    assert v.sources["strip"].data["step"] == list(range(len(ref)))
    assert v.sources["curve"].data["saliency"] == [s.saliency for s in ref.records]
    assert v.slider.max == len(ref) - 1 and v.slider.value == len(ref) - 1  # followed the newest step
    assert "done" in v.status.value and v.stop_button.layout.display == "none"


def test_views_update_while_decoding_and_stop_keeps_the_partial_trace(llava_session, image, store):
    gated = GatedSession(llava_session, gate=4)
    v = view(gated, image, PROMPT, store=store, max_new_tokens=30, engine="step")
    assert gated.reached.wait(30)
    lt = v.live_trace
    assert lt.running
    assert wait_for_steps(v, 4) == 4 and lt.running  # the pump redrew while decoding waits
    # the figures come FIGURES_AFTER_S after decoding started (a timer: nothing wakes the pump now)
    assert wait_for_figures(v) and lt.running and v.bokeh in v.children
    assert len(v.sources["strip"].data["step"]) == 4 and v.slider.max == 3
    assert "decoding" in v.status.value
    v.state.mark("hallucinated", step=2)  # marked while streaming
    v.stop_button.click()
    tr = v.wait(timeout=30)
    assert tr.interrupted and len(tr) == 4 and v.trace is tr
    assert "stopped" in v.status.value and "4 steps" in v.status.value
    assert list(store.labels_for(tr.trace_id).step) == [2]  # the final trace keeps the live id
    assert v.state.marks[2].label == "hallucinated"


def test_user_scrubbing_stops_following(llava_session, image, store):
    gated = GatedSession(llava_session, gate=5)
    v = view(gated, image, PROMPT, store=store, max_new_tokens=8, engine="step")
    assert gated.reached.wait(30)
    assert wait_for_steps(v, 5) == 5
    v.slider.value = 1  # the user looks at an old step
    gated.release.set()
    tr = v.wait(timeout=30)
    assert len(tr) == 8 and v.slider.value == 1 and v.slider.max == 7


def test_two_live_views_on_one_session_take_turns(llava_session, image, store):
    kw = [dict(max_new_tokens=7, seed=1), dict(max_new_tokens=6, sgrs=lv.SGRS(), seed=2)]
    views = [view(llava_session, image, PROMPT, store=store, **k) for k in kw]  # both start at once
    got = [v.wait(timeout=60) for v in views]
    for tr, k in zip(got, kw):
        ref = llava_session.trace(image, PROMPT, **k)
        assert [s.token_id for s in tr.records] == [s.token_id for s in ref.records]
        assert [s.saliency for s in tr.records] == pytest.approx([s.saliency for s in ref.records])


def test_decode_errors_show_and_reraise(llava_session, image, store):
    v = view(llava_session, image, PROMPT, store=store, max_new_tokens=3, decoding="beam-search")
    with pytest.raises(ConfigError):
        v.wait(timeout=30)
    assert "decoding failed" in v.status.value
    assert v.figures_shown and v.bokeh in v.children  # no step was scored: the figures come at the end


def test_bad_inputs_fail_before_the_thread_starts(llava_session, image):
    with pytest.raises(ConfigError, match="max_new_tokens"):
        view(llava_session, image, PROMPT, max_new_tokens=0)
    with pytest.raises(ConfigError, match="beta"):
        view(llava_session, image, PROMPT, locore=-1.0)
    with pytest.raises(ConfigError, match="stop"):
        LiveTrace(llava_session, image, PROMPT, stop=threading.Event())
    with pytest.raises(ConfigError, match="prompt"):
        view(llava_session, image)


def test_live_view_streams_in_chunks_by_default(llava_session, image):
    """Issue 19 item 4: with Session's default chunk (16) a 13-token caption arrived all at once.
    Now text comes per token (on_pending) and saliency per chunk of LIVE_CHUNK (on_update)."""
    from lvsal_nb.widgets.live import LIVE_CHUNK

    sizes, pending = [], []
    lt = LiveTrace(llava_session, image, "describe this image .", max_new_tokens=20, interval=0.01)
    lt.on_update = lambda tr: sizes.append(len(tr.records))
    lt.on_pending = lambda p: pending.append(len(p))
    tr = lt.start().wait(120)
    assert LIVE_CHUNK == 8 and tr.config["chunk"] == 8 and len(tr) == 20
    assert sizes and sizes[0] <= LIVE_CHUNK  # the first redraw came before the whole caption
    assert pending[0] >= 1 and lt.pending() == []  # (the final trace goes to on_done, not here)
    assert 2 <= max(pending) <= LIVE_CHUNK  # text ran ahead of saliency, by at most a chunk
    assert lt.first_token_at < lt.first_step_at < lt.finished_at
    explicit = LiveTrace(llava_session, image, "describe this image .", max_new_tokens=4, chunk=16)
    assert explicit.start().wait(120).config["chunk"] == 16


class TokenGatedSession(GatedSession):
    """Pauses decoding after `gate` tokens were told, before any saliency (chunk > gate)."""

    def trace(self, image, prompt, *, on_token, on_step, stop, **kw):
        def token(t, tid, piece):
            on_token(t, tid, piece)
            if t + 1 == self.gate:
                self.reached.set()
                while not (self.release.is_set() or stop.is_set()):
                    self.release.wait(0.01)

        return self.inner.trace(image, prompt, on_token=token, on_step=on_step, stop=stop, **kw)


def test_tokens_show_before_their_saliency(llava_session, image, store):
    """Issue 19 item 4: the status line shows each token as it is chosen, greyed until its chunk is
    scored; the strip (saliency) fills per chunk."""
    import html

    from lvsal_nb.widgets.live import LIVE_CHUNK

    gated = TokenGatedSession(llava_session, gate=3)
    v = view(gated, image, PROMPT, store=store, max_new_tokens=10, seed=2)
    assert gated.reached.wait(30)
    lt = v.live_trace
    for _ in range(500):  # the pump redraws the pending text while decoding waits
        if "decoding… 3 tokens" in v.status.value:
            break
        threading.Event().wait(0.01)
    assert lt.running and v.state.n_steps == 0 and lt.first_step_at is None
    assert len(lt.pending()) == 3 and lt.first_token_at is not None
    paused = v.status.value
    gated.release.set()
    tr = v.wait(timeout=60)
    ref = llava_session.trace(image, PROMPT, max_new_tokens=10, seed=2)  # the same run, not streamed
    assert [s.token for s in tr.records] == [s.token for s in ref.records]
    shown = html.escape("".join(s.token for s in ref.records[:3]))  # the first 3 pieces, greyed
    assert paused.endswith(f"font-style:italic'>{shown}</span>") and "decoding… 3 tokens" in paused
    assert lt.kwargs["chunk"] == LIVE_CHUNK == 8 and "done" in v.status.value and lt.pending() == []


def test_a_live_view_shows_its_text_before_its_figures(llava_session, image, store, bundle_data):
    """Issue 19 item 4: the page drew the Bokeh figures (0.5-1 s) before any of the viewer, so the
    first token waited for them. A live view starts without them and adds them, drawn from a fresh
    snapshot, once a chunk is scored (here: when decoding ends, no chunk being scored before)."""
    gated = TokenGatedSession(llava_session, gate=3)
    v = view(gated, image, PROMPT, store=store, max_new_tokens=6, seed=2)
    assert gated.reached.wait(30)
    for _ in range(500):
        if "decoding… 3 tokens" in v.status.value:
            break
        threading.Event().wait(0.01)
    assert "decoding… 3 tokens" in v.status.value  # the text is there ...
    assert not v.figures_shown and v.bokeh not in v.children  # ... the figures are not
    assert [type(w).__name__ for w in v.children] == ["HBox", "HTML", "HTML", "MarkPanel", "HTML"]
    v._repr_mimebundle_()  # shown now: no snapshot of figures that are not in the view
    assert not v.figures_shown and bundle_data(v.bokeh, v.sources["strip"])["step"] == []
    gated.release.set()
    tr = v.wait(timeout=60)
    assert v.figures_shown and v.children[2] is v.bokeh and len(v.children) == 6
    assert bundle_data(v.bokeh, v.sources["strip"])["step"] == list(range(len(tr)))  # the final data
    assert v.times["built"] <= v.live_trace.started <= v.times["shown"] <= v.times["figures"]
    done = TraceViewer(tr, store=store)  # a viewer of a finished trace shows everything at once
    assert done.figures_shown and done.bokeh in done.children


def test_pending_line_greys_the_unscored_tail():
    from lvsal_nb.widgets.live import pending_line

    line = pending_line(["A", " red"], [" <b>", " x"])
    assert "decoding… 4 tokens" in line and "<span class='lvsal-told'>A red</span>" in line
    assert line.endswith("> &lt;b&gt; x</span>") and "lvsal-pending" in line  # escaped, greyed
    assert "lvsal-pending" not in pending_line(["A"], [])
