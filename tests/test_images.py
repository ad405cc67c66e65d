"""Every supported image input becomes the RGB picture it shows; the rest is refused with what to pass.

Each expected array is computed here with numpy arithmetic from the documented rule (never by the
conversion under test): 16-bit v -> round(v / 257), float in [0, 1] -> round(255 x), alpha composited
on white a·c + (1 − a)·255, CMYK -> (255 − C)(255 − K) / 255, palette -> its colours.
"""

import numpy as np
import pytest
import torch
from PIL import Image

from lvsal_nb.errors import ImageError
from lvsal_nb.images import to_rgb

H, W = 5, 7


def rgb(x) -> np.ndarray:
    out = to_rgb(x)
    assert isinstance(out, Image.Image) and out.mode == "RGB"
    return np.asarray(out).astype(np.int64)


def grey3(g) -> np.ndarray:
    g = np.asarray(g, dtype=np.int64)
    return np.stack([g, g, g], -1)


@pytest.fixture
def rng():
    return np.random.default_rng(3)


def on_white(c, a):
    """Reference compositing: c, a uint8 arrays (a broadcast over channels)."""
    a = a.astype(np.float64)[..., None] / 255.0
    return np.round(a * c.astype(np.float64) + (1 - a) * 255.0).astype(np.int64)


# ---- PIL modes -------------------------------------------------------------------------------------
def test_rgb_and_grey_modes(rng):
    c = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    assert (rgb(Image.fromarray(c, "RGB")) == c).all()
    g = rng.integers(0, 256, (H, W), dtype=np.uint8)
    assert (rgb(Image.fromarray(g, "L")) == grey3(g)).all()
    b = rng.random((H, W)) > 0.5
    assert (rgb(Image.fromarray(b).convert("1")) == grey3(b * 255)).all()


@pytest.mark.parametrize("mode", ["I;16", "I"])
def test_sixteen_bit_modes_are_scaled_not_clipped(rng, mode):
    v = rng.integers(0, 65536, (H, W)).astype(np.uint16)
    v[0, 0], v[0, 1] = 0, 65535
    im = Image.fromarray(v) if mode == "I;16" else Image.fromarray(v.astype(np.int32), "I")
    assert im.mode == mode
    expected = grey3(np.round(v / 257.0))
    assert (rgb(im) == expected).all()
    assert not (rgb(im) == 255).all()  # the defect: everything above 255 clipped to white


def test_sixteen_bit_png_file(tmp_path, rng):
    v = rng.integers(0, 65536, (H, W)).astype(np.uint16)
    p = tmp_path / "deep.png"
    Image.fromarray(v).save(p)
    assert (rgb(p) == grey3(np.round(v / 257.0))).all()
    assert (rgb(str(p)) == grey3(np.round(v / 257.0))).all()


def test_mode_i_outside_16_bits_is_refused():
    with pytest.raises(ImageError, match=r"16-bit image values must lie in \[0, 65535\]"):
        to_rgb(Image.fromarray(np.array([[-1, 70000]], dtype=np.int32), "I"))


def test_mode_f_follows_the_float_rule(rng):
    x = rng.random((H, W)).astype(np.float32)  # max <= 1: [0, 1]
    assert (rgb(Image.fromarray(x, "F")) == grey3(np.round(x.astype(np.float64) * 255))).all()
    y = (x * 200 + 2).astype(np.float32)  # max > 1: [0, 255]
    assert (rgb(Image.fromarray(y, "F")) == grey3(np.round(y.astype(np.float64)))).all()
    with pytest.raises(ImageError, match="NaN or infinite"):
        to_rgb(Image.fromarray(np.array([[np.nan, 0.5]], np.float32), "F"))


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_transparent_images_are_composited_on_white(rng, mode):
    a = rng.integers(0, 256, (H, W), dtype=np.uint8)
    a[0, 0], a[0, 1] = 0, 255
    if mode == "RGBA":
        c = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        im = Image.fromarray(np.dstack([c, a]), "RGBA")
        expected = on_white(c, a)
    else:
        g = rng.integers(0, 256, (H, W), dtype=np.uint8)
        im = Image.fromarray(np.dstack([g, a]), "LA")
        expected = grey3(on_white(g[..., None], a)[..., 0])
    got = rgb(im)
    assert np.abs(got - expected).max() <= 1  # Pillow rounds in integers
    assert (got[0, 0] == 255).all()  # fully transparent: white, not black


def test_palette_images_show_their_colours_and_transparency(rng):
    pal = rng.integers(0, 256, (4, 3), dtype=np.uint8)
    idx = rng.integers(0, 4, (H, W), dtype=np.uint8)
    im = Image.fromarray(idx, "P")
    im.putpalette(pal.ravel().tolist())
    assert (rgb(im) == pal[idx]).all()
    im.info["transparency"] = 2  # index 2 transparent: white
    expected = np.where((idx == 2)[..., None], 255, pal[idx])
    assert (rgb(im) == expected).all()


def test_cmyk(rng):
    c = rng.integers(0, 256, (H, W, 4), dtype=np.uint8)
    C, K = c[..., :3].astype(np.float64), c[..., 3:].astype(np.float64)
    expected = np.round((255 - C) * (255 - K) / 255)
    assert np.abs(rgb(Image.fromarray(c, "CMYK")) - expected).max() <= 1


