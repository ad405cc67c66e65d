"""The JupyterLab extension in a real chromium: MIME renderer in a notebook, and the *.lvsal.json viewer."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from labdriver import FIXTURES, REPO, artifacts_dir, notebook_with_outputs

pytestmark = pytest.mark.browser

MIME_TYPE = "application/vnd.lvsal.trace+json"
TRACE = ".jp-LvsalTrace"  # the renderer node itself is the .jp-OutputArea-output
DOC_IMAGE = REPO / "docs" / "img" / "trace-renderer.png"


def _shot(page, name: str, locator=None) -> None:
    path = artifacts_dir() / f"{name}.png"
    (locator or page).screenshot(path=str(path))


def _expect_step(view, i: int) -> None:
    """The view, its selected token and the scrubber all agree on step i (retried until they do)."""
    from playwright.sync_api import expect

    expect(view).to_have_attribute("data-step", str(i))
    expect(view.locator(".jp-LvsalTrace-token.jp-mod-selected")).to_have_attribute("data-step", str(i))
    expect(view.locator(".jp-LvsalTrace-scrubber")).to_have_value(str(i))


def _check_view(view, trace: dict) -> None:
    """The strip has one token per step; scrubber, clicks and keys move the selection."""
    from playwright.sync_api import expect

    n = len(trace["steps"])
    tokens = view.locator(".jp-LvsalTrace-token")
    expect(tokens).to_have_count(n)  # retried: the view's node can exist before its tokens render
    assert tokens.nth(4).inner_text() == trace["steps"][4]["token"]
    _expect_step(view, 0)
    # steps are 0-based, as tr.table in the notebook
    assert view.locator(".jp-LvsalTrace-readout").inner_text().startswith(f"step 0 of 0–{n - 1}")

    view.locator(".jp-LvsalTrace-scrubber").fill("7")
    _expect_step(view, 7)
    assert f"step 7 of 0–{n - 1}" in view.locator(".jp-LvsalTrace-readout").inner_text()

    view.locator(".jp-LvsalTrace-scrubber").press("ArrowRight")
    _expect_step(view, 8)

    # the image heatmap is one canvas with a pixel per patch; the text context ends at the query row
    rows, cols = trace["image_grid"]
    heat = view.locator("canvas.jp-LvsalTrace-heat")
    expect(heat).to_have_count(1)
    assert heat.evaluate("c => [c.height, c.width]") == [rows, cols]
    step = trace["steps"][8]
    ctx = view.locator(".jp-LvsalTrace-ctok:visible")  # spans are reused across steps
    expect(ctx).to_have_count(step["position"] + 1 - trace["spans"]["image"][1])
    expect(view.locator(".jp-LvsalTrace-ctok.jp-mod-query")).to_have_count(1)

    # clicking a hallucinated token selects it and shows the rejected SGRS draws
    fallback = next(i for i, s in enumerate(trace["steps"]) if s["decision"] == "fallback")
    tokens.nth(fallback).click()
    _expect_step(view, fallback)
    cands = trace["steps"][fallback]["candidates"]
    rejected = [c for c in cands if c["round"] is not None and not c["accepted"]]
    assert len(rejected) > 0
    expect(view.locator(".jp-LvsalTrace-cands tr.jp-mod-rejected")).to_have_count(len(rejected))
    assert "fallback" in view.locator(".jp-LvsalTrace-cands tr.jp-mod-accepted").inner_text()

    # the saved marks are drawn: 2 px red outline (hallucinated), dashed orange (unsure)
    assert len(trace["marks"]) == 2  # make_fixture.MARKS
    for m in trace["marks"]:
        tok = tokens.nth(m["step"])
        expect(tok).to_have_attribute("data-mark", m["label"])
        style = tok.evaluate(
            "e => { const s = getComputedStyle(e); return [s.outlineColor, s.outlineStyle, s.outlineWidth]; }"
        )
        assert (
            style
            == {
                "hallucinated": ["rgb(214, 39, 40)", "solid", "2px"],
                "unsure": ["rgb(255, 127, 14)", "dashed", "2px"],
            }[m["label"]]
        )

    # the curve has the saliency and the τ line, and the marker sits on the selected step
    assert view.locator("path.jp-LvsalTrace-sal").get_attribute("d").count("L") == n - 1
    expect(view.locator("path.jp-LvsalTrace-tau")).to_have_count(1)
    box = view.locator(".jp-LvsalTrace-curve svg").bounding_box()
    view.locator(".jp-LvsalTrace-curve svg").click(position={"x": box["width"] - 3, "y": box["height"] / 2})
    _expect_step(view, n - 1)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_mime_renderer_in_saved_notebook(lab, page, demo_trace, theme):
    """(b) An unexecuted notebook whose saved output holds the MIME bundle renders the trace."""
    bundle = {MIME_TYPE: demo_trace, "text/plain": "<Trace fixture0demo: 20 steps>"}
    nb = notebook_with_outputs(
        [
            (
                "tr = lv.Trace.load('demo.lvsal.json')\ntr",
                [{"output_type": "execute_result", "execution_count": 1, "data": bundle, "metadata": {}}],
            ),
        ]
    )
    name = f"saved-{theme}.ipynb"
    lab.put_file(name, nb)
    lab.open(page, name, theme=theme)

    view = page.locator(f".jp-Notebook .jp-OutputArea {TRACE}")
    view.wait_for(timeout=30_000)
    assert page.locator(".jp-OutputArea-output pre", has_text="<Trace fixture0demo").count() == 0
    _check_view(view, demo_trace)
    view.locator(".jp-LvsalTrace-token").nth(14).click()
    _shot(page, f"notebook-{theme}")
    _shot(page, f"notebook-output-{theme}", view)
    if theme == "light" and (not DOC_IMAGE.exists() or os.environ.get("LVSAL_UPDATE_DOC_IMAGES") == "1"):
        DOC_IMAGE.parent.mkdir(parents=True, exist_ok=True)  # README image; refresh it on UI changes
        view.screenshot(path=str(DOC_IMAGE))
    assert not [e for e in page.lvsal_errors if "lvsal" in e.lower() or "LvsalTrace" in e]


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_document_viewer_opens_lvsal_json(lab, page, demo_trace, theme):
    """(c) Double-clicking a *.lvsal.json file in the file browser opens the trace viewer."""
    shutil.copy(FIXTURES / "demo.lvsal.json", lab.root / "demo.lvsal.json")
    lab.open(page, "", theme=theme)
    item = page.locator(".jp-DirListing-item", has_text="demo.lvsal.json")
    item.dblclick()
    view = page.locator(f".jp-MimeDocument {TRACE}")
    view.wait_for(timeout=30_000)
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current")
    assert "demo.lvsal.json" in tab.inner_text()
    _check_view(view, demo_trace)
    _shot(page, f"document-{theme}")


def test_file_type_registered(lab, page):
    """The file type and its default viewer are registered with the document registry."""
    lab.open(page)
    info = json.loads(
        page.evaluate(
            "() => { const r = window.jupyterapp.docRegistry;"
            " const ft = r.getFileTypesForPath('x.lvsal.json').map(f => f.name);"
            " const f = r.defaultWidgetFactory('x.lvsal.json');"
            " const plain = r.defaultWidgetFactory('x.json').name;"
            " return JSON.stringify({types: ft, factory: f && f.name, plain}); }"
        )
    )
    assert info["types"][0] == "lvsal-trace"
    assert info["factory"] == "LVSAL Trace"
    assert info["plain"] != "LVSAL Trace"  # other JSON files keep their editor
