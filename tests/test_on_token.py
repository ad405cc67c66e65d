"""Session.trace(on_token=...): each token is told as it is chosen, before its Step (with saliency)
arrives, so a live view shows text first (issue 19 item 4). The reference is the final trace."""

import threading

import pytest

import lvsal_nb as lv

PROMPT = "describe this image ."


def _record(events):
    return dict(
        on_token=lambda t, tid, piece: events.append(("token", t, tid, piece)),
        on_step=lambda s: events.append(("step", s.step, s.token_id, s.token)),
    )


@pytest.mark.parametrize(
    "kw",
    [
        dict(chunk=4),  # the sequence engine, scoring per chunk of 4
        dict(chunk=None),  # ... all at the end
        dict(engine="step", alternatives=1),
        dict(sgrs=lv.SGRS(k=3, alpha=0.9)),
        dict(num_beams=2),  # transformers' generate, then the sequence engine
    ],
    ids=["sequence-chunk4", "sequence-whole", "step", "sgrs", "generate"],
)
def test_tokens_told_once_in_order_before_their_steps(llava_session, image, kw):
    events = []
    tr = llava_session.trace(image, PROMPT, max_new_tokens=9, seed=1, **_record(events), **kw)
    told = [e[1:] for e in events if e[0] == "token"]
    assert told == [(s.step, s.token_id, s.token) for s in tr.records] and len(told) == len(tr) > 0
    for t in range(len(tr)):  # the token of step t is told before step t is emitted
        assert events.index(("token", *told[t])) < events.index(("step", *told[t]))


def test_sequence_engine_tells_text_a_chunk_ahead_of_saliency(llava_session, image):
    events = []
    tr = llava_session.trace(image, PROMPT, max_new_tokens=9, chunk=4, **_record(events))
    assert len(tr) == 9
    first_step = next(i for i, e in enumerate(events) if e[0] == "step")
    assert [e[1] for e in events[:first_step]] == [0, 1, 2, 3]  # 4 tokens told before step 0's saliency


def test_stop_from_on_token_keeps_what_was_told(llava_session, image):
    stop, told = threading.Event(), []

    def on_token(t, tid, piece):
        told.append(tid)
        if t == 3:
            stop.set()

    for kw in (dict(chunk=2), dict(engine="step")):
        told.clear()
        tr = llava_session.trace(image, PROMPT, max_new_tokens=20, stop=stop, on_token=on_token, **kw)
        stop.clear()
        assert tr.interrupted and [s.token_id for s in tr.records] == told and len(told) == 4


def test_ctrl_c_in_on_token_keeps_every_told_token_scored(llava_session, image):
    told = []

    def on_token(t, tid, piece):
        told.append(tid)
        if t == 5:
            raise KeyboardInterrupt

    tr = llava_session.trace(image, PROMPT, max_new_tokens=20, chunk=4, on_token=on_token)
    assert tr.interrupted and [s.token_id for s in tr.records] == told and len(told) == 6
    assert all(s.row is not None for s in tr.records)  # steps 4, 5 scored by the interrupt's drain


def test_on_token_error_propagates(llava_session, image):
    def boom(t, tid, piece):
        raise ValueError("view broke")

    with pytest.raises(ValueError, match="view broke"):
        llava_session.trace(image, PROMPT, max_new_tokens=3, on_token=boom)
