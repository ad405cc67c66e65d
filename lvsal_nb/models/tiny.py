"""Tiny random models of the real architectures, built in code (tests, benchmarks; no download).

Each returns (model, processor) with a word-level tokenizer whose special tokens match the family's
template, and a Pillow image processor (no torchvision).
"""

from __future__ import annotations

import torch

WORDS = (
    "a an the of in on is are there what this image describe picture detail please answer yes no "
    "one word red blue green cat dog person cup table . , ? : user assistant"
).split()
SPECIALS = [
    "<pad>",
    "<unk>",
    "<s>",
    "</s>",
    "<image>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<|im_start|>",
    "<|im_end|>",
]


def word_tokenizer(extra_words: tuple[str, ...] = (), vocab_size: int | None = None):
    """A PreTrainedTokenizerFast over a fixed word list (+ filler words up to vocab_size)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = list(dict.fromkeys(list(WORDS) + list(extra_words)))
    if vocab_size:
        words += [f"w{i}" for i in range(max(0, vocab_size - len(words) - len(SPECIALS)))]
    vocab = {t: i for i, t in enumerate(SPECIALS + words)}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        extra_special_tokens=SPECIALS[4:],
    )
    tok.image_token = "<image>"
    return tok


def llama_text_config(vocab: int, hidden: int, layers: int, heads: int, kv_heads: int, inter: int):
    """A LlamaConfig for the text side (untied head, ids of `word_tokenizer`'s specials)."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=inter,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
    )


def tiny_llava(
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    layers: int = 4,
    hidden: int = 64,
    heads: int = 4,
    kv_heads: int = 2,
    inter: int = 128,
    vocab: int | None = None,
    image_size: int = 32,
    patch: int = 8,
    vision_hidden: int = 32,
):
    """A random LlavaForConditionalGeneration; image_size/patch squared image tokens."""
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tok = word_tokenizer(vocab_size=vocab)
    vision = CLIPVisionConfig(
        hidden_size=vision_hidden,
        intermediate_size=vision_hidden * 2,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=image_size,
        patch_size=patch,
        projection_dim=32,
    )
    cfg = LlavaConfig(
        vision_config=vision,
        text_config=llama_text_config(len(tok), hidden, layers, heads, kv_heads, inter),
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(cfg).to(dtype).eval()
    improc = CLIPImageProcessorPil(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )
    proc = LlavaProcessor(
        image_processor=improc,
        tokenizer=tok,
        patch_size=patch,
        image_token="<image>",
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )
    model.generation_config.pad_token_id = 0
    return model, proc


def _tiny_qwen(
    cls_name: str,
    cfg_name: str,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    layers: int = 4,
    hidden: int = 64,
    heads: int = 4,
    kv_heads: int = 2,
    inter: int = 128,
):
    import transformers
    from transformers import Qwen2VLImageProcessorPil

    from .qwen2_vl import ImageOnlyProcessor

    tok = word_tokenizer()
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIALS}
    head_dim = hidden // heads
    rope = {
        "rope_type": "default",
        "mrope_section": [
            head_dim // 8,
            head_dim // 8 * 3 // 2,
            head_dim // 2 - head_dim // 8 - head_dim // 8 * 3 // 2,
        ],
    }
    # Qwen2-VL's vision `hidden_size` is its output width; Qwen2.5-VL calls that `out_hidden_size`
    v_hidden = hidden if cfg_name == "Qwen2VLConfig" else 32
    vision = {
        "depth": 2,
        "embed_dim": 32,
        "hidden_size": v_hidden,
        "out_hidden_size": hidden,
        "num_heads": 2,
        "mlp_ratio": 2,
        "intermediate_size": 64,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "in_channels": 3,
        "fullatt_block_indexes": [1],
        "window_size": 56,
    }
    text = {
        "vocab_size": len(tok),
        "hidden_size": hidden,
        "intermediate_size": inter,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "max_position_embeddings": 4096,
        "rope_parameters": {**rope, "rope_theta": 10000.0},
        "tie_word_embeddings": False,
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": 0,
    }
    cfg = getattr(transformers, cfg_name)(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    model = getattr(transformers, cls_name)(cfg).to(dtype).eval()
    improc = Qwen2VLImageProcessorPil(
        min_pixels=56 * 56, max_pixels=112 * 112, patch_size=14, merge_size=2, temporal_patch_size=2
    )
    model.generation_config.pad_token_id = 0
    return model, ImageOnlyProcessor(tok, improc)


def tiny_qwen2_vl(**kw):
    """A random Qwen2VLForConditionalGeneration (keywords as `_tiny_qwen`)."""
    return _tiny_qwen("Qwen2VLForConditionalGeneration", "Qwen2VLConfig", **kw)


def tiny_qwen2_5_vl(**kw):
    """A random Qwen2_5_VLForConditionalGeneration (keywords as `_tiny_qwen`)."""
    return _tiny_qwen("Qwen2_5_VLForConditionalGeneration", "Qwen2_5_VLConfig", **kw)
