"""The shipped toy model: loads offline, fits the inputs, and decodes exactly as recorded."""

import json
import socket
import time
from pathlib import Path

import pytest
import torch

from lvsal_nb.toy.model import ASSET_DIR, build_inputs, image_token_id, load_toy
from lvsal_nb.toy.scenes import make_scene, render, scene_rng

# Recorded once from the shipped weights (see RECORDED["how"]); never edited by hand.
RECORDED = json.loads((Path(__file__).parent / "recorded_outputs.json").read_text())


@pytest.fixture(scope="module")
def toy():
    def no_network(*args, **kwargs):
        raise OSError("network access during load_toy()")

    with pytest.MonkeyPatch.context() as mp:  # loading must never touch the network
        mp.setattr(socket.socket, "connect", no_network)
        t = time.perf_counter()
        model, tok = load_toy()
        seconds = time.perf_counter() - t
    return model, tok, seconds


def _greedy(model, tok, scene_index: int, question=None, max_new_tokens=48) -> str:
    enc = build_inputs(tok, render(make_scene(scene_rng("test", 0, scene_index))), question)
    enc.pop("spans")
    out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False)
    return tok.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)


def test_assets_are_small_and_complete():
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (ASSET_DIR / name).is_file()
    assert (ASSET_DIR / "model.safetensors").stat().st_size <= 20 * 2**20


def test_loads_offline_quickly_in_eval_mode(toy):
    model, tok, seconds = toy
    assert not model.training and seconds < 10
    assert model.config.text_config.num_hidden_layers == 8
    assert model.config._attn_implementation == "eager"
    assert model.config.image_token_id == image_token_id(tok)


def test_image_features_match_the_placeholder_count(toy):
    model, tok, _ = toy
    enc = build_inputs(tok, render(make_scene(0)))
    with torch.no_grad():
        feats = model.model.get_image_features(pixel_values=enc["pixel_values"])
    feats = getattr(feats, "pooler_output", feats)
    n_features = sum(f.shape[0] for f in feats) if isinstance(feats, (list, tuple)) else feats.shape[-2]
    assert n_features == (enc["input_ids"] == image_token_id(tok)).sum()


@pytest.mark.parametrize("case", RECORDED["captions"], ids=lambda c: f"scene{c['scene_index']}")
def test_greedy_caption_is_the_recorded_one(toy, case):
    model, tok, _ = toy
    assert _greedy(model, tok, case["scene_index"]) == case["caption"]


def test_greedy_answers_are_the_recorded_ones(toy):
    model, tok, _ = toy
    for case in RECORDED["answers"]:
        assert _greedy(model, tok, case["scene_index"], case["question"], max_new_tokens=3) == case["answer"]


@pytest.mark.parametrize("static", [False, True])
def test_engines_decode_the_same_tokens_in_bfloat16(static):
    # the sequence engine's no-grad loop and the step engine's grad forward round differently in
    # bf16; on trained weights (clear logit margins) their greedy paths agree (on random weights
    # they need not: benchmarks/RESULTS.md, GPU)
    import lvsal_nb as lv

    s = lv.load("toy", dtype=torch.bfloat16)
    s.static_steps = static
    for i in range(3):
        img = render(make_scene(scene_rng("test", 0, i)))
        a = s.trace(img, "Describe the image.", max_new_tokens=24)
        b = s.trace(img, "Describe the image.", max_new_tokens=24, engine="step")
        assert (a.config["step_loop"], b.config["step_loop"]) == (
            ("static",) * 2 if static else ("dynamic",) * 2
        )
        assert [r.token_id for r in a.records] == [r.token_id for r in b.records]
