"""The trace renderer under hostile or large payloads, its speed per step, its layout at 1100 / 1600 px
in light and dark, and the *.lvsal.parquet viewer (real JupyterLab in chromium)."""

from __future__ import annotations

import copy
import json
import os

import numpy as np
import pytest
from labdriver import FIXTURES, artifacts_dir, lab_command, notebook_with_outputs
from make_fixture import build, synthetic

pytestmark = pytest.mark.browser

MIME_TYPE = "application/vnd.lvsal.trace+json"

# Replace the outputs of cell `cell` with one display_data of `bundle`; resolve with the time (ms)
# until the renderer shows either a trace (its token strip) or its error message, and that text.
RENDER_JS = """async ([cell, bundle]) => {
  const nb = window.jupyterapp.shell.currentWidget.content;
  const c = nb.widgets[cell];
  const t0 = performance.now();
  c.model.outputs.clear();
  c.model.outputs.add({output_type: 'display_data', data: bundle, metadata: {}});
  const done = () => c.node.querySelector('.jp-LvsalTrace-error, .jp-LvsalTrace-strip, .jp-LvsalTrace-empty');
  while (!done()) {
    if (performance.now() - t0 > 60000) return {ms: -1, text: ''};
    await new Promise(r => setTimeout(r, 5));
  }
  c.node.getBoundingClientRect();  // include the layout of what was built
  const ms = performance.now() - t0;
  const out = c.node.querySelector('.jp-OutputArea-output');
  return {ms, text: out.textContent.slice(0, 3000), nodes: out.querySelectorAll('*').length};
}"""


# 16 warm-up step changes, then the time of each of 64 (scrubber input -> every part updated, layout).
STEP_TIMES_JS = """() => {
  const out = document.querySelector('.jp-Notebook .jp-LvsalTrace');
  const s = out.querySelector('.jp-LvsalTrace-scrubber');
  for (let i = 95; i >= 80; i--) { s.value = String(i); s.dispatchEvent(new Event('input')); }
  const times = [];
  for (let i = 1; i <= 64; i++) {
    const t0 = performance.now();
    s.value = String(i);
    s.dispatchEvent(new Event('input'));
    out.getBoundingClientRect(); out.offsetHeight;
    times.push(performance.now() - t0);
    if (out.dataset.step !== String(i)) return null;
  }
  return times; }"""


def _open_blank(lab, page, name: str) -> None:
    lab.put_file(name, notebook_with_outputs([("# outputs are set by the test", [])]))
    lab.open(page, name)
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=30_000)


def _render(page, payload: dict) -> dict:
    return page.evaluate(RENDER_JS, [0, {MIME_TYPE: payload, "text/plain": "<Trace>"}])


def _malformed(demo: dict) -> dict[str, tuple[dict, str]]:
    """name -> (payload, what the message must say). All made from the 137 KB demo trace."""
    cases: dict[str, tuple[dict, str]] = {}

    def case(name, message, edit):
        d = copy.deepcopy(demo)
        edit(d)
        cases[name] = (d, message)

    case(
        "grid 1000x1000",
        "image_grid [1000, 1000] needs 1000000 image tokens but spans.image holds 64",
        lambda d: d.update(image_grid=[1000, 1000]),
    )
    case(
        "grid 1e9",
        "image_grid[0] = 1000000000 is outside 1..65536",
        lambda d: d.update(image_grid=[10**9, 10**9]),
    )
    case(
        "grid text", 'image_grid must be an array, got the string "8x8"', lambda d: d.update(image_grid="8x8")
    )
    case("no spans", "missing steps, tokens or spans", lambda d: d.pop("spans"))
    case(
        "step without token",
        "steps[3].token must be a string, got undefined",
        lambda d: d["steps"][3].pop("token"),
    )
    case("steps not a list", "missing steps, tokens or spans", lambda d: d.update(steps="abc"))
    case(
        "NaN saliency",
        'steps[2].saliency must be a finite number or null, got the string "NaN"',
        lambda d: d["steps"][2].update(saliency="NaN"),
    )
    case(
        "NaN in row",
        'steps[0].row[1][5] must be a finite number, got the string "NaN"',
        lambda d: d["steps"][0]["row"][1].__setitem__(5, "NaN"),
    )
    case(
        "huge position",
        "steps[5].position = 1e+300 is outside 0..",
        lambda d: d["steps"][5].update(position=1e300),
    )
    case(
        "row longer than q",
        "steps[1].row[0] has 5000 values but the step's position",
        lambda d: d["steps"][1].update(row=[[0.1] * 5000]),
    )
    case(
        "image span past tokens",
        "spans.image[1] = 99999 is outside",
        lambda d: d["spans"].update(image=[5, 99999]),
    )
    case(
        "bad mark",
        "marks[0].label must be one of hallucinated, unsure, correct",
        lambda d: d.update(marks=[{"step": 1, "label": "wrong"}]),
    )
    return cases


