"""Qwen2-VL / Qwen2.5-VL keep the last image prompt's rotary offset (`rope_deltas`) on the model and
reuse it for a later text-only prompt (issue 17.7). A text-only trace after an image trace, or after
a plain `generate` with an image, equals a fresh model's text-only trace and the naive reference."""

import numpy as np
import pytest
import torch

import lvsal_nb as lv
from lvsal_nb.models import tiny
from lvsal_nb.saliency.reference import reference_step

PROMPT = "describe this image ."
TEXT = "say something about shapes ."


def _fresh(family):
    model, proc = getattr(tiny, f"tiny_{family}")(dtype=torch.float64)
    return lv.load(model, proc, device="cpu", dtype=torch.float64)


def _assert_same(a, b):
    assert [s.token_id for s in a.records] == [s.token_id for s in b.records]
    for x, y in zip(a.records, b.records):
        assert x.logprob == pytest.approx(y.logprob, abs=1e-12)
        assert x.saliency == pytest.approx(y.saliency, abs=1e-12)
        np.testing.assert_allclose(x.row, y.row, rtol=0, atol=1e-7)


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl"])
@pytest.mark.parametrize("engine", ["sequence", "step"])
def test_text_trace_after_image_equals_fresh_and_reference(family, engine, image):
    s = _fresh(family)
    kw = dict(max_new_tokens=5, engine=engine, alternatives=1, layers=[1, 2])
    s.trace(image, PROMPT, **kw)
    # a plain generate with an image in between leaves its rope_deltas on the model
    prepared = s.adapter.prepare(image, PROMPT)
    with torch.no_grad():
        s.model.generate(**prepared.inputs, max_new_tokens=2, do_sample=False)
    assert s.model.model.rope_deltas is not None and int(s.model.model.rope_deltas.abs().max()) > 0
    after = s.trace(None, TEXT, **kw)
    fresh = _fresh(family).trace(None, TEXT, **kw)
    _assert_same(after, fresh)
    text = s.adapter.prepare(None, TEXT)
    out = [r.token_id for r in after.records]
    for t in range(1, len(out)):
        cands = [c.token_id for c in after.records[t].candidates]
        ref = reference_step(s.adapter, text, out, t, cands, [1, 2])
        assert [c.saliency for c in after.records[t].candidates] == pytest.approx(ref["scores"], abs=1e-12)
        np.testing.assert_allclose(after.records[t].row, ref["rows"][0].numpy(), rtol=0, atol=1e-7)


def test_generate_keywords_after_image(image):
    s = _fresh("qwen2_vl")
    prepared = s.adapter.prepare(image, PROMPT)
    with torch.no_grad():
        s.model.generate(**prepared.inputs, max_new_tokens=2, do_sample=False)
    after = s.trace(None, TEXT, max_new_tokens=4, num_beams=2)
    fresh = _fresh("qwen2_vl").trace(None, TEXT, max_new_tokens=4, num_beams=2)
    _assert_same(after, fresh)


def test_trace_restores_rope_deltas(image):
    s = _fresh("qwen2_vl")
    before = s.model.model.rope_deltas
    s.trace(image, PROMPT, max_new_tokens=2)
    assert s.model.model.rope_deltas is before
