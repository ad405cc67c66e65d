"""Model inputs for the toy LLaVA: chat layout, image placeholder tokens, pixel normalisation.

Layout (token positions, half-open spans):
    system  "<bos> a chat between a user and an assistant . user :"
    image   64 × "<image>"  (64 px image / patch 8 = 8 × 8 patches; the CLS feature is dropped)
    prompt  "describe the image in detail . assistant :"                                   (caption)
            "is there a star in the image ? please answer this question with one word . assistant :"
The model's answer starts right after the prompt span.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from lvsal_nb.errors import ConfigError, ImageError
from lvsal_nb.images import to_rgb
from lvsal_nb.toy.scenes import IMAGE_SIZE
from lvsal_nb.toy.tokenizer import ANSWER_ROLE, CAPTION_PROMPT, QUESTION_SUFFIX, SYSTEM_TEXT, image_token_id

PATCH_SIZE = 8
NUM_IMAGE_TOKENS = (IMAGE_SIZE // PATCH_SIZE) ** 2
PIXEL_MEAN = 0.5  # pixels map to [-1, 1]: (x / 255 - 0.5) / 0.5, every channel
PIXEL_STD = 0.5


def pixel_values(image: Image.Image) -> torch.Tensor:
    """[1, 3, 64, 64] float32 from a PIL image (converted to RGB, resized bilinearly if needed)."""
    if not isinstance(image, Image.Image):
        raise ImageError(f"The toy model needs a PIL.Image.Image, got {type(image).__name__}; "
                         "open files with PIL.Image.open(path).")  # fmt: skip
    img = to_rgb(image)  # transparent / 16-bit / palette pictures as they look (lvsal_nb.images)
    if img.size != (IMAGE_SIZE, IMAGE_SIZE):
        img = img.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
    x = (np.asarray(img, dtype=np.float32) / 255.0 - PIXEL_MEAN) / PIXEL_STD
    return torch.from_numpy(x.transpose(2, 0, 1).copy())[None]


def _encode(tokenizer, text: str, what: str) -> list[int]:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if tokenizer.unk_token_id in ids:
        vocab = tokenizer.get_vocab()
        pieces = tokenizer.backend_tokenizer.pre_tokenizer.pre_tokenize_str(text.lower())
        words = [w for w, _ in pieces if w not in vocab]
        known = sorted(set(vocab) - set(tokenizer.all_special_tokens))
        raise ConfigError(f"The toy model does not know the word(s) {words} in the {what} {text!r}; "
                          f"use only these words: {' '.join(known)}")  # fmt: skip
    return ids


def build_inputs(tokenizer, image: Image.Image | None, question: str | None = None) -> dict:
    """Inputs for one example: the captioning prompt (question=None) or the yes/no prompt.

    Returns input_ids [1, n] long, attention_mask [1, n] long, pixel_values [1, 3, 64, 64] float32
    (None without an image), and "spans": {"system", "image", "prompt"} as half-open (start, stop)
    token positions; without an image the "image" span is empty. Pop "spans" before calling the model.
    """
    if question is not None and not question.strip():
        raise ConfigError("The question is empty; pass None for the captioning prompt or a yes/no question.")
    system = [tokenizer.bos_token_id] + _encode(tokenizer, SYSTEM_TEXT, "system text")
    n_img = NUM_IMAGE_TOKENS if image is not None else 0
    text = CAPTION_PROMPT if question is None else f"{question} {QUESTION_SUFFIX}"
    prompt = _encode(tokenizer, f"{text} {ANSWER_ROLE}", "prompt")
    ids = system + [image_token_id(tokenizer)] * n_img + prompt
    a, b = len(system), len(system) + n_img
    return {
        "input_ids": torch.tensor([ids], dtype=torch.long),
        "attention_mask": torch.ones(1, len(ids), dtype=torch.long),
        "pixel_values": pixel_values(image) if image is not None else None,
        "spans": {"system": (0, a), "image": (a, b), "prompt": (b, len(ids))},
    }
