"""What an evaluation run asks and how its answers are judged: CHAIR and POPE on three datasets.

Datasets:
- "coco": COCO-format files (`--annotations` instances JSON, `--captions` captions JSON for CHAIR's
  ground truth, images under `--images DIR` by their `file_name`);
- "fixtures": the bundled hand-labelled photos (lvsal_nb.eval.fixtures), no files needed;
- "toy": lvsal_nb.toy scenes of the held-out "eval" stream (scene i = `scene_rng("eval", seed, i)`),
  exact ground truth; objects are shape nouns found by `toy.scenes.mentioned_objects`.

A task is a list of `Item`s (one image + one prompt each: an image for CHAIR, a question for POPE),
a `judge(item, text)` that scores one answer, and a `summarize(records)` for the table. Images are
named by a source spec (`{"kind": "file"|"fixture"|"toy", ...}`) that any worker can load itself,
so an engine ships only small dicts.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from lvsal_nb.errors import ConfigError, ImageError
from lvsal_nb.eval.chair import COMPAT, Chair
from lvsal_nb.eval.coco import image_files, load_annotations
from lvsal_nb.eval.fixtures import FIXTURE_CAPTIONS, FIXTURE_INSTANCES
from lvsal_nb.eval.pope import SPLITS, SUFFIXES, build_pope, load_questions, save_questions
from lvsal_nb.eval.scores import PARSERS, chair_scores, parse_yes_no, pope_scores

__all__ = ["CHAIR_PROMPT", "DATASETS", "TASKS", "Item", "Task", "build_task", "load_image_source"]

CHAIR_PROMPT = "Please describe this image in detail."
DATASETS = ("coco", "fixtures", "toy")
TASKS = ("chair", "pope")


@dataclass(frozen=True)
class Item:
    """One prompt on one image. `item_id` is unique within the task ("img:139", "random:17")."""

    item_id: str
    image_id: Hashable
    image: dict[str, Any]  # source spec, see load_image_source
    prompt: str
    meta: dict[str, Any] = field(default_factory=dict)  # POPE: split, question_id, object, label


def load_image_source(spec: dict[str, Any]):
    """The PIL image of a source spec: {"kind": "file", "path"}, {"kind": "fixture", "name"} or
    {"kind": "toy", "seed", "index"}."""
    kind = spec.get("kind")
    if kind == "file":
        from lvsal_nb.images import to_rgb

        p = Path(spec["path"])
        if not p.is_file():
            raise ImageError(
                f"image file {str(p)!r} does not exist; check --images (the folder that holds "
                "the annotations' file_name paths; on a cluster, mounted at the same path)"
            )
        return to_rgb(p)  # 16-bit, palette, transparent, CMYK files converted correctly
    if kind == "fixture":
        from lvsal_nb.eval.fixtures import load_fixture_image

        return load_fixture_image(spec["name"])
    if kind == "toy":
        from lvsal_nb.toy.scenes import make_scene, render, scene_rng

        return render(make_scene(scene_rng("eval", int(spec["seed"]), int(spec["index"]))))
    raise ConfigError(f"unknown image source {spec!r}")


class Task:
    """Items + judge + summary. Build with `build_task`."""

    name = "task"

    def __init__(self, items: list[Item], image_ids: list[Hashable]):
        self.items = items
        self.image_ids = image_ids

    def judge(self, item: Item, text: str) -> dict[str, Any]:
        """The judgement of one answer `text` to `item` (a JSON-ready dict stored with the record)."""
        raise NotImplementedError

    def summarize(self, records: Sequence[dict], methods: Sequence[str]) -> pd.DataFrame:
        """One summary row per method (and setting) from the judged records."""
        raise NotImplementedError


class ChairTask(Task):
    """Captions judged by CHAIR: `mentions(text) -> [objects]`, ground truth per image id."""

    name = "chair"

    def __init__(self, items, image_ids, truth: dict[Hashable, set[str]], chair: Chair | None = None):
        super().__init__(items, image_ids)
        self.truth = truth
        self.chair = chair  # COCO: Rohrbach et al.'s parser; None: the toy world's exact shape nouns

    def judge(self, item: Item, text: str) -> dict[str, Any]:
        """Objects mentioned, hallucinated (not in the ground truth) and covered, the caption's word
        count, chair_s (0/1) and chair_i (hallucinated / mentioned)."""
        if self.chair is not None:
            row = self.chair.evaluate({item.image_id: text})[1].iloc[0]
            objects, gt, n_words = list(row["objects"]), list(row["gt_objects"]), int(row["n_words"])
        else:
            from lvsal_nb.toy.scenes import mentioned_objects

            objects, gt = mentioned_objects(text), sorted(self.truth[item.image_id])
            n_words = len(text.split())  # the toy metrics' length: template words are whole tokens
        bad = [o for o in objects if o not in gt]
        return {
            "objects": objects,
            "hallucinated": bad,
            "covered": sorted(set(gt) & set(objects)),
            "gt_objects": gt,
            "n_words": n_words,
            "chair_s": int(bool(bad)),
            "chair_i": len(bad) / len(objects) if objects else 0.0,
        }

    def summarize(self, records, methods) -> pd.DataFrame:
        """CHAIR_S, CHAIR_I, recall and length per (method, max_new_tokens)."""
        rows = []
        for (method, mnt), group in _groups(records, methods, ("max_new_tokens",)):
            s = chair_scores(
                [r["objects"] for r in group], [r["gt_objects"] for r in group], [r["n_words"] for r in group]
            )
            rows.append(
                {
                    "method": method,
                    "max_new_tokens": mnt,
                    **s,
                    **_extras(group),
                    "chair_compat": self.chair.compat if self.chair is not None else "toy",
                    "options": _options(group),
                }
            )
        return pd.DataFrame(rows)


class PopeTask(Task):
    """Yes/no questions judged by POPE's parser; metrics per split."""

    name = "pope"

    def __init__(self, items, image_ids, parser: str = "pope", suffix: str = "pope"):
        super().__init__(items, image_ids)
        self.parser = parser  # "pope": POPE's evaluate.py rule; "strict": negation-aware
        self.suffix = suffix  # the name of the question suffix ("pope": none, "vcd": one word)

    def judge(self, item: Item, text: str) -> dict[str, Any]:
        """pred_yes (the parser's reading of `text`) and whether it matches the item's label."""
        yes = parse_yes_no(text, self.parser)
        return {"pred_yes": yes, "correct": yes == (item.meta["label"] == "yes")}

    def summarize(self, records, methods) -> pd.DataFrame:
        """Accuracy, precision, recall, F1 and yes-ratio per (method, max_new_tokens, split)."""
        rows = []
        for (method, mnt, split), group in _groups(records, methods, ("max_new_tokens", "split")):
            s = pope_scores([r["pred_yes"] for r in group], [r["label"] == "yes" for r in group])
            rows.append(
                {
                    "method": method,
                    "max_new_tokens": mnt,
                    "split": split,
                    **s,
                    **_extras(group),
                    "pope_parser": self.parser,
                    "pope_suffix": self.suffix,
                    "options": _options(group),
                }
            )
        return pd.DataFrame(rows)


