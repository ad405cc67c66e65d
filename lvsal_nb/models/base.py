"""What every model family's adapter tells the engines: inputs, spans, the decoder, its layers."""

from __future__ import annotations

import hashlib
import inspect
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..errors import ConfigError
from ..trace import Spans

PAPER_LAYERS = (6, 7, 8)  # official default for 32-layer LLaVA-1.5-7B (0-based)
# model inputs with one entry per token position (sliced for a prefill, extended for outputs)
PER_POSITION_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids")


@dataclass
class Prepared:
    """A prompt ready for the model. `inputs` are the prefill kwargs (input_ids [1, n] ...)."""

    inputs: dict[str, torch.Tensor]
    spans: Spans
    image_grid: tuple[int, int] | None = None
    image_png: bytes | None = None
    image_digest: str | None = None

    @property
    def input_ids(self) -> torch.Tensor:
        """The prompt's token ids [1, n] (image placeholders expanded)."""
        return self.inputs["input_ids"]

    @property
    def n(self) -> int:
        """Prompt positions, image included."""
        return int(self.inputs["input_ids"].shape[1])


def load_image(image) -> Image.Image | None:
    """The RGB picture of any supported input (lvsal_nb.images.to_rgb), or None; else ImageError."""
    from ..images import to_rgb

    return to_rgb(image)


def image_meta(image: Image.Image | None) -> tuple[bytes | None, str | None]:
    """(small PNG thumbnail, sha256 digest of the pixels) for the Trace."""
    if image is None:
        return None, None
    digest = hashlib.sha256(image.tobytes()).hexdigest()[:16]
    thumb = image.copy()
    thumb.thumbnail((160, 160))
    buf = io.BytesIO()
    thumb.save(buf, format="PNG")
    return buf.getvalue(), digest


def scaled_layers(n_layers: int) -> list[int]:
    """PAPER.md's default layers scaled to depth N: round(6N/32) and the next two (distinct, in range)."""
    start = min(max(round(PAPER_LAYERS[0] * n_layers / 32), 0), max(n_layers - 3, 0))
    return [l for l in range(start, start + 3) if l < n_layers]


def runs(mask: torch.Tensor) -> tuple[int, int] | None:
    """Half-open [start, stop) of the True positions of a 1-D mask (must be contiguous)."""
    idx = mask.nonzero().flatten()
    if idx.numel() == 0:
        return None
    start, stop = int(idx[0]), int(idx[-1]) + 1
    if stop - start != idx.numel():
        raise ConfigError("the prompt holds more than one image; lvsal-nb traces one image per prompt")
    return start, stop


