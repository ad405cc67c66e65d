"""A trace as one self-contained piece of HTML: the `text/html` fallback of viewer and Tuner outputs.

Shown where no kernel and no widget state are there: a saved notebook reopened, nbconvert HTML,
VS Code, GitHub. Without JavaScript it is the token strip (Viridis on the per-trace scale, marks
outlined, a tooltip per token) with its colour bar and the step-0 readout; with JavaScript
(nbconvert HTML, VS Code) a slider, the arrow keys and clicks on tokens scrub through the steps in
the browser: the readout and the image heatmap follow, no kernel involved.

Deliberately not Bokeh standalone output: inline BokehJS is ~1.3 MB per output, which is what made
notebooks with viewers grow by megabytes (issue 19, item 7). This is ~10 KB plus 1 byte per image
patch and step, with no external resource (no CDN, no fonts).
"""

from __future__ import annotations

import base64
import html
import json
import math
import uuid
from pathlib import Path

import numpy as np

from ..palette import (
    HALO_COLOR,
    MARK_STYLE,
    SALIENCY_PALETTE,
    color_for,
    palette_index,
    scale_label,
    text_color_for,
)
from ..trace import Trace
from .columns import display, row, score, top

# 17 stops of the palette for the colour bar's CSS gradient (exact at every 16th index)
_STOPS = ", ".join(SALIENCY_PALETTE[min(255, i * 16)] for i in range(17))
MAX_STEPS_WITH_IMAGE = 4096  # past this the heatmap data is left out (the strip stays)


def _mark_css(label: str) -> str:
    color, dash = MARK_STYLE[label]
    # 2 px outline (solid / dashed) with a 1 px white halo on both sides: visible on every colour
    return (
        f"outline:2px {dash} {color};outline-offset:1px;"
        f"box-shadow:0 0 0 1px {HALO_COLOR}, 0 0 0 4px {HALO_COLOR};"
    )


def image_indices(trace: Trace, hi: float) -> list[str]:
    """Per step, the image-token part of its row (mean of layers) as palette indices 0..255 on the
    scale [0, hi], one byte per patch in grid order, base64 (empty strings without an image)."""
    grid, span = trace.image_grid, trace.spans.image
    if (
        not grid
        or not span
        or grid[0] * grid[1] > span[1] - span[0]
        or len(trace.records) > MAX_STEPS_WITH_IMAGE
    ):
        return []
    n = grid[0] * grid[1]
    out = []
    for i in range(len(trace.records)):
        v = np.asarray(row(trace, i, None)[span[0] : span[0] + n], dtype=float)
        idx = bytes((palette_index(x, 0.0, hi) or 0) for x in v)
        out.append(base64.b64encode(idx).decode())
    return out


def image_top_mean(trace: Trace) -> float:
    """The heatmap's per-trace scale: max over steps of the image part of the mean-of-layers row."""
    grid, span = trace.image_grid, trace.spans.image
    if not grid or not span or not trace.records:
        return 0.0
    n = grid[0] * grid[1]
    return top([np.nanmax(row(trace, i, None)[span[0] : span[0] + n]) for i in range(len(trace.records))])


