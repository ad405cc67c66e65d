"""19.2 (extension part): a notebook viewer output carries a widget view, the lvsal trace bundle, static
HTML and text. The extension shows the live widget while the kernel has its model and the saved trace
when it does not, never ipywidgets' "Error displaying widget: model not found"."""

from __future__ import annotations

import json

import nbformat
import pytest
from labdriver import notebook_with_outputs, restart_kernel, run_cell
from nbformat.sign import NotebookNotary

pytestmark = pytest.mark.browser

MIME_TYPE = "application/vnd.lvsal.trace+json"
WIDGET = "application/vnd.jupyter.widget-view+json"
OUTPUT = ".jp-Notebook .jp-OutputArea-output"
NOT_FOUND = ("model not found", "Error displaying widget", "Loading widget")


def _signed(text: str) -> str:
    """The notebook signed like one the user saved after running it, so JupyterLab trusts its outputs
    (an untrusted output never gets the widget renderer: that would not test the routing)."""
    nb = nbformat.reads(text, as_version=4)
    NotebookNotary().sign(nb)
    return nbformat.writes(nb)


def _settle(page) -> None:
    """Let a kernel start and ipywidgets' manager attach (it re-renders widget outputs when it does)."""
    page.wait_for_function(
        "() => { const w = window.jupyterapp.shell.currentWidget; const k = w && w.sessionContext"
        " && w.sessionContext.session && w.sessionContext.session.kernel;"
        " return k && k.connectionStatus === 'connected' && k.status === 'idle'; }",
        timeout=90_000,
    )
    page.wait_for_timeout(1500)


def test_reopened_viewer_output_shows_the_saved_trace(lab, page, demo_trace):
    """A saved, trusted notebook whose viewer output's widget model is gone (dead model id) shows the
    trace with its marks; the widget's "model not found" never appears."""
    bundle = {
        WIDGET: {"version_major": 2, "version_minor": 0, "model_id": "d3adb33fd3adb33fd3adb33fd3adb33f"},
        MIME_TYPE: demo_trace,
        "text/html": "<div class='static-fallback'>static Bokeh fallback</div>",
        "text/plain": "TraceViewer(children=(HBox(...),))",
    }
    nb = notebook_with_outputs(
        [("lv.view(tr)", [{"output_type": "display_data", "data": bundle, "metadata": {}}])]
    )
    lab.put_file("reopened.ipynb", _signed(nb))
    lab.open(page, "reopened.ipynb")
    out = page.locator(OUTPUT).first
    out.wait_for(timeout=30_000)
    assert page.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets[0].model.trusted")
    _settle(page)
    text = page.locator(".jp-Notebook").inner_text()
    assert not [m for m in NOT_FOUND if m in text], text[:500]
    assert out.get_attribute("data-lvsal-shows") == "trace"
    assert out.locator(".jp-LvsalTrace-token").count() == len(demo_trace["steps"])
    assert out.locator(".jp-LvsalTrace-token.jp-mod-mark-hallucinated").count() == 1


LIVE_CELL = f"""import json, ipywidgets as W
payload = json.load(open("demo.lvsal.json"))
class Live(W.Label):
    def _repr_mimebundle_(self, **kw):
        b = super()._repr_mimebundle_(**kw)
        b.update({{"{MIME_TYPE}": payload, "text/html": "<b>static fallback</b>"}})
        return b
Live(value="LIVE WIDGET")"""


def test_live_widget_while_its_model_exists_then_the_trace(lab, page, demo_trace):
    """Run a cell whose output is a widget with the lvsal bundle: the live widget shows. Restart the
    kernel, save, reopen: the trace shows instead of "model not found"."""
    (lab.root / "demo.lvsal.json").write_text(json.dumps(demo_trace))
    lab.put_file("live.ipynb", notebook_with_outputs([(LIVE_CELL, [])]))
    lab.open(page, "live.ipynb")
    run_cell(page, 0, timeout=120)
    out = page.locator(OUTPUT).first
    out.locator(".widget-label", has_text="LIVE WIDGET").wait_for(timeout=30_000)
    assert out.get_attribute("data-lvsal-shows") == "widget"
    assert out.locator(".jp-LvsalTrace-strip").count() == 0

    restart_kernel(page)
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_timeout(1000)
    saved = json.loads((lab.root / "live.ipynb").read_text())
    data = saved["cells"][0]["outputs"][0]["data"]
    assert {WIDGET, MIME_TYPE, "text/html", "text/plain"} <= set(data)

    lab.open(page, "live.ipynb")
    out = page.locator(OUTPUT).first
    out.wait_for(timeout=30_000)
    _settle(page)
    trusted = page.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets[0].model.trusted")
    print(f"\nreopened output trusted: {trusted}")
    assert out.get_attribute("data-lvsal-shows") == "trace"
    assert out.locator(".jp-LvsalTrace-token").count() == len(demo_trace["steps"])
    text = page.locator(".jp-Notebook").inner_text()
    assert not [m for m in NOT_FOUND if m in text], text[:500]
    assert not [e for e in page.lvsal_errors if "LvsalTrace" in e or "lvsal" in e.lower()]
