"""The offline fixture: real photos from PyPI wheels, hand-labelled in COCO format.

``data/fixture_instances.json`` lists the COCO objects clearly visible in each photo and
``data/fixture_captions.json`` two honest reference captions per photo, so CHAIR and POPE
run end to end without COCO. The photos come from the packages' own data, loaded lazily:

=================  ==========================  ==================================
name               objects                     from
=================  ==========================  ==================================
astronaut          person                      scikit-image ``skimage.data``
chelsea            cat                         scikit-image
coffee             cup, spoon                  scikit-image
stereo_motorcycle  motorcycle, bench, bottle,  scikit-image (left view)
                   bicycle
camera             person                      scikit-image
horse              horse                       scikit-image (a silhouette)
rocket             (no COCO object)            scikit-image
china              boat                        scikit-learn ``load_sample_image``
grace_hopper       person, tie                 matplotlib ``get_sample_data``
=================  ==========================  ==================================
"""

from __future__ import annotations

import importlib
from pathlib import Path

from lvsal_nb.errors import ImageError

__all__ = ["FIXTURE_INSTANCES", "FIXTURE_CAPTIONS", "FIXTURE_IMAGES", "load_fixture_image"]

FIXTURE_INSTANCES = Path(__file__).with_name("data") / "fixture_instances.json"
FIXTURE_CAPTIONS = Path(__file__).with_name("data") / "fixture_captions.json"

# name -> (module to import, pip package that provides it)
FIXTURE_IMAGES: dict[str, tuple[str, str]] = {
    "astronaut": ("skimage.data", "scikit-image"),
    "chelsea": ("skimage.data", "scikit-image"),
    "coffee": ("skimage.data", "scikit-image"),
    "stereo_motorcycle": ("skimage.data", "scikit-image"),
    "camera": ("skimage.data", "scikit-image"),
    "horse": ("skimage.data", "scikit-image"),
    "rocket": ("skimage.data", "scikit-image"),
    "china": ("sklearn.datasets", "scikit-learn"),
    "grace_hopper": ("matplotlib.cbook", "matplotlib"),
}


def load_fixture_image(name: str):
    """Load one fixture photo as an RGB ``PIL.Image``.

    Args:
        name (str): one of ``FIXTURE_IMAGES`` (e.g. "coffee"), or its ``file_name`` in the
            fixture JSON (e.g. "skimage/coffee.png").

    Returns:
        PIL.Image.Image: the photo in RGB mode (grayscale and RGBA sources are converted;
        the horse silhouette's transparent background becomes white).

    Raises:
        ImageError: unknown name, or the package that ships the photo is not installed
            (the message names the ``pip install`` to run).
    """
    from PIL import Image

    key = Path(str(name)).stem if "/" in str(name) else str(name)
    key = {"motorcycle_left": "stereo_motorcycle"}.get(key, key)
    if key not in FIXTURE_IMAGES:
        raise ImageError(f"no fixture image {name!r}; choose one of {sorted(FIXTURE_IMAGES)}.")
    module, package = FIXTURE_IMAGES[key]
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        top = module.split(".")[0]
        if (getattr(e, "name", None) or top).split(".")[0] == top:
            raise ImageError(
                f"fixture image {key!r} ships with {package}, which is not installed: pip install {package}"
            ) from e
        # The package is there but one of its own dependencies is not.
        raise ImageError(
            f"fixture image {key!r} needs {package}, whose import failed ({e}): pip install -U {package}"
        ) from e

    if module == "skimage.data":
        arr = getattr(mod, key)()
        if key == "stereo_motorcycle":
            arr = arr[0]  # (left, right, disparity): the left view
        if arr.dtype == bool:  # horse() is a bool mask, True = white background, False = the black horse
            arr = arr.astype("uint8") * 255
        img = Image.fromarray(arr)
    elif module == "sklearn.datasets":
        img = Image.fromarray(mod.load_sample_image("china.jpg"))
    else:
        with mod.get_sample_data("grace_hopper.jpg") as f:
            img = Image.open(f)
            img.load()
    if img.mode == "RGBA":
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    return img.convert("RGB")
