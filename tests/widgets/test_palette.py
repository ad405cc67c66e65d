"""The one colour language (palette.py): values checked against bokeh's Viridis256 and by hand."""

import pytest
from bokeh.palettes import Viridis256

from lvsal_nb import palette as P


def test_palette_is_bokehs_viridis256_dark_to_bright():
    assert P.SALIENCY_PALETTE == tuple(Viridis256)
    assert P.SALIENCY_PALETTE[0] == "#440154" and P.SALIENCY_PALETTE[-1] == "#FDE724"


@pytest.mark.parametrize(
    ("value", "index"),
    [(0.0, 0), (1.0, 255), (0.5, 128), (0.25, 64), (-3, 0), (9, 255), (0.999, 255), (0.4999, 127)],
)
def test_color_for_maps_linearly_onto_256_steps(value, index):
    assert P.color_for(value, 0.0, 1.0) == Viridis256[index]


def test_nan_degenerate_scale_and_text_colour():
    assert P.color_for(float("nan"), 0, 1) == P.NAN_COLOR and P.color_for(None, 0, 1) == P.NAN_COLOR
    assert P.color_for(0.3, 0.0, 0.0) == Viridis256[0]  # nothing to compare with: all dark
    assert P.text_color_for(0.1, 0, 1) == "#FFFFFF"  # dark purple cell: white text
    assert P.text_color_for(0.9, 0, 1) == "#000000"  # yellow cell: black text
    assert P.text_color_for(0.5, 0, 1) == "#000000"  # index 128 starts the bright half


def test_mark_styles_and_scale_label():
    assert P.MARK_STYLE == {
        "hallucinated": ("#D62728", "solid"),
        "unsure": ("#FF7F0E", "dashed"),
        "correct": ("#2CA02C", "solid"),
    }
    assert P.MARK_WIDTH_PX == 2 and (P.HALO_COLOR, P.HALO_WIDTH_PX) == ("#FFFFFF", 1)
    assert P.scale_label("saliency", 0, 0.41) == "saliency, 0 – 0.41, per trace"