def _groups(records, methods, keys):
    """Records grouped by (method, *keys), methods in the given order, keys sorted (splits in POPE order)."""
    order = {m: i for i, m in enumerate(methods)}
    split_order = {s: i for i, s in enumerate(SPLITS)}
    out: dict[tuple, list[dict]] = {}
    for r in records:
        out.setdefault((r["method"], *(r[k] for k in keys)), []).append(r)

    def sort_key(k):
        rest = (split_order.get(v, v) if isinstance(v, str) else v for v in k[1:])
        return (order.get(k[0], len(order)), k[0], *rest)

    return [(k, out[k]) for k in sorted(out, key=sort_key)]


def _options(group: list[dict]) -> str:
    """The method's options as they ran (JSON; the same for every answer of a run)."""
    import json

    opts = group[0].get("options") or {}
    return opts if isinstance(opts, str) else json.dumps(opts, sort_keys=True, default=str)


def _extras(group: list[dict]) -> dict[str, float]:
    """Mean per-answer saliency (over answers that have one) and mean seconds per answer."""
    sal = [r["saliency"] for r in group if r.get("saliency") is not None]
    return {
        "saliency": sum(sal) / len(sal) if sal else float("nan"),
        "seconds": sum(r.get("seconds", 0.0) for r in group) / len(group),
    }


