"""The fixed-capacity step engine (decoding/static.py, CUDA graphs on a GPU) gives the numbers of the
growing-cache step engine and of the naive reference. On this CPU it runs eagerly: the static shapes,
the position tensor, the own-key one-hot and the mask are what is checked; benchmarks/gpu.py checks
the captured graphs against the same reference on a GPU."""

import numpy as np
import pytest
import torch

import lvsal_nb as lv
from lvsal_nb.context import TraceContext
from lvsal_nb.decoding.static import StaticStepLoop, static_supported
from lvsal_nb.kept_loops import KeptLoops

from .test_reference_equality import LAYERS, PROMPT, _assert_matches_reference


@pytest.fixture
def static(monkeypatch):
    def on(session, value=True):
        monkeypatch.setattr(session, "static_steps", value)
        return session

    return on


@pytest.mark.parametrize("engine", ["step", "sequence"])  # sequence: its generation loop is static
def test_static_loop_equals_reference(session, image, static, engine):
    static(session)
    tr = session.trace(image, PROMPT, max_new_tokens=6, layers=LAYERS, engine=engine, alternatives=2, chunk=4)
    assert tr.config["step_loop"] == "static"
    assert len(tr) == 6 and all(len(s.candidates) == 3 for s in tr.records)
    _assert_matches_reference(session, image, tr)


def test_static_loop_with_locore_equals_reference(session, image, static):
    static(session)
    lc = lv.LocoRE(beta=0.5, window=3)
    tr = session.trace(
        image, PROMPT, max_new_tokens=6, layers=LAYERS, engine="step", alternatives=0, locore=lc
    )
    assert tr.config["step_loop"] == "static"
    _assert_matches_reference(session, image, tr, locore=lc)


def test_static_sgrs_equals_dynamic_sgrs(llava_session, image, static):
    from lvsal_nb.saliency.reference import reference_step

    cfg = lv.SGRS(k=4, alpha=0.9, order="greedy")  # rejects from step 4 on (this model, image)
    lc = lv.LocoRE(beta=0.3)
    static(llava_session, False)
    a = llava_session.trace(image, PROMPT, max_new_tokens=8, layers=LAYERS, sgrs=cfg, locore=lc)
    static(llava_session, True)
    b = llava_session.trace(image, PROMPT, max_new_tokens=8, layers=LAYERS, sgrs=cfg, locore=lc)
    assert (a.config["step_loop"], b.config["step_loop"]) == ("dynamic", "static")
    assert [s.token_id for s in a.records] == [s.token_id for s in b.records]
    assert {s.round for s in a.records} >= {0, 1}  # rejections happened: later candidates' rows matter
    for x, y in zip(a.records, b.records):
        assert x.row.shape == y.row.shape == (len(LAYERS), x.position + 1)
        np.testing.assert_allclose(x.row, y.row, atol=1e-12)
        np.testing.assert_allclose(
            [c.saliency for c in x.candidates], [c.saliency for c in y.candidates], atol=1e-12
        )
    prepared = llava_session.adapter.prepare(image, PROMPT)  # and the naive reference, every candidate
    out = [s.token_id for s in b.records]
    for t, rec in enumerate(b.records):
        cands = [c.token_id for c in rec.candidates]
        ref = reference_step(llava_session.adapter, prepared, out, t, cands, LAYERS, locore=lc)
        np.testing.assert_allclose([c.saliency for c in rec.candidates], ref["scores"], rtol=0, atol=1e-10)
        chosen = next(i for i, c in enumerate(rec.candidates) if c.accepted)
        np.testing.assert_allclose(rec.row, ref["rows"][chosen].numpy(), rtol=0, atol=1e-6)  # stored float32


def _loops(session, image, k):
    from lvsal_nb.decoding.loop import StepLoop
    from lvsal_nb.saliency.probe import Probe, attached

    prepared = session.adapter.prepare(image, PROMPT)
    inputs = session.adapter.to(prepared.inputs, session.dtype)
    for make in (
        lambda p: StepLoop(TraceContext(session.adapter, prepared, p, inputs), grad=True, k=k),
        lambda p: StaticStepLoop(
            TraceContext(session.adapter, prepared, p, inputs),
            grad=True,
            k=k,
            capacity=prepared.n + 4,
            graphs=False,
        ),
    ):
        probe = Probe(layers=tuple(LAYERS))
        with attached(session.model, session.adapter.language_model, session.adapter.text_config, probe):
            loop = make(probe)
            loop.prefill()
            out = []
            for tok in (5, 9, 7):
                logits = loop.forward()
                out.append((logits.clone(), loop.score([tok, 3], "text")))
                loop.push(tok)
            yield out


