"""Training batches for the toy model, generated on the fly from the seeded scene generator.

Two kinds of batch, alternated by the trainer: captions (prompt -> template caption) and yes/no
questions (prompt -> "yes"/"no"). Labels are -100 on the prompt, so only the answer is learned.
"""

from __future__ import annotations

import numpy as np
import torch

from lvsal_nb.errors import ConfigError
from lvsal_nb.toy.inputs import build_inputs
from lvsal_nb.toy.pope import question_text
from lvsal_nb.toy.scenes import PAIR_WEIGHTS, PARTNER, SHAPES, Scene, caption, make_scene, render

IGNORE = -100
# Base frequency of each shape (its pair's weight, split over two members): "popular" negatives.
_SHAPE_FREQ = np.array([PAIR_WEIGHTS[i // 2] for i in range(len(SHAPES))]) / 2.0


def training_question(scene: Scene, rng: np.random.Generator) -> tuple[str, str]:
    """A (question, answer) pair: yes on a present shape, or no on an absent one, 50/50.

    Negatives are a third each: the absent partner of a present shape (where there is one), a
    frequent absent shape, a uniform absent shape; so the model sees POPE's three kinds of "no".
    """
    present = scene.object_names()
    absent = [s for s in SHAPES if s not in present]
    if rng.random() < 0.5:
        return question_text(present[rng.integers(len(present))]), "yes"
    kind = rng.integers(3)
    partners = [PARTNER[s] for s in present if PARTNER[s] in absent]
    if kind == 0 and partners:
        obj = partners[rng.integers(len(partners))]
    elif kind == 1:
        w = np.array([_SHAPE_FREQ[SHAPES.index(s)] for s in absent])
        obj = absent[rng.choice(len(absent), p=w / w.sum())]
    else:
        obj = absent[rng.integers(len(absent))]
    return question_text(obj), "no"


def make_batch(
    tokenizer, rng: np.random.Generator, batch_size: int, kind: str, caption_fn=caption, scene_fn=make_scene
) -> dict:
    """A padded batch: input_ids / labels / attention_mask [B, T] (right-padded), pixel_values [B, 3, H, W].

    kind: "caption" or "qa". caption_fn: the world's caption template (v2: `recap.recap_caption`);
    scene_fn(rng) -> Scene: the world's scenes (v2: long lists).
    Deterministic for the generator's state.
    """
    if kind not in ("caption", "qa"):
        raise ConfigError(f"Unknown batch kind {kind!r}; use 'caption' or 'qa'.")
    rows, labels, pixels = [], [], []
    for _ in range(batch_size):
        scene = scene_fn(rng)
        if kind == "caption":
            question, answer = None, caption_fn(scene)
        else:
            question, answer = training_question(scene, rng)
        inp = build_inputs(tokenizer, render(scene), question)
        prompt = inp["input_ids"][0].tolist()
        target = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        rows.append(prompt + target)
        labels.append([IGNORE] * len(prompt) + target)
        pixels.append(inp["pixel_values"])
    width = max(map(len, rows))
    pad = tokenizer.pad_token_id
    return {
        "input_ids": torch.tensor([r + [pad] * (width - len(r)) for r in rows]),
        "labels": torch.tensor([lab + [IGNORE] * (width - len(lab)) for lab in labels]),
        "attention_mask": torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows]),
        "pixel_values": torch.cat(pixels),
    }
