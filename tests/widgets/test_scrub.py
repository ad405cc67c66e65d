"""The data the page scrubs from (scrub.py), the per-step colour scale and the candidates panel.

The JS (scrub.js) is checked in a real browser against row_columns.py in
tests/browser/test_viewer_scrub.py; here: the layout it reads, against the trace itself.
"""

import dataclasses

import numpy as np
import pytest

from lvsal_nb.errors import ConfigError
from lvsal_nb.palette import color_for, scale_label
from lvsal_nb.widgets import view
from lvsal_nb.widgets.candidates import candidates_html
from lvsal_nb.widgets.row_columns import context_cursor, context_positions
from lvsal_nb.widgets.scrub import scrub_columns

PROMPT = "describe this image ."


def _js_mean(flat, off, n_layers, n):
    """What scrub.js computes for the mean of layers: float32 adds in layer order, then a float32
    divide (Math.fround at each step)."""
    s = flat[off : off + n].astype(np.float32)
    for l in range(1, n_layers):
        s = (s + flat[off + l * n : off + (l + 1) * n]).astype(np.float32)
    return (s / np.float32(n_layers)).astype(np.float32)


def test_rows_hold_every_step_row_once(sgrs_trace):
    tr = sgrs_trace
    rows, steps, fields = scrub_columns(tr)
    flat = rows["flat"][0]
    L = len(tr.layers)
    assert flat.dtype == np.float32 and fields["n_layers"] == L
    assert flat.size == sum(L * (s.position + 1) for s in tr.records)  # each row once, nothing else
    assert steps["step"] == list(range(len(tr))) and steps["q"] == [s.position for s in tr.records]
    for li, layer in enumerate(tr.layers):
        m = tr.matrix(layer)  # [steps, positions], NaN past q: the trace's own view of its rows
        for t, s in enumerate(tr.records):
            n, off = s.position + 1, steps["offset"][t]
            got = flat[off + li * n : off + (li + 1) * n]
            assert np.array_equal(got, m[t, :n])
            assert np.isnan(m[t, n:]).all()
    for t, s in enumerate(tr.records):  # the mean the page computes is numpy's float32 mean
        n = s.position + 1
        assert np.array_equal(_js_mean(flat, steps["offset"][t], L, n), s.row.mean(0))


def test_per_step_fields_match_the_kernel_views(sgrs_trace):
    tr = sgrs_trace
    _, steps, fields = scrub_columns(tr)
    pos = context_positions(tr)
    assert fields["ctx_pos"] == pos and len(fields["ctx_tokens"]) == len(pos)
    a, b = tr.spans.image
    assert (fields["image_start"], fields["grid_rows"] * fields["grid_cols"]) == (a, b - a)
    for t, s in enumerate(tr.records):
        cur = context_cursor(tr, t)
        assert steps["ctx_x"][t] == cur["x0"][0] + 0.5
        j = tr.spans.context(s.position, tr.config.get("context", "text"))
        assert steps["j0"][t] == j[0] and j[-1] == s.position  # J = j0..q


def test_a_step_without_a_row_and_an_empty_trace(sgrs_trace):
    recs = list(sgrs_trace.records)
    recs[2] = dataclasses.replace(recs[2], row=None)
    tr = dataclasses.replace(sgrs_trace, records=recs)
    rows, steps, _ = scrub_columns(tr)
    n, off, L = recs[2].position + 1, steps["offset"][2], len(tr.layers)
    assert not rows["flat"][0][off : off + L * n].any()  # zeros, as columns.row shows it
    empty = dataclasses.replace(sgrs_trace, records=[])
    rows, steps, fields = scrub_columns(empty)
    assert rows["flat"][0].size == 0 and steps["q"] == [] and fields["grid_rows"] > 0


