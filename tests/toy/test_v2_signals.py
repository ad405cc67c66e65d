"""Signals per object word, on a hand-made trace (values computed by hand)."""

from types import SimpleNamespace

import numpy as np
import pytest

from lvsal_nb.toy.signals import object_rows


def _step(token, position, row, saliency, prob=0.5):
    return SimpleNamespace(token=token, position=position, row=np.asarray(row, dtype=np.float32),
                           saliency=saliency, prob=prob)  # fmt: skip


def test_signals_by_hand():
    # positions: 0 system, 1-2 image, 3 prompt, output starts at 4.
    # words: "star"(4) "so"(5) ":"(6) "star"(7); step k's row is the query at 3 + k.
    spans = SimpleNamespace(output=(4, 8), image=(1, 3))
    recs = [
        _step(" star", 3, [[0.0, 0.6, 0.2, 0.2]], 0.2),
        _step(" so", 4, [[0.0, 0.0, 0.0, 0.0, 1.0]], 1.0),
        _step(" :", 5, [[0, 0, 0, 0, 0, 1.0]], 1.0),
        _step(" star", 6, [[0.1, 0.2, 0.2, 0.1, 0.3, 0.05, 0.05]], 0.12, prob=0.9),
    ]
    tr = SimpleNamespace(records=recs, spans=spans)
    rows = object_rows(tr, ["star"])
    assert [(r["part"], r["type"]) for r in rows] == [("list", "correct"), ("recap", "recap_correct")]
    first, recap = rows
    assert np.isnan(first["s_outputs"]) and np.isnan(first["s_source"])  # no output key yet; a list word
    assert first["s_image"] == pytest.approx(0.4) and first["img_share"] == pytest.approx(0.8)
    # recap row over keys 0..6: outputs 4..6 -> (0.3 + 0.05 + 0.05) / 3; image 1..2 -> 0.2 mean, 0.4 / 1.0
    assert recap["s_outputs"] == pytest.approx(0.4 / 3)
    assert recap["s_image"] == pytest.approx(0.2) and recap["img_share"] == pytest.approx(0.4)
    assert recap["s_source"] == pytest.approx(0.3)  # the source "star" is word 0 = key 4
    assert recap["s_J"] == 0.12 and recap["prob"] == 0.9 and not recap["drop"]
