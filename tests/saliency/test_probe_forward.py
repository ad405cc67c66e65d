"""`Probe.forward(...)` is the only way into the probe's per-forward state (issue 18): it sets the
mode (and the static loop's position tensors) for the block and clears everything again on exit,
also when the forward raises or is interrupted (Ctrl-C)."""

import re
from pathlib import Path

import pytest
import torch

import lvsal_nb
from lvsal_nb.context import TraceContext
from lvsal_nb.decoding.loop import StepLoop
from lvsal_nb.saliency.probe import Probe, attached

PROMPT = "describe this image ."
PER_FORWARD = ("mode", "captured", "live", "q_pos", "own", "_bias", "_mask", "_bias_key", "_mask_key")


def _clear(probe: Probe) -> bool:
    return (
        probe.mode == "off"
        and probe.captured == {}
        and probe.live == {}
        and all(
            getattr(probe, a) is None for a in ("q_pos", "own", "_bias", "_mask", "_bias_key", "_mask_key")
        )
    )


class _Boom(Exception):
    pass


@pytest.mark.parametrize("error", [_Boom, KeyboardInterrupt])
@pytest.mark.parametrize("mode", ["sequence", "step"])
def test_forward_clears_the_state_when_the_forward_fails(llava_session, image, mode, error, monkeypatch):
    s = llava_session
    prepared = s.adapter.prepare(image, PROMPT)
    bias = lvsal_nb.LocoRE(beta=0.3)
    probe = Probe(layers=(0, 1), bias_fn=bias.bias_fn(prepared.n - 2))
    layers = s.adapter.language_model.layers
    with attached(s.model, s.adapter.language_model, s.adapter.text_config, probe):
        ctx = TraceContext(s.adapter, prepared, probe, prepared.inputs)
        loop = StepLoop(ctx, grad=True)
        loop.prefill()
        seen = {}

        def failing(*args, **kwargs):  # layer 2 fails after layers 0 and 1 wrote the probe's state
            seen.update(captured=dict(probe.captured), live=dict(probe.live), mode=probe.mode)
            raise error("in the middle of a forward")

        monkeypatch.setattr(layers[2], "forward", failing)
        with pytest.raises(error):
            if mode == "step":
                loop.forward()
            else:
                with probe.forward("sequence"), torch.enable_grad():
                    s.model(**prepared.inputs)
        monkeypatch.undo()
        assert seen["mode"] == mode and set(seen["captured"]) == {0, 1}  # there was state to clear
        assert mode == "sequence" or set(seen["live"]) == {0, 1}
        assert _clear(probe)
        with probe.forward("off"), torch.no_grad():  # the next forward starts clean: no stale bias/mask
            got = s.model(**prepared.inputs).logits
    fresh = Probe(layers=(0, 1), bias_fn=bias.bias_fn(prepared.n - 2))
    with attached(s.model, s.adapter.language_model, s.adapter.text_config, fresh):
        with fresh.forward("off"), torch.no_grad():
            want = s.model(**prepared.inputs).logits
    assert torch.equal(got, want)


def test_forward_yields_the_rows_and_drops_them_after(llava_session, image):
    s = llava_session
    probe = Probe(layers=(1, 3))
    with attached(s.model, s.adapter.language_model, s.adapter.text_config, probe):
        with probe.forward("sequence") as rows, torch.enable_grad():
            s.model(**s.adapter.prepare(image, PROMPT).inputs)
            assert set(rows) == {1, 3} and probe.mode == "sequence"
            kept = rows[3]
        assert _clear(probe) and kept.requires_grad  # the caller's reference stays valid


def test_forward_refuses_an_unknown_mode():
    with pytest.raises(ValueError, match="probe mode must be one of"):
        with Probe().forward("steps"):
            pass


def test_no_module_sets_the_probe_state_directly():
    """The per-forward attributes are written in probe.py only (through `forward` / `hand_live`)."""
    root = Path(lvsal_nb.__file__).parent
    attrs = "|".join(a for a in PER_FORWARD if not a.startswith("_"))
    write = re.compile(rf"\bprobe\.(?:{attrs})\b\s*(?:\[[^\]]*\]\s*)?=(?!=)|\bprobe\.new_forward\(")
    offenders = [
        f"{p.relative_to(root)}:{i}: {line.strip()}"
        for p in root.rglob("*.py")
        if p.name != "probe.py"
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if write.search(line)
    ]
    assert offenders == []