def test_malformed_payloads_show_a_clear_message_fast(lab, page, demo_trace):
    """17.9: an untrusted output cannot freeze JupyterLab (the 1000x1000 grid took 32 s and built a
    million cells); every malformed payload shows what is wrong within 2 s."""
    _open_blank(lab, page, "malformed.ipynb")
    assert len(json.dumps(demo_trace)) < 150_000
    timings = {}
    for name, (payload, message) in _malformed(demo_trace).items():
        r = _render(page, payload)
        timings[name] = round(r["ms"], 1)
        assert r["text"].startswith("Cannot show this trace:"), (name, r["text"][:300])
        assert message in r["text"], (name, r["text"][:300])
        assert 0 <= r["ms"] < 2000, (name, r["ms"])
        assert r["nodes"] < 5, (name, r["nodes"])  # a message, not a half-built view
    print(f"\nmalformed payloads, ms to the message: {timings}")
    # the same page still renders a good trace afterwards
    r = _render(page, demo_trace)
    assert "Cannot show" not in r["text"] and r["ms"] < 2000


def test_saved_notebook_with_hostile_output_opens(lab, page, demo_trace):
    """17.9 as reported: opening a saved notebook whose output has image_grid [1000, 1000] shows the
    message, and the page answers at once (the old renderer blocked it for 32 s)."""
    hostile = dict(demo_trace, image_grid=[1000, 1000])
    out = {
        "output_type": "display_data",
        "data": {MIME_TYPE: hostile, "text/plain": "<Trace>"},
        "metadata": {},
    }
    lab.put_file("hostile.ipynb", notebook_with_outputs([("tr", [out])]))
    lab.open(page, "hostile.ipynb")
    msg = page.locator(".jp-Notebook .jp-LvsalTrace-error")
    msg.wait_for(timeout=30_000)
    assert "needs 1000000 image tokens" in msg.inner_text()
    ms = page.evaluate(
        "() => { const t0 = performance.now(); return new Promise(r => setTimeout("
        "() => r(performance.now() - t0), 0)); }"
    )
    assert ms < 2000
    page.locator(".jp-Notebook .jp-Cell").first.click()  # the page still reacts
    assert page.locator(".jp-Notebook .jp-LvsalTrace-cell").count() == 0


def test_large_grid_is_one_canvas(lab, page):
    """A valid 96x96-patch image (9216 image tokens) renders within 2 s as one canvas, not 9216 cells."""
    payload = synthetic(4, (96, 96), n_layers=1)
    _open_blank(lab, page, "biggrid.ipynb")
    r = _render(page, payload)
    print(
        f"\n96x96 grid, {len(json.dumps(payload)) / 1e6:.2f} MB payload: "
        f"{r['ms']:.0f} ms, {r['nodes']} DOM nodes"
    )
    assert "Cannot show" not in r["text"]
    assert r["ms"] < 2000
    heat = page.locator("canvas.jp-LvsalTrace-heat")
    assert heat.evaluate("c => [c.height, c.width]") == [96, 96]
    assert r["nodes"] < 1500
    # the canvas pixel of the brightest patch is the top of Viridis (the per-trace scale's max at
    # the last step's own max only when the per-step toggle is on)
    page.locator(".jp-LvsalTrace-perstep").check()
    step0 = payload["steps"][0]
    img = np.mean(np.asarray(step0["row"])[:, 1 : 1 + 96 * 96], axis=0)
    k = int(np.argmax(img))
    px = heat.evaluate(
        "(c, k) => Array.from(c.getContext('2d').getImageData(k % 96, Math.floor(k / 96), 1, 1).data)", k
    )
    assert px == [0xFD, 0xE7, 0x24, 255]
    assert "attention, 0 – " in page.locator(".jp-LvsalTrace-imagepanel").inner_text()
    assert "per step" in page.locator(".jp-LvsalTrace-imagepanel").inner_text()


