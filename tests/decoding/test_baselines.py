"""VCD and DoLa against hand-computed steps: plain full forwards (no KV cache), the contrast written
out from the papers' formulas, compared with the contrasted scores and tokens of steps 0 and 1."""

import math

import numpy as np
import pytest
import torch

from lvsal_nb.decoding.baselines import repetition_penalty
from lvsal_nb.decoding.dola import DoLa, candidate_layers, dola_generate
from lvsal_nb.decoding.vcd import VCD, alpha_bar, vcd_generate
from lvsal_nb.errors import ConfigError, ImageError

PROMPT = "describe this image ."


def full_logits(s, prepared, out, pixel_values=None):
    """Logits [vocab] of the last position of prompt + out, by one plain forward without cache."""
    inputs = s.adapter.to(s.adapter.full_inputs(prepared, out), s.dtype)
    if pixel_values is not None:
        inputs["pixel_values"] = pixel_values
    with torch.no_grad():
        return s.model(**inputs).logits[0, -1].double()


def noised_pixels(pixels, step, seed):
    """The DDPM forward noise with ᾱ from a plain NumPy product (linear betas 1e-4..0.02, 1000 steps)."""
    abar = float(np.prod(1.0 - np.linspace(1e-4, 0.02, 1000)[: step + 1]))
    eps = torch.randn(pixels.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (math.sqrt(abar) * pixels.double() + math.sqrt(1 - abar) * eps).to(pixels.dtype)


@pytest.mark.parametrize("fam", ["llava", "qwen2_vl"])
def test_vcd_steps_equal_hand_contrast(make_session, image, fam):
    s = make_session(fam)
    cfg = VCD(
        alpha=1.0, beta=0.8, noise_step=500, schedule="linear"
    )  # a random model is flat: a high cut-off bites
    g = vcd_generate(s, image, PROMPT, cfg, max_new_tokens=2, seed=3, return_scores=True, decoding="greedy")
    prepared = s.adapter.prepare(image, PROMPT)
    pix = s.adapter.to(prepared.inputs, s.dtype)["pixel_values"]
    noisy = noised_pixels(pix, 500, seed=3)
    for t in range(2):
        l = full_logits(s, prepared, g.token_ids[:t])
        ln = full_logits(s, prepared, g.token_ids[:t], noisy)
        p = torch.softmax(l, -1)
        keep = p >= 0.8 * p.max()
        expect = torch.where(keep, 2 * l - ln, torch.tensor(-math.inf, dtype=torch.float64))
        got = g.scores[t]
        assert torch.equal(torch.isinf(got), ~keep)
        assert torch.allclose(got[keep], expect[keep], atol=1e-9, rtol=0)
        assert g.token_ids[t] == int(torch.argmax(expect))
    assert 1 < int(keep.sum()) < keep.numel()  # the cut-off did select something non-trivial


def test_vcd_noise_changes_the_contrast_and_alpha_zero_is_greedy(llava_session, image):
    s = llava_session
    plain = s.trace(image, PROMPT, max_new_tokens=6)
    same = vcd_generate(s, image, PROMPT, VCD(alpha=0.0), max_new_tokens=6, decoding="greedy")
    assert same.token_ids == [r.token_id for r in plain.records]  # α=0: the argmax is always plausible
    a = vcd_generate(
        s, image, PROMPT, VCD(alpha=1.0, schedule="linear"), max_new_tokens=1, return_scores=True
    )
    b = vcd_generate(s, image, PROMPT, VCD(alpha=1.0, schedule="vcd"), max_new_tokens=1, return_scores=True)
    fin = torch.isfinite(a.scores[0]) & torch.isfinite(b.scores[0])
    assert not torch.allclose(a.scores[0][fin], b.scores[0][fin])  # the milder noise is a different contrast


def test_alpha_bar_schedules():
    assert alpha_bar(500, "linear") == pytest.approx(
        float(np.prod(1 - np.linspace(1e-4, 0.02, 1000)[:501])), rel=1e-12
    )
    betas = 1 / (1 + np.exp(-np.linspace(-6, 6, 1000))) * (0.5e-2 - 1e-5) + 1e-5  # VCD's add_diffusion_noise
    assert alpha_bar(500, "vcd") == pytest.approx(float(np.prod(1 - betas[:501])), rel=1e-6)  # float32 there
    # The numbers: √ᾱ_500 keeps 0.863 of the signal with VCD's schedule, 0.279 with the linear one.
    assert alpha_bar(500, "vcd") ** 0.5 == pytest.approx(0.863, abs=5e-4)
    assert alpha_bar(500, "linear") ** 0.5 == pytest.approx(0.279, abs=5e-4)


def test_vcd_defaults_are_vcds_released_code():
    """VCD's object_hallucination_vqa_llava.py: cd_alpha 1, cd_beta 0.1, noise_step 500, do_sample=True,
    temperature 1, top_p 1, top_k None; noise from vcd_add_noise.py (float32, literally as there)."""
    import inspect

    cfg = VCD()
    assert (cfg.alpha, cfg.beta, cfg.noise_step, cfg.schedule) == (1.0, 0.1, 500, "vcd")
    kw = inspect.signature(vcd_generate).parameters
    assert (kw["decoding"].default, kw["temperature"].default, kw["top_p"].default) == ("sample", 1.0, 1.0)
    betas = torch.sigmoid(torch.linspace(-6, 6, 1000)) * (0.5e-2 - 1e-5) + 1e-5  # VCD's code, line for line
    alphas_bar_sqrt = torch.sqrt(torch.cumprod(1 - betas, dim=0))
    assert alpha_bar(cfg.noise_step) ** 0.5 == pytest.approx(float(alphas_bar_sqrt[500]), rel=1e-6)


def test_vcd_default_samples_from_the_contrast(llava_session, image):
    """With the defaults the token is drawn from softmax(ℓ_cd) (temperature 1, no top-p cut): a
    seeded multinomial from the returned scores picks the same token as VCD's sampler."""
    s = llava_session
    g = vcd_generate(s, image, PROMPT, VCD(beta=0.8), max_new_tokens=1, seed=11, return_scores=True)
    gen = torch.Generator().manual_seed(11)
    probs = torch.softmax(g.scores[0].float(), -1)
    assert g.token_ids[0] == int(torch.multinomial(probs, 1, generator=gen))
    assert g.config["decoding"] == "sample" and g.config["schedule"] == "vcd"


def layer_inputs(s, prepared, out, layers):
    """hidden_j at the last position = the input of decoder layer j, captured by pre-hooks."""
    got = {}
    mods = s.adapter.language_model.layers

    def hook(j):
        def fn(module, args, kwargs):
            h = args[0] if args else kwargs["hidden_states"]
            got[j] = h[0, -1].detach()

        return fn

    handles = [mods[j].register_forward_pre_hook(hook(j), with_kwargs=True) for j in layers]
    try:
        final = full_logits(s, prepared, out)
    finally:
        for h in handles:
            h.remove()
    return final, got


def hand_dola(s, prepared, out, cands, relative_top=0.1, penalty=1.2, final_norm=False):
    final, hidden = layer_inputs(s, prepared, out, cands)
    lm = s.adapter.language_model
    with torch.no_grad():  # the reference code: LM head on the raw hidden state of the early exit
        early = {j: s.model.lm_head(lm.norm(hidden[j]) if final_norm else hidden[j]).double() for j in cands}
    p = torch.softmax(final, -1)
    js = {}
    for j in cands:
        q = torch.softmax(early[j], -1)
        m = (p + q) / 2
        js[j] = 0.5 * (float((m * (m.log() - p.log())).mean()) + float((m * (m.log() - q.log())).mean()))
    best = max(cands, key=lambda j: js[j]) if len(cands) > 1 else cands[0]
    lf, lp = torch.log_softmax(final, -1), torch.log_softmax(early[best], -1)
    keep = p >= relative_top * p.max()
    scores = torch.where(keep, lf - lp, torch.tensor(-math.inf, dtype=torch.float64))
    seen = set(prepared.input_ids[0].tolist()) | set(out)
    for i in seen:
        v = float(scores[i])
        scores[i] = v * penalty if v < 0 else v / penalty
    return scores, best


@pytest.mark.parametrize("fam", ["llava", "qwen2_vl"])
def test_dola_dynamic_steps_equal_hand_contrast(make_session, image, fam):
    s = make_session(fam)
    cands = [0, 1, 2]
    g = dola_generate(
        s, image, PROMPT, DoLa(layers=cands, relative_top=0.7), max_new_tokens=2, return_scores=True
    )
    prepared = s.adapter.prepare(image, PROMPT)
    for t in range(2):
        expect, best = hand_dola(s, prepared, g.token_ids[:t], cands, relative_top=0.7)
        got = g.scores[t]
        assert g.info[t]["premature_layer"] == best
        assert torch.equal(torch.isinf(got), torch.isinf(expect))
        fin = torch.isfinite(expect)
        assert torch.allclose(got[fin], expect[fin], atol=1e-9, rtol=0)
        assert g.token_ids[t] == int(torch.argmax(expect))
        assert 1 < int(fin.sum()) < fin.numel()


def test_dola_final_norm_is_a_named_option(llava_session, image):
    s = llava_session
    g = dola_generate(
        s,
        image,
        PROMPT,
        DoLa(layers=(1,), final_norm=True, repetition_penalty=1.0),
        max_new_tokens=1,
        return_scores=True,
    )
    raw = dola_generate(
        s, image, PROMPT, DoLa(layers=(1,), repetition_penalty=1.0), max_new_tokens=1, return_scores=True
    )
    prepared = s.adapter.prepare(image, PROMPT)
    normed, _ = hand_dola(s, prepared, [], [1], penalty=1.0, final_norm=True)
    fin = torch.isfinite(normed)
    assert torch.allclose(g.scores[0][fin], normed[fin], atol=1e-9, rtol=0)
    assert not torch.allclose(raw.scores[0].nan_to_num(0, 0, 0), g.scores[0].nan_to_num(0, 0, 0))
    assert raw.config["final_norm"] is False and g.config["final_norm"] is True


def test_dola_static_layer_without_penalty(llava_session, image):
    s = llava_session
    g = dola_generate(
        s, image, PROMPT, DoLa(layers=(2,), repetition_penalty=1.0), max_new_tokens=2, return_scores=True
    )
    prepared = s.adapter.prepare(image, PROMPT)
    expect, _ = hand_dola(s, prepared, g.token_ids[:1], [2], penalty=1.0)
    fin = torch.isfinite(expect)
    assert torch.allclose(g.scores[1][fin], expect[fin], atol=1e-9, rtol=0)
    assert {i["premature_layer"] for i in g.info} == {2}


def test_candidate_buckets_follow_the_reference_rule():
    assert candidate_layers("low", 32, False) == [0, 2, 4, 6, 8, 10, 12, 14]
    assert candidate_layers("high", 32, False) == list(range(16, 32, 2))
    assert candidate_layers("low", 32, True) == [2, 4, 6, 8, 10, 12, 14]  # tied: skip the embedding exit
    assert candidate_layers("low", 48, False) == list(range(0, 20, 2))
    assert candidate_layers("high", 48, False) == list(range(28, 48, 2))
    assert candidate_layers("low", 4, False) == [0]
    assert candidate_layers((3, 1, 1), 4, False) == [1, 3]
    with pytest.raises(ConfigError, match="out of range"):
        candidate_layers((4,), 4, False)


def test_repetition_penalty_by_hand():
    s = torch.tensor([2.0, -1.0, 0.5, -math.inf])
    out = repetition_penalty(s, [0, 1, 3, 1], 2.0)
    assert out.tolist() == [1.0, -2.0, 0.5, -math.inf]


def test_sampling_is_seeded(llava_session, image):
    s = llava_session
    a = vcd_generate(s, image, PROMPT, max_new_tokens=8, decoding="sample", seed=5)
    b = vcd_generate(s, image, PROMPT, max_new_tokens=8, decoding="sample", seed=5)
    c = dola_generate(s, image, PROMPT, max_new_tokens=8, decoding="sample", seed=5, temperature=2.0)
    d = dola_generate(s, image, PROMPT, max_new_tokens=8, decoding="sample", seed=5, temperature=2.0)
    assert a.token_ids == b.token_ids and c.token_ids == d.token_ids
    assert a.config["seed"] == 5 and c.config["candidates"] == [0]


def test_errors(llava_session, image):
    with pytest.raises(ImageError, match="pass an image"):
        vcd_generate(llava_session, None, PROMPT, max_new_tokens=2)
    for bad in (dict(alpha=-1), dict(beta=0), dict(noise_step=1000), dict(schedule="cosine")):
        with pytest.raises(ConfigError):
            VCD(**bad)
    for bad in (dict(layers="middle"), dict(layers=()), dict(relative_top=0), dict(repetition_penalty=0.5)):
        with pytest.raises(ConfigError):
            DoLa(**bad)
    with pytest.raises(ConfigError, match="max_new_tokens"):
        dola_generate(llava_session, image, PROMPT, max_new_tokens=0)
