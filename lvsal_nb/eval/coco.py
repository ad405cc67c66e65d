"""Reading COCO-format annotation files (instances and captions), shared by CHAIR and POPE.

Only the fields both protocols need are read: ``images`` (``id``, ``file_name``),
``annotations`` (``image_id`` plus ``category_id`` or ``caption``) and ``categories``
(``id``, ``name``).
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping
from os import PathLike
from pathlib import Path
from typing import Any

from lvsal_nb.errors import ConfigError

__all__ = ["COCO_CATEGORIES", "load_annotations", "image_objects", "image_files", "image_captions"]

# The 80 COCO object categories with their official ids (1..90, with gaps) and supercategories,
# as in the instances files of COCO 2014/2017.
_SUPER = {
    "person": "person",
    "vehicle": "bicycle car motorcycle airplane bus train truck boat",
    "outdoor": "traffic_light fire_hydrant stop_sign parking_meter bench",
    "animal": "bird cat dog horse sheep cow elephant bear zebra giraffe",
    "accessory": "backpack umbrella handbag tie suitcase",
    "sports": "frisbee skis snowboard sports_ball kite baseball_bat baseball_glove skateboard surfboard "
    "tennis_racket",
    "kitchen": "bottle wine_glass cup fork knife spoon bowl",
    "food": "banana apple sandwich orange broccoli carrot hot_dog pizza donut cake",
    "furniture": "chair couch potted_plant bed dining_table toilet",
    "electronic": "tv laptop mouse remote keyboard cell_phone",
    "appliance": "microwave oven toaster sink refrigerator",
    "indoor": "book clock vase scissors teddy_bear hair_drier toothbrush",
}
_MISSING_IDS = {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}  # ids COCO reserved but never used
COCO_CATEGORIES: tuple[dict, ...] = tuple(
    {"id": i, "name": name.replace("_", " "), "supercategory": sup}
    for i, (sup, name) in zip(
        (i for i in range(1, 91) if i not in _MISSING_IDS),
        ((sup, n) for sup, names in _SUPER.items() for n in names.split()),
    )
)

AnnotationsLike = Mapping[str, Any] | str | PathLike


def load_annotations(annotations: AnnotationsLike, *, what: str = "annotations") -> Mapping[str, Any]:
    """Return a COCO-format annotation dict, reading it from a JSON file when given a path.

    Args:
        annotations (Mapping | str | PathLike): the parsed dict, or the path of its JSON file.
        what (str): what the file is, for error messages. Default: "annotations".

    Returns:
        Mapping[str, Any]: the dict, with at least the keys ``images`` and ``annotations``.
    """
    if isinstance(annotations, (str, PathLike)):
        path = Path(annotations)
        if not path.is_file():
            raise ConfigError(
                f"{what} file {str(path)!r} does not exist; pass the path of a COCO-format JSON file."
            )
        try:
            with path.open(encoding="utf-8") as f:
                annotations = json.load(f)
        except json.JSONDecodeError as e:
            raise ConfigError(
                f"{what} file {str(path)!r} is not valid JSON ({e}); pass a COCO-format JSON file."
            ) from e
    if not isinstance(annotations, Mapping):
        raise ConfigError(
            f"{what} must be a COCO-format dict or the path of its JSON file, "
            f"got {type(annotations).__name__}."
        )
    missing = [k for k in ("images", "annotations") if k not in annotations]
    if missing:
        raise ConfigError(
            f"{what} lacks the COCO key(s) {missing}; a COCO-format file has 'images' and 'annotations' "
            "(and 'categories' for instances)."
        )
    return annotations


def _image_ids(ann: Mapping[str, Any], what: str) -> list[Hashable]:
    try:
        return [img["id"] for img in ann["images"]]
    except (KeyError, TypeError) as e:
        raise ConfigError(f"every entry of {what}['images'] needs an 'id'.") from e


def image_files(annotations: AnnotationsLike) -> dict[Hashable, str]:
    """Map each image id to its ``file_name`` ('' when the file gives none), in file order."""
    ann = load_annotations(annotations)
    _image_ids(ann, "annotations")
    return {img["id"]: str(img.get("file_name", "")) for img in ann["images"]}


def image_objects(annotations: AnnotationsLike) -> dict[Hashable, list[str]]:
    """Category names present in each image, unique, in order of first annotation.

    Every image listed under ``images`` gets an entry (empty when it has no annotation),
    so an image known to hold no object is told apart from an unknown image.

    Args:
        annotations (Mapping | str | PathLike): a COCO instances file or dict.

    Returns:
        dict[Hashable, list[str]]: image id -> category names, in file order of images.
    """
    ann = load_annotations(annotations, what="instances")
    if "categories" not in ann:
        raise ConfigError(
            "instances lack 'categories'; pass a COCO instances file (id -> name of each category)."
        )
    try:
        names = {c["id"]: str(c["name"]) for c in ann["categories"]}
    except (KeyError, TypeError) as e:
        raise ConfigError("every entry of instances['categories'] needs an 'id' and a 'name'.") from e
    objects: dict[Hashable, list[str]] = {i: [] for i in _image_ids(ann, "instances")}
    for k, a in enumerate(ann["annotations"]):
        try:
            image_id, cat = a["image_id"], a["category_id"]
        except (KeyError, TypeError) as e:
            raise ConfigError(
                f"instances['annotations'][{k}] needs 'image_id' and 'category_id'; is this a captions file?"
            ) from e
        if cat not in names:
            raise ConfigError(
                f"instances['annotations'][{k}] has category_id {cat!r}, which 'categories' lacks."
            )
        if image_id not in objects:
            raise ConfigError(
                f"instances['annotations'][{k}] refers to image {image_id!r}, which 'images' lacks."
            )
        if names[cat] not in objects[image_id]:
            objects[image_id].append(names[cat])
    return objects


def image_captions(annotations: AnnotationsLike) -> dict[Hashable, list[str]]:
    """Reference captions of each image, in file order (images without captions get [])."""
    ann = load_annotations(annotations, what="captions")
    caps: dict[Hashable, list[str]] = {i: [] for i in _image_ids(ann, "captions")}
    for k, a in enumerate(ann["annotations"]):
        try:
            image_id, text = a["image_id"], a["caption"]
        except (KeyError, TypeError) as e:
            raise ConfigError(
                f"captions['annotations'][{k}] needs 'image_id' and 'caption'; is this an instances file?"
            ) from e
        caps.setdefault(image_id, []).append(str(text))
    return caps
