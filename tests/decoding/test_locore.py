"""LocoRE: rows equal a hand-computed scaled-and-renormalised row; beta=0 and exit change nothing."""

import math

import pytest
import torch

import lvsal_nb as lv
from lvsal_nb.saliency.probe import Probe, attached

PROMPT = "describe this image ."


def test_mask_selects_recent_generated_keys():
    lc = lv.LocoRE(beta=0.15, window=3)
    m = lc.mask(torch.tensor([4, 5, 8]), kv_len=9, output_start=5)
    assert m[0].sum() == 0  # a prompt row: no bias
    assert m[1].nonzero().flatten().tolist() == [5]
    assert m[2].nonzero().flatten().tolist() == [6, 7, 8]
    ex = lv.LocoRE(window=3, exclude_self=True).mask(torch.tensor([8]), 9, 5)
    assert ex[0].nonzero().flatten().tolist() == [6, 7]


@pytest.mark.parametrize("exclude_self", [False, True])
def test_decode_step_bias_equals_the_mask_row(exclude_self):
    # the one-row host path (a decode step) and the tensor path give the same bias
    cfg = lv.LocoRE(beta=0.3, window=4, exclude_self=exclude_self)
    for start in (3, 6):
        fn = cfg.bias_fn(start)
        for q in range(0, 12):
            kv = q + 1
            host = fn(range(q, q + 1), kv, "cpu", torch.float64)
            dev = fn(torch.tensor([q]), kv, "cpu", torch.float64)
            if kv - 1 < start:
                assert host is None and dev is None
                continue
            want = cfg.mask(torch.tensor([q]), kv, start).double() * math.log1p(0.3)
            assert host.shape == dev.shape == (1, kv)
            assert torch.equal(host, want) and torch.equal(dev, want)


def test_attention_row_is_scaled_and_renormalised(llava_session, image):
    """Capture row q with and without LocoRE at the same inputs, then check by hand."""
    s = llava_session
    prepared = s.adapter.prepare(image, PROMPT)
    out = [5, 6, 7, 8]
    inputs = s.adapter.full_inputs(prepared, out)
    rows = {}
    beta, w = 0.3, 3
    for name, bias in (("plain", None), ("locore", lv.LocoRE(beta=beta, window=w, layers=(0,)))):
        probe = Probe(
            layers=(0,),
            bias_fn=bias.bias_fn(prepared.n) if bias else None,
            bias_layers=frozenset({0}) if bias else None,
        )
        with attached(s.model, s.adapter.language_model, s.adapter.text_config, probe):
            with probe.forward("sequence") as captured, torch.enable_grad():
                s.model(**inputs)
                rows[name] = captured[0][0, :, -1].detach()  # layer 0's input is unbiased: same scores
    q = inputs["input_ids"].shape[1] - 1
    plain = rows["plain"]
    scale = torch.ones(q + 1, dtype=plain.dtype)
    scale[q - w + 1 : q + 1] = 1 + beta  # the last w generated keys, the query itself included
    expect = plain * scale
    expect = expect / expect.sum(-1, keepdim=True)
    assert torch.allclose(rows["locore"], expect, atol=1e-12)


def test_beta_zero_leaves_logits_identical(llava_session, image):
    a = llava_session.trace(image, PROMPT, max_new_tokens=5)
    b = llava_session.trace(image, PROMPT, max_new_tokens=5, locore=lv.LocoRE(beta=0.0))
    assert [s.token_id for s in a.records] == [s.token_id for s in b.records]
    assert [s.logprob for s in a.records] == [s.logprob for s in b.records]


def test_locore_changes_the_forward_when_beta_positive(llava_session, image):
    a = llava_session.trace(image, PROMPT, max_new_tokens=5)
    b = llava_session.trace(image, PROMPT, max_new_tokens=5, locore=3.0)
    assert [s.logprob for s in a.records][1:] != [s.logprob for s in b.records][1:]
    assert a.records[0].logprob == pytest.approx(
        b.records[0].logprob, abs=1e-12
    )  # step 0 has no generated key
    assert b.config["locore"]["beta"] == 3.0


