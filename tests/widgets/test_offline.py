"""What a viewer / Tuner output carries for a life without the kernel (issue 19, items 2 and 7):
the trace payload with marks, a static HTML page that scrubs on its own, a one-line text/plain,
and a saved notebook of three viewers that stays small."""

import base64
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from lvsal_nb.trace import MIME_TYPE, Trace
from lvsal_nb.widgets import tune, view
from lvsal_nb.widgets.static_html import static_html

PROMPT = "describe this image ."
WIDGET = "application/vnd.jupyter.widget-view+json"


def _data(html_text):
    m = re.search(r'<script type="application/json" class="lvsal-data">(.*?)</script>', html_text, re.S)
    return json.loads(m.group(1).replace("<\\/", "</"))


def test_viewer_bundle_carries_payload_marks_and_static_html(sgrs_trace, store):
    v = view(sgrs_trace, store=store)
    v.state.mark("hallucinated", step=3, note="no such thing")
    b = v._repr_mimebundle_()
    assert set(b) == {"text/plain", WIDGET, MIME_TYPE, "text/html"}
    assert (
        len(b["text/plain"]) < 300
        and "HBox" not in b["text/plain"]
        and sgrs_trace.trace_id in b["text/plain"]
    )
    payload = b[MIME_TYPE]
    assert payload["marks"] == [{"step": 3, "label": "hallucinated", "note": "no such thing"}]
    back = Trace.from_json(payload)  # the payload is a whole trace (5 digits)
    assert [s.token_id for s in back.records] == [s.token_id for s in sgrs_trace.records]
    assert back.records[2].saliency == pytest.approx(sgrs_trace.records[2].saliency, abs=1e-5)
    html_text = b["text/html"]
    assert html_text.count("data-step=") == len(sgrs_trace.records)
    assert "outline:2px solid #D62728" in html_text and "<script src" not in html_text  # no external file
    assert "//cdn" not in html_text and "http" not in html_text.replace("http-equiv", "")


def test_static_html_colours_and_heatmap_indices_follow_the_rule(sgrs_trace):
    tr = sgrs_trace
    text = static_html(tr, {1: "unsure"})
    sal = [s.saliency for s in tr.records]
    top = int(np.argmax(sal))
    cell = re.search(rf"<span data-step='{top}'[^>]*style='([^']*)'", text).group(1)
    assert "background:#FDE724" in cell and "color:#000000" in cell
    assert "outline:2px dashed #FF7F0E" in re.search(r"<span data-step='1'[^>]*style='([^']*)'", text).group(
        1
    )
    assert f"saliency, 0 – {max(sal):.3g}, per trace" in text
    d = _data(text)
    rows, cols = tr.image_grid
    a = tr.spans.image[0]
    img = [s.row.mean(0)[a : a + rows * cols] for s in tr.records]
    hi = max(float(x.max()) for x in img)
    step = 4
    got = list(base64.b64decode(d["image"][step]))
    expect = [min(255, int(x / hi * 256)) for x in img[step]]  # the palette index, by hand
    assert got == expect and len(d["palette"]) == 256 and d["marks"] == {"1": "unsure"}


def test_tuner_bundle_shows_the_runs(llava_session, image):
    t = tune(llava_session, image, PROMPT, max_new_tokens=4)
    assert "no run yet" in t._repr_mimebundle_()["text/html"]
    t.run("A", wait=True)
    b = t._repr_mimebundle_()
    assert b[MIME_TYPE]["trace_id"] == t.runs["A"].trace_id and WIDGET in b
    assert b["text/html"].count("data-step=") == 4 and "<b>A</b>" in b["text/html"]


def test_bokehjs_is_shown_inline_then_replaced_by_a_stub(monkeypatch):
    """Issue 19 item 7: what runs first is the inline bundle (frontends without the lab extension
    need it), what stays (and is saved) is a stub of a few hundred bytes; once per kernel."""
    import bokeh
    import IPython.display

    from lvsal_nb.widgets import bokehjs

    shown = []
    monkeypatch.setattr(bokehjs, "in_kernel", lambda: True)
    monkeypatch.setattr(bokehjs, "_loaded", False)
    monkeypatch.setattr(IPython.display, "display", lambda b, **kw: shown.append(("display", b, kw)))
    monkeypatch.setattr(IPython.display, "update_display", lambda b, **kw: shown.append(("update", b, kw)))
    assert bokehjs.load_bokehjs() and not bokehjs.load_bokehjs()  # once per kernel
    assert [s[0] for s in shown] == ["display", "update"]
    (_, first, kw1), (_, saved, kw2) = shown
    assert kw1["display_id"] == kw2["display_id"] and kw1["raw"] and kw2["raw"]
    mime = "application/vnd.lvsal.bokehjs.v1+json"
    assert first[mime] == saved[mime] == {"version": bokeh.__version__}
    bundle = Path(bokeh.__file__).parent / "server/static/js/bokeh.min.js"
    assert len(first["application/javascript"]) > bundle.stat().st_size  # the whole core bundle, inline
    assert (
        len(saved["application/javascript"]) < 600
        and f'"{bokeh.__version__}"' in saved["application/javascript"]
    )
    assert bokehjs.load_bokehjs(force=True) and len(shown) == 4


@pytest.mark.slow
def test_saved_notebook_with_three_viewers_is_small(tmp_path):
    """Issue 19 item 7: each viewer wrote 2.6 MB of BokehJS, then one 1.3 MB copy per kernel. Now
    the notebook keeps a ~0.3 KB stub per kernel (nbclient applies the update_display as JupyterLab
    does) and each viewer's own outputs (tens of KB). Runs a real kernel (nbclient), ~40 s."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    cells = [
        "import lvsal_nb as lv\nfrom lvsal_nb.toy.scenes import make_scene, render\n"
        "s = lv.load('tiny:llava', device='cpu')\nimg = render(make_scene(1))"
    ]
    cells += [f"lv.view(s.trace(img, '{PROMPT}', max_new_tokens=8, seed={i}))" for i in range(3)]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    env_path = {"metadata": {"path": str(tmp_path)}}
    # as JupyterLab saves by default: without the widget state (Bokeh documents, ~90 KB a viewer)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources=env_path, store_widget_state=False
    )
    client.execute()
    path = tmp_path / "three.ipynb"
    nbformat.write(nb, path)
    size = os.path.getsize(path)
    outs = [o for c in nb.cells for o in c.get("outputs", [])]
    js = [o for o in outs if "application/javascript" in o.get("data", {})]
    views = [o for o in outs if WIDGET in o.get("data", {})]
    print(
        f"saved notebook with three viewers: {size / 1e6:.2f} MB; BokehJS outputs: {len(js)}; "
        f"per viewer: {[len(json.dumps(o['data'])) // 1000 for o in views]} KB"
    )
    assert len(js) == 1 and not any("application/vnd.bokehjs_load.v0+json" in o.get("data", {}) for o in outs)
    assert len(js[0]["data"]["application/javascript"]) < 600  # the stub, not the 1.3 MB bundle
    assert len(views) == 3 and all({MIME_TYPE, "text/html"} <= set(o["data"]) for o in views)
    assert all(len(json.dumps(o["data"])) < 200_000 for o in views)
    assert size < 300_000  # was 1.3 MB of BokehJS alone, plus the viewers