def test_static_loop_pads_fewer_candidates_than_k(llava_session, image):
    from lvsal_nb.saliency.reference import reference_step

    dyn, sta = _loops(llava_session, image, k=4)  # a loop built for 4, scored with 2
    prepared = llava_session.adapter.prepare(image, PROMPT)
    for t, ((la, a), (lb, b)) in enumerate(zip(dyn, sta)):
        torch.testing.assert_close(la, lb, atol=1e-12, rtol=0)
        assert a.q == b.q and b.token_ids == [a.token_ids[0], 3] and b.rows.shape == a.rows.shape
        torch.testing.assert_close(a.rows, b.rows, atol=1e-12, rtol=0)
        torch.testing.assert_close(a.scores, b.scores, atol=1e-12, rtol=0, equal_nan=True)
        ref = reference_step(llava_session.adapter, prepared, [5, 9, 7], t, b.token_ids, LAYERS)
        assert ref["q"] == b.q
        np.testing.assert_allclose(b.scores.numpy(), ref["scores"], rtol=0, atol=1e-10)
        for i in range(2):
            np.testing.assert_allclose(b.rows[i].numpy(), ref["rows"][i].numpy(), rtol=0, atol=1e-10)


def test_sliding_window_models_keep_the_dynamic_loop(llava_session):
    from types import SimpleNamespace as NS

    assert static_supported(llava_session.adapter)
    head = torch.nn.Linear(2, 3)
    assert static_supported(NS(text_config=NS(layer_types=["full_attention"] * 2), head=head, model=NS()))
    mixed = NS(layer_types=["full_attention", "sliding_attention"])
    assert not static_supported(NS(text_config=mixed, head=head, model=NS()))


def test_models_split_over_devices_keep_the_dynamic_loop(llava_session, monkeypatch):
    monkeypatch.setattr(
        llava_session.model, "hf_device_map", {"model.vision_tower": 0, "lm_head": 0}, raising=False
    )
    assert static_supported(llava_session.adapter)
    monkeypatch.setattr(
        llava_session.model, "hf_device_map", {"model.vision_tower": 0, "lm_head": 1}, raising=False
    )
    assert not static_supported(llava_session.adapter)


def test_models_with_a_scaled_head_keep_the_dynamic_loop(llava_session, image, static, monkeypatch):
    # the static loop applies the LM head itself: a soft-capped head must take the model's own forward
    static(llava_session)
    monkeypatch.setattr(llava_session.adapter.text_config, "final_logit_softcapping", 30.0, raising=False)
    assert not static_supported(llava_session.adapter)
    tr = llava_session.trace(image, PROMPT, max_new_tokens=3, layers=LAYERS)
    assert tr.config["step_loop"] == "dynamic"


def test_static_generation_loop_equals_transformers_generate(session, image, static):
    from lvsal_nb.saliency.probe import Probe, attached

    prepared = session.adapter.prepare(image, PROMPT)
    inputs = session.adapter.to(prepared.inputs, session.dtype)
    with torch.no_grad():
        out = session.model.generate(
            **inputs, max_new_tokens=12, do_sample=False, output_scores=True, return_dict_in_generate=True
        )
    ids = out.sequences[0, prepared.n :].tolist()
    assert len(ids) >= 6
    probe = Probe(layers=tuple(LAYERS))
    with attached(session.model, session.adapter.language_model, session.adapter.text_config, probe):
        ctx = TraceContext(session.adapter, prepared, probe, inputs)
        loop = StaticStepLoop(ctx, grad=False, k=1, capacity=prepared.n + 12, graphs=False)
        loop.prefill()
        for t, tok in enumerate(ids):  # every step's logits, against generate's (float32) scores
            torch.testing.assert_close(loop.forward().float(), out.scores[t][0], rtol=0, atol=1e-5)
            loop.push(tok)
    static(session)
    tr = session.trace(image, PROMPT, max_new_tokens=12, layers=LAYERS)
    assert tr.config["step_loop"] == "static" and [s.token_id for s in tr.records] == ids


def test_static_generation_loop_equals_dynamic(session, image, static):
    static(session, False)
    a = session.trace(image, PROMPT, max_new_tokens=12, layers=LAYERS, locore=0.4)
    static(session, True)
    b = session.trace(image, PROMPT, max_new_tokens=12, layers=LAYERS, locore=0.4)
    assert (a.config["step_loop"], b.config["step_loop"]) == ("dynamic", "static")
    assert len(a) == 12 and [s.token_id for s in a.records] == [s.token_id for s in b.records]
    np.testing.assert_allclose([s.logprob for s in a.records], [s.logprob for s in b.records], atol=1e-12)
    for x, y in zip(a.records, b.records):
        np.testing.assert_allclose(x.row, y.row, atol=1e-12)


