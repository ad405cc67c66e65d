"""A call's inputs checked against the model before anything runs: the prompt, the output to
analyze, and whether prompt + new tokens fit the model's positions. Each refusal is a ConfigError
that names the fix."""

from __future__ import annotations

import torch

from .errors import ConfigError
from .models import Adapter, Prepared


def check_prompt(prompt) -> None:
    """The prompt is a string; else ConfigError."""
    if not isinstance(prompt, str):
        raise ConfigError(
            f"the prompt must be a string, not {type(prompt).__name__}; pass e.g. 'Describe the image.'"
        )


def vocab_size(adapter: Adapter) -> int:
    """Rows of the LM head (the vocabulary the model scores), else the config's vocab_size."""
    weight = getattr(adapter.head, "weight", None)
    return int(weight.shape[0] if isinstance(weight, torch.Tensor) else adapter.text_config.vocab_size)


def check_length(adapter: Adapter, prepared: Prepared, new_tokens: int) -> None:
    """Prompt + new tokens must fit the model's positions (beyond them rotary positions are
    extrapolated and learned ones do not exist: numbers without meaning)."""
    limit = getattr(adapter.text_config, "max_position_embeddings", None)
    if isinstance(limit, int) and prepared.n + new_tokens > limit:
        room = limit - prepared.n
        raise ConfigError(
            f"the prompt takes {prepared.n} positions (image included) and {new_tokens} more were "
            f"asked for, but this model has {limit} positions; "
            + (
                f"lower max_new_tokens (or the output) to <= {room}"
                if room >= 1
                else "shorten the prompt (or use a smaller image)"
            )
        )


def output_ids(adapter: Adapter, output) -> list[int]:
    """The token ids of an output to analyze: text (tokenized without special tokens; words the
    tokenizer only knows as `<unk>` are refused, named) or token ids (each in the vocabulary).

    Returns:
        The ids, at least one; else ConfigError.
    """
    if isinstance(output, str):
        ids = adapter.tokenizer(output, add_special_tokens=False)["input_ids"]
        _check_known_words(adapter.tokenizer, output, ids)
    elif isinstance(output, (bytes, dict)) or not hasattr(output, "__iter__"):
        raise ConfigError(
            f"output must be generated text (str) or a list of token ids, not {type(output).__name__}"
        )
    else:
        ids = [int(i) for i in output]
    if not ids:
        raise ConfigError("the output to analyze is empty; pass generated text or token ids")
    vocab = vocab_size(adapter)
    bad = [i for i in ids if not 0 <= i < vocab]
    if bad:
        raise ConfigError(
            f"token ids {bad[:5]} are outside this model's vocabulary (0..{vocab - 1}); pass ids from "
            "its own tokenizer, or the text"
        )
    return ids


def _check_known_words(tokenizer, text: str, ids: list[int]) -> None:
    """Refuse text whose words the tokenizer maps to its unknown token, naming them."""
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is None or unk not in ids:
        return
    words = [w for w in text.split() if unk in tokenizer(w, add_special_tokens=False)["input_ids"]]
    raise ConfigError(
        f"the tokenizer does not know {sorted(set(words)) or 'some characters'} in the output to analyze "
        f"(they become {tokenizer.unk_token!r}); rephrase them with known words, or pass token ids"
    )
