"""Session.trace/analyze: decoding, streaming, interrupts, and clear errors for bad input."""

import threading

import numpy as np
import pytest
import torch

import lvsal_nb as lv
from lvsal_nb.saliency.reference import reference_step

PROMPT = "describe this image ."


def _plain_greedy(session, image, n):
    """Independent greedy tokens: transformers' own generate."""
    prepared = session.adapter.prepare(image, PROMPT)
    with torch.no_grad():
        out = session.model.generate(**prepared.inputs, max_new_tokens=n, do_sample=False)
    return out[0, prepared.n :].tolist()


def test_greedy_tokens_equal_transformers_generate(session, image):
    tr = session.trace(image, PROMPT, max_new_tokens=6)
    assert [s.token_id for s in tr.records] == _plain_greedy(session, image, 6)[: len(tr)]


def test_sampling_is_seeded(llava_session, image):
    a = llava_session.trace(image, PROMPT, max_new_tokens=8, decoding="sample", seed=3)
    b = llava_session.trace(image, PROMPT, max_new_tokens=8, decoding="sample", seed=3)
    c = llava_session.trace(image, PROMPT, max_new_tokens=8, decoding="sample", seed=4)
    ids = lambda t: [s.token_id for s in t.records]  # noqa: E731
    assert ids(a) == ids(b) and ids(a) != ids(c)
    assert a.config["seed"] == 3 and all(s.decision == "sampled" for s in a.records)


def test_eos_stops(llava_session, image):
    eos = sorted(llava_session.adapter.eos_token_ids)[0]
    head = llava_session.model.lm_head
    saved = head.bias
    head.bias = torch.nn.Parameter(
        torch.zeros(head.out_features, dtype=head.weight.dtype), requires_grad=False
    )
    head.bias.data[eos] = 1e3  # EOS always wins
    try:
        tr = llava_session.trace(image, PROMPT, max_new_tokens=5)
    finally:
        head.bias = saved
    assert [s.token_id for s in tr.records] == [eos]


def test_streaming_callback_sees_every_step_in_order(llava_session, image):
    seen = []
    tr = llava_session.trace(image, PROMPT, max_new_tokens=7, chunk=3, on_step=seen.append)
    assert [s.step for s in seen] == list(range(7)) and seen == tr.records


def test_stop_event_keeps_partial_trace(llava_session, image):
    stop = threading.Event()

    def on_step(step):
        if step.step == 2:
            stop.set()

    tr = llava_session.trace(image, PROMPT, max_new_tokens=20, engine="step", on_step=on_step, stop=stop)
    assert len(tr) == 3 and tr.interrupted


def test_keyboard_interrupt_keeps_partial_trace(llava_session, image):
    def on_step(step):
        if step.step == 3:
            raise KeyboardInterrupt

    tr = llava_session.trace(image, PROMPT, max_new_tokens=20, chunk=2, on_step=on_step)
    assert tr.interrupted and len(tr) >= 4
    assert all(s.row is not None for s in tr.records)


def test_beam_search_through_generate(llava_session, image):
    tr = llava_session.trace(image, PROMPT, max_new_tokens=5, num_beams=3)
    prepared = llava_session.adapter.prepare(image, PROMPT)
    with torch.no_grad():
        ref = llava_session.model.generate(**prepared.inputs, max_new_tokens=5, num_beams=3, do_sample=False)
    assert [s.token_id for s in tr.records] == ref[0, prepared.n :].tolist()[: len(tr)]
    assert tr.config["generate"] == {"num_beams": 3} and tr.records[0].decision == "generated"


def test_analyze_equals_trace(llava_session, image):
    tr = llava_session.trace(image, PROMPT, max_new_tokens=6, alternatives=1)
    an = llava_session.analyze(image, PROMPT, [s.token_id for s in tr.records], alternatives=1)
    for a, b in zip(tr.records, an.records):
        assert a.saliency == pytest.approx(b.saliency, abs=1e-12) and b.decision == "forced"
    text_an = llava_session.analyze(image, PROMPT, "red cat on a table")
    assert [s.token for s in text_an.records] == ["red", " cat", " on", " a", " table"]
    _assert_reference(llava_session, image, text_an)


def test_trace_has_spans_tokens_and_image(session, image):
    tr = session.trace(image, PROMPT, max_new_tokens=4)
    n = len(tr.token_ids)
    assert tr.spans.output == (n - len(tr), n)
    assert tr.tokens[tr.spans.image[0]] == "<image>" and len(tr.tokens) == n
    assert tr.image_png.startswith(b"\x89PNG") and tr.image_digest
    assert tr.config["family"] == session.adapter.family


