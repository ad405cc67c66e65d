"""The numbers each figure shows, from the trace (no widgets)."""

import math

import numpy as np
import pytest

from lvsal_nb.widgets import columns as C
from lvsal_nb.widgets import row_columns as R
from lvsal_nb.widgets.state import Mark


def test_display_makes_tokenizer_markers_and_blanks_visible():
    assert C.display(" moon") == "moon"
    assert C.display("\u2581moon") == "moon"
    assert C.display("\n") == "⏎"
    assert C.display(" ") == "␣"


def test_colors_are_viridis_on_a_fixed_scale_from_zero():
    cols = C.colors([0.0, 0.5, float("nan"), 0.25])
    # [0, max]: 0 is the darkest Viridis colour, the max the brightest, 0.25 = index int(0.5 * 256)
    assert cols[0] == "#440154" and cols[1] == "#FDE724" and cols[2] == "#BDBDBD"
    assert cols[3] == C.PALETTE[128]
    # a stated scale: 0.5 on [0, 1] is the middle, whatever the other values are
    assert C.colors([0.5, 0.1], 0.0, 1.0)[0] == C.PALETTE[128]


def test_strip_layout_wraps_and_lists_rejected_candidates(sgrs_trace):
    tr = sgrs_trace
    cells, cands = C.strip(tr, None, {}, width=30)
    n = len(tr.records)
    assert cells["step"] == list(range(n))
    assert cells["saliency"] == [s.saliency for s in tr.records]
    n_rejected = [sum(1 for c in s.candidates if c.round is not None and not c.accepted) for s in tr.records]
    assert len(cands["text"]) == sum(n_rejected) > 0
    # every cell lies inside the line width, and lines go down one after another
    left = np.array(cells["x"]) - np.array(cells["w"]) / 2
    right = np.array(cells["x"]) + np.array(cells["w"]) / 2
    assert left.min() >= 0 and right.max() <= 30
    ys = sorted(set(cells["y"]), reverse=True)
    assert len(ys) > 1 and ys[0] == 0
    line_h = 1 + C.CAND_LINE * max(n_rejected)
    assert np.allclose(np.diff(ys), -line_h)


def test_strip_layer_choice_and_marks(sgrs_trace):
    tr = sgrs_trace
    layer = tr.layers[-1]
    cells, _ = C.strip(tr, layer, {2: Mark("hallucinated")})
    assert cells["saliency"] == [s.layer_scores[-1] for s in tr.records]
    assert cells["mark"][2] == "hallucinated" and cells["mark_alpha"][2] == 1.0
    assert cells["mark_color"][2] == C.MARK_COLORS["hallucinated"]
    assert cells["mark_alpha"][1] == 0.0
    # the strip's scale is [0, max over the trace]: the top step is the brightest colour
    sal = cells["saliency"]
    top = int(np.nanargmax(sal))
    assert cells["fill"][top] == "#FDE724" and cells["text_color"][top] == "#000000"


def test_strip_unsure_mark_is_dashed_and_text_is_white_on_dark_cells(sgrs_trace):
    cells, _ = C.strip(sgrs_trace, None, {1: Mark("unsure")})
    assert cells["mark_color"][1] == "#FF7F0E" and cells["mark_dash"][1] == "dashed"
    hi = max(cells["saliency"])
    for v, tc in zip(cells["saliency"], cells["text_color"]):
        assert tc == ("#FFFFFF" if v / hi * 256 < 128 else "#000000")


def test_image_patches_are_the_image_part_of_the_row(sgrs_trace):
    tr = sgrs_trace
    rows, cols = tr.image_grid
    a, b = tr.spans.image
    step = 4
    d = R.image_patches(tr, step, None)
    expect = tr.records[step].row.mean(0)[a:b]
    assert np.allclose(d["value"], expect[: rows * cols])
    # patch k sits at grid row k // cols, column k % cols, drawn with y pointing up
    k = cols + 1
    assert (d["r"][k], d["c"][k], d["x"][k], d["y"][k]) == (1, 1, 1.5, rows - 1.5)
    # per-trace scale [0, max of the image part over every step], the same for every step
    hi = max(float(s.row.mean(0)[a : a + rows * cols].max()) for s in tr.records)
    assert R.image_top(tr, None) == pytest.approx(hi)
    i = int(np.argmax(expect[: rows * cols]))
    assert d["fill"][i] == C.PALETTE[min(255, int(expect[i] / hi * 256))]
    assert set(d["alpha"]) == {R.HEAT_ALPHA}  # one alpha: the colour alone carries the value


def test_context_bars_cover_text_positions_and_stop_at_q(sgrs_trace):
    tr = sgrs_trace
    step, layer = 3, tr.layers[0]
    d = R.context_bars(tr, step, layer)
    a, b = tr.spans.image
    assert d["position"] == [p for p in range(len(tr.tokens)) if not a <= p < b]
    q = tr.records[step].position
    row = tr.records[step].row[0]
    for p, v in zip(d["position"], d["value"]):
        assert v == (pytest.approx(float(row[p])) if p <= q else 0.0)
    cur = R.context_cursor(tr, step)
    assert cur["position"] == [q + 1] and d["position"][int(cur["x0"][0] + 0.5)] == q + 1


def test_curve_follows_layer_and_rejected_points(sgrs_trace):
    tr = sgrs_trace
    mean = C.curve(tr, None, {})
    assert mean["saliency"] == [s.saliency for s in tr.records]
    assert mean["tau"] == [s.tau for s in tr.records]
    l1 = C.curve(tr, tr.layers[1], {})
    assert l1["saliency"] == [s.layer_scores[1] for s in tr.records]
    rej = C.curve_rejected(tr, None)
    expect = [
        (s.step, c.saliency)
        for s in tr.records
        for c in s.candidates
        if c.round is not None and not c.accepted
    ]
    assert sorted(zip(rej["step"], rej["saliency"])) == sorted(expect)
    assert C.curve_cursor(3, 10) == {"x": [3]} and C.curve_cursor(0, 0) == {"x": []}


def test_score_is_nan_without_saliency(sgrs_trace):
    s = sgrs_trace.records[0]
    blank = type(s)(step=0, position=s.position, token_id=1, token="x", prob=1.0, logprob=0.0, saliency=None)
    assert math.isnan(C.score(blank, sgrs_trace.layers, None))
