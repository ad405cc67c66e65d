"""The one saliency colour language of every view: Viridis, 256 steps, low = dark, high = bright.

SALIENCY_PALETTE[0] == "#440154" (lowest)   SALIENCY_PALETTE[255] == "#FDE725" (highest)
color_for(0.2, 0.0, 0.4) -> the middle colour; text_color_for(...) -> "white" on the dark half
"""

from __future__ import annotations

import math

from bokeh.palettes import Viridis256

SALIENCY_PALETTE: tuple[str, ...] = tuple(Viridis256)


def _index(value: float | None, lo: float, hi: float) -> int | None:
    if value is None or not math.isfinite(value):
        return None
    if hi <= lo:
        return 0
    x = (float(value) - lo) / (hi - lo)
    return int(min(max(x, 0.0), 1.0) * 255 + 0.5)


def color_for(value: float | None, lo: float, hi: float, missing: str = "transparent") -> str:
    """The palette colour of `value` on the fixed scale [lo, hi] (clipped); `missing` for None/NaN."""
    i = _index(value, lo, hi)
    return missing if i is None else SALIENCY_PALETTE[i]


def text_color_for(value: float | None, lo: float, hi: float) -> str:
    """White text on the darker half of the palette, black on the brighter half."""
    i = _index(value, lo, hi)
    return "black" if i is None or i >= 128 else "white"
