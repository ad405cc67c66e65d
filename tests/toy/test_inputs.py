"""Tokenizer and model inputs: special tokens, spans, image placeholder count, pixel normalisation."""

import numpy as np
import pytest
import torch
from PIL import Image

from lvsal_nb.errors import ConfigError, ImageError
from lvsal_nb.toy.model import IMAGE_TOKEN, build_inputs, image_token_id, toy_config
from lvsal_nb.toy.scenes import caption, make_scene, render
from lvsal_nb.toy.tokenizer import build_tokenizer

TOK = build_tokenizer()


def test_special_tokens_are_registered_and_not_split():
    ids = TOK(f"a {IMAGE_TOKEN}{IMAGE_TOKEN} star", add_special_tokens=False)["input_ids"]
    assert ids[1:3] == [image_token_id(TOK)] * 2 and len(ids) == 4
    for t in ("<pad>", "<bos>", "<eos>", IMAGE_TOKEN):
        assert t in TOK.all_special_tokens
    assert len({TOK.pad_token_id, TOK.bos_token_id, TOK.eos_token_id, image_token_id(TOK)}) == 4


def test_captions_round_trip_through_the_tokenizer():
    for seed in range(20):
        text = caption(make_scene(seed))
        ids = TOK(text, add_special_tokens=False)["input_ids"]
        assert TOK.unk_token_id not in ids
        assert TOK.decode(ids) == text


def test_caption_inputs_layout():
    enc = build_inputs(TOK, render(make_scene(0)))
    ids = enc["input_ids"][0].tolist()
    sp = enc["spans"]
    assert enc["input_ids"].dtype == torch.long and enc["input_ids"].shape == enc["attention_mask"].shape
    assert sp["system"][0] == 0 and sp["system"][1] == sp["image"][0] and sp["image"][1] == sp["prompt"][0]
    assert sp["prompt"][1] == len(ids)
    assert ids[0] == TOK.bos_token_id
    n_img = (64 // 8) ** 2  # 64 px image, patch 8
    assert (
        ids[slice(*sp["image"])] == [image_token_id(TOK)] * n_img and ids.count(image_token_id(TOK)) == n_img
    )
    assert TOK.decode(ids[slice(*sp["prompt"])]) == "describe the image in detail . assistant :"
    assert enc["pixel_values"].shape == (1, 3, 64, 64) and enc["pixel_values"].dtype == torch.float32


def test_question_inputs_and_text_only():
    enc = build_inputs(TOK, render(make_scene(0)), "Is there a star in the image?")
    prompt = TOK.decode(enc["input_ids"][0, slice(*enc["spans"]["prompt"])].tolist())
    assert prompt == "is there a star in the image ? please answer this question with one word . assistant :"
    text_only = build_inputs(TOK, None)
    a, b = text_only["spans"]["image"]
    assert a == b and text_only["pixel_values"] is None
    assert image_token_id(TOK) not in text_only["input_ids"][0].tolist()


def test_pixel_values_are_normalised_to_minus_one_one():
    img = Image.fromarray(np.full((32, 32, 3), [255, 0, 128], np.uint8))  # resized to 64 px
    px = build_inputs(TOK, img)["pixel_values"][0]
    assert px.shape == (3, 64, 64)
    assert torch.allclose(px[:, 10, 10], torch.tensor([1.0, -1.0, 128 / 127.5 - 1]), atol=1e-6)


def test_clear_errors():
    with pytest.raises(ConfigError, match="dog"):
        build_inputs(TOK, None, "Is there a dog in the image?")
    with pytest.raises(ConfigError, match="empty"):
        build_inputs(TOK, None, "  ")
    with pytest.raises(ImageError, match="PIL"):
        build_inputs(TOK, np.zeros((64, 64, 3)))
    with pytest.raises(ConfigError, match="dimension"):
        toy_config(TOK, text_depth=3)


def test_config_is_tiny_and_matches_the_inputs():
    cfg = toy_config(TOK)
    assert cfg.text_config.num_hidden_layers == 8 and cfg.vision_config.hidden_size == 128
    assert cfg.vision_feature_layer == -1 and cfg.image_token_id == image_token_id(TOK)
    assert (cfg.vision_config.image_size // cfg.vision_config.patch_size) ** 2 == 64
    assert cfg.text_config.vocab_size == len(TOK)
