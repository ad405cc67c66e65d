"""One decode loop (runs.decode) for the step engine (SGRS or plain) and the sequence engine's
generation: each token is announced once, in order, at one place (`policy.chosen`), before its
Step reaches the caller (issue 18; where a streaming `on_token` hook belongs)."""

import pytest

import lvsal_nb as lv
from lvsal_nb.decoding import runs

PROMPT = "describe this image ."
SETTINGS = {
    "sequence": dict(max_new_tokens=6, chunk=4),
    "sequence-sample": dict(max_new_tokens=6, chunk=2, decoding="sample", seed=4),
    "step": dict(max_new_tokens=5, engine="step", alternatives=1),
    "sgrs": dict(max_new_tokens=5, sgrs=lv.SGRS(k=3)),
}


@pytest.mark.parametrize("name", list(SETTINGS))
def test_each_token_is_announced_once_before_its_step(llava_session, image, name, monkeypatch):
    events = []
    for cls in (runs.StepPolicy, runs.SequencePolicy):
        chosen = cls.chosen

        def spy(self, t, token_id, chosen=chosen):
            events.append(("chosen", t, token_id))
            return chosen(self, t, token_id)

        monkeypatch.setattr(cls, "chosen", spy)
    tr = llava_session.trace(
        image, PROMPT, on_step=lambda s: events.append(("step", s.step)), **SETTINGS[name]
    )
    ids = [s.token_id for s in tr.records]
    assert [e[1:] for e in events if e[0] == "chosen"] == list(enumerate(ids))
    for t in range(len(ids)):
        assert events.index(("chosen", t, ids[t])) < events.index(("step", t))
    monkeypatch.undo()
    again = llava_session.trace(image, PROMPT, **SETTINGS[name])  # the spy changed nothing
    assert [s.token_id for s in again.records] == ids


def test_stop_event_ends_the_loop_before_the_next_forward(llava_session, image):
    import threading

    stop = threading.Event()
    seen = []

    def on_step(s):
        seen.append(s.step)
        if s.step == 1:
            stop.set()

    tr = llava_session.trace(image, PROMPT, max_new_tokens=6, engine="step", on_step=on_step, stop=stop)
    assert [s.step for s in tr.records] == [0, 1] and tr.interrupted


def test_vcd_and_dola_run_on_the_one_decode_loop(llava_session, image, monkeypatch):
    """The baselines' two-stream (VCD) and one-stream (DoLa) decoding goes through runs.decode too:
    one `chosen` per emitted token, in order (their outputs are pinned against hand-computed
    contrasts in test_baselines.py)."""
    from lvsal_nb.decoding import baselines
    from lvsal_nb.decoding.dola import dola_generate
    from lvsal_nb.decoding.vcd import vcd_generate

    for generate in (vcd_generate, dola_generate):
        seen = []
        chosen = baselines.ContrastPolicy.chosen

        def spy(self, t, token_id, chosen=chosen, seen=seen):
            seen.append((t, token_id))
            return chosen(self, t, token_id)

        monkeypatch.setattr(baselines.ContrastPolicy, "chosen", spy)
        out = generate(llava_session, image, PROMPT, max_new_tokens=4)
        monkeypatch.undo()
        assert seen == list(enumerate(out.token_ids)) and out.token_ids
