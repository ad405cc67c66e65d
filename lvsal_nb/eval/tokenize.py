"""NLTK's ``word_tokenize`` as the original CHAIR code ran it, ported as pure Python (no NLTK data).

``word_tokenize(text)`` = Punkt sentence splitting, then the (improved) Treebank word tokenizer on
each sentence. The Treebank part is NLTK 3.3's ``TreebankWordTokenizer`` with the three extra rules
``nltk.tokenize.word_tokenize`` adds (NLTK 3.3, nltk/tokenize/treebank.py and __init__.py; Apache
2.0), regex for regex. Its quirks matter to CHAIR:

- "..." is one token; "couch/sofa" and "tv/monitor" stay ONE token (no split at "/"), so neither
  object fires; "dog's" -> "dog", "'s"; "can't" -> "ca", "n't";
- a period is split off only at the end of a sentence: inside a sentence "dr." stays whole.

Punkt's sentence splitting needs its trained English model (data, not code), so it is
approximated by the rule that model gives on lower-cased captions (CHAIR lower-cases first): a
sentence ends after a whitespace-separated token that ends in ".", "?" or "!" (closing quotes or
brackets may follow) when more text follows, except after an ellipsis ("..", "..."), a single
letter or a number ("a.", "2.": Punkt's initials / ordinals before a lower-case word) and the
abbreviations in ``ABBREVIATIONS``. Captions of the usual kind tokenise exactly as NLTK's.
"""

from __future__ import annotations

import re

__all__ = ["word_tokenize", "treebank_tokenize", "sentences", "ABBREVIATIONS"]

ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "e.g", "i.e", "u.s", "etc"})

_STARTING_QUOTES = [
    (re.compile("([«“‘„]|[`]+)"), r" \1 "),  # word_tokenize's improved_open_quote_regex
    (re.compile(r"^\""), r"``"),
    (re.compile(r"(``)"), r" \1 "),
    (re.compile(r"([ \(\[{<])(\"|\'{2})"), r"\1 `` "),
]
_PUNCTUATION = [
    (re.compile(r"([^\.])(\.)([\]\)}>\"\'»”’ ]*)\s*$"), r"\1 \2 \3 "),  # improved_punct_regex
    (re.compile(r"([:,])([^\d])"), r" \1 \2"),
    (re.compile(r"([:,])$"), r" \1 "),
    (re.compile(r"\.\.\."), r" ... "),
    (re.compile(r"[;@#$%&]"), r" \g<0> "),
    (re.compile(r"([^\.])(\.)([\]\)}>\"\']*)\s*$"), r"\1 \2\3 "),
    (re.compile(r"[?!]"), r" \g<0> "),
    (re.compile(r"([^'])' "), r"\1 ' "),
]
_PARENS_BRACKETS = (re.compile(r"[\]\[\(\)\{\}\<\>]"), r" \g<0> ")
_DOUBLE_DASHES = (re.compile(r"--"), r" -- ")
_ENDING_QUOTES = [
    (re.compile("([»”’])"), r" \1 "),  # improved_close_quote_regex
    (re.compile(r'"'), " '' "),
    (re.compile(r"(\S)(\'\')"), r"\1 \2 "),
    (re.compile(r"([^' ])('[sS]|'[mM]|'[dD]|') "), r"\1 \2 "),
    (re.compile(r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) "), r"\1 \2 "),
]
_CONTRACTIONS = [
    re.compile(r)
    for r in (
        r"(?i)\b(can)(?#X)(not)\b", r"(?i)\b(d)(?#X)('ye)\b", r"(?i)\b(gim)(?#X)(me)\b",
        r"(?i)\b(gon)(?#X)(na)\b", r"(?i)\b(got)(?#X)(ta)\b", r"(?i)\b(lem)(?#X)(me)\b",
        r"(?i)\b(mor)(?#X)('n)\b", r"(?i)\b(wan)(?#X)(na)\s",
        r"(?i) ('t)(?#X)(is)\b", r"(?i) ('t)(?#X)(was)\b",
    )
]  # fmt: skip


def treebank_tokenize(text: str) -> list[str]:
    """NLTK 3.3's improved TreebankWordTokenizer on one sentence."""
    for regexp, sub in _STARTING_QUOTES:
        text = regexp.sub(sub, text)
    for regexp, sub in _PUNCTUATION:
        text = regexp.sub(sub, text)
    text = _PARENS_BRACKETS[0].sub(_PARENS_BRACKETS[1], text)
    text = _DOUBLE_DASHES[0].sub(_DOUBLE_DASHES[1], text)
    text = " " + text + " "
    for regexp, sub in _ENDING_QUOTES:
        text = regexp.sub(sub, text)
    for regexp in _CONTRACTIONS:
        text = regexp.sub(r" \1 \2 ", text)
    return text.split()


_TOKEN = re.compile(r"\S+")
_CLOSERS = "\"')]}»”’"


def _ends_sentence(tok: str) -> bool:
    core = tok.rstrip(_CLOSERS)
    if not core or core[-1] not in ".?!":
        return False
    if core[-1] in "?!":
        return True
    if core.endswith(".."):  # an ellipsis
        return False
    word = core[:-1].lower()
    if re.fullmatch(r"[^\W\d_]|\d+", word) or word in ABBREVIATIONS:
        return False
    return True


def sentences(text: str) -> list[str]:
    """Split ``text`` into sentences (Punkt's decisions on lower-cased captions, see the module doc)."""
    out, start = [], 0
    toks = list(_TOKEN.finditer(text))
    for k, m in enumerate(toks[:-1]):
        if _ends_sentence(m.group()):
            out.append(text[start : m.end()])
            start = toks[k + 1].start()
    out.append(text[start:])
    return [s for s in out if s.strip()]


def word_tokenize(text: str) -> list[str]:
    """``nltk.word_tokenize(text)`` (sentences, then the Treebank tokenizer on each)."""
    return [t for s in sentences(text) for t in treebank_tokenize(s)]