def test_exif_orientation_is_applied(tmp_path, rng):
    c = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    im = Image.fromarray(c)
    exif = im.getexif()
    exif[0x0112] = 3  # rotated 180 degrees
    p = tmp_path / "turned.png"
    im.save(p, exif=exif)
    assert (rgb(p) == c[::-1, ::-1]).all()


# ---- arrays ------------------------------------------------------------------------------------------
def test_uint8_layouts(rng):
    c = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    assert (rgb(c) == c).all()
    assert (rgb(np.ascontiguousarray(c.transpose(2, 0, 1))) == c).all()  # CHW numpy
    g = rng.integers(0, 256, (H, W), dtype=np.uint8)
    assert (rgb(g) == grey3(g)).all()
    assert (rgb(g[..., None]) == grey3(g)).all()
    assert (rgb(g[None]) == grey3(g)).all()
    a = rng.integers(0, 256, (H, W), dtype=np.uint8)
    assert np.abs(rgb(np.dstack([c, a])) - on_white(c, a)).max() <= 1


def test_uint16_array_is_scaled_not_wrapped(rng):
    v = rng.integers(0, 65536, (H, W, 3)).astype(np.uint16)
    assert (rgb(v) == np.round(v / 257.0)).all()


def test_float_arrays_follow_the_documented_rule(rng):
    x = rng.random((H, W, 3))
    assert (rgb(x) == np.round(x * 255)).all()  # max <= 1: [0, 1] (the defect: all black)
    assert (rgb(x.astype(np.float32)) == np.round(x.astype(np.float32).astype(np.float64) * 255)).all()
    y = x * 250 + 3
    assert (rgb(y) == np.round(y)).all()  # max > 1: [0, 255]


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.array([[0.5, np.nan]]), "NaN or infinite"),
        (np.array([[0.5, np.inf]]), "NaN or infinite"),
        (np.array([[-0.1, 0.5]]), r"must lie in \[0, 1\] or \[0, 255\]"),
        (np.array([[0.0, 300.0]]), r"must lie in \[0, 1\] or \[0, 255\]"),
        (np.array([[0, 256]], dtype=np.int64), "cast 16-bit data to uint16"),
        (np.zeros((1, 4, 4, 3), np.uint8), "a batch"),
        (np.zeros((5, 5, 2), np.uint8), "1, 3 or 4 channels"),
        (np.zeros((0, 4, 3), np.uint8), "empty"),
        (np.zeros((4, 4, 3), np.complex64), "dtype complex64"),
        ([[1, 2], [3, 4]], "unsupported image type list"),
        (Image.new("I;16", (2, 2)).convert("I").point(lambda v: v - 5), "16-bit image values"),
    ],
)
def test_bad_inputs_are_refused_with_what_to_pass(bad, match):
    with pytest.raises(ImageError, match=match):
        to_rgb(bad)


def test_bool_and_wide_integer_arrays(rng):
    b = rng.random((H, W)) > 0.5
    assert (rgb(b) == grey3(b * 255)).all()
    i = rng.integers(0, 256, (H, W, 3)).astype(np.int64)
    assert (rgb(i) == i).all()


def test_torch_tensors_are_channels_first(rng):
    x = rng.random((3, H, W))
    assert (rgb(torch.from_numpy(x)) == np.round(x.transpose(1, 2, 0) * 255)).all()
    c = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    assert (rgb(torch.from_numpy(c)) == c).all()  # HWC tensor (first axis not a channel count)
    xb = torch.from_numpy(x).to(torch.bfloat16)
    ref = np.round(xb.double().numpy().transpose(1, 2, 0) * 255)
    assert (rgb(xb) == ref).all()
    with pytest.raises(ImageError, match="NaN or infinite"):
        to_rgb(torch.tensor([[float("nan"), 0.5]]))


def test_files_missing_or_not_images(tmp_path):
    assert to_rgb(None) is None
    with pytest.raises(ImageError, match="does not exist"):
        to_rgb(tmp_path / "nope.png")
    (tmp_path / "x.png").write_text("not an image")
    with pytest.raises(ImageError, match="cannot read x.png as an image"):
        to_rgb(tmp_path / "x.png")


# ---- the adapters see the converted picture -------------------------------------------------------
def test_adapter_prepare_sees_the_same_picture_for_every_encoding(llava_session, rng):
    c = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    ref = llava_session.adapter.prepare(c, "describe this image .")
    for same in (c.astype(np.float64) / 255.0, c.astype(np.uint16) * 257,
                 torch.from_numpy(c.transpose(2, 0, 1).copy())):  # fmt: skip
        got = llava_session.adapter.prepare(same, "describe this image .")
        assert torch.equal(got.inputs["pixel_values"], ref.inputs["pixel_values"])
        assert got.image_digest == ref.image_digest


def test_toy_model_inputs_see_transparent_pixels_as_white():
    from lvsal_nb.toy.inputs import pixel_values

    clear = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    white = Image.new("RGB", (64, 64), (255, 255, 255))
    assert torch.equal(pixel_values(clear), pixel_values(white))


def test_eval_image_files_are_converted(tmp_path, rng):
    from lvsal_nb.eval.tasks import load_image_source

    v = rng.integers(0, 65536, (H, W)).astype(np.uint16)
    Image.fromarray(v).save(tmp_path / "deep.png")
    got = np.asarray(load_image_source({"kind": "file", "path": str(tmp_path / "deep.png")}))
    assert (got.astype(np.int64) == grey3(np.round(v / 257.0))).all()