# ---- building ---------------------------------------------------------------------------------------
def build_task(
    task: str,
    dataset: str,
    *,
    n: int | None,
    seed: int = 0,
    image_list: list | None = None,
    images: str | Path | None = None,
    annotations: str | Path | None = None,
    captions: str | Path | None = None,
    splits: Sequence[str] = SPLITS,
    per_image: int = 3,
    out: Path | None = None,
    chair_compat: str = "original",
    pope_parser: str = "pope",
    pope_suffix: str = "pope",
) -> Task:
    """The items of one run.

    Args:
        task: "chair" or "pope". dataset: "coco", "fixtures" or "toy".
        n: images to draw (CHAIR: a seeded random order of the annotation file's images; POPE: POPE's own
            seeded draw among images with >= per_image objects; toy: scenes 0..n-1). Ignored with image_list.
        image_list: the image ids to use (from a previous run's images.json), instead of drawing.
        images: folder the annotations' `file_name`s are relative to (coco).
        annotations / captions: COCO instances / captions files (coco; captions optional, CHAIR only).
        splits: POPE splits. per_image: POPE's "yes" questions per image (3 in the protocol).
        out: the run folder: POPE's questions are written there (pope_<split>.jsonl) and, when a file
            is already there, read back instead of drawn again (POPE's draw depends on the whole
            annotation file, so a resumed run must not redraw from its image list).
        chair_compat: CHAIR's word handling, "original" (default) or "fixed" (lvsal_nb.eval.chair).
        pope_parser: "pope" (default: POPE's evaluate.py rule) or "strict" (negation-aware).
        pope_suffix: "pope" (default: the bare question, as POPE's files) or "vcd" (" Please answer
            this question with one word."). With captions, POPE's truth includes caption objects.
    """
    if task not in TASKS:
        raise ConfigError(f"task must be one of {TASKS}, got {task!r}")
    if dataset not in DATASETS:
        raise ConfigError(f"--dataset must be one of {DATASETS}, got {dataset!r}")
    if image_list is None and (not isinstance(n, int) or n < 1):
        raise ConfigError(f"--n must be an integer >= 1, got {n!r}")
    bad = [s for s in splits if s not in SPLITS]
    if bad or not splits:
        raise ConfigError(f"unknown POPE split(s) {bad}; choose from {list(SPLITS)}")
    if chair_compat not in COMPAT:
        raise ConfigError(f"--chair-compat must be one of {list(COMPAT)}, got {chair_compat!r}")
    if pope_parser not in PARSERS:
        raise ConfigError(f"--pope-parser must be one of {list(PARSERS)}, got {pope_parser!r}")
    if pope_suffix not in SUFFIXES:
        raise ConfigError(f"--pope-suffix must be one of {list(SUFFIXES)}, got {pope_suffix!r}")
    if dataset == "toy":
        return _toy_task(task, n, seed, image_list, splits, out, pope_parser, pope_suffix)
    if dataset == "fixtures":
        annotations, captions = FIXTURE_INSTANCES, captions or FIXTURE_CAPTIONS
    elif annotations is None or images is None:
        raise ConfigError(
            "--dataset coco needs --annotations (a COCO instances JSON) and --images (its "
            "image folder); or use --dataset fixtures / toy"
        )
    ann = load_annotations(annotations, what="instances")
    files = image_files(ann)

    def source(image_id):
        if dataset == "fixtures":
            return {"kind": "fixture", "name": files[image_id]}
        return {"kind": "file", "path": str(Path(images) / files[image_id])}

    if image_list is not None:
        missing = [i for i in image_list if i not in files]
        if missing:
            raise ConfigError(
                f"{len(missing)} listed image id(s) are not in the annotations, e.g. "
                f"{missing[0]!r}; pass the images.json of a run on the same annotation file"
            )
    if task == "chair":
        ids = list(image_list) if image_list is not None else _draw(list(files), n, seed)
        chair = Chair.from_coco(ann, captions, image_ids=ids, compat=chair_compat)
        items = [Item(f"img:{i}", i, source(i), CHAIR_PROMPT) for i in ids]
        return ChairTask(items, ids, {i: set(chair.truth[i]) for i in ids}, chair)
    if image_list is not None:
        keep = set(image_list)
        ann = {
            **ann,
            "images": [im for im in ann["images"] if im["id"] in keep],
            "annotations": [a for a in ann["annotations"] if a["image_id"] in keep],
        }
        n = len(keep)
    items, ids = [], []
    for split in splits:
        saved = Path(out) / f"pope_{split}.jsonl" if out is not None else None
        if saved is not None and saved.is_file():  # a resumed run asks exactly the same questions
            qs = load_questions(saved)
        else:
            qs = build_pope(
                ann,
                split,
                n_images=n,
                seed=seed,
                per_image=per_image,
                captions=captions,
                suffix=SUFFIXES[pope_suffix],
                chair_compat=chair_compat,
            )
            if saved is not None:
                save_questions(qs, saved)
        for q in qs:
            if q["image_id"] not in ids:
                ids.append(q["image_id"])
            meta = {
                "split": split,
                "question_id": q["question_id"],
                "object": q["object"],
                "label": q["label"],
            }
            items.append(
                Item(f"{split}:{q['question_id']}", q["image_id"], source(q["image_id"]), q["question"], meta)
            )
    return PopeTask(items, ids, pope_parser, pope_suffix)


