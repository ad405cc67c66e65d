"""POPE question building: each split follows POPE's rule; 3 yes / 3 no per image; seeded."""

import pytest

from lvsal_nb.errors import ConfigError
from lvsal_nb.toy.pope import build_pope
from lvsal_nb.toy.scenes import make_scene, pope_questions, scene_rng

# Hand-made ground truth. "f g" has < 3 objects: skipped, so "f" is not in the vocabulary.
LISTS = [list("abc"), list("abd"), list("ade"), list("fg"), list("beg")]
# Worked out by hand: frequency a3 b3 d2 e2 c1 g1 (first seen a b c d e g); co-occurrence ranks
# a: b d c e | b: a c d e g | c: a b | d: a b e | e: a d b g | g: b e.
POPULAR = {0: "a d b e c g", 1: "a e b c d g", 2: "a b d c e g", 4: "b a e d g c"}
ADVERSARIAL = {0: "a d b e c g", 1: "a c b e d g", 4: "b a e d g c"}  # image 0's "g": the only one left


def _asked(qs, idx):
    return " ".join(q["object"] for q in qs if q["scene_index"] == idx)


@pytest.mark.parametrize("split,expected", [("popular", POPULAR), ("adversarial", ADVERSARIAL)])
def test_popular_and_adversarial_follow_pope_rules(split, expected):
    qs = build_pope(LISTS, split, seed=0)
    assert sorted({q["scene_index"] for q in qs}) == [0, 1, 2, 4]
    for idx, objs in expected.items():
        assert _asked(qs, idx) == objs
    if split == "adversarial":  # image 2: d's co-occurring objects are all taken -> random of c, g
        assert _asked(qs, 2) in ("a b d c e g", "a b d g e c")


def test_labels_alternate_and_questions_read_like_pope():
    qs = build_pope(LISTS, "adversarial", seed=0)
    assert [q["label"] for q in qs] == ["yes", "no"] * 12
    assert qs[0]["question"] == "Is there an a in the image?"
    assert qs[1]["question"] == "Is there a d in the image?"


def test_random_negatives_are_uniform_absent_objects_and_seeded():
    qs = build_pope(LISTS, "random", seed=0)
    for idx in (0, 1, 2, 4):
        mine = [q for q in qs if q["scene_index"] == idx]
        yes = [q["object"] for q in mine if q["label"] == "yes"]
        no = [q["object"] for q in mine if q["label"] == "no"]
        assert yes == LISTS[idx][:3]
        assert len(set(no)) == 3 and not set(no) & set(LISTS[idx]) and set(no) <= set("abcdeg")
    assert set(_asked(qs, 0).split()) == set("abcdeg")  # only d, e, g are absent from image 0
    assert build_pope(LISTS, "random", seed=0) == qs
    many = [make_scene(scene_rng("test", 2, i)) for i in range(60)]
    assert pope_questions(many, "random", 1) != pope_questions(many, "random", 2)
    assert pope_questions(many, "random", 1) == pope_questions(many, "random", 1)


@pytest.mark.parametrize("split", ["random", "popular", "adversarial"])
def test_scene_questions_three_yes_three_no(split):
    scenes = [make_scene(scene_rng("test", 3, i)) for i in range(80)]
    qs = pope_questions(scenes, split, seed=0)
    eligible = [i for i, s in enumerate(scenes) if len(s.objects) >= 3]
    assert len(qs) == 6 * len(eligible) and sorted({q["scene_index"] for q in qs}) == eligible
    for i in eligible:
        mine = [q for q in qs if q["scene_index"] == i]
        truth = scenes[i].object_names()
        assert [q["object"] for q in mine if q["label"] == "yes"] == truth[:3]
        no = [q["object"] for q in mine if q["label"] == "no"]
        assert len(set(no)) == 3 and not set(no) & set(truth)
        assert all(q["question"] == f"Is there a {q['object']} in the image?" for q in mine)


def test_adversarial_asks_about_absent_partners():
    from lvsal_nb.toy.scenes import PARTNER

    scenes = [make_scene(scene_rng("test", 4, i)) for i in range(300)]
    qs = pope_questions(scenes, "adversarial", seed=0)
    n_partner = 0
    for k in range(0, len(qs), 2):  # a yes question, then its negative
        yes, no = qs[k], qs[k + 1]
        truth = scenes[yes["scene_index"]].object_names()
        before = [q["object"] for q in qs[k - k % 6 : k]]  # asked earlier about this image
        partner = PARTNER[yes["object"]]
        if partner not in truth and partner not in before:  # the partner co-occurs most often
            assert no["object"] == partner
            n_partner += 1
    assert n_partner > 10


def test_bad_split_is_a_clear_error():
    with pytest.raises(ConfigError, match="split"):
        build_pope(LISTS, "hard", seed=0)
