"""Qwen2-VL and Qwen2.5-VL. The image-token expansion is done here (the stock processor needs
torchvision for its video half): one `<|image_pad|>` becomes t·h·w / merge² tokens, and
`mm_token_type_ids` marks them, which the model needs for its 3-D rotary positions."""

from __future__ import annotations

import torch

from ..errors import ConfigError, ImageError
from ..trace import Spans
from .base import Adapter, Prepared, image_meta, load_image, runs

TEMPLATE = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n{image}{prompt}"
    "<|im_end|>\n<|im_start|>assistant\n"
)
IMAGE_SLOT = "<|vision_start|><|image_pad|><|vision_end|>"


class ImageOnlyProcessor:
    """Qwen2-VL's processor without its video half (the stock one needs torchvision for it): the
    checkpoint's `.tokenizer` and Pillow `.image_processor`, all Qwen2VLAdapter uses. lv.load falls
    back to it for real checkpoints; the tiny random Qwen models use it too."""

    def __init__(self, tokenizer, image_processor):
        self.tokenizer = tokenizer
        self.image_processor = image_processor


class Qwen2VLAdapter(Adapter):
    """Qwen2-VL: ChatML template (TEMPLATE); the image's `<|image_pad|>` is expanded here to
    t·h·w / merge² tokens, and its 3-D rotary positions come from `mm_token_type_ids` + `image_grid_thw`."""

    family = "qwen2_vl"
    locore_beta = 0.20

    def image_token_id(self) -> int:
        """Id of `<|image_pad|>` (config.image_token_id)."""
        return int(self.model.config.image_token_id)

    def prepare(self, image, prompt: str) -> Prepared:
        """Inputs (input_ids [1, n] with the image's pad tokens expanded, attention_mask,
        mm_token_type_ids [1, n], pixel_values, image_grid_thw [1, 3]) and Spans; image_grid is the
        merged patch grid (rows, cols). Raises ConfigError on an empty prompt, ImageError without an
        image processor."""
        if not prompt or not prompt.strip():
            raise ConfigError(
                "the prompt is empty; pass a question or an instruction such as 'Describe the image.'"
            )
        img = load_image(image)
        text = TEMPLATE.format(image=IMAGE_SLOT if img is not None else "", prompt=prompt)
        ids = self.tokenizer(text, return_tensors="pt")["input_ids"]
        inputs: dict[str, torch.Tensor] = {}
        grid = None
        pad = self.image_token_id()
        if img is not None:
            improc = getattr(self.processor, "image_processor", None)
            if improc is None:
                raise ImageError(
                    "this session has a tokenizer but no image processor; load the model's processor"
                )
            pix = improc(images=img, return_tensors="pt")
            thw = pix["image_grid_thw"]
            merge = int(getattr(improc, "merge_size", self.model.config.vision_config.spatial_merge_size))
            n_img = int(thw[0].prod()) // (merge * merge)
            where = (ids[0] == pad).nonzero().flatten()
            if where.numel() != 1:
                raise ImageError("the prompt template must hold exactly one <|image_pad|> token")
            i = int(where[0])
            ids = torch.cat([ids[:, :i], torch.full((1, n_img), pad, dtype=ids.dtype), ids[:, i + 1 :]], 1)
            inputs.update(pixel_values=pix["pixel_values"], image_grid_thw=thw)
            grid = (int(thw[0, 1]) // merge, int(thw[0, 2]) // merge)
        inputs["input_ids"] = ids
        inputs["attention_mask"] = torch.ones_like(ids)
        inputs["mm_token_type_ids"] = (ids == pad).long()
        n = int(ids.shape[1])
        img_span = runs(ids[0] == pad) if img is not None else None
        if img_span:
            spans = Spans(system=(0, img_span[0]), image=img_span, prompt=(img_span[1], n), output=(n, n))
        else:
            spans = Spans(system=(0, 0), image=None, prompt=(0, n), output=(n, n))
        png, digest = image_meta(img)
        return Prepared(inputs=inputs, spans=spans, image_grid=grid, image_png=png, image_digest=digest)

    def step_inputs(self, token_ids: torch.Tensor, total_len: int) -> dict[str, torch.Tensor]:
        """Kwargs of an incremental forward of `token_ids` [1, s] after total_len - s cached positions,
        with explicit 3-D rotary position_ids [3, 1, s]: decode position + the prompt's rope_deltas."""
        # transformers derives step positions from the whole 2-D mask (length total_len, not s):
        # give the 3-D rotary positions explicitly, offset by the prefill's rope_deltas.
        kw = super().step_inputs(token_ids, total_len)
        pos = torch.arange(total_len - token_ids.shape[1], total_len, device=token_ids.device)
        kw["position_ids"] = self.rope_offset(token_ids.device) + pos.view(1, 1, -1)  # [3, 1, s]
        return kw

    def new_sequence(self) -> None:
        """Forget the previous prompt's rope_deltas (kept on the model by transformers)."""
        # transformers recomputes rope_deltas only for a prompt with an image: a text-only prompt
        # after an image one would reuse the image's offset (issue 17.7)
        self.model.model.rope_deltas = None

    def rope_offset(self, device) -> torch.Tensor:
        """The prefill's rope_deltas on each of the 3 rotary axes: [3, 1, 1]."""
        delta = getattr(self.model.model, "rope_deltas", None)
        if delta is None:
            return torch.zeros(3, 1, 1, dtype=torch.long, device=device)
        return delta.to(device).view(1, 1, 1).expand(3, 1, 1)


class Qwen25VLAdapter(Qwen2VLAdapter):
    """Qwen2.5-VL: the same template and inputs as Qwen2-VL (its vision tower differs, not the prompt)."""

    family = "qwen2_5_vl"
