"""The TraceViewer widget in a real JupyterLab: a live trace renders, scrubs, marks, and its marks
survive a kernel restart.

A small tutorial-style notebook (like notebooks/02-viewer-and-marks.ipynb, but only what the viewer
needs) runs in a throwaway JupyterLab whose $LVSAL_DATA_DIR is in the test's tmp dir, so the
user's marks store is never touched. What the browser renders is read from the DOM (slider
readout, the viewer's text lines) and from BokehJS itself (`Bokeh.index` -> the document's data
sources, which is what the canvas draws); tokens are clicked on the canvas at their glyph's
position. Screenshots: artifacts/browser/viewer-notebook-*.png.
"""

from __future__ import annotations

import re
import time

import pytest
from labdriver import (
    artifacts_dir,
    bokeh_point,
    bokeh_sources,
    eventually,
    lab_command,
    notebook_with_outputs,
    restart_kernel,
    run_all_cells,
    run_cell,
)

pytestmark = pytest.mark.browser

AUTHOR = "browser-test"
NOTEBOOK = "viewer.ipynb"
STRIP = "Generated tokens"  # the token strip's title
SETUP, LIVE, SAVE, REOPEN, RERUN = range(5)  # cell indices
CELLS = [
    # SETUP: the trained toy model when its weights are there, else a random tiny LLaVA (CPU, seconds)
    """import os
from pathlib import Path
import lvsal_nb as lv
from lvsal_nb.annotations import MarkStore
from lvsal_nb.toy.scenes import make_scene, render
TOY = Path(lv.__file__).parent / "toy" / "assets" / "model.safetensors"
session = lv.load("toy" if TOY.exists() else "tiny:llava", device="cpu")
image = render(make_scene(3))
print("PID", os.getpid())
print("STORE", MarkStore().path)""",
    # LIVE
    """viewer = lv.view(session, image, "Describe the image.", max_new_tokens=12, seed=0)
viewer""",
    # SAVE
    """trace = viewer.wait(timeout=120)
trace.save("run.lvsal.parquet")
print("STEPS", len(trace))
print("TRACE", trace.trace_id)""",
    # REOPEN: self-contained, so it runs alone after a kernel restart
    """import os
import lvsal_nb as lv
again = lv.view("run.lvsal.parquet")
print("PID", os.getpid())
print("REOPENED", again.trace.trace_id, "MARKS", sorted(again.state.marks))
again""",
    # RERUN: the LIVE cell again, self-contained (after a restart): a new trace id, the same tokens
    """from pathlib import Path
import lvsal_nb as lv
from lvsal_nb.toy.scenes import make_scene, render
TOY = Path(lv.__file__).parent / "toy" / "assets" / "model.safetensors"
session = lv.load("toy" if TOY.exists() else "tiny:llava", device="cpu")
rerun = lv.view(session, render(make_scene(3)), "Describe the image.", max_new_tokens=12, seed=0)
rerun.wait(timeout=120)
print("RERUN", rerun.trace.trace_id, "MARKS", sorted(rerun.state.marks))
rerun""",
]


def _shot(page, name: str, locator=None) -> None:
    (locator or page).screenshot(path=str(artifacts_dir() / f"viewer-notebook-{name}.png"))


def _output_text(cell) -> str:
    return cell.locator(".jp-OutputArea").inner_text()


def _printed(cell, key: str) -> str:
    m = re.search(rf"^{key} (.+)$", _output_text(cell), re.M)
    assert m, f"cell printed no {key!r} line: {_output_text(cell)!r}"
    return m.group(1).strip()


