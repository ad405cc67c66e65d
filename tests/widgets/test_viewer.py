"""TraceViewer driven through its widgets: scrubbing, layers, taps, marks, files."""

import numpy as np
import pytest
from jupyter_bokeh import BokehModel

import lvsal_nb as lv
from lvsal_nb.annotations import MarkStore
from lvsal_nb.errors import ConfigError
from lvsal_nb.widgets import TraceViewer, view
from lvsal_nb.widgets import columns as C
from lvsal_nb.widgets.columns import MARK_COLORS


def _page_sets(v, attr: str, value, model=None) -> list[dict]:
    """What the browser sends when scrub.js writes `model.attr` (default: the viewer's cursor):
    a jupyter_bokeh "jsevent" ModelChanged. Returns the messages the kernel sent back."""
    sent = []
    v.bokeh.send = lambda content, buffers=None: sent.append(content)
    model = v.cursor if model is None else model
    msg = {"event": "jsevent", "kind": "ModelChanged", "model": {"id": model.id}, "attr": attr, "new": value}
    v.bokeh._sync_model(v.bokeh, msg, [])
    return sent


def _check_row_views(v, tr, step):
    src = v.sources
    assert src["strip_cursor"].data["step"] == [step]
    i = src["strip"].data["step"].index(step)
    assert src["strip_cursor"].data["x"] == [src["strip"].data["x"][i]]
    assert src["curve_cursor"].data["x"] == [step]
    assert src["context_cursor"].data["position"] == [tr.records[step].position + 1]
    a, b = tr.spans.image
    assert np.allclose(src["image"].data["value"], tr.records[step].row.mean(0)[a:b])
    q = tr.records[step].position
    vals = dict(zip(src["context"].data["position"], src["context"].data["value"]))
    assert vals[q] == pytest.approx(float(tr.records[step].row.mean(0)[q])) and vals.get(q + 1, 0.0) == 0.0


def test_scrubbing_moves_the_cursor_in_every_view(sgrs_trace, store):
    """The slider (a kernel-side move) asks the page to go there (cursor.goto); the page's step
    comes back as cursor.step; a new view (the snapshot) starts with the row views of the step."""
    tr = sgrs_trace
    v = view(tr, store=store)
    assert v.slider.max == len(tr) - 1 and v.play.max == len(tr) - 1
    for step in (6, 3, 0):
        v.slider.value = step
        assert v.state.step == step and v.cursor.goto == step
        assert f"step <b>{step}</b>" in v.info.value
        _page_sets(v, "goto", -1)  # what scrub.js does once it has applied a goto
        v._repr_mimebundle_()
        _check_row_views(v, tr, step)
        assert v.cursor.step == step


def test_a_step_the_page_moved_to_reaches_the_state_without_redrawing(sgrs_trace, store):
    """Issue 19 item 3: ←/→ and taps move the cursor in the browser; the kernel only learns the
    step (state, slider, info line, candidates, mark panel) and sends no figure data back."""
    tr = sgrs_trace
    v = view(tr, store=store)
    _page_sets(v, "moved_by", "user")
    sent = _page_sets(v, "shown", 7)
    assert v.state.step == 7 and v.slider.value == 7 and not v.state.follow
    assert "step <b>7</b>" in v.info.value and "step 7 " in v.marker.info.value
    assert v.cursor.goto == -1  # no echo: the page is there already
    assert [c for c in sent if c.get("msg") == "patch"] == []  # nothing went back to the page
    v.state.mark("unsure")
    assert v.state.marks[7].label == "unsure"  # the mark lands on the step the page shows


def test_state_changes_reach_the_widgets(sgrs_trace, store):
    v = view(sgrs_trace, store=store)
    v.state.set_step(5)
    assert v.slider.value == 5
    v.state.set_step(999)  # clamped
    assert v.slider.value == len(sgrs_trace) - 1


def test_layer_selection_changes_the_curve_and_rows(sgrs_trace, store):
    tr = sgrs_trace
    v = view(tr, store=store)
    v.slider.value = 2
    assert v.sources["curve"].data["saliency"] == [s.saliency for s in tr.records]
    layer = tr.layers[1]
    v.layer.value = layer
    assert v.state.layer == layer
    assert v.sources["curve"].data["saliency"] == [s.layer_scores[1] for s in tr.records]
    assert v.sources["strip"].data["saliency"] == [s.layer_scores[1] for s in tr.records]
    assert v.cursor.layer == 1  # the page redraws the row views of layer index 1
    v._repr_mimebundle_()
    a, b = tr.spans.image
    assert np.allclose(v.sources["image"].data["value"], tr.records[2].row[1][a:b])
    v.state.set_layer(None)
    assert v.cursor.layer == -1
    assert v.layer.value == "mean"
    with pytest.raises(ConfigError, match="not traced"):
        v.state.set_layer(99)


