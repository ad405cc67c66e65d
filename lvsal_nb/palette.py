"""The one saliency colour language of lvsal-nb (notebook viewer, Tuner, extension, dashboard).

Saliency is Viridis, 256 steps (bokeh.palettes.Viridis256): low saliency is DARK purple
(#440154), high saliency is BRIGHT yellow (#FDE724), in every view. Scales are fixed and stated:
per trace [0, max of the shown quantity over the whole trace] unless a view says "per step".
Marks are drawn so they stay visible on every colour of the palette: 2 px lines with a 1 px white
halo. Steps are numbered from 0 (the index of `Trace.steps`).

labextension/src/colors.ts holds a copy of SALIENCY_PALETTE; a test checks the two are identical.
"""

from __future__ import annotations

import math

# bokeh.palettes.Viridis256, copied literally so the extension and the dashboard can compare lists.
SALIENCY_PALETTE: tuple[str, ...] = (
    "#440154", "#440255", "#440357", "#450558", "#45065A", "#45085B", "#46095C", "#460B5E",
    "#460C5F", "#460E61", "#470F62", "#471163", "#471265", "#471466", "#471567", "#471669",
    "#47186A", "#48196B", "#481A6C", "#481C6E", "#481D6F", "#481E70", "#482071", "#482172",
    "#482273", "#482374", "#472575", "#472676", "#472777", "#472878", "#472A79", "#472B7A",
    "#472C7B", "#462D7C", "#462F7C", "#46307D", "#46317E", "#45327F", "#45347F", "#453580",
    "#453681", "#443781", "#443982", "#433A83", "#433B83", "#433C84", "#423D84", "#423E85",
    "#424085", "#414186", "#414286", "#404387", "#404487", "#3F4587", "#3F4788", "#3E4888",
    "#3E4989", "#3D4A89", "#3D4B89", "#3D4C89", "#3C4D8A", "#3C4E8A", "#3B508A", "#3B518A",
    "#3A528B", "#3A538B", "#39548B", "#39558B", "#38568B", "#38578C", "#37588C", "#37598C",
    "#365A8C", "#365B8C", "#355C8C", "#355D8C", "#345E8D", "#345F8D", "#33608D", "#33618D",
    "#32628D", "#32638D", "#31648D", "#31658D", "#31668D", "#30678D", "#30688D", "#2F698D",
    "#2F6A8D", "#2E6B8E", "#2E6C8E", "#2E6D8E", "#2D6E8E", "#2D6F8E", "#2C708E", "#2C718E",
    "#2C728E", "#2B738E", "#2B748E", "#2A758E", "#2A768E", "#2A778E", "#29788E", "#29798E",
    "#287A8E", "#287A8E", "#287B8E", "#277C8E", "#277D8E", "#277E8E", "#267F8E", "#26808E",
    "#26818E", "#25828E", "#25838D", "#24848D", "#24858D", "#24868D", "#23878D", "#23888D",
    "#23898D", "#22898D", "#228A8D", "#228B8D", "#218C8D", "#218D8C", "#218E8C", "#208F8C",
    "#20908C", "#20918C", "#1F928C", "#1F938B", "#1F948B", "#1F958B", "#1F968B", "#1E978A",
    "#1E988A", "#1E998A", "#1E998A", "#1E9A89", "#1E9B89", "#1E9C89", "#1E9D88", "#1E9E88",
    "#1E9F88", "#1EA087", "#1FA187", "#1FA286", "#1FA386", "#20A485", "#20A585", "#21A685",
    "#21A784", "#22A784", "#23A883", "#23A982", "#24AA82", "#25AB81", "#26AC81", "#27AD80",
    "#28AE7F", "#29AF7F", "#2AB07E", "#2BB17D", "#2CB17D", "#2EB27C", "#2FB37B", "#30B47A",
    "#32B57A", "#33B679", "#35B778", "#36B877", "#38B976", "#39B976", "#3BBA75", "#3DBB74",
    "#3EBC73", "#40BD72", "#42BE71", "#44BE70", "#45BF6F", "#47C06E", "#49C16D", "#4BC26C",
    "#4DC26B", "#4FC369", "#51C468", "#53C567", "#55C666", "#57C665", "#59C764", "#5BC862",
    "#5EC961", "#60C960", "#62CA5F", "#64CB5D", "#67CC5C", "#69CC5B", "#6BCD59", "#6DCE58",
    "#70CE56", "#72CF55", "#74D054", "#77D052", "#79D151", "#7CD24F", "#7ED24E", "#81D34C",
    "#83D34B", "#86D449", "#88D547", "#8BD546", "#8DD644", "#90D643", "#92D741", "#95D73F",
    "#97D83E", "#9AD83C", "#9DD93A", "#9FD938", "#A2DA37", "#A5DA35", "#A7DB33", "#AADB32",
    "#ADDC30", "#AFDC2E", "#B2DD2C", "#B5DD2B", "#B7DD29", "#BADE27", "#BDDE26", "#BFDF24",
    "#C2DF22", "#C5DF21", "#C7E01F", "#CAE01E", "#CDE01D", "#CFE11C", "#D2E11B", "#D4E11A",
    "#D7E219", "#DAE218", "#DCE218", "#DFE318", "#E1E318", "#E4E318", "#E7E419", "#E9E419",
    "#ECE41A", "#EEE51B", "#F1E51C", "#F3E51E", "#F6E61F", "#F8E621", "#FAE622", "#FDE724",
)
NAN_COLOR = "#BDBDBD"  # a step without a saliency value (no row, or NaN)

# Marks: (colour, line dash) of the 2 px line; every mark line gets a 1 px white halo (HALO).
MARK_STYLE = {
    "hallucinated": ("#D62728", "solid"),
    "unsure": ("#FF7F0E", "dashed"),
    "correct": ("#2CA02C", "solid"),
}
MARK_COLORS = {label: color for label, (color, _dash) in MARK_STYLE.items()}
MARK_WIDTH_PX = 2
HALO_COLOR, HALO_WIDTH_PX = "#FFFFFF", 1


def palette_index(value: float, lo: float, hi: float) -> int | None:
    """The palette index 0..255 of `value` on the linear scale [lo, hi] (clipped); None for NaN.

    A degenerate scale (hi <= lo) maps everything to index 0 (nothing stands out)."""
    v = float(value)
    if not math.isfinite(v):
        return None
    if not hi > lo:
        return 0
    z = (v - lo) / (hi - lo)
    return min(255, max(0, int(z * 256)))


def color_for(value: float, lo: float, hi: float) -> str:
    """The Viridis colour of `value` on the scale [lo, hi] (NAN_COLOR for NaN / None)."""
    i = None if value is None else palette_index(value, lo, hi)
    return NAN_COLOR if i is None else SALIENCY_PALETTE[i]


def text_color_for(value: float, lo: float, hi: float) -> str:
    """Readable text on `color_for(value, lo, hi)`: white on the darker half of the palette
    (index < 128), black on the brighter half and on NAN_COLOR."""
    i = None if value is None else palette_index(value, lo, hi)
    return "#000000" if i is None or i >= 128 else "#FFFFFF"


def scale_label(quantity: str, lo: float, hi: float, per: str = "per trace") -> str:
    """The stated scale of a colour bar, e.g. "saliency, 0 – 0.41, per trace"."""
    return f"{quantity}, {lo:.3g} – {hi:.3g}, {per}"