def test_generate_context_manager_matches_trace_and_leaves_no_trace(llava_session, image):
    s = llava_session
    prepared = s.adapter.prepare(image, PROMPT)
    lc = lv.LocoRE(beta=2.0, window=2)
    with torch.no_grad():
        before = s.model.generate(**prepared.inputs, max_new_tokens=6, do_sample=False)
        with lv.locore(s.model, lc):
            inside = s.model.generate(**prepared.inputs, max_new_tokens=6, do_sample=False)
        after = s.model.generate(**prepared.inputs, max_new_tokens=6, do_sample=False)
    assert torch.equal(before, after)
    traced = s.trace(image, PROMPT, max_new_tokens=6, locore=lc)
    assert inside[0, prepared.n :].tolist()[: len(traced)] == [r.token_id for r in traced.records]
    assert s.adapter.text_config._attn_implementation != "lvsal"
    assert not any(hasattr(m, "_lvsal_probe") for m in s.model.modules())


def test_context_manager_restores_on_error(llava_session):
    s = llava_session
    impl = s.adapter.text_config._attn_implementation
    with pytest.raises(ValueError, match="user code"):
        with lv.locore(s.model, 0.2):
            raise ValueError("user code")
    assert s.adapter.text_config._attn_implementation == impl
    assert not any(hasattr(m, "_lvsal_probe") for m in s.model.modules())


def test_family_defaults():
    from lvsal_nb.models.llava import LlavaAdapter
    from lvsal_nb.models.qwen2_vl import Qwen2VLAdapter

    assert LlavaAdapter.locore_beta == 0.15 and Qwen2VLAdapter.locore_beta == 0.20
    assert math.log1p(0.15) == pytest.approx(math.log(1.15))


def test_generate_bias_reaches_sdpa_aligned(llava_session, sdpa_masks):
    # a decode step's bias is the whole mask; a view of an 8-aligned buffer, not a padded copy per layer
    from ..conftest import mem_efficient_aligned

    s = llava_session
    ids = s.adapter.tokenizer(PROMPT, return_tensors="pt").input_ids
    with torch.no_grad(), lv.locore(s.model, lv.LocoRE(beta=0.5, window=3)):
        s.adapter.language_model(input_ids=ids)  # (warm: no bias in a prefill)
        out = s.model.generate(input_ids=ids, max_new_tokens=12, do_sample=False, min_new_tokens=12)
    kv = {m.shape[-1] for m in sdpa_masks}
    assert len(kv) >= 10 and any(n % 8 for n in kv)  # the decode steps, most of them unaligned lengths
    assert all(mem_efficient_aligned(m) for m in sdpa_masks)
    assert out.shape[1] == ids.shape[1] + 12


def test_default_beta_is_the_model_familys():
    """lv.LocoRE() takes beta from the adapter: 0.20 on Qwen2-VL, 0.15 on LLaVA (PAPER.md); issue 18."""
    import lvsal_nb as lv

    for name, beta in (("tiny:qwen2_vl", 0.20), ("tiny:llava", 0.15)):
        s = lv.load(name, dtype="float64")
        tr = s.trace(None, "hi", max_new_tokens=2, locore=lv.LocoRE())
        assert tr.config["locore"]["beta"] == beta
    assert lv.LocoRE(beta=0.3).beta == 0.3


def test_locore_context_default_beta_is_the_model_familys():
    import lvsal_nb as lv

    s = lv.load("tiny:qwen2_vl", dtype="float64")
    inputs = s.adapter.prepare(None, "hi").inputs

    def scores(beta=None):
        with lv.locore(s.model, beta, processor=s.processor):
            out = s.model.generate(
                **inputs, max_new_tokens=4, do_sample=False, output_scores=True, return_dict_in_generate=True
            )
        return torch.stack(out.scores)

    assert torch.equal(scores(), scores(0.20))
    assert not torch.equal(scores(), scores(0.15))