def test_step_change_p95(lab, page):
    """19.3 target for the extension: one step change (scrubber input -> every part updated, layout
    included) in <= 50 ms at the 95th percentile over 64 steps of a 96-step trace, 24x24 patches."""
    payload = synthetic(96, (24, 24), prompt_len=40)
    _open_blank(lab, page, "timing.ipynb")
    assert "Cannot show" not in _render(page, payload)["text"]
    runs = [page.evaluate(STEP_TIMES_JS) for _ in range(3)]  # best of 3: other load on the machine only adds
    assert all(r is not None for r in runs), "the view did not follow the scrubber"
    p95s = [float(np.percentile(r, 95)) for r in runs]
    best = runs[int(np.argmin(p95s))]
    p95 = min(p95s)
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    print(
        f"\nstep change over 64 steps (96 steps, 24x24 patches): p50 {np.median(best):.1f} ms, "
        f"p95 {p95:.1f} ms (p95 of 3 runs: {', '.join(f'{x:.1f}' for x in p95s)}; load/core {load:.1f})"
    )
    if p95 > 50 and load > 2:
        pytest.skip(
            f"p95 {p95:.1f} ms, but the machine is overloaded (load {load:.1f} per core): not a measurement"
        )
    assert p95 <= 50


@pytest.mark.parametrize("width", [1100, 1600])
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_layout_fits_and_follows_the_theme(lab, browser, demo_trace, theme, width):
    """19.5/19.6: no part of the view is cut off at 1100 or 1600 px; backgrounds and text follow the
    JupyterLab theme; screenshots for review in artifacts/browser/layout-<theme>-<width>.png."""
    ctx = browser.new_context(viewport={"width": width, "height": 1000}, device_scale_factor=1)
    page = ctx.new_page()
    try:
        bundle = {MIME_TYPE: demo_trace, "text/plain": "<Trace>"}
        name = f"layout-{theme}-{width}.ipynb"
        lab.put_file(
            name,
            notebook_with_outputs(
                [("tr", [{"output_type": "display_data", "data": bundle, "metadata": {}}])]
            ),
        )
        lab.open(page, name, theme=theme)
        view = page.locator(".jp-Notebook .jp-LvsalTrace")
        view.locator(".jp-LvsalTrace-strip").wait_for(timeout=30_000)
        _check_fits(view)
        colours = view.evaluate("""v => {
          const bg = e => getComputedStyle(e).backgroundColor;
          const root = getComputedStyle(document.body);
          return {strip: bg(v.querySelector('.jp-LvsalTrace-strip')),
                  layout0: root.getPropertyValue('--jp-layout-color0').trim(),
                  text: getComputedStyle(v).color,
                  font1: root.getPropertyValue('--jp-content-font-color1').trim()}; }""")
        dark = theme == "dark"
        lum = _luminance(colours["strip"])
        assert (lum < 0.3) if dark else (lum > 0.7), colours  # the panel follows --jp-layout-color0
        tl = _luminance(colours["text"])
        assert (tl > 0.6) if dark else (tl < 0.4), colours
        page.screenshot(path=str(artifacts_dir() / f"layout-{theme}-{width}.png"))
    finally:
        ctx.close()


