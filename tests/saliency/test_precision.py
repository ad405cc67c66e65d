"""Saliency precision in float32 (issue 17.6): the loss's softmax and its gradient p − e_c are taken
in float64 in both engines, so a confident token (p ≈ 0.999998, whose p − 1 float32 keeps to one or
two digits) no longer costs percents. A float32 trace of the shipped toy model against its float64
trace: before, saliency was up to 3.9e-2 and rows 2.7e-2 (relative) off; now a few 1e-6.

The issue's 1e-6 is not reachable in float32, and the bounds below hold for these two scenes, not
for every scene: over scenes 0-59 (benchmarks/precision_toy.py --scenes 0-59 --floor) float32
saliency is up to 4.2e-6 (sequence engine) / 2.3e-6 (step) off and rows up to 8.1e-6 of the row's
largest entry, while the float64 trace with every weight perturbed ONCE by one float32 rounding
(2^-24 relative) already moves saliency by up to 2.3e-6 and rows by 8.4e-6: the float32 forward's
own rounding (the target layers' attention rows alone are 2.9e-6 off, logit differences 1.3e-5)
dominates, not the loss. A float64 LM head and a float64 head-mean reduction were measured and did
not move the bound."""

import numpy as np
import pytest
import torch

import lvsal_nb as lv

PROMPT = "describe the image ."
SAL_RTOL = 2e-6  # relative, per step
ROW_RTOL = 1e-5  # relative to the row's largest entry (rows are l2-normalised, stored in float32)


@pytest.fixture(scope="module")
def toys():
    return lv.load("toy", device="cpu", dtype="float64"), lv.load("toy", device="cpu", dtype="float32")


@pytest.mark.parametrize("engine", ["sequence", "step"])
@pytest.mark.parametrize("scene", [3, 5])
def test_float32_trace_equals_float64_trace(toys, engine, scene):
    from lvsal_nb.toy.scenes import make_scene, render, scene_rng

    img = render(make_scene(scene_rng("test", 0, scene)))
    s64, s32 = toys
    a = s64.trace(img, PROMPT, max_new_tokens=16, engine=engine, alternatives=2)
    b = s32.trace(img, PROMPT, max_new_tokens=16, engine=engine, alternatives=2)
    assert [x.token_id for x in a.records] == [x.token_id for x in b.records]
    assert max(x.prob for x in a.records) > 0.999997  # the confident steps this is about are there
    for x, y in zip(a.records, b.records):
        if x.saliency is not None:
            assert y.saliency == pytest.approx(x.saliency, rel=SAL_RTOL, abs=0)
        np.testing.assert_allclose(y.row, x.row, rtol=0, atol=ROW_RTOL * np.abs(x.row).max())
        for cx, cy in zip(x.candidates, y.candidates):
            if cx.saliency is not None:
                assert cy.saliency == pytest.approx(cx.saliency, rel=SAL_RTOL, abs=0)


def test_head_gradient_in_float64_at_a_confident_token():
    """∂L/∂h = Wᵀ(p − e_c) for float32 logits at p_c ≈ 1 − 1e-7: the coefficient p_c − 1 from a
    float64 softmax, against the same formula evaluated in float64 throughout."""
    from lvsal_nb.saliency.step import head_grads

    g = torch.Generator().manual_seed(0)
    w = torch.randn(50, 16, generator=g, dtype=torch.float64)
    logits = torch.randn(50, generator=g, dtype=torch.float64)
    logits[7] = 20.0  # p_7 ≈ 1 - 1e-7
    ref = (torch.softmax(logits, -1) - torch.nn.functional.one_hot(torch.tensor(7), 50)) @ w
    got = head_grads(logits.float(), w.float(), [7])[0].double()
    rel = float((got - ref).norm() / ref.norm())
    assert rel < 1e-5, rel  # float32 softmax here: ~1e-1
