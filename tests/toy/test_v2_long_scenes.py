"""Toy world v2's long scenes (1-8 objects): a `make_scene` option that leaves v1's scenes byte-identical."""

import hashlib

from lvsal_nb.toy.metrics import eval_scenes
from lvsal_nb.toy.recap import recap_caption, split_words
from lvsal_nb.toy.scenes import PAIRS, make_scene, render, scene_rng
from lvsal_nb.toy.worlds import get_world

# sha256 of repr(scene) + rendered pixels of scenes 0..39 of the train, eval and test streams (seed 0),
# computed with scenes.py as it was before the option existed (commit fea7e6d).
V1_SCENES_SHA256 = "3e107411a9054a12b1db9051f754f3fe19867b2ba26182b9d398dc889d4e3856"


def test_v1_scenes_are_byte_identical_to_before_the_option():
    h = hashlib.sha256()
    for stream in ("train", "eval", "test"):
        for i in range(40):
            sc = make_scene(scene_rng(stream, 0, i))
            h.update(repr(sc).encode())
            h.update(render(sc).tobytes())
    assert h.hexdigest() == V1_SCENES_SHA256
    assert make_scene(7, long_lists=False) == make_scene(7)
    assert get_world("v1").scene(7) == make_scene(7)


def test_long_scenes_hold_1_to_8_objects_with_sources_up_to_44_tokens_back():
    sizes, far = set(), 0
    for sc in eval_scenes(300, 0, long_lists=True):
        names = sc.object_names()
        assert len(set(names)) == len(names)  # each shape at most once
        pairs = {next(i for i, p in enumerate(PAIRS) if s in p) for s in names}
        assert len(pairs) <= 4  # at most four units
        sizes.add(len(names))
        listed, recap = split_words(recap_caption(sc).split())
        n = len(listed)  # by hand: list word k at 5 + 5k, recap word k at 5 + 5(n - 1) + 4 + 2k
        dist = [r - s for (s, _), (r, _) in zip(listed, recap)]
        assert dist == [5 * (n - 1) + 4 - 3 * k for k in range(n)]
        far = max(far, *dist)
    assert sizes == set(range(1, 9))
    assert far == 39  # the first of eight objects: 5 * 7 + 4 tokens back


def test_v2_world_draws_long_scenes_from_the_same_generator():
    v2 = get_world("v2")
    assert v2.long_lists and not get_world("v1").long_lists
    assert v2.scene(scene_rng("eval", 0, 3)) == make_scene(scene_rng("eval", 0, 3), long_lists=True)
    assert v2.scene(11) == v2.scene(11)  # same seed, same scene
