"""The toy model's offline word-level tokenizer (built in code with `tokenizers`, no download).

One token per lower-cased word or punctuation mark of the toy world's prompts and captions;
`<image>`, `<pad>`, `<bos>`, `<eos>`, `<unk>` are registered special tokens, so "<image>" is never
split by the whitespace pre-tokenizer and `skip_special_tokens` drops them when decoding.
"""

from __future__ import annotations

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from lvsal_nb.toy.scenes import COLORS, SHAPES, SIZES

IMAGE_TOKEN = "<image>"
SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>", "<eos>", IMAGE_TOKEN)

SYSTEM_TEXT = "a chat between a user and an assistant . user :"
CAPTION_PROMPT = "describe the image in detail ."
QUESTION_SUFFIX = "please answer this question with one word ."  # POPE's suffix
ANSWER_ROLE = "assistant :"
_CAPTION_WORDS = "there is a with , and ."
_ANSWERS = "yes no"


def vocabulary(extra_words: tuple[str, ...] = ()) -> list[str]:
    """All tokens, specials first (ids 0..4), then words in first-use order: fixed, so ids are stable.

    `extra_words` (toy world v2's "so") come last, so every v1 word keeps its id.
    """
    text = " ".join(
        [SYSTEM_TEXT, CAPTION_PROMPT, "is there a in the image ?", QUESTION_SUFFIX, ANSWER_ROLE,
         _CAPTION_WORDS, _ANSWERS, " ".join(SIZES), " ".join(COLORS), " ".join(SHAPES)]
    )  # fmt: skip
    words = list(SPECIAL_TOKENS)
    for w in text.split() + list(extra_words):
        if w not in words:
            words.append(w)
    return words


def build_tokenizer(extra_words: tuple[str, ...] = ()) -> PreTrainedTokenizerFast:
    """A fresh word-level `PreTrainedTokenizerFast` over `vocabulary(extra_words)` (lower-cases its input)."""
    vocab = {w: i for i, w in enumerate(vocabulary(extra_words))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()  # words and punctuation runs: "image?" -> image ?
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        extra_special_tokens=[IMAGE_TOKEN],
        padding_side="left",  # generation batches pad on the left
    )


def image_token_id(tokenizer: PreTrainedTokenizerFast) -> int:
    """Id of the `<image>` placeholder token (the model's `config.image_token_id`)."""
    return int(tokenizer.convert_tokens_to_ids(IMAGE_TOKEN))