class Viewer:
    """The rendered TraceViewer in one cell's output."""

    def __init__(self, page, cells, index: int):
        self.page, self.index, self.cell = page, index, cells.nth(index)
        self.readout = self.cell.locator(".widget-slider .widget-readout")
        self.handle = self.cell.locator(".widget-slider .noUi-handle")
        self.info = self.cell.locator(".widget-html", has_text="saliency")  # "step 3 / 11 · tok · ..."
        self.marks = self.cell.locator(".widget-html", has_text="marked in this trace")

    def sources(self, *names: str) -> dict | None:
        return bokeh_sources(self.page, self.index, list(names or ("strip", "strip_cursor", "curve_cursor")))

    def wait_rendered(self, n: int) -> dict:
        """Until BokehJS shows n token cells; returns the strip's columns."""

        def ready():
            s = self.sources("strip")
            return s if s and len(s["strip"]["step"]) == n else None

        return eventually(ready, f"{n} tokens in the strip")["strip"]

    def expect_step(self, step: int, n: int) -> None:
        """Slider, text readout and the cursor glyphs of the figures all on `step`."""
        from playwright.sync_api import expect

        expect(self.readout).to_have_text(str(step))
        expect(self.handle).to_have_attribute("aria-valuenow", re.compile(rf"^{step}(\.0)?$"))
        expect(self.info).to_contain_text(f"step {step} / {n - 1}")
        expect(self.marks).to_contain_text(f"step {step} ")

        def cursor():
            s = self.sources()
            strip = s["strip"]
            ok = (
                s["strip_cursor"]["step"] == [step]
                and s["strip_cursor"]["x"] == [strip["x"][step]]
                and s["strip_cursor"]["y"] == [strip["y"][step]]
                and s["curve_cursor"]["x"] == [step]
            )
            return ok

        eventually(cursor, f"the Bokeh cursors on step {step}")
        token = self.sources("strip")["strip"]["text"][step]
        assert f"· {token} ·" in self.info.inner_text().replace("\xa0", " ")

    def click_token(self, step: int) -> None:
        strip = self.sources("strip")["strip"]
        pt = bokeh_point(self.page, self.index, STRIP, strip["x"][step], strip["y"][step])
        assert pt, "no token strip figure found in the rendered document"
        self.page.mouse.click(pt["x"], pt["y"])


