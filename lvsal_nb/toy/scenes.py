"""Seeded synthetic scenes with exact ground truth: the toy world's images, captions and objects.

What an "object" is (for CHAIR and POPE): a SHAPE NOUN, one of `SHAPES` ("star", "moon", ...),
like a COCO category. Colour ("red") and size ("small") are attributes: saying "a blue star" for a
red star is an attribute error, not an object hallucination. A scene holds each shape at most once,
so its ground truth is the set `scene.object_names()`, and a caption's object mentions are exactly
its words that are shape nouns (`mentioned_objects`).

The world is skewed like COCO (fork + knife): the ten shapes come in five PARTNER pairs. A scene is
built from 1–3 "units"; a unit is a whole pair (placed side by side) with probability `PAIR_PROB`,
else a single shape. So a shape's partner is present about 92% of the time, and the template
caption always names partners together ("a small yellow star with a large yellow moon"):
a language prior that an imperfect model follows when the partner is absent. Partners also share a
typical colour (`PAIR_COLORS`, 85% of the time), so colour shows the pair and only the shape shows
which member: seeing a yellow star, a model unsure of shapes says "with a yellow moon" too. Pairs
differ in frequency (`PAIR_WEIGHTS`), so POPE's "popular" negatives differ from its "random" ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from lvsal_nb.errors import ConfigError

IMAGE_SIZE = 64
PAIRS: tuple[tuple[str, str], ...] = (
    ("star", "moon"),
    ("circle", "cross"),
    ("square", "triangle"),
    ("heart", "diamond"),
    ("ring", "hexagon"),
)
PAIR_WEIGHTS = (0.30, 0.25, 0.20, 0.15, 0.10)  # how often each pair's unit is drawn
# Partners share a typical colour (like fork and knife share metal): colour tells the pair at a
# glance, only the shape tells which member, so a weak model leans on the caption prior.
PAIR_COLORS = ("yellow", "red", "blue", "purple", "green")
TYPICAL_COLOR_PROB = 0.85  # else any other colour
PAIR_PROB = 0.85  # a unit is a whole pair with this probability, else one of its two shapes
UNIT_COUNTS = (1, 2, 3)
UNIT_COUNT_WEIGHTS = (0.25, 0.40, 0.35)
# Toy world v2's longer lists (`make_scene(..., long_lists=True)`): 1-4 units, so 1-8 objects and a
# recap word's source up to ~45 tokens back. The defaults above (v1's scenes) are unchanged.
LONG_UNIT_COUNTS = (1, 2, 3, 4)
LONG_UNIT_COUNT_WEIGHTS = (0.10, 0.25, 0.30, 0.35)
SHAPES: tuple[str, ...] = tuple(s for pair in PAIRS for s in pair)
PARTNER: dict[str, str] = {a: b for a, b in PAIRS} | {b: a for a, b in PAIRS}
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (50, 90, 235),
    "yellow": (235, 215, 40),
    "purple": (160, 60, 210),
    "orange": (245, 140, 30),
}
SIZES: dict[str, tuple[float, float]] = {"small": (3.5, 5.0), "large": (6.0, 8.0)}  # radius range, px
NOISE_STD = 8.0  # per-pixel Gaussian noise on 0..255, makes small shapes harder to read
_SUPERSAMPLE = 4  # draw masks at 4x and box-filter down: anti-aliased edges


@dataclass(frozen=True)
class SceneObject:
    """One drawn shape. `x`, `y`: centre in pixels; `r`: outer radius in pixels; `size`: its label."""

    shape: str
    color: str
    size: str
    x: float
    y: float
    r: float


@dataclass(frozen=True)
class Scene:
    """A scene: its objects in annotation order (random, like COCO's), background and noise seed."""

    objects: list[SceneObject]
    background: tuple[int, int, int] = (80, 80, 80)
    noise_seed: int = 0
    image_size: int = IMAGE_SIZE

    def object_names(self) -> list[str]:
        """Ground-truth object names (shape nouns) in annotation order; each appears once."""
        return [o.shape for o in self.objects]


def _rng(seed_or_rng: int | np.random.Generator) -> np.random.Generator:
    if isinstance(seed_or_rng, np.random.Generator):
        return seed_or_rng
    if isinstance(seed_or_rng, (int, np.integer)) and not isinstance(seed_or_rng, bool):
        return np.random.default_rng(int(seed_or_rng))
    raise ConfigError(f"make_scene needs an int seed or a numpy Generator, got {type(seed_or_rng).__name__}.")


def scene_rng(stream: str, seed: int, index: int) -> np.random.Generator:
    """Independent generator for scene `index` of a named stream ("train", "eval", "test").

    Training and evaluation draw from different streams, so held-out scenes never repeat training
    seeds (the entropy lists differ, so the NumPy seed sequences are independent).
    """
    streams = {"train": 1, "eval": 2, "test": 3}
    if stream not in streams:
        raise ConfigError(f"Unknown scene stream {stream!r}; use one of {sorted(streams)}.")
    return np.random.default_rng([streams[stream], int(seed), int(index)])


def _place(rng, size, r, others, near=None) -> tuple[float, float] | None:
    """A centre for a shape of radius r that keeps 2 px clear of `others` [(x, y, r)], or None."""
    for _ in range(60):
        if near is None:
            x, y = rng.uniform(r + 1, size - r - 1, size=2)
        else:  # partner: side by side with its pair mate, 2-7 px apart at a random angle
            nx, ny, nr = near
            d = nr + r + rng.uniform(2.0, 7.0)
            a = rng.uniform(0, 2 * np.pi)
            x, y = nx + d * np.cos(a), ny + d * np.sin(a)
            if not (r + 1 <= x <= size - r - 1 and r + 1 <= y <= size - r - 1):
                continue
        if all((x - ox) ** 2 + (y - oy) ** 2 >= (r + orr + 2.0) ** 2 for ox, oy, orr in others):
            return float(x), float(y)
    return None


def _color(rng, shape: str) -> str:
    typical = PAIR_COLORS[SHAPES.index(shape) // 2]
    if rng.random() < TYPICAL_COLOR_PROB:
        return typical
    return str(rng.choice([c for c in COLORS if c != typical]))


def _new_object(rng, shape, size_px, others, near=None) -> SceneObject | None:
    size = str(rng.choice(list(SIZES)))
    r = float(rng.uniform(*SIZES[size]))
    pos = _place(rng, size_px, r, others, near)
    if pos is None:
        return None
    return SceneObject(shape, _color(rng, shape), size, pos[0], pos[1], r)


def make_scene(seed_or_rng: int | np.random.Generator, long_lists: bool = False) -> Scene:
    """A random scene (1–6 objects) from an int seed or a numpy Generator; same seed, same scene.

    long_lists: draw 1-4 units (`LONG_UNIT_COUNTS`: 1-8 objects) instead of 1-3, for toy world
    v2's long recaps. False (the default) draws exactly v1's scenes, byte for byte.
    """
    rng = _rng(seed_or_rng)
    counts, weights = (
        (LONG_UNIT_COUNTS, LONG_UNIT_COUNT_WEIGHTS) if long_lists else (UNIT_COUNTS, UNIT_COUNT_WEIGHTS)
    )
    while True:  # rare retries when shapes do not fit; still deterministic for the generator
        n_units = int(rng.choice(counts, p=weights))
        pairs = rng.choice(len(PAIRS), size=n_units, replace=False, p=PAIR_WEIGHTS)
        objects: list[SceneObject] = []
        ok = True
        for p in pairs:
            members = list(PAIRS[p]) if rng.random() < PAIR_PROB else [PAIRS[p][rng.integers(2)]]
            rng.shuffle(members)
            first = _new_object(rng, members[0], IMAGE_SIZE, [(o.x, o.y, o.r) for o in objects])
            ok = first is not None
            if not ok:
                break
            objects.append(first)
            if len(members) == 2:
                second = _new_object(
                    rng,
                    members[1],
                    IMAGE_SIZE,
                    [(o.x, o.y, o.r) for o in objects],
                    (first.x, first.y, first.r),
                )
                ok = second is not None
                if not ok:
                    break
                objects.append(second)
        if ok:
            break
    order = rng.permutation(len(objects))
    gray = rng.uniform(55, 105)
    background = tuple(int(np.clip(gray + t, 0, 255)) for t in rng.uniform(-12, 12, size=3))
    return Scene([objects[i] for i in order], background, int(rng.integers(2**31)))


def _draw_mask(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float) -> None:
    """Draw one shape of outer radius r at (cx, cy) in supersampled pixel units (fill 255).

    Every shape lies inside the circle of radius r, so placement can treat shapes as discs.
    """

    def ellipse(x, y, rad, fill=255):
        draw.ellipse([x - rad, y - rad, x + rad, y + rad], fill=fill)

    def polygon(points):
        draw.polygon([(cx + px * r, cy + py * r) for px, py in points], fill=255)

    if shape == "circle":
        ellipse(cx, cy, r)
    elif shape == "ring":  # hollow: centre shows background
        ellipse(cx, cy, r)
        ellipse(cx, cy, 0.55 * r, fill=0)
    elif shape == "moon":  # crescent opening to the right
        ellipse(cx, cy, r)
        ellipse(cx + 0.55 * r, cy - 0.1 * r, 0.8 * r, fill=0)
    elif shape == "square":
        polygon([(-0.7, -0.7), (0.7, -0.7), (0.7, 0.7), (-0.7, 0.7)])
    elif shape == "diamond":
        polygon([(0, -1), (0.85, 0), (0, 1), (-0.85, 0)])
    elif shape == "triangle":
        polygon([(0, -1), (0.87, 0.5), (-0.87, 0.5)])
    elif shape == "cross":
        a, w = 0.95, 0.3  # arm length and half-width: corners stay inside the unit circle
        polygon([(-w, -a), (w, -a), (w, -w), (a, -w), (a, w), (w, w), (w, a),
                 (-w, a), (-w, w), (-a, w), (-a, -w), (-w, -w)])  # fmt: skip
    elif shape == "star":
        angles = -np.pi / 2 + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        polygon(list(zip(radii * np.cos(angles), radii * np.sin(angles))))
    elif shape == "hexagon":
        angles = np.arange(6) * np.pi / 3
        polygon(list(zip(np.cos(angles), np.sin(angles))))
    elif shape == "heart":
        ellipse(cx - 0.42 * r, cy - 0.28 * r, 0.46 * r)
        ellipse(cx + 0.42 * r, cy - 0.28 * r, 0.46 * r)
        polygon([(-0.88, -0.1), (0.88, -0.1), (0, 0.95)])
    else:
        raise ConfigError(f"Unknown shape {shape!r}; the toy world knows {list(SHAPES)}.")


def object_mask(obj: SceneObject, image_size: int = IMAGE_SIZE) -> np.ndarray:
    """Coverage of one object, [H, W] float32 in 0..1 (anti-aliased by 4x supersampling)."""
    s = _SUPERSAMPLE
    x0, y0 = int(max(0, obj.x - obj.r - 2)), int(max(0, obj.y - obj.r - 2))  # draw only its box: fast
    x1, y1 = int(min(image_size, obj.x + obj.r + 3)), int(min(image_size, obj.y + obj.r + 3))
    canvas = Image.new("L", ((x1 - x0) * s, (y1 - y0) * s), 0)
    _draw_mask(ImageDraw.Draw(canvas), obj.shape, (obj.x - x0) * s, (obj.y - y0) * s, obj.r * s)
    box = np.asarray(canvas, dtype=np.float32).reshape(y1 - y0, s, x1 - x0, s).mean(axis=(1, 3)) / 255.0
    out = np.zeros((image_size, image_size), dtype=np.float32)
    out[y0:y1, x0:x1] = box
    return out


def render(scene: Scene) -> Image.Image:
    """The scene as an RGB PIL image [image_size, image_size]: background, shapes, then noise."""
    n = scene.image_size
    img = np.empty((n, n, 3), dtype=np.float32)
    img[:] = scene.background
    for obj in scene.objects:
        a = object_mask(obj, n)[..., None]
        img = img * (1 - a) + np.asarray(COLORS[obj.color], dtype=np.float32) * a
    noise = np.random.default_rng(scene.noise_seed).normal(0.0, NOISE_STD, size=img.shape)
    return Image.fromarray(np.clip(img + noise, 0, 255).round().astype(np.uint8), "RGB")


def _groups(scene: Scene) -> list[list[SceneObject]]:
    """Objects grouped with their present partner; groups and members in the fixed `SHAPES` order."""
    by_shape = {o.shape: o for o in scene.objects}
    groups = [[by_shape[s] for s in pair if s in by_shape] for pair in PAIRS]
    return [g for g in groups if g]


def caption(scene: Scene) -> str:
    """Detailed template caption naming every object once with its size and colour.

    Groups come in the fixed pair order, a present partner right after its mate, e.g.
    "there is a large yellow star with a small yellow moon , a small red cross and a large blue
    square ."  Words are space-separated, punctuation included, lower case. The fixed order is
    what a language prior learns: after "star" comes "with a ... moon" 92% of the time.
    """
    parts = [" with ".join(f"a {o.size} {o.color} {o.shape}" for o in g) for g in _groups(scene)]
    listed = parts[0] if len(parts) == 1 else " , ".join(parts[:-1]) + " and " + parts[-1]
    return f"there is {listed} ."


def mentioned_objects(caption_text: str) -> list[str]:
    """Object mentions (shape nouns) in order, with repeats; plurals ("stars") count as the shape.

    Exact for template captions: no other template word is a shape noun.
    """
    import re

    out = []
    for w in re.findall(r"[a-z]+", caption_text.lower()):
        if w in PARTNER:
            out.append(w)
        elif w.endswith("es") and w[:-2] in PARTNER:  # crosses
            out.append(w[:-2])
        elif w.endswith("s") and w[:-1] in PARTNER:
            out.append(w[:-1])
    return out


def pope_questions(scenes: list[Scene], split: str, seed: int) -> list[dict]:
    """POPE yes/no questions (6 per scene with >= 3 objects) for `split` in random/popular/adversarial.

    Returns dicts (scene_index, object, question, label "yes"/"no"); see `lvsal_nb.toy.pope` for
    the exact sampling rules (those of POPE's reference code; scenes with < 3 objects are skipped).
    """
    from lvsal_nb.toy.pope import build_pope

    return build_pope([s.object_names() for s in scenes], split, seed)
