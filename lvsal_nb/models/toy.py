"""The toy world's tiny LLaVA (lvsal_nb.toy): its own word-level prompt format.

Prompts starting with "is there" become the model's yes/no question; any other prompt asks for the
caption (the toy model knows only those two tasks).
"""

from __future__ import annotations

from ..errors import ConfigError
from ..trace import Spans
from .base import Prepared, image_meta, load_image
from .llava import LlavaAdapter


class ToyAdapter(LlavaAdapter):
    family = "toy"
    locore_beta = 0.15

    def prepare(self, image, prompt: str) -> Prepared:
        from ..protocol.pope import SUFFIXES
        from ..toy.model import build_inputs

        if not prompt or not prompt.strip():
            raise ConfigError("the prompt is empty; pass 'Describe the image.' or 'Is there a red circle?'")
        img = load_image(image)
        question = prompt if prompt.strip().lower().startswith("is there") else None
        if question is not None:  # build_inputs adds POPE's suffix itself
            question = question.replace(SUFFIXES["vcd"], "").strip()
        enc = build_inputs(self.tokenizer, img, question)
        sp = enc.pop("spans")
        n = int(enc["input_ids"].shape[1])
        image_span = tuple(sp["image"]) if sp.get("image") and sp["image"][1] > sp["image"][0] else None
        spans = Spans(system=tuple(sp["system"]), image=image_span, prompt=tuple(sp["prompt"]), output=(n, n))
        grid = None
        if image_span:
            side = int(round((image_span[1] - image_span[0]) ** 0.5))
            grid = (side, side) if side * side == image_span[1] - image_span[0] else None
        png, digest = image_meta(img)
        keep = ("input_ids", "attention_mask", "pixel_values")
        inputs = {k: v for k, v in enc.items() if k in keep and v is not None}  # no image: no pixels
        return Prepared(
            inputs=inputs,
            spans=spans,
            image_grid=grid,
            image_png=png,
            image_digest=digest,
        )