def test_static_loop_masks_reach_sdpa_aligned(llava_session, image, static, sdpa_masks):
    from ..conftest import mem_efficient_aligned

    static(llava_session)
    cfg = lv.SGRS(k=3, alpha=0.9, order="greedy")
    llava_session.trace(image, PROMPT, max_new_tokens=5, layers=LAYERS, sgrs=cfg, locore=0.3)
    decode = [m for m in sdpa_masks if m.shape[-2] == 1]  # (the prefill's mask is built by transformers)
    assert decode and all(mem_efficient_aligned(m) for m in decode)


def _graph_inputs(loop) -> tuple:
    """The addresses a captured graph reads: a kept loop must serve every trace from them."""
    bufs = tuple(t.data_ptr() for t in loop.cache.kbuf + loop.cache.vbuf)
    return (loop.ids.data_ptr(), loop.pos.data_ptr(), loop.pos_offset.data_ptr(), loop.g.data_ptr(), bufs)


@pytest.fixture
def keep(monkeypatch):
    def on(session):
        monkeypatch.setattr(session, "keep_graphs", True)
        # (restored, and the kept buffers freed, after the test)
        monkeypatch.setattr(session, "_graphs", KeptLoops(session.device, session.dtype))
        return session

    return on


def _other_image(seed=1):
    from PIL import Image

    return Image.fromarray((np.random.RandomState(seed).rand(60, 80, 3) * 255).astype(np.uint8))


@pytest.mark.parametrize("run", ["step", "sgrs+locore", "sequence+locore"])
def test_kept_loop_serves_the_next_trace_exactly(session, image, static, keep, run):
    s = keep(static(session))
    lc = lv.LocoRE(beta=0.4, window=3) if "locore" in run else None
    kw = dict(max_new_tokens=6, layers=LAYERS, engine=run.split("+")[0], alternatives=2, locore=lc)
    if run.startswith("sgrs"):
        kw.update(sgrs=lv.SGRS(k=3, alpha=0.9, order="greedy"), alternatives=0, engine="step")
    grad = kw["engine"] == "step"  # the step engine's loop; the sequence engine decodes without grad
    s.trace(image, PROMPT, **kw)
    loop = s._graphs.kept[grad][1]
    before = _graph_inputs(loop)
    img2 = _other_image()
    b = s.trace(img2, PROMPT, **kw)  # same prompt length: the kept loop serves it
    assert s._graphs.kept[grad][1] is loop and _graph_inputs(loop) == before
    assert b.config["step_loop"] == "static"
    _assert_matches_reference(s, img2, b, locore=lc)
    s.release_graphs()
    fresh = s.trace(img2, PROMPT, **kw)  # a new loop: the same numbers
    assert s._graphs.kept[grad][1] is not loop
    assert [r.token_id for r in fresh.records] == [r.token_id for r in b.records]
    for x, y in zip(fresh.records, b.records):
        np.testing.assert_array_equal(x.row, y.row)


def test_kept_loop_only_for_the_same_graphs(llava_session, image, static, keep):
    s = keep(static(llava_session))
    kw = dict(max_new_tokens=5, layers=LAYERS, engine="step")
    s.trace(image, PROMPT, **kw)
    loop = s._graphs.kept[True][1]
    for change in (dict(max_new_tokens=6), dict(alternatives=1), dict(locore=0.2), dict(layers=[2])):
        s.trace(image, PROMPT, **{**kw, **change})
        assert s._graphs.kept[True][1] is not loop, change
        loop = s._graphs.kept[True][1]
    s.trace(image, "describe this image in detail .", **{**kw, "layers": [2]})  # another prompt length
    assert s._graphs.kept[True][1] is not loop
    seq = s.trace(image, PROMPT, max_new_tokens=5, layers=LAYERS)  # the sequence engine's no-grad loop
    assert set(s._graphs.kept) == {True, False} and seq.config["step_loop"] == "static"
    s.keep_graphs = False
    s.trace(image, PROMPT, **kw)
    assert s._graphs.kept == {}


def _oom_once(when):
    """A wrapper that raises CUDA's out-of-memory error the first time `when()` holds."""
    state = {"raised": 0}

    def wrap(fn):
        def inner(*args, **kwargs):
            if not state["raised"] and when():
                state["raised"] += 1
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
            return fn(*args, **kwargs)

        return inner

    return wrap, state