def test_split_view_at_1100(lab, browser, demo_trace):
    """The notebook output and the *.lvsal.json viewer side by side in a 1100 px window: nothing cut off."""
    ctx = browser.new_context(viewport={"width": 1100, "height": 900}, device_scale_factor=1)
    page = ctx.new_page()
    try:
        (lab.root / "split.lvsal.json").write_text(json.dumps(demo_trace))
        bundle = {MIME_TYPE: demo_trace, "text/plain": "<Trace>"}
        lab.put_file(
            "split.ipynb",
            notebook_with_outputs(
                [("tr", [{"output_type": "display_data", "data": bundle, "metadata": {}}])]
            ),
        )
        lab.open(page, "split.ipynb")
        page.locator(".jp-Notebook .jp-LvsalTrace-strip").wait_for(timeout=30_000)
        lab_command(page, "docmanager:open", {"path": "split.lvsal.json", "options": {"mode": "split-right"}})
        doc = page.locator(".jp-MimeDocument .jp-LvsalTrace")
        doc.locator(".jp-LvsalTrace-strip").wait_for(timeout=30_000)
        lab_command(page, "application:toggle-left-area")
        page.wait_for_timeout(500)
        page.screenshot(path=str(artifacts_dir() / "layout-split-1100.png"))
        for view in (page.locator(".jp-Notebook .jp-LvsalTrace"), doc):
            _check_fits(view)
    finally:
        ctx.close()


def _check_fits(view) -> None:
    """No horizontal overflow: every part of the view lies inside the view's box."""
    r = view.evaluate("""v => {
      const box = v.getBoundingClientRect();
      const parts = [...v.querySelectorAll(
        '.jp-LvsalTrace-strip, .jp-LvsalTrace-controls, .jp-LvsalTrace-curve svg,'
        + ' .jp-LvsalTrace-panel, .jp-LvsalTrace-readout > *, .jp-LvsalTrace-legend > *')];
      const out = parts.filter(p => p.getBoundingClientRect().right > box.right + 1)
        .map(p => p.className.baseVal ?? p.className);
      return {out, scroll: v.scrollWidth, client: v.clientWidth, n: parts.length}; }""")
    assert r["n"] > 10
    assert r["out"] == [] and r["scroll"] <= r["client"] + 1, r


def _luminance(css: str) -> float:
    rgb = [int(x) for x in css[css.index("(") + 1 : css.index(")")].split(",")[:3]]
    return sum(rgb) / (3 * 255)


def test_parquet_file_opens_with_a_clear_message(lab, page, demo_trace):
    """19.8: double-clicking a *.lvsal.parquet says how to open it (not "not UTF-8 encoded"); with the
    .lvsal.json beside it, that trace is shown."""
    tr = build()
    tr.save(lab.root / "alone.lvsal.parquet")
    tr.save(lab.root / "paired.lvsal.parquet")
    (lab.root / "paired.lvsal.json").write_text(json.dumps(demo_trace))
    lab.open(page, "")
    page.locator(".jp-DirListing-item", has_text="alone.lvsal.parquet").dblclick()
    msg = page.locator(".jp-MimeDocument .jp-LvsalParquet .jp-LvsalTrace-message")
    msg.wait_for(timeout=30_000)
    text = msg.inner_text()
    assert "lv.Trace.load" in text and "alone.lvsal.parquet" in text and "alone.lvsal.json" in text
    assert page.locator("text=not UTF-8").count() == 0

    page.locator(".jp-DirListing-item", has_text="paired.lvsal.parquet").dblclick()
    view = page.locator(".jp-MimeDocument .jp-LvsalParquet", has=page.locator(".jp-LvsalTrace-strip"))
    view.wait_for(timeout=30_000)
    assert "Showing paired.lvsal.json" in view.inner_text()
    assert view.locator(".jp-LvsalTrace-token").count() == len(demo_trace["steps"])
    assert page.locator("text=not UTF-8").count() == 0
    (artifacts_dir() / "parquet.png").unlink(missing_ok=True)
    page.screenshot(path=str(artifacts_dir() / "parquet.png"))


def test_fixture_is_current():
    """The committed fixture is what make_fixture.py writes (regenerate it after a schema change)."""
    from make_fixture import payload

    assert json.loads((FIXTURES / "demo.lvsal.json").read_text()) == json.loads(json.dumps(payload()))
