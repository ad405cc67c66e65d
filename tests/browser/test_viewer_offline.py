"""A notebook with viewers, saved and read later without any kernel (issue 19, item 2).

The notebook runs once through nbclient (a real kernel, no browser); the saved .ipynb must carry
each viewer's trace payload (marks included) and static HTML; its nbconvert HTML export, opened in
chromium from a file:// URL (no server, no kernel, no network), must show the trace and scrub it.
The time of each step change is measured in the page and printed. Screenshot:
artifacts/browser/viewer-offline-nbconvert.png.
"""

from __future__ import annotations

import json
import statistics

import pytest
from labdriver import artifacts_dir

pytestmark = pytest.mark.browser

MIME = "application/vnd.lvsal.trace+json"
CELLS = [
    "import lvsal_nb as lv\nfrom lvsal_nb.toy.scenes import make_scene, render\n"
    "s = lv.load('tiny:llava', device='cpu')\nimg = render(make_scene(3))",
    "tr = s.trace(img, 'describe this image .', max_new_tokens={n}, seed=0)\nv = lv.view(tr)\n"
    "v.state.mark('hallucinated', step=2)\nv",
]


@pytest.fixture(scope="module")
def exported(browser_deps, tmp_path_factory):
    """(the executed notebook, the path of its nbconvert HTML) for a 64-step trace."""
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    tmp = tmp_path_factory.mktemp("offline")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LVSAL_DATA_DIR", str(tmp / "data"))
        cells = [CELLS[0], CELLS[1].format(n=64)]
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
        # as JupyterLab saves it by default: outputs, no widget state (nbconvert would then embed the
        # widget from a CDN instead of using the text/html fallback)
        NotebookClient(
            nb,
            timeout=600,
            kernel_name="python3",
            store_widget_state=False,
            resources={"metadata": {"path": str(tmp)}},
        ).execute()
    nbformat.write(nb, tmp / "saved.ipynb")
    body, _ = HTMLExporter().from_notebook_node(nbformat.read(tmp / "saved.ipynb", as_version=4))
    (tmp / "saved.html").write_text(body)
    return nbformat.read(tmp / "saved.ipynb", as_version=4), tmp / "saved.html"


def test_saved_notebook_carries_payload_and_static_html(exported):
    nb, _ = exported
    out = [o for o in nb.cells[1].outputs if "data" in o][-1]["data"]
    assert {"application/vnd.jupyter.widget-view+json", MIME, "text/html", "text/plain"} <= set(out)
    assert out[MIME]["marks"] == [{"step": 2, "label": "hallucinated", "note": ""}]
    assert len(out[MIME]["steps"]) == 64 and out["text/html"].count("data-step=") == 64
    assert "TraceViewer(children" not in out["text/plain"]


def test_nbconvert_html_shows_the_trace_and_scrubs_without_a_kernel(exported, browser):
    _, html_path = exported
    ctx = browser.new_context(viewport={"width": 1100, "height": 800}, offline=True)  # no network at all
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(html_path.as_uri())
    root = page.locator(".lvsal-static")
    assert root.count() == 1
    assert root.locator(".lvsal-strip span").count() == 64
    assert "step 0 / 63" in root.locator(".lvsal-readout").inner_text()
    assert "outline: 2px solid" in root.locator(".lvsal-strip span[data-step='2']").get_attribute(
        "style"
    ).replace("outline:2px", "outline: 2px")
    # scrub: 63 ArrowRight presses; each step change timed in the page (input -> readout updated)
    root.focus()
    times = page.evaluate("""() => { const r = document.querySelector('.lvsal-static'); const t = [];
        for (let i = 0; i < 63; i++) { const t0 = performance.now();
          r.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowRight', bubbles: true}));
          r.querySelector('.lvsal-readout').getBoundingClientRect();  // force layout
          t.push(performance.now() - t0); }
        return t; }""")
    assert root.get_attribute("data-step") == "63"
    assert "step 63 / 63" in root.locator(".lvsal-readout").inner_text()
    p95 = statistics.quantiles(times, n=20)[-1]
    print(
        f"\nnbconvert HTML, no kernel: 63 step changes, median {statistics.median(times):.2f} ms, "
        f"p95 {p95:.2f} ms, max {max(times):.2f} ms"
    )
    assert p95 < 50
    root.locator(".lvsal-strip span[data-step='2']").click()
    assert "marked hallucinated" in root.locator(".lvsal-readout").inner_text()
    page.screenshot(path=str(artifacts_dir() / "viewer-offline-nbconvert.png"), full_page=True)
    assert not errors, errors
    ctx.close()
    json.dumps(times)  # (kept printable)
