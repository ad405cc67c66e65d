"""Toy world v2: recap captions, the v2 tokenizer, and v1 left exactly as it was."""

import numpy as np
import pytest

from lvsal_nb.errors import ConfigError
from lvsal_nb.toy.recap import recap_caption, split_words
from lvsal_nb.toy.scenes import SHAPES, caption, make_scene, scene_rng
from lvsal_nb.toy.tokenizer import build_tokenizer, vocabulary
from lvsal_nb.toy.worlds import DEFAULT_WORLD, get_world, world_tokenizer


def test_recap_caption_by_hand():
    from lvsal_nb.toy.scenes import Scene, SceneObject

    sc = Scene([SceneObject("star", "red", "large", 10, 10, 6), SceneObject("cross", "blue", "small", 40, 40, 4),  # noqa: E501
                SceneObject("square", "blue", "large", 20, 50, 6)])  # fmt: skip
    assert recap_caption(sc) == (
        "there is a large red star , a small blue cross and a large blue square . so : star , cross , square ."  # noqa: E501
    )
    one = Scene([SceneObject("moon", "yellow", "small", 10, 10, 4)])
    assert recap_caption(one) == "there is a small yellow moon . so : moon ."


def test_recap_repeats_the_list_order_and_sources_lie_4_to_29_words_back():
    lo, hi, orders = 99, 0, set()
    for i in range(300):
        sc = make_scene(scene_rng("eval", 0, i))
        words = recap_caption(sc).split()
        listed, recap = split_words(words)
        assert [w for _, w in listed] == [w for _, w in recap] == sc.object_names()
        assert 1 <= len(listed) <= 6 and len(set(w for _, w in listed)) == len(listed)
        dist = [r - s for (s, _), (r, _) in zip(listed, recap)]
        n = len(listed)  # by hand: list word k at 5 + 5k, recap word k at 5 + 5(n - 1) + 4 + 2k
        assert dist == [5 * (n - 1) + 4 - 3 * k for k in range(n)]
        lo, hi = min(lo, *dist), max(hi, *dist)
        orders.add(tuple(sorted(sc.object_names())) != tuple(sc.object_names()))
    assert lo == 4 and hi == 29  # a lone object; the first of six
    assert orders == {True, False}  # random order: sometimes sorted, mostly not


def test_v2_tokenizer_keeps_v1_ids_and_knows_so():
    v1, v2 = build_tokenizer(), world_tokenizer("v2")
    assert vocabulary("so".split())[: len(vocabulary())] == vocabulary()
    assert len(v2) == len(v1) + 1 and v2.convert_tokens_to_ids("so") == len(v1)
    text = recap_caption(make_scene(3))
    ids = v2(text, add_special_tokens=False)["input_ids"]
    assert v2.unk_token_id not in ids and len(ids) == len(text.split())
    assert v1(text, add_special_tokens=False)["input_ids"].count(v1.unk_token_id) == 1  # "so" only


def test_worlds_and_unknown_world():
    assert DEFAULT_WORLD == "v1"  # plain "toy" stays v1 until the switch in toy/worlds.py
    assert get_world("v1").caption is caption and get_world("v2").caption is recap_caption
    assert get_world("v2").asset_dir.name == "assets_v2"
    with pytest.raises(ConfigError, match="Unknown toy world 'v3'"):
        get_world("v3")


def test_v1_batches_unchanged_by_the_world_option():
    """make_batch's default caption is v1's: same tensors with and without naming it."""
    import torch

    from lvsal_nb.toy.data import make_batch

    tok = build_tokenizer()
    a = make_batch(tok, scene_rng("train", 0, 0), 3, "caption")
    b = make_batch(tok, scene_rng("train", 0, 0), 3, "caption", caption)
    assert all(torch.equal(a[k], b[k]) for k in a)
    v2 = make_batch(world_tokenizer("v2"), scene_rng("train", 0, 0), 3, "caption", recap_caption)
    so = world_tokenizer("v2").convert_tokens_to_ids("so")
    assert (v2["labels"] == so).sum(1).tolist() == [1, 1, 1]  # one recap per caption, labelled


def test_all_shapes_are_single_tokens():
    tok = world_tokenizer("v2")
    assert all(len(tok(s, add_special_tokens=False)["input_ids"]) == 1 for s in SHAPES)
    assert np.all([tok.convert_ids_to_tokens(tok.convert_tokens_to_ids(s)) == s for s in SHAPES])


def test_toy_v1_is_an_alias_of_toy():
    import torch

    import lvsal_nb as lv

    a, b = lv.load("toy", device="cpu"), lv.load("toy-v1", device="cpu")
    assert b.model_id == "toy-v1" and a.model_id == "toy"
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_missing_v2_weights_say_how_to_train(tmp_path, monkeypatch):
    import lvsal_nb as lv
    import lvsal_nb.toy.worlds as worlds

    monkeypatch.setattr(worlds, "_HERE", tmp_path)
    with pytest.raises(ConfigError, match=r"missing from .*assets_v2.*lvsal toy-train --world v2"):
        lv.load("toy-v2", device="cpu")
