"""The demo's drop flag, restricted to where a drop can mean something: object words (shape nouns).

Function words ("a", ",", "so") carry most of a caption's saliency swings at p > 0.99 (issue 22:
55% of the old flags, 54% at p > 0.99), so a drop there says nothing about hallucination. Here an
object word is flagged when its saliency falls below `alpha` x the mean of the previous `window`
object words' saliencies (SGRS's rule, applied within the token class); the first object word has
no history and is never flagged.
"""

from __future__ import annotations

from lvsal_nb.toy.scenes import PARTNER


def object_drops(
    words: list[str], saliency: list[float | None], alpha: float = 0.6, window: int = 5
) -> set[int]:
    """Indices of object words whose saliency drops below alpha x the mean of the last `window` ones.

    words, saliency: one entry per generated token (saliency None or NaN: not scored, skipped).
    """
    hist: list[float] = []
    out = set()
    for i, (w, s) in enumerate(zip(words, saliency)):
        if w.strip().lower() not in PARTNER or s is None or s != s:
            continue
        recent = hist[-window:]
        if recent and s < alpha * sum(recent) / len(recent):
            out.add(i)
        hist.append(float(s))
    return out
