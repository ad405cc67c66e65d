"""The offline fixture: hand labels, captions consistent with them, and the lazy image loader."""

import importlib.util
import json
import sys

import pytest

from lvsal_nb.errors import ImageError
from lvsal_nb.eval.chair import Chair
from lvsal_nb.eval.coco import COCO_CATEGORIES, image_captions, image_objects
from lvsal_nb.eval.fixtures import FIXTURE_CAPTIONS, FIXTURE_IMAGES, FIXTURE_INSTANCES, load_fixture_image
from lvsal_nb.eval.pope import build_pope

# The hand labels, written again here so an edit of the JSON has to be deliberate.
EXPECTED = {
    "astronaut": ["person"],
    "chelsea": ["cat"],
    "coffee": ["cup", "spoon"],
    "stereo_motorcycle": ["motorcycle", "bench", "bottle", "bicycle"],
    "camera": ["person"],
    "horse": ["horse"],
    "rocket": [],
    "china": ["boat"],
    "grace_hopper": ["person", "tie"],
}


def test_fixture_labels():
    ann = json.loads(FIXTURE_INSTANCES.read_text())
    assert ann["categories"] == list(COCO_CATEGORIES)
    names = {img["id"]: img["name"] for img in ann["images"]}
    assert sorted(names.values()) == sorted(FIXTURE_IMAGES)
    objs = image_objects(ann)
    assert {names[i]: o for i, o in objs.items()} == EXPECTED


def test_reference_captions_mention_only_labelled_objects():
    caps = image_captions(FIXTURE_CAPTIONS)
    assert all(len(c) == 2 for c in caps.values())
    ch = Chair.from_coco(FIXTURE_INSTANCES, FIXTURE_CAPTIONS)
    names = {img["id"]: img["name"] for img in json.loads(FIXTURE_INSTANCES.read_text())["images"]}
    truth = {names[i]: set(v) for i, v in ch.truth.items()}
    # captions add only "table" (coffee on a wooden table) to the instance labels
    assert truth == {k: set(v) | ({"dining table"} if k == "coffee" else set()) for k, v in EXPECTED.items()}


def test_pope_on_the_fixture():
    qs = build_pope(FIXTURE_INSTANCES, "popular", n_images=None, seed=0, per_image=1)
    assert len(qs) == 16  # 8 images hold >= 1 object (not the rocket), one yes + one no each
    objs = image_objects(FIXTURE_INSTANCES)
    # 'person' is in 3 of the 8 images and every other object in 1: person is the popular negative
    # wherever it is absent; elsewhere the negative is some other absent object.
    for yes, no in zip(qs[::2], qs[1::2]):
        assert yes["image_id"] == no["image_id"] and (yes["label"], no["label"]) == ("yes", "no")
        present = objs[no["image_id"]]
        assert yes["object"] == present[0]
        assert (no["object"] == "person") == ("person" not in present)
        assert no["object"] not in present


@pytest.mark.parametrize(
    "name, module, package",
    [("coffee", "skimage", "scikit-image"), ("china", "sklearn", "scikit-learn"),
     ("grace_hopper", "matplotlib", "matplotlib")],
)  # fmt: skip
def test_missing_package_names_the_pip_install(monkeypatch, name, module, package):
    # makes `import module...` raise ImportError, also for submodules another test imported already
    for key in [module] + [k for k in sys.modules if k.startswith(module + ".")]:
        monkeypatch.setitem(sys.modules, key, None)
    with pytest.raises(ImageError, match=f"pip install {package}"):
        load_fixture_image(name)


def test_unknown_name():
    with pytest.raises(ImageError, match="astronaut"):
        load_fixture_image("lena")


@pytest.mark.skipif(importlib.util.find_spec("skimage") is None, reason="scikit-image not installed")
def test_load_skimage_photos():
    sizes = {"coffee": (600, 400), "stereo_motorcycle": (741, 500), "camera": (512, 512), "horse": (400, 328)}
    for name, size in sizes.items():
        img = load_fixture_image(name)
        assert img.mode == "RGB" and img.size == size
    # the horse silhouette: black horse on white
    horse = load_fixture_image("skimage/horse.png")
    assert horse.getpixel((5, 5)) == (255, 255, 255) and horse.getpixel((200, 160)) == (0, 0, 0)


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="scikit-learn not installed")
def test_load_sklearn_photo():
    assert load_fixture_image("china").size == (640, 427)


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="matplotlib not installed")
def test_load_matplotlib_photo():
    img = load_fixture_image("matplotlib/grace_hopper.jpg")
    assert img.mode == "RGB" and img.size == (512, 600)