def test_text_only_prompt(llava_session):
    tr = llava_session.trace(None, PROMPT, max_new_tokens=3)
    assert tr.spans.image is None and len(tr) == 3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(prompt=""), "prompt is empty"),
        (dict(max_new_tokens=0), "max_new_tokens must be an integer >= 1"),
        (dict(layers=[9]), r"out of range: this model has 4 decoder layers"),
        (dict(layers=[]), "layers is empty"),
        (dict(decoding="beam"), "decoding must be one of"),
        (dict(temperature=0), "temperature must be > 0"),
        (dict(context="image"), "context must be one of"),
        (dict(engine="fast"), "engine must be one of"),
        (dict(sgrs=lv.SGRS(), engine="sequence"), "needs engine='step'"),
    ],
)
def test_bad_input_names_the_fix(llava_session, image, kwargs, match):
    args = dict(image=image, prompt=PROMPT, max_new_tokens=2)
    args.update(kwargs)
    with pytest.raises(lv.LvsalError, match=match):
        llava_session.trace(args.pop("image"), args.pop("prompt"), **args)


def test_analyze_rejects_ids_outside_the_vocabulary(llava_session, image):
    vocab = llava_session.adapter.head.weight.shape[0]
    for ids in ([5, vocab], [-1, 5]):
        with pytest.raises(lv.ConfigError, match=rf"outside this model's vocabulary \(0..{vocab - 1}\)"):
            llava_session.analyze(image, PROMPT, ids)
    assert len(llava_session.analyze(image, PROMPT, [5, vocab - 1])) == 2


def test_bad_images(llava_session, tmp_path):
    with pytest.raises(lv.ImageError, match="does not exist"):
        llava_session.trace(tmp_path / "nope.png", PROMPT)
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    with pytest.raises(lv.ImageError, match="cannot read"):
        llava_session.trace(bad, PROMPT)
    with pytest.raises(lv.ImageError, match="1, 3 or 4 channels"):  # HxW is a grey image (lvsal_nb.images)
        llava_session.trace(np.zeros((5, 5, 2)), PROMPT)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(k=0), "k must be an integer >= 1"),
        (dict(alpha=-1), "alpha must be >= 0"),
        (dict(rounds=6), "rounds must be an integer in 1..k"),
        (dict(window=0), "window must be"),
    ],
)
def test_bad_sgrs(kwargs, match):
    with pytest.raises(lv.ConfigError, match=match):
        lv.SGRS(**kwargs)


def test_bad_locore():
    with pytest.raises(lv.ConfigError, match="beta must be >= 0"):
        lv.LocoRE(beta=-0.1)


def test_unsupported_model_and_missing_checkpoint(tmp_path):
    with pytest.raises(lv.UnsupportedModelError, match="is not supported"):
        lv.load(torch.nn.Linear(2, 2))
    with pytest.raises(lv.ConfigError, match="never downloads"):
        lv.load(str(tmp_path / "no-such-model"))


def test_load_local_checkpoint(tmp_path, image):
    from lvsal_nb.models.tiny import tiny_llava

    model, proc = tiny_llava()
    model.save_pretrained(tmp_path)
    proc.save_pretrained(tmp_path)
    s = lv.load(str(tmp_path), device="cpu")
    tr = s.trace(image, PROMPT, max_new_tokens=3)
    assert len(tr) == 3 and s.adapter.family == "llava"


@pytest.mark.parametrize("engine", ["sequence", "step"])
def test_trace_inside_no_grad(llava_session, image, engine):
    """Users often wrap inference in torch.no_grad(); both engines still get their gradients:
    every candidate's saliency equals the naive full-recompute reference."""
    with torch.no_grad():
        tr = llava_session.trace(image, PROMPT, max_new_tokens=4, engine=engine, alternatives=1)
    _assert_reference(llava_session, image, tr)


def _assert_reference(session, image, tr):
    prepared = session.adapter.prepare(image, PROMPT)
    out = [s.token_id for s in tr.records]
    assert len(out) > 1
    for t in range(1, len(out)):  # step 0 of context "text" may have an empty J
        cands = [c.token_id for c in tr.records[t].candidates]
        ref = reference_step(session.adapter, prepared, out, t, cands, tr.layers)
        assert [c.saliency for c in tr.records[t].candidates] == pytest.approx(ref["scores"], abs=1e-5)
