"""The embedded toy LVLM: a tiny `LlavaForConditionalGeneration` trained here on the toy world.

Architecture (built in code; every sub-config explicit, else transformers fills in CLIP-L / 7B
defaults): CLIP vision tower 128 wide, 4 layers, patch 8 on 64 px (64 image tokens, CLS dropped,
last layer's features: vision_feature_layer=-1), GELU projector 128 -> 128 -> 128, Llama text model
128 wide, 8 layers (so "middle-to-deep" saliency layers such as [2, 3] mean something), 4 heads,
untied LM head; about 3 M parameters. Weights, config and tokenizer live in `ASSET_DIR`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    PreTrainedTokenizerFast,
)

from lvsal_nb.errors import ConfigError
from lvsal_nb.toy.inputs import NUM_IMAGE_TOKENS, PATCH_SIZE, build_inputs
from lvsal_nb.toy.scenes import IMAGE_SIZE
from lvsal_nb.toy.tokenizer import IMAGE_TOKEN, image_token_id

ASSET_DIR = Path(__file__).resolve().parent / "assets"

__all__ = ["ASSET_DIR", "IMAGE_TOKEN", "build_inputs", "image_token_id", "load_toy", "toy_config"]

DIMS = dict(
    vision_hidden=128, vision_layers=4, vision_heads=4, vision_mlp=512,
    text_hidden=128, text_layers=8, text_heads=4, text_mlp=512,
)  # fmt: skip


def toy_config(tokenizer: PreTrainedTokenizerFast, **dims: int) -> LlavaConfig:
    """The toy `LlavaConfig` for this tokenizer; `dims` overrides entries of `DIMS`."""
    unknown = set(dims) - set(DIMS)
    if unknown:
        raise ConfigError(f"Unknown toy model dimension(s) {sorted(unknown)}; known: {sorted(DIMS)}.")
    d = DIMS | dims
    vision = CLIPVisionConfig(
        hidden_size=d["vision_hidden"], intermediate_size=d["vision_mlp"],
        num_hidden_layers=d["vision_layers"], num_attention_heads=d["vision_heads"],
        image_size=IMAGE_SIZE, patch_size=PATCH_SIZE, num_channels=3, projection_dim=d["vision_hidden"],
    )  # fmt: skip
    text = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=d["text_hidden"], intermediate_size=d["text_mlp"],
        num_hidden_layers=d["text_layers"], num_attention_heads=d["text_heads"],
        num_key_value_heads=d["text_heads"], max_position_embeddings=256, tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    cfg = LlavaConfig(
        vision_config=vision, text_config=text, image_token_index=image_token_id(tokenizer),
        image_seq_length=NUM_IMAGE_TOKENS, vision_feature_layer=-1,
        vision_feature_select_strategy="default", projector_hidden_act="gelu", tie_word_embeddings=False,
    )  # fmt: skip
    cfg._attn_implementation = "eager"  # the saliency probe hooks eager attention
    return cfg


def load_toy(
    device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, world: str = "v1"
) -> tuple[LlavaForConditionalGeneration, PreTrainedTokenizerFast]:
    """Load the shipped toy model (eval mode) and its tokenizer, offline.

    world: "v1" (from `ASSET_DIR`) or "v2" (list + recap captions, from `assets_v2`).
    """
    from lvsal_nb.toy.worlds import get_world

    asset_dir = ASSET_DIR if world == "v1" else get_world(world).asset_dir
    needed = ("config.json", "model.safetensors", "tokenizer.json")
    missing = [f for f in needed if not (asset_dir / f).exists()]
    if missing:
        flag = "" if world == "v1" else f" --world {world}"
        raise ConfigError(
            f"The toy model's files {missing} are missing from {asset_dir}; "
            f"train them with `lvsal toy-train{flag}` (about 10 minutes on an idle 2-core CPU)."
        )
    tokenizer = PreTrainedTokenizerFast.from_pretrained(asset_dir, local_files_only=True)
    model = LlavaForConditionalGeneration.from_pretrained(
        asset_dir, dtype=dtype, attn_implementation="eager", local_files_only=True
    )
    return model.to(device).eval(), tokenizer
