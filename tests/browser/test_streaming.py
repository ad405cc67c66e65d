"""A live view in JupyterLab streams: text first, saliency per chunk (issue 19 item 4).

After a first (warm-up) viewer, the live cell runs the toy model (24 tokens max, the default engine
and live chunk). The page records,
on every animation frame, when the first token's text appears in the viewer's status line and when
BokehJS first holds a step in the token strip (saliency); the kernel records when decoding started
(`LiveTrace.started`). Page and kernel run on one machine, so both are compared on the wall clock.
Before this change the first token came with its saliency, after a whole chunk (0.32 s with 4;
a 13-token caption all at once after 6 s with the old default of 16).
"""

from __future__ import annotations

import re

import pytest
from labdriver import _BOKEH_ROOT_JS, artifacts_dir, notebook_with_outputs, run_cell

pytestmark = pytest.mark.browser

NOTEBOOK = "stream.ipynb"
SETUP, WARM, LIVE, REPORT = range(4)
CELLS = [
    """from pathlib import Path
import time
import lvsal_nb as lv
from lvsal_nb.toy.scenes import make_scene, render
TOY = Path(lv.__file__).parent / "toy" / "assets" / "model.safetensors"
s = lv.load("toy" if TOY.exists() else "tiny:llava", device="cpu")
img = render(make_scene(3))
s.trace(img, "Describe the image.", max_new_tokens=2)  # warm: first-call costs are not streaming""",
    # WARM: a first viewer, so the page has BokehJS and jupyter_bokeh's code (once per page)
    """lv.view(s, img, "Describe the image.", max_new_tokens=2, seed=0).wait(timeout=120)""",
    """v = lv.view(s, img, "Describe the image.", max_new_tokens=24, seed=0)
v""",
    """lt = v.live_trace
tr = v.wait(timeout=120)
wall = time.time() - time.monotonic()  # monotonic -> wall clock (the page's clock)
print("DECODE_START", repr((lt.started + wall) * 1000))
t0 = lt.started
print("KERNEL", repr((lt.first_token_at - t0, lt.first_step_at - t0, lt.finished_at - t0)))
print("STEPS", len(tr), "CHUNK", lt.kwargs["chunk"])""",
]

# Wall-clock times (ms) at which the live cell's viewer first shows token text, and BokehJS's strip
# first holds a step; polled on every animation frame until both are seen.
PROBE = (
    "(ci) => {"
    + _BOKEH_ROOT_JS
    + """
  const out = {token: null, saliency: null, widget: null, bokeh: null, output: null};
  window.__lvsalStream = out;
  const tick = () => {
    const now = performance.timeOrigin + performance.now();
    const cell = window.jupyterapp.shell.currentWidget.content.widgets[ci].node;
    if (out.output === null && cell.querySelector('.jp-OutputArea-output')) out.output = now;
    if (out.widget === null && cell.querySelector('.widget-html')) out.widget = now;
    if (out.bokeh === null && bokehRoot(ci)) out.bokeh = now;
    if (out.token === null) {
      const t = [...cell.querySelectorAll('.lvsal-told, .lvsal-pending')].map(e => e.textContent).join('');
      if (t.trim().length) out.token = now;
    }
    if (out.saliency === null) {
      const root = bokehRoot(ci);
      const strip = root && root.model.document.get_model_by_name('strip');
      if (strip) {
        const d = strip.data instanceof Map ? Object.fromEntries(strip.data) : strip.data;
        if (d.step && d.step.length > 0) out.saliency = now;
      }
    }
    if (out.token === null || out.saliency === null) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  return true;
}"""
)


def _printed(page, index: int, key: str) -> str:
    text = page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-OutputArea").inner_text()
    m = re.search(rf"^{key} (.+)$", text, re.M)
    assert m, f"cell {index} printed no {key!r}: {text!r}"
    return m.group(1).strip()


def test_live_view_shows_tokens_before_saliency(lab, page):
    lab.put_file(NOTEBOOK, notebook_with_outputs([(c, []) for c in CELLS]))
    lab.open(page, NOTEBOOK)
    run_cell(page, SETUP, timeout=240)
    run_cell(page, WARM, timeout=120)
    page.evaluate(PROBE, LIVE)
    run_cell(page, LIVE, timeout=120)
    run_cell(page, REPORT, timeout=180)
    page.wait_for_function("() => window.__lvsalStream.saliency !== null", timeout=60_000)
    seen = page.evaluate("() => window.__lvsalStream")
    start = float(_printed(page, REPORT, "DECODE_START"))
    k_token, k_step, k_total = eval(_printed(page, REPORT, "KERNEL"))  # noqa: S307 (our own repr)
    steps = _printed(page, REPORT, "STEPS")
    ttft, ttfs = (seen["token"] - start) / 1000, (seen["saliency"] - start) / 1000
    shown, output = (seen["widget"] - start) / 1000, (seen["output"] - start) / 1000
    print(
        f"\nlive view, toy model, {steps}: in the page the first token {ttft:.3f} s and the first "
        f"saliency {ttfs:.3f} s after decoding started (kernel: token told {k_token:.3f} s, first step "
        f"{k_step:.3f} s, done {k_total:.3f} s); the cell's output {output:.3f} s, the viewer {shown:.3f} s"
    )
    page.locator(".jp-Notebook .jp-Cell").nth(LIVE).screenshot(
        path=str(artifacts_dir() / "streaming-live.png")
    )
    assert ttft <= ttfs  # text first (or together, when a chunk is scored before the view is drawn)
    # The page cannot show a token before it shows the viewer: here the viewer itself appears 1.6-2.8 s
    # after decoding started (the kernel serialises the Bokeh document, the page renders it), longer
    # than the whole 13-token toy decode. So: once the viewer is there, its text is there within one
    # redraw (0.15 s; 0.5 s for a loaded CI machine) ...
    assert ttft <= shown + 0.5, f"first token {ttft - shown:.3f} s after the viewer appeared"
    # ... and the kernel tells the first token ~0.13 s after decoding starts (quiet, 1 thread; 0.26-0.64
    # s seen with 5 jobs on 2 cores): 1.0 s leaves that room, against 0.32 s + a chunk's wait before.
    assert k_token <= 1.0, f"first token told {k_token:.3f} s after decoding started"
    assert not [e for e in page.lvsal_errors if "bokeh" in e.lower() or "lvsal" in e.lower()], (
        page.lvsal_errors
    )
