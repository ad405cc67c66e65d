"""Every supported image input -> the RGB picture it shows (PIL, 8 bits per channel), or a clear error.

The model must see the picture the user means. Rules (each tested against an independent
reference in tests/test_images.py):

PIL images, by mode
    RGB                      as is
    L, 1                     grey copied to R, G, B ("1": 0 or 255)
    RGBA, LA, PA, RGBa, La,  composited on WHITE by their alpha (out = a·c + (1 − a)·255): a
    P with transparency      transparent background shows as white, as in a browser on a white page
    P                        its palette colours
    CMYK, YCbCr, LAB, HSV    Pillow's conversion to RGB
    I;16, I;16B, I;16L, I;16N  16-bit: value v in [0, 65535] -> round(v · 255 / 65535)
    I                        32-bit integers, read as 16-bit data (Pillow opens 16-bit PNGs as "I"):
                             values must lie in [0, 65535] and are scaled as above
    F                        32-bit float: the float rule below
numpy arrays and torch tensors
    shape                    HxW (grey), or 3-D with 1, 3 or 4 channels. numpy arrays are read
                             channels-last (HWC) first, torch tensors channels-first (CHW) first, the
                             other layout when the preferred one does not fit (as torchvision does).
                             4 channels = RGBA (composited on white), 1 = grey.
    bool                     False -> 0, True -> 255
    uint8                    as is
    uint16                   16-bit: round(v · 255 / 65535)
    other integers           must lie in [0, 255] (8-bit values in a wider type); otherwise refused
    float (any width)        the float rule: if max <= 1 the range is [0, 1] (v · 255), else [0, 255];
                             NaN, ±inf, negative values or values above 255 are refused
str / pathlib.Path           the file, opened with Pillow (first frame), turned upright by its EXIF
                             orientation, then converted by the PIL rules above
None                         no image (a text-only prompt)

Rounding is to the nearest integer, halves up (floor(x + 0.5)).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from .errors import ImageError

WHAT_TO_PASS = (
    "pass a PIL image, a path to an image file, or a numpy array / torch tensor of shape HxW, HxWxC "
    "or CxHxW with C in (1, 3, 4), dtype uint8, uint16, bool or float in [0, 1] or [0, 255]"
)
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")


def to_rgb(image: Any) -> Image.Image | None:
    """The RGB PIL image (mode "RGB", uint8) that `image` shows; None for None. See the module doc.

    Raises:
        ImageError: an unsupported type, shape, dtype or value range, naming what to pass instead.
    """
    if image is None:
        return None
    if isinstance(image, Image.Image):
        return _from_pil(image)
    if isinstance(image, (str, Path)):
        return _from_file(Path(image))
    if type(image).__module__.startswith("torch"):
        return _from_array(_torch_to_numpy(image), channels_first=True)
    if isinstance(image, np.ndarray):
        return _from_array(image, channels_first=False)
    raise ImageError(f"unsupported image type {type(image).__name__}; {WHAT_TO_PASS}")


# ---- files and PIL modes -------------------------------------------------------------------------
def _from_file(p: Path) -> Image.Image:
    if not p.exists():
        raise ImageError(f"image file {str(p)!r} does not exist; pass a path to a PNG/JPEG or a PIL image")
    try:
        with Image.open(p) as im:
            im.seek(0)
            im.load()
            upright = ImageOps.exif_transpose(im)  # a photo stored sideways is shown upright
            return _from_pil(upright if upright is not None else im)
    except ImageError:
        raise
    except Exception as e:
        raise ImageError(
            f"cannot read {p.name} as an image ({e}); pass a PNG/JPEG file or a PIL image"
        ) from e


def _from_pil(im: Image.Image) -> Image.Image:
    mode = im.mode
    if mode == "RGB":
        return im.copy()
    if mode in ("L", "1"):
        return im.convert("L").convert("RGB")
    if mode == "P":
        has_alpha = "transparency" in im.info or im.palette is not None and im.palette.mode == "RGBA"
        return _on_white(im.convert("RGBA")) if has_alpha else im.convert("RGB")
    if mode in _ALPHA_MODES:
        return _on_white(im.convert("RGBA"))
    if mode in _SIXTEEN_BIT_MODES or mode == "I":
        return _from_array(np.asarray(im).astype(np.int64), channels_first=False, sixteen_bit=True)
    if mode == "F":
        return _from_array(np.asarray(im, dtype=np.float32), channels_first=False)
    if mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        return im.convert("RGB")
    raise ImageError(
        f"PIL image mode {mode!r} is not supported; convert it to 'RGB' first, or {WHAT_TO_PASS}"
    )


def _on_white(rgba: Image.Image) -> Image.Image:
    """Composite an RGBA image on a white background (transparent -> white)."""
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


# ---- arrays ----------------------------------------------------------------------------------------
def _torch_to_numpy(t) -> np.ndarray:
    t = t.detach().cpu()
    if t.is_floating_point():
        t = t.double()  # bfloat16 / float16 have no numpy twin or lose the range check
    return t.numpy()


def _layout(a: np.ndarray, channels_first: bool) -> np.ndarray:
    """HxW or 3-D -> HxWxC with C in (1, 3, 4)."""
    if a.ndim == 2:
        return a[:, :, None]
    if a.ndim != 3:
        hint = " (a batch? pass one image: x[0])" if a.ndim == 4 and a.shape[0] == 1 else ""
        raise ImageError(
            f"an image array must be HxW, HxWxC or CxHxW, got shape {a.shape}{hint}; {WHAT_TO_PASS}"
        )
    hwc_ok, chw_ok = a.shape[2] in (1, 3, 4), a.shape[0] in (1, 3, 4)
    if channels_first and chw_ok or not hwc_ok and chw_ok:
        return np.moveaxis(a, 0, -1)
    if hwc_ok:
        return a
    raise ImageError(
        f"an image array needs 1, 3 or 4 channels (first or last axis), got shape {a.shape}; {WHAT_TO_PASS}"
    )


def _to_uint8(a: np.ndarray, sixteen_bit: bool = False) -> np.ndarray:
    """Values -> uint8 by the dtype rules of the module doc."""
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.uint16 or sixteen_bit:
        v = a.astype(np.int64)
        if v.size and (v.min() < 0 or v.max() > 65535):
            raise ImageError(
                f"16-bit image values must lie in [0, 65535], got [{v.min()}, {v.max()}]; "
                "pass uint8 or uint16 data"
            )
        return ((v * 255 + 32767) // 65535).astype(np.uint8)  # round(v * 255 / 65535), halves up
    if np.issubdtype(a.dtype, np.integer):
        if a.size and (a.min() < 0 or a.max() > 255):
            raise ImageError(
                f"integer image values must lie in [0, 255] for dtype {a.dtype}, got "
                f"[{a.min()}, {a.max()}]; cast 16-bit data to uint16, or pass floats in [0, 1]"
            )
        return a.astype(np.uint8)
    if np.issubdtype(a.dtype, np.floating):
        v = a.astype(np.float64)
        if not np.isfinite(v).all():
            raise ImageError(
                "the image array holds NaN or infinite values; pass finite values in [0, 1] or [0, 255]"
            )
        lo, hi = float(v.min()), float(v.max())
        if lo < 0 or hi > 255:
            raise ImageError(
                f"float image values must lie in [0, 1] or [0, 255], got [{lo:g}, {hi:g}]; "
                "rescale them (e.g. (x - x.min()) / (x.max() - x.min()))"
            )
        scale = 255.0 if hi <= 1.0 else 1.0  # the documented rule: max <= 1 means [0, 1]
        return np.floor(v * scale + 0.5).astype(np.uint8)
    raise ImageError(f"image arrays of dtype {a.dtype} are not supported; {WHAT_TO_PASS}")


def _from_array(a: np.ndarray, channels_first: bool, sixteen_bit: bool = False) -> Image.Image:
    a = np.asarray(a)
    if a.size == 0:
        raise ImageError(f"the image array is empty (shape {a.shape}); {WHAT_TO_PASS}")
    hwc = _layout(a, channels_first)
    u8 = np.ascontiguousarray(_to_uint8(hwc, sixteen_bit))
    c = u8.shape[2]
    if c == 1:
        return Image.fromarray(u8[:, :, 0], "L").convert("RGB")
    if c == 3:
        return Image.fromarray(u8, "RGB")
    return _on_white(Image.fromarray(u8, "RGBA"))
