"""LLaVA-1.5 (transformers' LlavaForConditionalGeneration): `USER: <image>\\n{prompt} ASSISTANT:`."""

from __future__ import annotations

import math

from ..errors import ConfigError, ImageError
from ..trace import Spans
from .base import Adapter, Prepared, image_meta, load_image, runs

DEFAULT_TEMPLATE = "USER: <image>\n{prompt} ASSISTANT:"


class LlavaAdapter(Adapter):
    """LLaVA-1.5: the processor's chat template (or `USER: <image>\n{prompt} ASSISTANT:`); the
    image is one run of `<image>` tokens, a square patch grid (24 x 24 = 576 for 336-pixel CLIP)."""

    family = "llava"
    locore_beta = 0.15

    def image_token_id(self) -> int:
        """Id of the `<image>` token (config.image_token_id, or image_token_index in older configs)."""
        tid = getattr(self.model.config, "image_token_id", None)
        if tid is None:
            tid = self.model.config.image_token_index
        return int(tid)

    def format_prompt(self, prompt: str, with_image: bool) -> str:
        """The prompt text with its role markers; `with_image` adds the image slot (one `<image>`)."""
        chat = getattr(self.processor, "chat_template", None)
        if chat:
            content = ([{"type": "image"}] if with_image else []) + [{"type": "text", "text": prompt}]
            return self.processor.apply_chat_template(
                [{"role": "user", "content": content}], add_generation_prompt=True
            )
        text = DEFAULT_TEMPLATE.format(prompt=prompt)
        return text if with_image else text.replace("<image>\n", "")

    def prepare(self, image, prompt: str) -> Prepared:
        """Processor inputs (input_ids [1, n], attention_mask, pixel_values) and Spans of `prompt`
        with `image` (None: text only). Raises ConfigError on an empty prompt, ImageError when the session
        has no image processor or the template has no image slot."""
        if not prompt or not prompt.strip():
            raise ConfigError(
                "the prompt is empty; pass a question or an instruction such as 'Describe the image.'"
            )
        img = load_image(image)
        if img is not None and getattr(self.processor, "image_processor", None) is None:
            raise ImageError(
                "this session has a tokenizer but no image processor; load the model's processor"
            )
        text = self.format_prompt(prompt, img is not None)
        if img is not None:
            enc = self.processor(images=img, text=text, return_tensors="pt")
        else:
            enc = self.tokenizer(text, return_tensors="pt")
        inputs = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "pixel_values")}
        ids = inputs["input_ids"][0]
        n = int(ids.shape[0])
        img_span = runs(ids == self.image_token_id()) if img is not None else None
        if img is not None and img_span is None:
            raise ImageError(
                "the processor produced no image tokens; check the chat template has an image slot"
            )
        if img_span:
            spans = Spans(system=(0, img_span[0]), image=img_span, prompt=(img_span[1], n), output=(n, n))
            side = int(math.isqrt(img_span[1] - img_span[0]))
            grid = (side, side) if side * side == img_span[1] - img_span[0] else None
        else:
            spans = Spans(system=(0, 0), image=None, prompt=(0, n), output=(n, n))
            grid = None
        png, digest = image_meta(img)
        return Prepared(inputs=inputs, spans=spans, image_grid=grid, image_png=png, image_digest=digest)