def test_the_rows_of_512_llava_sized_steps_ship_once_as_float32():
    """Rows of 621..1132 keys, 3 layers, 512 steps: 4 bytes per value, 5.4 MB once; a step change
    sends none of it (test_viewer.py::test_a_kernel_move_sends_only_the_cursor)."""
    import lvsal_nb as lv

    n_img, n_pre, n = 576, 45, 512
    recs = [
        lv.Step(step=t, position=n_pre + n_img + t - 1, token_id=1, token="a", prob=0.5, logprob=-0.7,
                saliency=0.1, row=np.full((3, n_pre + n_img + t), 0.5, np.float32))
        for t in range(n)
    ]  # fmt: skip
    total = n_pre + n_img + n
    spans = lv.Spans(
        system=(0, 5), image=(5, 5 + n_img), prompt=(5 + n_img, n_pre + n_img), output=(621, total)
    )
    tr = lv.Trace(records=recs, token_ids=[1] * total, tokens=["a"] * total, spans=spans,
                  config={"layers": [6, 7, 8]}, image_grid=(24, 24))  # fmt: skip
    rows, _, _ = scrub_columns(tr)
    nbytes = rows["flat"][0].nbytes
    assert nbytes == 4 * 3 * (512 * 621 + 511 * 512 // 2) == 5_385_216  # sum of 621 + t, t < 512


def test_per_step_scale_recolours_the_heatmap_and_says_so(sgrs_trace, store):
    tr = sgrs_trace
    v = view(tr, store=store)
    v.state.set_step(5)
    a, b = tr.spans.image
    vals = tr.records[5].row.mean(0)[a:b].astype(float)
    trace_top = max(float(np.nanmax(s.row.mean(0)[a:b])) for s in tr.records)
    bar = next(r for r in v.figures["image"].below if hasattr(r, "color_mapper"))
    v._repr_mimebundle_()  # the kernel-side drawing (a new page view starts from it)
    assert v.sources["image"].data["fill"] == [color_for(x, 0.0, trace_top) for x in vals]
    assert bar.title == scale_label("saliency", 0.0, trace_top, "per trace")
    v.scale.value = "step"  # the dropdown
    assert v.state.scale == "step" and v.cursor.scale == "step"
    v._repr_mimebundle_()
    assert v.sources["image"].data["fill"] == [color_for(x, 0.0, vals.max()) for x in vals]
    assert bar.title == scale_label("saliency", 0.0, vals.max(), "per step") and "per step" in bar.title
    assert bar.color_mapper.high == pytest.approx(vals.max())
    with pytest.raises(ConfigError, match="scale must be one of .*per step.*got 'log'"):
        v.state.set_scale("log")


def test_greedy_candidates_show_the_token_not_empty_quotes(llava_session, image, store):
    """Issue 19 item 8: greedy traces record candidates with token "" (no alternatives scored)."""
    tr = llava_session.trace(image, PROMPT, max_new_tokens=3, seed=0)
    s = tr.records[1]
    assert [c.token for c in s.candidates] == [""]  # what the trace holds
    v = view(tr, store=store)
    v.state.set_step(1)
    text = v.cands.value
    assert "greedy: no alternatives scored" in text
    assert f"<b>{s.token.strip() or '␣'}</b>" in text and '""' not in text
    # K scored candidates of a plain decode: the emitted one by its text, the others by id
    extra = dataclasses.replace(s.candidates[0], token_id=7, accepted=False, prob=0.01)
    two = dataclasses.replace(s, candidates=[s.candidates[0], extra])
    html = candidates_html(two)
    assert "id 7" in html and "scored" in html and "no alternatives" not in html


def test_sgrs_candidates_table(sgrs_trace):
    s = next(
        s for s in sgrs_trace.records if any(c.round is not None and not c.accepted for c in s.candidates)
    )
    html = candidates_html(s)
    rej = [c for c in s.candidates if c.round is not None and not c.accepted]
    emitted = "fallback (max S)" if s.decision == "fallback" else "accepted"
    assert html.count("rejected") == len(rej) and html.count(emitted) == 1
    assert all(c.token.strip() in html for c in rej if c.token.strip())


def test_growing_live_trace_sends_large_rows_at_most_once_a_second(sgrs_trace, store, monkeypatch):
    """Re-sending every row per new step is quadratic; while decoding, large rows wait (<= 1 s) and
    the kernel draws the newest step's views meanwhile; the final trace sends them all."""
    from types import SimpleNamespace

    from lvsal_nb.widgets import viewer as viewer_mod

    tr = sgrs_trace
    part = dataclasses.replace(tr, records=tr.records[:4])
    v = view(part, store=store)
    v.live_trace = SimpleNamespace(running=True)  # what a LiveTrace looks like while it decodes
    monkeypatch.setattr(viewer_mod, "SMALL_ROWS", 0)  # every size counts as large
    sent_size = v.sources["rows"].data["flat"][0].size
    v.state.set_trace(dataclasses.replace(tr, records=tr.records[:7]))  # within 1 s of the first
    assert v.sources["rows"].data["flat"][0].size == sent_size and len(v.sources["steps"].data["q"]) == 4
    assert v.state.step == 6 and v.cursor.goto == 6  # followed the newest step ...
    a, b = tr.spans.image
    assert np.allclose(v.sources["image"].data["value"], tr.records[6].row.mean(0)[a:b])  # ... drawn here
    monkeypatch.setattr(viewer_mod, "ROWS_EVERY_S", 0.0)
    v.state.set_trace(dataclasses.replace(tr, records=tr.records[:8]))  # time is up: all rows go
    assert len(v.sources["steps"].data["q"]) == 8
    v.live_trace.running = False
    monkeypatch.setattr(viewer_mod, "ROWS_EVERY_S", 1e9)
    v.state.set_trace(tr)  # done: always sent
    assert v.sources["rows"].data["flat"][0].size == scrub_columns(tr)[0]["flat"][0].size