def test_out_of_memory_building_a_loop_frees_the_kept_ones_and_starts_again(
    llava_session, image, static, keep, monkeypatch
):
    from lvsal_nb.decoding import runs

    s = keep(static(llava_session))
    kw = dict(max_new_tokens=5, layers=LAYERS)
    s.trace(image, PROMPT, **kw)  # keeps the sequence engine's loop
    wrap, state = _oom_once(lambda: bool(s._graphs.kept))  # no room for a second loop while one is kept
    monkeypatch.setattr(runs, "make_loop", wrap(runs.make_loop))
    seen = []
    b = s.trace(image, PROMPT, engine="step", on_step=seen.append, **kw)
    assert state["raised"] == 1 and set(s._graphs.kept) == {True}
    assert [st.step for st in seen] == list(range(5))  # each step reached the caller once
    _assert_matches_reference(s, image, b)


def test_out_of_memory_in_the_analysis_starts_again_with_the_same_samples(
    llava_session, image, static, keep, monkeypatch
):
    from lvsal_nb.decoding import runs

    s = keep(static(llava_session))
    kw = dict(max_new_tokens=6, layers=LAYERS, decoding="sample", temperature=1.5, seed=3, chunk=None)
    want = s.trace(image, PROMPT, **kw)
    s.trace(image, PROMPT, engine="step", max_new_tokens=6, layers=LAYERS)  # a kept step-engine loop
    wrap, state = _oom_once(lambda: True)
    monkeypatch.setattr(runs.SequenceEngine, "feed", wrap(runs.SequenceEngine.feed))
    got = s.trace(image, PROMPT, **kw)
    assert state["raised"] == 1 and set(s._graphs.kept) == {False}  # the step engine's loop was freed
    assert [r.token_id for r in got.records] == [r.token_id for r in want.records]
    for x, y in zip(got.records, want.records):
        np.testing.assert_array_equal(x.row, y.row)
    _assert_matches_reference(s, image, got)


def test_out_of_memory_after_steps_reached_the_caller_is_raised(
    llava_session, image, static, keep, monkeypatch
):
    from lvsal_nb.decoding import runs

    s = keep(static(llava_session))
    s.trace(image, PROMPT, max_new_tokens=4, layers=LAYERS)  # keeps the sequence engine's loop
    seen = []
    wrap, state = _oom_once(lambda: len(seen) == 2)
    monkeypatch.setattr(runs, "plain_step", wrap(runs.plain_step))
    with pytest.raises(torch.OutOfMemoryError):
        s.trace(image, PROMPT, max_new_tokens=4, layers=LAYERS, chunk=1, on_step=seen.append)
    assert state["raised"] == 1 and len(seen) == 2 and s._graphs.kept == {}  # freed for the user's rerun
    wrap, state = _oom_once(lambda: True)
    monkeypatch.setattr(runs, "plain_step", wrap(runs.plain_step))
    with pytest.raises(torch.OutOfMemoryError):  # nothing kept: nothing to free, the error is the user's
        s.keep_graphs = False
        s.trace(image, PROMPT, max_new_tokens=4, layers=LAYERS)
    assert state["raised"] == 1


def test_keep_graphs_is_on_by_default(llava_session):
    assert lv.Session(llava_session.model, llava_session.processor).keep_graphs


def test_kept_loop_after_an_interrupted_trace(llava_session, image, static, keep):
    import threading

    s = keep(static(llava_session))
    kw = dict(max_new_tokens=6, layers=LAYERS, engine="step", alternatives=1)
    stop = threading.Event()
    cut = s.trace(image, PROMPT, stop=stop, on_step=lambda st: st.step == 1 and stop.set(), **kw)
    assert cut.interrupted and len(cut) == 2
    loop = s._graphs.kept[True][1]
    b = s.trace(_other_image(), PROMPT, **kw)  # starts from the prompt again, not where the cut one stopped
    assert s._graphs.kept[True][1] is loop and len(b) == 6
    _assert_matches_reference(s, _other_image(), b)


def test_static_loop_declares_every_attribute_in_init(llava_session, image):
    """Buffers and outputs are all declared by __init__ (issue 18): prefill, forward, score, push and
    rebind only fill them, so a kept loop's attributes are the same whatever ran before."""
    from lvsal_nb.saliency.probe import Probe, attached

    s = llava_session
    prepared = s.adapter.prepare(image, PROMPT)
    inputs = s.adapter.to(prepared.inputs, s.dtype)
    probe = Probe(layers=tuple(LAYERS))
    with attached(s.model, s.adapter.language_model, s.adapter.text_config, probe):
        ctx = TraceContext(s.adapter, prepared, probe, inputs)
        loop = StaticStepLoop(ctx, grad=True, k=2, capacity=prepared.n + 3, graphs=False)
        declared = set(vars(loop))
        loop.prefill()
        loop.forward()
        loop.score([5, 6], "text")
        loop.push(5)
        loop.forward()
        loop.rebind(TraceContext(s.adapter, prepared, Probe(layers=tuple(LAYERS)), inputs))
        loop.prefill()
    assert set(vars(loop)) == declared
