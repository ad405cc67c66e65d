"""The probe changes nothing it should not: same logits as eager, and no trace left afterwards."""

import pytest
import torch

import lvsal_nb as lv
from lvsal_nb.context import TraceContext
from lvsal_nb.decoding.loop import StepLoop
from lvsal_nb.saliency.probe import Probe, attached

PROMPT = "describe this image ."


def _logits(session, image, impl=None):
    prepared = session.adapter.prepare(image, PROMPT)
    cfg = session.adapter.text_config
    prev = cfg._attn_implementation
    if impl:
        cfg._attn_implementation_internal = impl
    try:
        with torch.no_grad():
            return session.model(**prepared.inputs).logits
    finally:
        cfg._attn_implementation_internal = prev


def _fingerprint(session):
    mods = [m for m in session.model.modules() if hasattr(m, "_lvsal_probe")]
    return (
        session.adapter.text_config._attn_implementation,
        [p.requires_grad for p in session.model.parameters()],
        session.model.training,
        len(mods),
    )


@pytest.mark.parametrize("mode", ["off", "sequence"])
def test_probe_logits_equal_eager(session, image, mode):
    eager = _logits(session, image, "eager")
    probe = Probe(layers=(1, 2))
    with attached(session.model, session.adapter.language_model, session.adapter.text_config, probe):
        with probe.forward(mode) as rows, torch.enable_grad():
            probed = session.model(**session.adapter.prepare(image, PROMPT).inputs).logits
            captured = set(rows)
    assert torch.allclose(probed.detach(), eager, atol=1e-6)
    assert captured == (set() if mode == "off" else {1, 2})


def test_step_forward_equals_eager(session, image):
    """The step engine's forward (StepCache, closed-form head): eager logits, a cache with no graph."""
    eager = _logits(session, image, "eager")[0, -1]
    prepared = session.adapter.prepare(image, PROMPT)
    probe = Probe(layers=(1, 2))
    with attached(session.model, session.adapter.language_model, session.adapter.text_config, probe):
        loop = StepLoop(TraceContext(session.adapter, prepared, probe, prepared.inputs), grad=True)
        loop.prefill()
        logits = loop.forward()
    assert torch.allclose(logits, eager, atol=1e-5)
    assert loop.hidden.requires_grad and len(loop.attn) == 2  # layers 1, 2: rows with graph
    assert all(a.requires_grad and a.shape[-2] == 1 for a in loop.attn)
    assert not any(layer.keys.requires_grad or layer.values.requires_grad for layer in loop.cache.layers)


def test_model_unchanged_after_trace(session, image):
    before_logits, before = _logits(session, image), _fingerprint(session)
    session.model.lm_head.weight.requires_grad_(True)  # a user's own setting must survive
    before = _fingerprint(session)
    session.trace(image, PROMPT, max_new_tokens=3, locore=0.2)
    session.trace(image, PROMPT, max_new_tokens=3, sgrs=lv.SGRS(k=2, rounds=2))
    assert _fingerprint(session) == before
    assert torch.equal(_logits(session, image), before_logits)
    session.model.lm_head.weight.requires_grad_(False)


def test_model_restored_when_tracing_raises(llava_session, image):
    before = _fingerprint(llava_session)

    def boom(step):
        raise RuntimeError("viewer crashed")

    with pytest.raises(RuntimeError, match="viewer crashed"):
        llava_session.trace(image, PROMPT, max_new_tokens=3, on_step=boom, engine="step")
    assert _fingerprint(llava_session) == before


def test_step_engine_refuses_a_head_it_cannot_differentiate(llava_session, image):
    cfg = llava_session.adapter.text_config
    cfg.final_logit_softcapping = 30.0  # as Gemma-2 text models set it
    try:
        with pytest.raises(lv.UnsupportedModelError, match="engine='sequence'"):
            llava_session.trace(image, PROMPT, max_new_tokens=2, sgrs=lv.SGRS(k=2, rounds=2))
    finally:
        del cfg.final_logit_softcapping
    assert len(llava_session.trace(image, PROMPT, max_new_tokens=2, engine="step")) == 2


def test_unsupported_attention_dispatch_is_refused(llava_session):
    class Legacy(torch.nn.Module):
        def _can_set_attn_implementation(self):
            return False

    with pytest.raises(lv.UnsupportedModelError, match="AttentionInterface"):
        with attached(
            Legacy(), llava_session.adapter.language_model, llava_session.adapter.text_config, Probe()
        ):
            pass