def _draw(ids: list, n: int, seed: int) -> list:
    """n ids in a seeded random order (CHAIR's fixed random subset)."""
    if n > len(ids):
        raise ConfigError(
            f"--n {n} but the annotations hold only {len(ids)} images; pass --n {len(ids)} or fewer"
        )
    return random.Random(seed).sample(ids, n)


def _toy_task(
    task: str,
    n: int | None,
    seed: int,
    image_list: list | None,
    splits,
    out: Path | None,
    parser: str = "pope",
    suffix: str = "pope",
) -> Task:
    from lvsal_nb.toy.scenes import make_scene, pope_questions, scene_rng

    ids = [int(i) for i in image_list] if image_list is not None else list(range(n))
    scenes = [make_scene(scene_rng("eval", seed, i)) for i in ids]

    def source(i):
        return {"kind": "toy", "seed": seed, "index": i}

    if task == "chair":
        items = [Item(f"img:{i}", i, source(i), CHAIR_PROMPT) for i in ids]
        return ChairTask(items, ids, {i: set(s.object_names()) for i, s in zip(ids, scenes)})
    items = []
    for split in splits:  # deterministic in (scene list, seed): a resumed run rebuilds the same questions
        qs = []
        for k, q in enumerate(pope_questions(scenes, split, seed), 1):
            i = ids[q["scene_index"]]
            qs.append(
                {
                    "question_id": k,
                    "image_id": i,
                    "object": q["object"],
                    "question": q["question"] + SUFFIXES[suffix],
                    "label": q["label"],
                }
            )
            items.append(
                Item(
                    f"{split}:{k}",
                    i,
                    source(i),
                    qs[-1]["question"],
                    {"split": split, "question_id": k, "object": q["object"], "label": q["label"]},
                )
            )
        if out is not None:
            save_questions(qs, Path(out) / f"pope_{split}.jsonl")
    return PopeTask(items, ids, parser, suffix)