def test_taps_are_wired_to_the_page(sgrs_trace, store):
    """A tap selects a glyph in the browser; scrub.js moves the cursor there (browser test:
    tests/browser/test_viewer_notebook.py clicks a token). Here: the JS callbacks are attached."""
    v = view(sgrs_trace, store=store)
    for name in ("strip", "curve"):
        cbs = v.sources[name].selected.js_property_callbacks["change:indices"]
        assert len(cbs) == 1 and "S.tap(cb_obj" in cbs[0].code
    for prop in ("step", "layer", "scale", "image_top"):
        assert "S.render()" in v.cursor.js_property_callbacks[f"change:{prop}"][0].code
    assert "S.apply_goto()" in v.cursor.js_property_callbacks["change:goto"][0].code


def test_marking_writes_the_store_and_reopening_shows_it(sgrs_trace, store):
    tr = sgrs_trace
    v = view(tr, store=store)
    v.slider.value = 4
    v.marker.note.value = "nothing like it in the image"
    v.marker.buttons["hallucinated"].click()
    v.slider.value = 6
    v.marker.buttons["correct"].click()
    df = store.marks(tr.trace_id)
    assert sorted(zip(df.step, df.label)) == [(4, "hallucinated"), (6, "correct")]
    assert df.set_index("step").loc[4, "note"] == "nothing like it in the image"
    assert df.token.tolist() == [tr.records[4].token, tr.records[6].token] and set(df.author) == {"tester"}
    assert v.marker.note.value == ""
    assert v.sources["strip"].data["mark_color"][4] == MARK_COLORS["hallucinated"]
    assert v.sources["curve"].data["mark"][6] == "correct"
    assert "correct" in v.marker.info.value

    again = view(tr, store=MarkStore(store.path))  # a new viewer on the same trace
    assert {s: m.label for s, m in again.state.marks.items()} == {4: "hallucinated", 6: "correct"}
    assert again.sources["strip"].data["mark"][4] == "hallucinated"
    again.slider.value = 4
    assert "nothing like it" in again.marker.info.value
    again.marker.clear.click()
    assert list(store.marks(tr.trace_id).step) == [6]
    assert 4 not in again.state.marks and again.sources["strip"].data["mark_alpha"][4] == 0.0


def test_a_store_error_shows_in_the_panel(sgrs_trace, tmp_path):
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"not sqlite " * 100)
    with pytest.raises(lv.AnnotationStoreError):  # opening reads the trace's marks
        view(sgrs_trace, store=MarkStore(bad))
    v = view(sgrs_trace, store=MarkStore(tmp_path / "ok.sqlite3"))
    v.state.store = MarkStore(bad)
    v.marker.buttons["unsure"].click()
    assert "left untouched" in v.marker.info.value and bad.read_bytes() == b"not sqlite " * 100


def test_view_of_a_saved_file(sgrs_trace, store, tmp_path):
    path = sgrs_trace.save(tmp_path / "run.lvsal.parquet")
    v = view(str(path), store=store)
    assert v.trace.trace_id == sgrs_trace.trace_id and len(v.sources["strip"].data["step"]) == len(sgrs_trace)
    assert isinstance(v, TraceViewer)
    with pytest.raises(lv.TraceFileError):
        view(tmp_path / "missing.parquet")
    with pytest.raises(ConfigError, match="takes a Trace"):
        view(42)
    with pytest.raises(ConfigError, match="live view"):
        view(sgrs_trace, prompt="hi")


def test_a_kernel_move_sends_only_the_cursor(sgrs_trace, store):
    """The sources live in the document the BokehModel syncs: a step change from the kernel (the
    slider) sends one small patch (cursor.goto), no column data; marks still send the strip."""
    v = view(sgrs_trace, store=store)
    assert isinstance(v.bokeh, BokehModel) and v.bokeh in v.children
    sent = []
    v.bokeh.send = lambda content, buffers=None: sent.append(content)
    v.slider.value = 3
    payloads = [c["payload"] for c in sent if c.get("msg") == "patch" and "payload" in c]
    assert any(v.cursor.id in p and '"goto"' in p for p in payloads), "no patch for cursor.goto"
    assert not any("ColumnDataChanged" in p or "ColumnsPatched" in p for p in payloads)
    assert sum(len(p) for p in payloads) < 2000
    sent.clear()
    v.state.mark("correct")
    payloads = [c["payload"] for c in sent if c.get("msg") == "patch" and "payload" in c]
    assert any(v.sources["strip"].id in p for p in payloads)


def test_an_empty_trace_without_image(store):
    empty = lv.Trace(
        records=[],
        token_ids=[1, 2],
        tokens=["a", "b"],
        spans=lv.Spans(system=(0, 1), image=None, prompt=(1, 2), output=(2, 2)),
        config={"layers": [1]},
    )
    v = view(empty, store=store)
    assert v.state.n_steps == 0 and v.slider.max == 0
    assert all(len(v.sources[n].data.get("x", [])) == 0 for n in ("strip", "image", "context_cursor"))
    assert "no steps" in v.info.value and v.marker.buttons["correct"].disabled


