"""pattern.en's ``singularize``, ported as pure Python: the singulariser of the original CHAIR code.

Rohrbach et al.'s ``chair.py`` (github.com/LisaAnne/Hallucination, utils/chair.py) runs
``from pattern.en import singularize`` on every token. This is that function and its word lists,
copied from Pattern 2.6 (github.com/clips/pattern, tag 2.6, pattern/text/en/inflect.py; BSD
license, (c) 2010 University of Antwerp, CLiPS; the Python 2 release the 2018 code ran on),
rules and quirks kept so CHAIR counts the same words:

- "bus" -> "bu", "minibus" -> "minibu", "ties" -> "ty", "canoes" -> "cano", "thieves" ->
  "thieve", "glass" -> "glas", "tennis" -> "tenni" (no vocabulary word: the original misses them);
- "grandchildren" -> "grandchild", "mouses" -> "mouse", "people" -> "person" (irregular endings);
- a token that is the END of an uninflected / uncountable word is returned unchanged
  (``x.endswith(w)``): "ice" (rice), "a" (tuna), "ears" (shears) ...;
- 2.6's missing commas glue list entries together ("wildebeest" "carp" -> "wildebeestcarp",
  "water" "cheese" -> "watercheese", "zombie" "bogie" -> "zombiebogie"), as Python does;
- "^pie" and "^tie" in the -ie list are compared literally (``endswith``), so never match.
"""

from __future__ import annotations

import functools
import re

__all__ = ["singularize"]

_RULES = [
    (r"(?i)(.)ae$", "\\1a"),
    (r"(?i)(.)itis$", "\\1itis"),
    (r"(?i)(.)eaux$", "\\1eau"),
    (r"(?i)(quiz)zes$", "\\1"),
    (r"(?i)(matr)ices$", "\\1ix"),
    (r"(?i)(ap|vert|ind)ices$", "\\1ex"),
    (r"(?i)^(ox)en", "\\1"),
    (r"(?i)(alias|status)es$", "\\1"),
    (r"(?i)([octop|vir])i$", "\\1us"),
    (r"(?i)(cris|ax|test)es$", "\\1is"),
    (r"(?i)(shoe)s$", "\\1"),
    (r"(?i)(o)es$", "\\1"),
    (r"(?i)(bus)es$", "\\1"),
    (r"(?i)([m|l])ice$", "\\1ouse"),
    (r"(?i)(x|ch|ss|sh)es$", "\\1"),
    (r"(?i)(m)ovies$", "\\1ovie"),
    (r"(?i)(.)ombies$", "\\1ombie"),
    (r"(?i)(s)eries$", "\\1eries"),
    (r"(?i)([^aeiouy]|qu)ies$", "\\1y"),
    # -f, -fe sometimes take -ves in the plural (e.g., lives, wolves).
    (r"([aeo]l)ves$", "\\1f"),
    (r"([^d]ea)ves$", "\\1f"),
    (r"arves$", "arf"),
    (r"erves$", "erve"),
    (r"([nlw]i)ves$", "\\1fe"),
    (r"(?i)([lr])ves$", "\\1f"),
    (r"([aeo])ves$", "\\1ve"),
    (r"(?i)(sive)s$", "\\1"),
    (r"(?i)(tive)s$", "\\1"),
    (r"(?i)(hive)s$", "\\1"),
    (r"(?i)([^f])ves$", "\\1fe"),
    # -ses suffixes.
    (r"(?i)(^analy)ses$", "\\1sis"),
    (r"(?i)((a)naly|(b)a|(d)iagno|(p)arenthe|(p)rogno|(s)ynop|(t)he)ses$", "\\1\\2sis"),
    (r"(?i)(.)opses$", "\\1opsis"),
    (r"(?i)(.)yses$", "\\1ysis"),
    (r"(?i)(h|d|r|o|n|b|cl|p)oses$", "\\1ose"),
    (r"(?i)(fruct|gluc|galact|lact|ket|malt|rib|sacchar|cellul)ose$", "\\1ose"),
    (r"(?i)(.)oses$", "\\1osis"),
    # -a
    (r"(?i)([ti])a$", "\\1um"),
    (r"(?i)(n)ews$", "\\1ews"),
    (r"(?i)s$", ""),
]
_RULES_RE = [(re.compile(r), s) for r, s in _RULES]