def cache_keyword(model: nn.Module) -> str:
    """transformers renames `past_key_values` to `cache` (deprecated until 5.40): use what forward takes."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


class Adapter:
    """Base adapter. Subclasses set `family`, `locore_beta` and implement `prepare`."""

    family = "base"
    locore_beta = 0.15

    def __init__(self, model: nn.Module, processor: Any):
        self.model = model
        self.processor = processor
        self.cache_kw = cache_keyword(model)

    # ---- structure ----------------------------------------------------------------------------
    @property
    def tokenizer(self):
        """The processor's tokenizer (or the processor itself when it is one)."""
        return getattr(self.processor, "tokenizer", self.processor)

    @property
    def language_model(self) -> nn.Module:
        """The text decoder (its layers carry the probe)."""
        return self.model.model.language_model

    @property
    def decoder(self) -> nn.Module:
        """The model without its LM head (vision tower, projector, language model): returns the
        final-norm hidden states; the step engine applies the head itself."""
        return self.model.model

    @property
    def head(self) -> nn.Module | None:
        """The LM head (output embeddings): logits = head(final hidden state)."""
        return self.model.get_output_embeddings()

    @property
    def text_config(self):
        """The text decoder's config (layers, heads, vocabulary, attention implementation)."""
        return self.model.config.text_config

    @property
    def num_layers(self) -> int:
        """Decoder layers N."""
        return int(self.text_config.num_hidden_layers)

    def default_layers(self) -> list[int]:
        """PAPER.md's [6, 7, 8] scaled to this depth: round(6N/32) and the next two."""
        return scaled_layers(self.num_layers)

    def check_layers(self, layers) -> tuple[int, ...]:
        """Sorted distinct decoder layer indices. Takes None (the default layers), one index (an int:
        layers=2 means [2]) or a list/tuple/range of indices; a string is refused ("23" is not [2, 3])."""
        if layers is None:
            layers = self.default_layers()
        elif isinstance(layers, (int, np.integer)) and not isinstance(layers, bool):
            layers = [int(layers)]
        if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
            raise ConfigError(
                f"layers must be a list of decoder layer indices such as [6, 7, 8], one index, or None; "
                f"got {layers!r}"
            )
        layers = list(layers)
        odd = [l for l in layers if isinstance(l, bool) or not isinstance(l, (int, np.integer))]
        if odd:
            raise ConfigError(f"layers must be integer layer indices, got {odd!r} in {layers!r}")
        layers = tuple(sorted(set(int(l) for l in layers)))
        if not layers:
            raise ConfigError(
                "layers is empty; pass at least one decoder layer index, or None for the default"
            )
        bad = [l for l in layers if not 0 <= l < self.num_layers]
        if bad:
            raise ConfigError(
                f"layers {bad} out of range: this model has {self.num_layers} decoder layers "
                f"(0..{self.num_layers - 1})"
            )
        return layers

    @property
    def eos_token_ids(self) -> set[int]:
        """Every id that ends a generation (generation config, text config and tokenizer)."""
        ids = set()
        for src in (getattr(self.model, "generation_config", None), self.text_config, self.tokenizer):
            e = getattr(src, "eos_token_id", None)
            if e is not None:
                ids.update(e if isinstance(e, (list, tuple)) else [e])
        return ids

    # ---- inputs ---------------------------------------------------------------------------------
    def prepare(self, image, prompt: str) -> Prepared:
        """The model's inputs for (image, prompt) in its chat format, and their spans.

        Args:
            image: anything `images.to_rgb` takes, or None (text only).
            prompt: the user's text.
        Returns:
            Prepared: inputs (input_ids [1, n], pixels ...), spans, image grid, thumbnail, digest.
        """
        raise NotImplementedError

    def full_inputs(self, prepared: Prepared, output_ids: list[int]) -> dict[str, torch.Tensor]:
        """Teacher-forced kwargs for prompt + outputs (no cache)."""
        inputs = dict(prepared.inputs)
        dev = inputs["input_ids"].device
        out = torch.tensor([output_ids], dtype=torch.long, device=dev)
        inputs["input_ids"] = torch.cat([inputs["input_ids"], out], 1)
        inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
        if "mm_token_type_ids" in inputs:
            inputs["mm_token_type_ids"] = torch.cat([inputs["mm_token_type_ids"], torch.zeros_like(out)], 1)
        return inputs

    def step_inputs(self, token_ids: torch.Tensor, total_len: int) -> dict[str, torch.Tensor]:
        """Kwargs of an incremental forward of `token_ids` [1, s] after a cache of total_len - s."""
        return {
            "input_ids": token_ids,
            "attention_mask": torch.ones(1, total_len, dtype=torch.long, device=token_ids.device),
        }

    def new_sequence(self) -> None:
        """Forget per-sequence state the model keeps between forwards (Qwen2-VL's rope_deltas), so
        a new prompt's prefill starts from nothing. Called before every prefill."""

    def rope_offset(self, device) -> torch.Tensor:
        """What the prompt adds to a decode position to give its rotary position ids, shaped like the
        model's position ids of one position: none here ([1, 1] zeros)."""
        return torch.zeros(1, 1, dtype=torch.long, device=device)

    def context_tokens(self, token_ids: list[int], image_span) -> list[str]:
        """Text of every position of the full sequence (image positions as "<image>")."""
        ctx = [
            t if isinstance(t, str) else str(t) for t in self.tokenizer.convert_ids_to_tokens(list(token_ids))
        ]
        if image_span:
            for i in range(*image_span):
                ctx[i] = "<image>"
        return ctx

    def to(self, inputs: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
        """`inputs` on the model's device, floating ones (pixels) in `dtype`; ids keep theirs."""
        dev = next(self.model.parameters()).device
        out = {}
        for k, v in inputs.items():
            v = v.to(dev)
            out[k] = v.to(dtype) if v.is_floating_point() else v
        return out