def test_viewer_live_scrub_mark_and_restart(module_lab, page):
    """Run a live view, scrub it (keyboard on the slider), click a token, mark it; restart the
    kernel, reopen the saved trace: the mark is shown again and is in the store."""
    from playwright.sync_api import expect

    from lvsal_nb.annotations import MarkStore

    lab = module_lab
    page.set_viewport_size({"width": 1400, "height": 1300})  # a whole viewer fits in a screenshot
    lab.put_file(NOTEBOOK, notebook_with_outputs([(src, []) for src in CELLS]))
    lab.open(page, NOTEBOOK)
    run_all_cells(page, timeout=240)
    cells = page.locator(".jp-Notebook .jp-Cell")
    assert "Error" not in _output_text(cells.nth(SETUP)) + _output_text(cells.nth(SAVE))
    store_path = lab.data_dir / "marks.sqlite3"
    assert _printed(cells.nth(SETUP), "STORE") == str(store_path)  # never the user's store
    pid = _printed(cells.nth(SETUP), "PID")
    n = int(_printed(cells.nth(SAVE), "STEPS"))
    trace_id = _printed(cells.nth(SAVE), "TRACE")
    assert n >= 5, f"the test needs a few steps to scrub, the trace has {n}"

    # (a) the live viewer rendered every step: one token cell per step, cursor on the last
    live = Viewer(page, cells, LIVE)
    strip = live.wait_rendered(n)
    assert strip["step"] == list(range(n))
    assert len(live.sources("curve")["curve"]["step"]) == n
    expect(live.cell.locator(".widget-html", has_text="done:")).to_contain_text(f"done: {n} steps")
    live.expect_step(n - 1, n)
    _shot(page, "live", live.cell)

    # scrub with the keyboard on the slider's handle
    live.handle.focus()
    live.handle.press("ArrowLeft")
    live.handle.press("ArrowLeft")
    live.expect_step(n - 3, n)

    # click a token on the canvas: the cursor moves there; mark it with the button
    target = 1
    live.click_token(target)
    live.expect_step(target, n)
    live.cell.locator("button[title='mark this token hallucinated']").click()
    expect(live.marks).to_contain_text("hallucinated")
    expect(live.marks).to_contain_text("1 marked in this trace")
    eventually(
        lambda: live.sources("strip")["strip"]["mark"][target] == "hallucinated",
        "the mark's underline in the strip",
    )
    assert live.sources("strip")["strip"]["mark_alpha"][target] == 1
    marks = MarkStore(store_path).latest(trace_id)
    assert marks[["step", "label", "author"]].values.tolist() == [[target, "hallucinated", AUTHOR]]
    assert marks["token"][0] != ""
    _shot(page, "marked", live.cell)

    # restart the kernel, rerun only the cell that reopens the saved trace
    restart_kernel(page)
    run_cell(page, REOPEN)
    again_cell = cells.nth(REOPEN)
    assert _printed(again_cell, "PID") != pid, "the kernel was not restarted"
    assert _printed(again_cell, "REOPENED") == f"{trace_id} MARKS [{target}]"
    again = Viewer(page, cells, REOPEN)
    strip = again.wait_rendered(n)
    assert strip["mark"][target] == "hallucinated" and strip["mark_alpha"][target] == 1
    assert [m for i, m in enumerate(strip["mark"]) if i != target] == [""] * (n - 1)
    expect(again.marks).to_contain_text("1 marked in this trace")
    again.expect_step(0, n)
    _shot(page, "reopened", again.cell)  # the cursor on step 0, the mark's underline on `target`
    again.click_token(target)
    again.expect_step(target, n)
    expect(again.marks).to_contain_text(f"step {target} ")
    expect(again.marks).to_contain_text("hallucinated")
    expect(again.marks).to_contain_text(f"by {AUTHOR}")
    _shot(page, "reopened-selected", again.cell)

    # rerun the live cell after the restart: a new trace id, the same tokens -> the mark is back
    t0 = time.monotonic()
    run_cell(page, RERUN)
    rerun_id, _, rerun_marks = _printed(cells.nth(RERUN), "RERUN").partition(" MARKS ")
    assert rerun_id != trace_id and rerun_marks == f"[{target}]"
    rerun = Viewer(page, cells, RERUN)
    strip = rerun.wait_rendered(n)
    assert strip["mark"][target] == "hallucinated"
    print(
        f"\nrerun after restart: {n} steps, mark on step {target} shown again ({time.monotonic() - t0:.1f} s)"
    )
    _shot(page, "rerun-after-restart", rerun.cell)

    # the saved notebook carries, per viewer, the trace payload (marks included) and static HTML;
    # the live view's output was refreshed with the final trace when decoding ended
    import json

    def saved_output(index: int) -> dict:
        data = [o for o in saved["cells"][index]["outputs"] if "data" in o][-1]["data"]
        html = data["text/html"]
        return data | {"text/html": "".join(html) if isinstance(html, list) else html}  # .ipynb: lines

    lab_command(page, "docmanager:save")
    eventually(
        lambda: json.loads((lab.root / NOTEBOOK).read_text())["cells"][RERUN]["outputs"], "a saved notebook"
    )
    saved = json.loads((lab.root / NOTEBOOK).read_text())
    for index in (LIVE, RERUN):
        out = saved_output(index)
        payload = out["application/vnd.lvsal.trace+json"]
        assert len(payload["steps"]) == n and out["text/html"].count("data-step=") == n
    assert {"step": target, "label": "hallucinated", "note": ""} in payload["marks"]
    _shot(page, "page")
    # (JupyterLab logs "Cannot send" twice after the restart: a dead kernel's widgets; not ours)
    ours = [e for e in page.lvsal_errors if "bokeh" in e.lower() or "lvsal" in e.lower()]
    assert not ours, page.lvsal_errors
