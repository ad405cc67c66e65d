"""CHAIR (Rohrbach et al. 2018, "Object Hallucination in Image Captioning"), as its public code does it.

Per caption: tokenise the lower-cased text, singularise each token, join the listed two-word
phrases into one token, apply the special cases, keep the tokens that are one of the 80 COCO
categories or a synonym, and map each to its category. A mention whose category is not among
the image's ground-truth objects is hallucinated. Ground truth of an image = its COCO instance
categories ∪ the objects its reference captions mention (found the same way).

Reproduced from the original ``chair.py`` (github.com/LisaAnne/Hallucination, utils/chair.py):

- the synonym table (``data/coco_synonyms.txt``, its quirks kept);
- two-word phrases, matched greedily left to right before single words: ``DOUBLE_WORDS``
  ("motor bike", "teddy bear", "hot dog", "cell phone", ...). Phrases that are not objects
  ("home plate", "train track") are still joined, so their parts ("plate", "train") do not fire;
- "baby X" / "adult X" for X in ``ANIMAL_WORDS`` is the animal X, not a person + X
  ("baby" and "adult" are synonyms of person); "baby animal" / "adult cub" become "animal" /
  "cub", which are no COCO object, so nothing fires;
- "passenger X" for X in ``VEHICLE_WORDS`` ("jet", "train") is the vehicle, not a person;
- "bow tie" is "tie"; "toilet seat" is "toilet"; and when a caption mentions "toilet" anywhere,
  every "seat" in it is dropped (the seat of a toilet is no chair);
- every mention counts for CHAIR_I (repeats included); recall and average length as the
  OPERA version of the script (covered / all ground-truth objects; length = number of tokens,
  punctuation included, after joining two-word phrases).

Two word-handling modes (``compat``):

- ``"original"`` (default) reproduces the original's word handling exactly, quirks included, so
  scores compare with published CHAIR numbers: NLTK's ``word_tokenize`` (:mod:`.tokenize`, a
  pure-Python port; "...", "couch/sofa" one token, sentence-final periods split off) and Pattern
  2.6's ``singularize`` (:mod:`.singular`, ported) on every token, so "bus", "minibus", "ties",
  "canoes", "thieves" are missed ("bu", "ty", ...), "tennis racket" is never joined ("tenni racket";
  "racket" alone still counts), while "grandchildren", "mouses" are found; synonyms split on ", "
  so the entries " motor bike" and " cheesecake" (double spaces in the file) never match.
- ``"fixed"``, with these corrections:
  1. singularisation: a token that is a vocabulary word stays as it is ("bus", "minibus",
     "tennis", "glass"); otherwise Pattern's singular when that is a vocabulary word
     ("grandchildren", "mouses", "people"), else inflect's when that is one ("ties" -> "tie",
     "canoes" -> "canoe", "thieves" -> "thief"), else Pattern's;
  2. every synonym entry is stripped, so "motor bike" and "cheesecake" count;
  3. tokens are words (hyphenated words whole), clitics ("'s") and every other non-space
     character on its own: "couch/sofa" is "couch", "/", "sofa"; "..." is three "." tokens; a
     word's period is split off everywhere ("a dog.the cat" finds dog), not only at a sentence end.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import pandas as pd

from lvsal_nb.errors import ConfigError
from lvsal_nb.eval.coco import AnnotationsLike, image_captions, image_objects
from lvsal_nb.eval.scores import chair_scores
from lvsal_nb.eval.singular import singularize
from lvsal_nb.eval.tokenize import word_tokenize

__all__ = ["Chair", "Mention", "load_synonyms", "COMPAT", "DOUBLE_WORDS", "ANIMAL_WORDS", "VEHICLE_WORDS"]

COMPAT = ("original", "fixed")

SYNONYMS_FILE = Path(__file__).with_name("data") / "coco_synonyms.txt"

# The original's lists, verbatim (duplicates dropped).
DOUBLE_WORDS = (
    "motor bike", "motor cycle", "air plane", "traffic light", "street light", "traffic signal",
    "stop light", "fire hydrant", "stop sign", "parking meter", "suit case", "sports ball",
    "baseball bat", "baseball glove", "tennis racket", "wine glass", "hot dog", "cell phone",
    "mobile phone", "teddy bear", "hair drier", "potted plant", "bow tie", "laptop computer",
    "stove top oven", "home plate", "train track",
)  # fmt: skip
ANIMAL_WORDS = (
    "bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "animal", "cub",
)  # fmt: skip
VEHICLE_WORDS = ("jet", "train")

# Words (with hyphenated compounds kept whole, as NLTK does), clitics like "'s", any other symbol.
_TOKEN = re.compile(r"[^\W_]+(?:-[^\W_]+)*|'[^\W_]+|\S")


@dataclass(frozen=True)
class Mention:
    """One object mention in a caption.

    Attributes:
        text (str): the caption's characters ``caption[start:end]``, e.g. "baby elephants".
        word (str): the vocabulary word it matched, e.g. "elephant", "motor bike", "kitten".
        object (str): its COCO category, e.g. "elephant", "motorcycle", "cat".
        start (int): character offset where it begins.
        end (int): character offset where it ends (half-open span).
    """

    text: str
    word: str
    object: str
    start: int
    end: int


def load_synonyms(path: str | PathLike | None = None, compat: str = "fixed") -> dict[str, list[str]]:
    """Read a synonym table: ``{category: [category, synonym, ...]}`` in file order.

    Args:
        path (str | PathLike | None): a file in the format of ``data/coco_synonyms.txt``.
            Default: None, the shipped CHAIR table.
        compat (str): "fixed" (default: entries stripped) or "original" (split on ", " as the
            original, so an entry after a double space keeps its leading space).
    """
    return {k: list(v) for k, v in _read_synonyms(str(path or SYNONYMS_FILE), _check_compat(compat)).items()}


def _check_compat(compat: str) -> str:
    if compat not in COMPAT:
        raise ConfigError(
            f"unknown CHAIR compat mode {compat!r}; choose 'original' (the reference code's word "
            "handling, quirks included) or 'fixed' (its corrections, listed in lvsal_nb.eval.chair)."
        )
    return compat


@functools.lru_cache(maxsize=8)
def _read_synonyms(path: str, compat: str = "fixed") -> dict[str, tuple[str, ...]]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"synonym file {path!r} does not exist; pass None to use the shipped CHAIR table.")
    table: dict[str, tuple[str, ...]] = {}
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if compat == "original":  # chair.py: s.strip().split(', ')
            names = tuple(line.strip().split(", "))
        else:
            names = tuple(s.strip() for s in line.split(",") if s.strip())
        if names[0] in table:
            raise ConfigError(
                f"{path}:{n}: category {names[0]!r} appears twice; give each category one line."
            )
        table[names[0]] = names
    if not table:
        raise ConfigError(
            f"synonym file {path!r} holds no category; write one 'category, synonym, ...' per line."
        )
    return table


@functools.lru_cache(maxsize=1)
def _inflect_engine():
    try:
        import inflect
    except ImportError as e:  # a dev extra today; the error says how to get it
        raise ConfigError("CHAIR singularises words with the 'inflect' package: pip install inflect") from e
    return inflect.engine()


@functools.lru_cache(maxsize=65536)
def _inflect_singular(token: str) -> str:
    if not token[0].isalpha():
        return token
    out = _inflect_engine().singular_noun(token)
    return out if out else token


class _Vocabulary:
    """Synonym table + the original's two-word and special-case rules, in one compat mode."""

    def __init__(self, table: Mapping[str, tuple[str, ...]], compat: str = "original"):
        self.compat = compat
        self.categories = tuple(table)
        self.inverse: dict[str, str] = {}
        for canonical, names in table.items():
            for s in names:
                # The original lets a later line win; a word under two categories is a table error here.
                if self.inverse.get(s, canonical) != canonical:
                    raise ConfigError(
                        f"synonym {s!r} is listed under {self.inverse[s]!r} and {canonical!r}; keep one."
                    )
                self.inverse[s] = canonical
        self.double = {w: w for w in DOUBLE_WORDS}
        for a in ANIMAL_WORDS:
            self.double[f"baby {a}"] = a
            self.double[f"adult {a}"] = a
        for v in VEHICLE_WORDS:
            self.double[f"passenger {v}"] = v
        self.double["bow tie"] = "tie"
        self.double["toilet seat"] = "toilet"
        self.double["wine glas"] = "wine glass"  # pattern.en singularised "glass" to "glas"
        # fixed: tokens never singularised, as they are vocabulary words already.
        self.keep = {t for phrase in [*self.inverse, *self.double] for t in phrase.split()}

    def _tokens(self, text: str) -> list[tuple[str, int, int]]:
        """(singular token, start, end) of the lower-cased text, by the mode's tokenizer."""
        low = text.lower()
        if self.compat == "original":
            out, pos = [], 0
            for t in word_tokenize(low):
                at = low.find(t, pos)  # Treebank rewrites quotes ("" -> ``): those get an empty span
                start, end = (at, at + len(t)) if at >= 0 else (pos, pos)
                pos = max(pos, end)
                out.append((singularize(t), start, end))
            return out
        return [(self._fixed_singular(m.group()), m.start(), m.end()) for m in _TOKEN.finditer(low)]

    def _fixed_singular(self, t: str) -> str:
        if t in self.keep:
            return t
        p = singularize(t)
        if p in self.keep:
            return p
        i = _inflect_singular(t)
        return i if i in self.keep else p

    def analyse(self, text: str) -> tuple[list[Mention], int]:
        """Mentions in ``text`` and its length in tokens after joining two-word phrases."""
        toks = self._tokens(text)
        merged = []
        i = 0
        while i < len(toks):
            if i + 1 < len(toks):
                pair = f"{toks[i][0]} {toks[i + 1][0]}"
                if pair in self.double:
                    merged.append((self.double[pair], toks[i][1], toks[i + 1][2]))
                    i += 2
                    continue
            merged.append(toks[i])
            i += 1
        words = [w for w, _, _ in merged]
        if "toilet" in words and "seat" in words:
            kept = [t for t in merged if t[0] != "seat"]
        else:
            kept = merged
        mentions = [Mention(text[s:e], w, self.inverse[w], s, e) for w, s, e in kept if w in self.inverse]
        return mentions, len(merged)

    def canonical(self, name: str) -> str:
        key = str(name).strip().lower()
        if key in self.inverse:
            return self.inverse[key]
        if " " not in key and key:
            for sing in (singularize(key), _inflect_singular(key)):
                if sing in self.inverse:
                    return self.inverse[sing]
        raise ConfigError(
            f"{name!r} is not a COCO category or one of its CHAIR synonyms; use a name such as "
            f"{', '.join(repr(c) for c in self.categories[:4])} ... "
            "(all in lvsal_nb/eval/data/coco_synonyms.txt)."
        )