def test_rejected_candidates_can_be_hidden(sgrs_trace, store):
    v = view(sgrs_trace, store=store)
    n_rej = len(v.sources["candidates"].data["text"])
    tall = v.figures["strip"].height
    assert n_rej > 0
    v.show_rejected.value = False
    assert v.sources["candidates"].data["text"] == [] and v.figures["strip"].height < tall
    assert "✗" in v.sources["strip"].data["rejected"][1]  # still in the hover
    v.show_rejected.value = True
    assert len(v.sources["candidates"].data["text"]) == n_rej and v.figures["strip"].height == tall


def _legend(v) -> dict[str, bool]:
    """The saliency curve's legend entries: label -> shown (the entry and its renderers)."""
    items = v.figures["curve"].legend[0].items
    return {i.label.value: i.visible and all(r.visible for r in i.renderers) for i in items}


def test_tau_and_rejected_show_only_when_the_trace_has_them(llava_session, image, sgrs_trace, store):
    """The README screenshots (a greedy trace) listed "τ (SGRS)" and "rejected" in the legend with
    nothing drawn, and a "rejected" checkbox with nothing to hide."""
    greedy = llava_session.trace(image, PROMPT, max_new_tokens=4, seed=0)
    assert all(s.tau is None and not C.rejected(s) for s in greedy.records)  # no τ, no rejection
    g = view(greedy, store=store)
    assert _legend(g) == {"chosen token": True, "τ (SGRS)": False, "rejected": False}
    assert g.show_rejected.layout.display == "none" and "✗" not in g.figures["strip"].title.text
    assert sum(s.tau is not None for s in sgrs_trace.records) > 0
    assert sum(len(C.rejected(s)) for s in sgrs_trace.records) > 0  # alpha=1: steps reject candidates
    v = view(sgrs_trace, store=store)
    assert _legend(v) == {"chosen token": True, "τ (SGRS)": True, "rejected": True}
    assert v.show_rejected.layout.display is None and "✗ = rejected" in v.figures["strip"].title.text
    v.state.set_trace(greedy)  # one viewer, another trace (a live view growing, a rerun)
    assert _legend(v) == {"chosen token": True, "τ (SGRS)": False, "rejected": False}
    assert v.show_rejected.layout.display == "none"


def test_showing_a_viewer_snapshots_its_current_data(sgrs_trace, store, bundle_data):
    """A browser view starts from the bundle: a viewer shown after scrubbing shows the cursor."""
    v = view(sgrs_trace, store=store)
    v.slider.value = 5
    assert bundle_data(v.bokeh, v.sources["curve_cursor"])["x"] == [0]  # the snapshot at creation
    v._repr_mimebundle_()
    assert bundle_data(v.bokeh, v.sources["curve_cursor"])["x"] == [5]


PROMPT = "describe this image ."


def test_marks_come_back_on_a_rerun_and_partly_on_a_changed_one(llava_session, image, store):
    """Issue 19: a rerun got a new random id and showed '0 marked'. Marks now follow the content:
    same tokens -> every mark; a token changed at step 3 -> marks before it, and a count of the rest."""
    import dataclasses

    kw = dict(max_new_tokens=6, seed=0)
    first = llava_session.trace(image, PROMPT, **kw)
    v = view(first, store=store)
    for step, label in ((1, "hallucinated"), (2, "correct"), (4, "unsure")):
        v.state.mark(label, step=step)
    rerun = llava_session.trace(image, PROMPT, **kw)  # as after a kernel restart: a new trace id
    assert rerun.trace_id != first.trace_id
    again = view(rerun, store=MarkStore(store.path))
    got = {s: m.label for s, m in again.state.marks.items()}
    assert got == {1: "hallucinated", 2: "correct", 4: "unsure"}
    assert again.state.lost == 0 and again.sources["strip"].data["mark"][1] == "hallucinated"
    # another token at step 3: steps 0..2 keep their prefix, 3.. do not
    recs = list(rerun.records)
    recs[3] = dataclasses.replace(recs[3], token_id=recs[3].token_id + 1)
    changed = dataclasses.replace(rerun, records=recs, trace_id="changed")
    part = view(changed, store=MarkStore(store.path))
    assert {s: m.label for s, m in part.state.marks.items()} == {1: "hallucinated", 2: "correct"}
    assert part.state.lost == 1 and "1 mark of an earlier run did not carry over" in part.marker.info.value
    # another image: nothing carries over, and nothing is counted as lost (another setup)
    elsewhere = dataclasses.replace(rerun, image_digest="another", trace_id="o")
    other = view(elsewhere, store=MarkStore(store.path))
    assert other.state.marks == {} and other.state.lost == 0
    # clearing a carried-over mark removes it for good (it would come back on the next rerun)
    again.state.unmark(step=4)
    assert 4 not in view(rerun, store=MarkStore(store.path)).state.marks