def static_html(trace: Trace, marks: dict | None = None, title: str = "lvsal trace") -> str:
    """The trace as self-contained HTML (see the module docstring).

    Args:
        trace: the Trace.
        marks: step -> label ("hallucinated" / "unsure" / "correct"), or objects with `.label`.
        title: the first line's label.
    """
    marks = {int(k): getattr(v, "label", v) for k, v in (marks or {}).items()}
    uid = "lvsal-" + uuid.uuid4().hex[:10]
    recs = trace.records
    sal = [score(s, trace.layers, None) for s in recs]
    hi = top(sal)
    cells = []
    for s, v in zip(recs, sal):
        m = marks.get(s.step)
        tip = f"step {s.step} · saliency {'–' if math.isnan(v) else f'{v:.3f}'} · p {s.prob:.3f}"
        tip += f" · {s.decision}" + (f" · marked {m}" if m else "")
        style = (
            f"background:{color_for(v, 0.0, hi)};color:{text_color_for(v, 0.0, hi)};"
            "padding:1px 3px;margin:3px 2px;display:inline-block;border-radius:2px;cursor:pointer;"
            + (_mark_css(m) if m in MARK_STYLE else "")
        )
        cells.append(
            f"<span data-step='{s.step}' title='{html.escape(tip, quote=True)}' "
            f"style='{style}'>{html.escape(display(s.token))}</span>"
        )
    img_hi = image_top_mean(trace)
    data = {
        "tokens": [display(s.token) for s in recs],
        "sal": [None if math.isnan(v) else round(v, 5) for v in sal],
        "prob": [round(float(s.prob), 4) for s in recs],
        "tau": [None if s.tau is None else round(float(s.tau), 5) for s in recs],
        "decision": [s.decision for s in recs],
        "marks": {str(k): v for k, v in marks.items()},
        "grid": list(trace.image_grid) if trace.image_grid else None,
        "image": image_indices(trace, img_hi),
        "palette": list(SALIENCY_PALETTE),
    }
    first = _readout(recs, sal, marks) if recs else "no steps"
    n = len(recs)
    thumb = ""
    if trace.image_png and data["image"]:
        b64 = base64.b64encode(trace.image_png).decode()
        rows, cols = trace.image_grid
        thumb = (
            f"<div style='width:200px;flex:none'><div style='position:relative'>"
            f"<img src='data:image/png;base64,{b64}' style='width:200px;display:block' alt='image'>"
            f"<canvas class='lvsal-heat' width='{cols}' height='{rows}' style='position:absolute;left:0;"
            "top:0;width:100%;height:100%;opacity:0.75;image-rendering:pixelated'></canvas></div>"
            f"<div style='font-size:11px'>image tokens at this step · "
            f"{html.escape(scale_label('saliency', 0.0, img_hi))}</div></div>"
        )
    meta = (
        f"{html.escape(title)} · {html.escape(str(trace.config.get('model_id', '')))} · {n} steps "
        f"(numbered from 0) · prompt: {html.escape(trace.prompt[:200])}"
    )
    bar = (
        f"<span style='display:inline-block;width:160px;height:9px;vertical-align:middle;"
        f"background:linear-gradient(to right, {_STOPS})'></span> "
        f"{html.escape(scale_label('saliency', 0.0, hi))} (dark = low, bright = high)"
    )
    style = "font-family:sans-serif;font-size:13px;max-width:100%;color:var(--jp-ui-font-color1, inherit)"
    return f"""<div id="{uid}" class="lvsal-static" style="{style}">
<div style="font-weight:bold">{meta}</div>
<div class="lvsal-strip" style="font-family:monospace;line-height:1.9;margin:4px 0">{"".join(cells)}</div>
<div style="font-size:11px">{bar}</div>
<div style="display:flex;gap:12px;align-items:flex-start;flex-wrap:wrap;margin-top:6px">{thumb}
<div style="flex:1;min-width:240px"><input class="lvsal-scrub" type="range" min="0" max="{max(n - 1, 0)}" \
value="0" style="width:100%;display:none" aria-label="step">
<div class="lvsal-readout">{first}</div></div></div>
<script type="application/json" class="lvsal-data">{_json_in_html(data)}</script>
<script>{_SCRIPT.replace("__UID__", uid)}</script>
</div>"""


def _readout(recs, sal, marks, step: int = 0) -> str:
    s, v = recs[step], sal[step]
    tau = "" if s.tau is None else f" (τ {s.tau:.3f})"
    m = marks.get(step)
    return (
        f"step <b>{step}</b> / {len(recs) - 1} · <b>{html.escape(display(s.token))}</b> · saliency "
        f"{'–' if math.isnan(v) else f'{v:.3f}'}{tau} · p {s.prob:.3f} · {s.decision}"
        + (f" · marked <b>{m}</b>" if m else "")
    )


def _json_in_html(obj) -> str:
    """JSON safe inside a <script> element (no '</' can close it)."""
    return json.dumps(obj, separators=(",", ":")).replace("</", "<\\/")


# Scrubbing without a kernel (slider, arrow keys, clicks on tokens): plain ES5, no dependency.
_SCRIPT = (Path(__file__).parent / "static_html.js").read_text(encoding="utf-8")