@functools.lru_cache(maxsize=8)
def _vocabulary(path: str, compat: str = "original") -> _Vocabulary:
    return _Vocabulary(_read_synonyms(path, compat), compat)


class Chair:
    """The CHAIR evaluator: ground-truth objects per image and the caption parser.

    Args:
        truth (Mapping[Hashable, Iterable[str]]): image id -> objects in the image, as COCO
            category names or synonyms ("puppy" is stored as "dog").
        synonyms (str | PathLike | None): synonym table file. Default: None, the CHAIR table.
        compat (str): "original" (default: the reference code's word handling, quirks included)
            or "fixed" (its corrections); see the module doc for each difference.

    Examples::

        >>> ch = Chair({1: {"dog", "person"}})
        >>> ch.caption_objects("A man walks two puppies past a fire hydrant.")
        [('man', 'person'), ('puppy', 'dog'), ('fire hydrant', 'fire hydrant')]
        >>> summary, per_caption = ch.evaluate({1: "A man walks two puppies past a fire hydrant."})
        >>> summary["chair_i"]  # 1 hallucinated mention (hydrant) of 3
        0.3333333333333333
    """

    def __init__(
        self,
        truth: Mapping[Hashable, Iterable[str]],
        *,
        synonyms: str | PathLike | None = None,
        compat: str = "original",
    ):
        self._vocab = _vocabulary(str(synonyms or SYNONYMS_FILE), _check_compat(compat))
        if not isinstance(truth, Mapping):
            raise ConfigError(
                f"truth must map image id -> objects, got {type(truth).__name__}; "
                "use Chair.from_coco(instances, captions) to read COCO files."
            )
        self._truth: dict[Hashable, frozenset[str]] = {}
        for image_id, objs in truth.items():
            if isinstance(objs, str):
                raise ConfigError(
                    f"truth[{image_id!r}] is the string {objs!r}; pass a set such as {{{objs!r}}}."
                )
            self._truth[image_id] = frozenset(self._vocab.canonical(o) for o in objs)

    @classmethod
    def from_coco(
        cls,
        instances: AnnotationsLike,
        captions: AnnotationsLike | None = None,
        *,
        image_ids: Iterable[Hashable] | None = None,
        synonyms: str | PathLike | None = None,
        compat: str = "original",
    ) -> Chair:
        """Ground truth from COCO files: instance categories ∪ objects in reference captions.

        Args:
            instances (Mapping | str | PathLike): COCO instances dict or JSON path
                (e.g. ``instances_val2014.json``).
            captions (Mapping | str | PathLike | None): COCO captions dict or JSON path
                (e.g. ``captions_val2014.json``). Default: None (instances only; CHAIR proper uses both).
            image_ids (Iterable | None): keep only these images (faster on full COCO). Default: None, all.
            synonyms (str | PathLike | None): synonym table file. Default: None, the CHAIR table.
            compat (str): "original" (default) or "fixed": how caption words are read (module doc).
        """
        vocab = _vocabulary(str(synonyms or SYNONYMS_FILE), _check_compat(compat))
        keep = None if image_ids is None else set(image_ids)
        truth: dict[Hashable, set[str]] = {}
        for image_id, names in image_objects(instances).items():
            if keep is None or image_id in keep:
                truth[image_id] = {vocab.canonical(n) for n in names}
        if captions is not None:
            for image_id, texts in image_captions(captions).items():
                if keep is None or image_id in keep:
                    found = truth.setdefault(image_id, set())
                    for t in texts:
                        found.update(m.object for m in vocab.analyse(t)[0])
        if keep is not None and (absent := keep - truth.keys()):
            raise ConfigError(
                f"{len(absent)} requested image id(s) are in neither file, e.g. {next(iter(absent))!r}; "
                "check the ids (COCO ids are ints) or the annotation files."
            )
        return cls(truth, synonyms=synonyms, compat=compat)

    @property
    def truth(self) -> dict[Hashable, frozenset[str]]:
        """image id -> its ground-truth COCO categories (a copy)."""
        return dict(self._truth)

    @property
    def compat(self) -> str:
        """The word-handling mode: "original" or "fixed"."""
        return self._vocab.compat

    @property
    def categories(self) -> tuple[str, ...]:
        """The category names of the synonym table, in file order (the 80 COCO categories)."""
        return self._vocab.categories

    def mentions(self, text: str) -> list[Mention]:
        """Every object mention in ``text``, in order, repeats included, with character spans."""
        if not isinstance(text, str):
            raise ConfigError(
                f"captions must be str, got {type(text).__name__}; decode the model output first."
            )
        return self._vocab.analyse(text)[0]

    def caption_objects(self, text: str) -> list[tuple[str, str]]:
        """``(word, category)`` for each mention in ``text``, in order, repeats included.

        ``word`` is the matched vocabulary word after singularising and joining two-word
        phrases ("kitten", "motor bike"), ``category`` its COCO category ("cat", "motorcycle").
        """
        return [(m.word, m.object) for m in self.mentions(text)]

    def evaluate(
        self, captions: Mapping[Hashable, str] | Iterable[tuple[Hashable, str]]
    ) -> tuple[dict, pd.DataFrame]:
        """Score generated captions.

        Args:
            captions (Mapping[Hashable, str] | Iterable[tuple[Hashable, str]]): image id -> caption,
                or (image id, caption) pairs when an image has several captions.

        Returns:
            tuple[dict, pandas.DataFrame]: the summary of :func:`lvsal_nb.eval.scores.chair_scores`
            (``chair_s``, ``chair_i``, ``recall``, ``avg_len`` in tokens, counts), and one row per
            caption with columns ``image_id``, ``caption``, ``n_words`` (tokens, punctuation
            included, two-word phrases as one, as the original's length), ``objects`` (categories
            mentioned, in order with repeats), ``hallucinated`` (those not in the image, in order
            with repeats), ``covered`` (sorted ground-truth categories mentioned), ``gt_objects``
            (sorted), ``spans`` and ``hallucinated_spans`` (``(start, end)`` character offsets of
            each mention / each hallucinated mention, for highlighting), ``mentions`` (a dict per
            mention: text, word, object, start, end, hallucinated), ``chair_s`` (0/1) and
            ``chair_i`` (0.0 when nothing is mentioned).
        """
        pairs = list(captions.items()) if isinstance(captions, Mapping) else list(captions)
        if not pairs:
            raise ConfigError("evaluate got no captions; pass {image_id: caption, ...}.")
        rows, mentioned, truths, lengths = [], [], [], []
        for k, pair in enumerate(pairs):
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise ConfigError(f"captions[{k}] is {pair!r}; pass a dict or (image_id, caption) pairs.")
            image_id, text = pair
            gt = self._lookup(image_id)
            if not isinstance(text, str):
                raise ConfigError(f"the caption of image {image_id!r} is a {type(text).__name__}, not str.")
            ms, n_words = self._vocab.analyse(text)
            objs = [m.object for m in ms]
            bad = [m.object not in gt for m in ms]
            mentioned.append(objs)
            truths.append(gt)
            lengths.append(n_words)
            rows.append(
                {
                    "image_id": image_id,
                    "caption": text,
                    "n_words": n_words,
                    "objects": objs,
                    "hallucinated": [o for o, b in zip(objs, bad) if b],
                    "covered": sorted(gt & set(objs)),
                    "gt_objects": sorted(gt),
                    "spans": [(m.start, m.end) for m in ms],
                    "hallucinated_spans": [(m.start, m.end) for m, b in zip(ms, bad) if b],
                    "mentions": [
                        {"text": m.text, "word": m.word, "object": m.object, "start": m.start, "end": m.end,
                         "hallucinated": b}
                        for m, b in zip(ms, bad)
                    ],
                    "chair_s": int(any(bad)),
                    "chair_i": sum(bad) / len(bad) if bad else 0.0,
                }
            )  # fmt: skip
        return chair_scores(mentioned, truths, lengths), pd.DataFrame(rows)

    def _lookup(self, image_id: Hashable) -> frozenset[str]:
        if image_id in self._truth:
            return self._truth[image_id]
        hint = ""
        if isinstance(image_id, str) and image_id.strip().isdigit() and int(image_id) in self._truth:
            hint = f" The ground truth has the int id {int(image_id)}: convert the keys with int()."
        elif isinstance(image_id, int) and str(image_id) in self._truth:
            hint = f" The ground truth has the str id {str(image_id)!r}: convert the keys with str()."
        raise ConfigError(
            f"image id {image_id!r} has no ground truth ({len(self._truth)} images known).{hint} "
            "Build the Chair from annotations that include this image."
        )
