"""Both engines equal the naive full-recompute reference (float64) on all three architectures and on
the shipped toy model (trained weights: its attention is far from uniform)."""

import numpy as np
import pytest
import torch

import lvsal_nb as lv
from lvsal_nb.saliency.reference import reference_step

PROMPT = "describe this image ."

# float64 models: saliency (float64 throughout) equals the reference to 1e-12; rows are stored in
# float32 (values <= 1), so they equal it to float32 rounding
TOL = 1e-12
ROW_TOL = 1e-7
LAYERS = [1, 2]


def _assert_matches_reference(session, image, tr, locore=None, context="text"):
    out = [s.token_id for s in tr.records]
    prepared = session.adapter.prepare(image, PROMPT)
    worst = 0.0
    for t in range(0, len(out), 2):  # every other step keeps the O(T^2) reference quick
        cands = [c.token_id for c in tr.records[t].candidates]
        ref = reference_step(session.adapter, prepared, out, t, cands, LAYERS, context=context, locore=locore)
        assert ref["q"] == tr.records[t].position
        for i, c in enumerate(tr.records[t].candidates):
            if np.isnan(ref["scores"][i]):
                assert c.saliency is None
                continue
            worst = max(worst, abs(ref["scores"][i] - c.saliency))
            np.testing.assert_allclose(c.layer_scores, ref["layer_scores"][i], atol=TOL)
        np.testing.assert_allclose(tr.records[t].row, ref["rows"][0].numpy(), rtol=0, atol=ROW_TOL)
    assert worst < TOL


@pytest.mark.parametrize("engine", ["sequence", "step"])
def test_engine_equals_reference(session, image, engine):
    tr = session.trace(image, PROMPT, max_new_tokens=6, layers=LAYERS, engine=engine, alternatives=2, chunk=4)
    assert tr.config["engine"] == engine
    assert len(tr) == 6 and all(len(s.candidates) == 3 for s in tr.records)
    assert tr.spans.image is not None  # image tokens are present
    _assert_matches_reference(session, image, tr)


@pytest.mark.parametrize("engine", ["sequence", "step"])
def test_engine_equals_reference_with_locore(session, image, engine):
    lc = lv.LocoRE(beta=0.5, window=3)
    tr = session.trace(
        image, PROMPT, max_new_tokens=6, layers=LAYERS, engine=engine, alternatives=1, locore=lc
    )
    _assert_matches_reference(session, image, tr, locore=lc)


@pytest.fixture(scope="module")
def toy64():
    return lv.load("toy", device="cpu", dtype=torch.float64)


@pytest.mark.parametrize("engine", ["sequence", "step"])
@pytest.mark.parametrize("scene", [3, None])  # None: a text-only prompt, no image tokens
def test_toy_model_equals_reference(toy64, engine, scene):
    from lvsal_nb.toy.scenes import make_scene, render, scene_rng

    img = None if scene is None else render(make_scene(scene_rng("test", 0, scene)))
    lc = lv.LocoRE(beta=0.15, window=5) if engine == "step" else None
    tr = toy64.trace(img, PROMPT, max_new_tokens=8, layers=LAYERS, engine=engine, alternatives=2, locore=lc)
    assert len(tr) >= 6 and (tr.spans.image is not None) == (scene is not None)
    _assert_matches_reference(toy64, img, tr, locore=lc)


def test_outputs_context_matches_reference(llava_session, image):
    tr = llava_session.trace(image, PROMPT, max_new_tokens=4, layers=LAYERS, context="outputs")
    assert tr.records[0].saliency is None  # no prior output at the first step
    assert all(s.saliency is not None for s in tr.records[1:])
    _assert_matches_reference(llava_session, image, tr, context="outputs")


def test_sequence_equals_step_engine(session, image):
    a = session.trace(image, PROMPT, max_new_tokens=8, layers=LAYERS, engine="sequence", alternatives=2)
    b = session.trace(image, PROMPT, max_new_tokens=8, layers=LAYERS, engine="step", alternatives=2)
    assert [s.token_id for s in a.records] == [s.token_id for s in b.records]
    for x, y in zip(a.records, b.records):
        np.testing.assert_allclose(x.row, y.row, atol=1e-6)
        np.testing.assert_allclose(
            [c.saliency for c in x.candidates], [c.saliency for c in y.candidates], atol=1e-9
        )


def test_chunk_sizes_give_identical_rows(llava_session, image):
    runs = [
        llava_session.trace(image, PROMPT, max_new_tokens=9, layers=LAYERS, chunk=c, alternatives=1)
        for c in (1, 7, None)
    ]
    for other in runs[1:]:
        for x, y in zip(runs[0].records, other.records):
            np.testing.assert_allclose(x.row, y.row, atol=1e-7)
            assert x.saliency == pytest.approx(y.saliency, abs=1e-12)


def test_step_engine_float32_onednn_linears_match_reference(make_session, image, monkeypatch):
    """float32 on CPU with K > 1 is the path whose linear backward runs on oneDNN (const.py):
    equal to the float32 naive reference within float32 rounding, and the path was taken."""
    from lvsal_nb.saliency import const

    if not const.use_onednn:
        pytest.skip("torch built without oneDNN")
    monkeypatch.setattr(const, "ONEDNN_MIN_NUMEL", 0)  # the tiny model's weights are small
    folded = []
    inner = const.folded_mm
    monkeypatch.setattr(const, "folded_mm", lambda g, c: folded.append(c.dim()) or inner(g, c))
    session = make_session("llava", torch.float32)
    tr = session.trace(image, PROMPT, max_new_tokens=4, layers=LAYERS, engine="step", alternatives=2)
    assert 2 in folded  # the K-row backward of the model's linears (2-D weights)
    prepared = session.adapter.prepare(image, PROMPT)
    out = [s.token_id for s in tr.records]
    for t, rec in enumerate(tr.records):
        cands = [c.token_id for c in rec.candidates]
        ref = reference_step(session.adapter, prepared, out, t, cands, LAYERS)
        scale = max(float(r.abs().max()) for r in ref["rows"])
        np.testing.assert_allclose(rec.row, ref["rows"][0].numpy(), rtol=0, atol=1e-4 * scale)
        np.testing.assert_allclose(
            [c.saliency for c in rec.candidates], ref["scores"], rtol=1e-3, atol=1e-4 * scale
        )