# fmt: off
# Pattern 2.6's lists, its missing commas kept (adjacent string literals concatenate).
_UNINFLECTED = {
    "bison", "debris", "headquarters", "pincers", "trout",
    "bream", "diabetes", "herpes", "pliers", "tuna",
    "breeches", "djinn", "high-jinks", "proceedings", "whiting",
    "britches", "eland", "homework", "rabies", "wildebeest"
    "carp", "elk", "innings", "salmon",
    "chassis", "flounder", "jackanapes", "scissors",
    "christmas", "gallows", "mackerel", "series",
    "clippers", "georgia", "measles", "shears",
    "cod", "graffiti", "mews", "species",
    "contretemps", "mumps", "swine",
    "corps", "news", "swiss",
}  # noqa: ISC001
_UNCOUNTABLE = {
    "advice", "equipment", "happiness", "luggage", "news", "software",
    "bread", "fruit", "information", "mathematics", "progress", "understanding",
    "butter", "furniture", "ketchup", "mayonnaise", "research", "water"
    "cheese", "garbage", "knowledge", "meat", "rice",
    "electricity", "gravel", "love", "mustard", "sand",
}  # noqa: ISC001
_IE = {
    "alergie", "cutie", "hoagie", "newbie", "softie", "veggie",
    "auntie", "doggie", "hottie", "nightie", "sortie", "weenie",
    "beanie", "eyrie", "indie", "oldie", "stoolie", "yuppie",
    "birdie", "freebie", "junkie", "^pie", "sweetie", "zombie"
    "bogie", "goonie", "laddie", "pixie", "techie",
    "bombie", "groupie", "laramie", "quickie", "^tie",
    "collie", "hankie", "lingerie", "reverie", "toughie",
    "cookie", "hippie", "meanie", "rookie", "valkyrie",
}  # noqa: ISC001
_IRREGULAR = {
    "atlantes": "atlas", "atlases": "atlas", "axes": "axe", "beeves": "beef", "brethren": "brother",
    "children": "child", "corpora": "corpus", "corpuses": "corpus", "ephemerides": "ephemeris",
    "feet": "foot", "ganglia": "ganglion", "geese": "goose", "genera": "genus", "genii": "genie",
    "graffiti": "graffito", "helves": "helve", "kine": "cow", "leaves": "leaf", "loaves": "loaf",
    "men": "man", "mongooses": "mongoose", "monies": "money", "moves": "move", "mythoi": "mythos",
    "numena": "numen", "occipita": "occiput", "octopodes": "octopus", "opera": "opus",
    "opuses": "opus", "our": "my", "oxen": "ox", "penes": "penis", "penises": "penis",
    "people": "person", "sexes": "sex", "soliloquies": "soliloquy", "teeth": "tooth",
    "testes": "testis", "trilbys": "trilby", "turves": "turf", "zoa": "zoon",
}
_PLURAL_PREPOSITIONS = {
    "about", "before", "during", "of", "till", "above", "behind", "except", "off", "to",
    "across", "below", "for", "on", "under", "after", "beneath", "from", "onto", "until",
    "among", "beside", "in", "out", "unto", "around", "besides", "into", "over", "upon",
    "at", "between", "near", "since", "with", "athwart", "betwixt", "beyond", "but", "by",
}
# fmt: on


@functools.lru_cache(maxsize=65536)
def singularize(word: str) -> str:
    """The singular of ``word`` by Pattern 2.6's rules (``pattern.en.singularize(word)``).

    Examples::

        >>> [singularize(w) for w in ("dogs", "people", "buses", "bus", "ties", "knives")]
        ['dog', 'person', 'bus', 'bu', 'ty', 'knife']
    """
    # Recurse compound words (e.g. mothers-in-law).
    if "-" in word:
        w = word.split("-")
        if len(w) > 1 and w[1] in _PLURAL_PREPOSITIONS:
            return singularize(w[0]) + "-" + "-".join(w[1:])
    # dogs' => dog's
    if word.endswith("'"):
        return singularize(word[:-1]) + "'s"
    w = word.lower()
    if any(x.endswith(w) for x in _UNINFLECTED) or any(x.endswith(w) for x in _UNCOUNTABLE):
        return word
    if any(w.endswith(x + "s") for x in _IE):
        return w
    for x, sing in _IRREGULAR.items():  # no key is a suffix of another: order does not matter
        if w.endswith(x):
            return re.sub("(?i)" + x + "$", sing, word)
    for suffix, inflection in _RULES_RE:
        m = suffix.search(word)
        if m:
            for k, g in enumerate(m.groups()):
                if g is None:  # an unmatched group is replaced by nothing
                    inflection = inflection.replace("\\" + str(k + 1), "")
            return suffix.sub(inflection, word)
    return word
