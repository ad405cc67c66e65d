"""POPE question building (each split's rule, on hand-made annotations) and scoring."""

from collections import Counter

import pytest

from lvsal_nb.errors import ConfigError
from lvsal_nb.eval.pope import SUFFIXES, build_pope, load_questions, save_questions, score

CATS = {"person": 1, "bicycle": 2, "car": 3, "bus": 6, "dog": 18, "cat": 17, "kite": 38, "frisbee": 34,
        "chair": 62, "apple": 53, "umbrella": 28}  # fmt: skip


def coco(images: dict[int, list[str]]) -> dict:
    """A COCO instances dict: image id -> category names in annotation order."""
    anns = [
        {"id": k, "image_id": i, "category_id": CATS[name]}
        for k, (i, name) in enumerate(((i, n) for i, names in images.items() for n in names), 1)
    ]
    return {
        "images": [{"id": i, "file_name": f"{i:06d}.jpg"} for i in images],
        "annotations": anns,
        "categories": [{"id": v, "name": k} for k, v in CATS.items()],
    }


# Frequencies over images 1-7: person 6, dog 5, car 4, bus 3, cat 2, chair 1 (no ties).
# Image 8 has one object, so with per_image=3 it is never drawn and 'apple' is never asked about.
FREQ = coco({
    1: ["person", "dog", "car"], 2: ["person", "dog", "car"], 3: ["person", "dog", "car"],
    4: ["person", "dog", "car"], 5: ["person", "bus", "cat"], 6: ["person", "bus", "cat"],
    7: ["dog", "bus", "chair"], 8: ["apple"],
})  # fmt: skip


def by_image(questions):
    out = {}
    for q in questions:
        out.setdefault(q["image_id"], []).append((q["object"], q["label"]))
    return out


def test_popular_asks_the_most_frequent_absent_objects():
    qs = by_image(build_pope(FREQ, "popular", n_images=7, seed=0))
    for i in (1, 2, 3, 4):
        assert qs[i] == [
            ("person", "yes"),
            ("bus", "no"),
            ("dog", "yes"),
            ("cat", "no"),
            ("car", "yes"),
            ("chair", "no"),
        ]
    for i in (5, 6):
        assert qs[i] == [
            ("person", "yes"),
            ("dog", "no"),
            ("bus", "yes"),
            ("car", "no"),
            ("cat", "yes"),
            ("chair", "no"),
        ]
    assert qs[7] == [
        ("dog", "yes"),
        ("person", "no"),
        ("bus", "yes"),
        ("car", "no"),
        ("chair", "yes"),
        ("cat", "no"),
    ]


def test_random_negatives_are_exactly_the_absent_objects_here():
    # Each image lacks exactly 3 of the 6 drawn objects, so the 3 negatives are those 3 (any order).
    absent = {1: {"bus", "cat", "chair"}, 5: {"dog", "car", "chair"}, 7: {"person", "car", "cat"}}
    for seed in range(5):
        qs = by_image(build_pope(FREQ, "random", n_images=7, seed=seed))
        for i, expected in absent.items():
            assert [lab for _, lab in qs[i]] == ["yes", "no"] * 3
            assert {o for o, lab in qs[i] if lab == "no"} == expected


def test_random_negatives_are_uniform_over_absent_objects():
    # One image per object; the image holding 'person' must get each of the other 4 equally often.
    ann = coco({1: ["person"], 2: ["dog"], 3: ["car"], 4: ["bus"], 5: ["cat"]})
    counts = Counter()
    for seed in range(800):
        q = build_pope(ann, "random", n_images=5, seed=seed, per_image=1)
        counts.update(x["object"] for x in q if x["image_id"] == 1 and x["label"] == "no")
    assert set(counts) == {"dog", "car", "bus", "cat"}
    assert all(150 <= c <= 250 for c in counts.values())  # 200 expected each; 250 is > 4 sigma away


# Co-occurrence over images 1-7: person-dog 3, person-car 2, person-kite 1, dog-frisbee 1.
COOC = coco({
    1: ["person", "dog"], 2: ["person", "dog"], 3: ["person", "dog"], 4: ["person", "car"],
    5: ["person", "car"], 6: ["person", "kite"], 7: ["dog", "frisbee"], 8: ["cat"],
})  # fmt: skip


def test_adversarial_asks_the_top_co_occurring_absent_object():
    qs = by_image(build_pope(COOC, "adversarial", n_images=8, seed=0, per_image=1))
    assert qs[1] == [("person", "yes"), ("car", "no")]  # dog (3) is present -> car (2)
    assert qs[4] == [("person", "yes"), ("dog", "no")]
    assert qs[6] == [("person", "yes"), ("dog", "no")]
    assert qs[7] == [("dog", "yes"), ("person", "no")]
    # 'cat' co-occurs with nothing: POPE's fallback, a random absent object
    assert qs[8][0] == ("cat", "yes") and qs[8][1][0] in {"person", "dog", "car", "kite", "frisbee"}


def test_adversarial_skips_objects_already_asked_and_falls_back_to_random():
    for seed in range(4):
        qs = by_image(build_pope(COOC, "adversarial", n_images=7, seed=seed, per_image=2))
        assert qs[1] == [("person", "yes"), ("car", "no"), ("dog", "yes"), ("frisbee", "no")]
        assert qs[4][:3] == [("person", "yes"), ("dog", "no"), ("car", "yes")]
        assert qs[4][3][0] in {
            "kite",
            "frisbee",
        }  # car co-occurs only with person (present); cat was not drawn
        assert qs[7][:3] == [("dog", "yes"), ("person", "no"), ("frisbee", "yes")]
        assert qs[7][3][0] in {"car", "kite"}


def test_question_format_and_same_images_for_all_splits():
    splits = {s: build_pope(FREQ, s, n_images=4, seed=3) for s in ("random", "popular", "adversarial")}
    ids = [[q["image_id"] for q in qs] for qs in splits.values()]
    assert ids[0] == ids[1] == ids[2]
    assert len(set(ids[0])) == 4 and len(ids[0]) == 24
    q = splits["popular"][0]
    assert set(q) == {"question_id", "image_id", "file_name", "object", "question", "label"}
    assert q["question_id"] == 1 and q["file_name"] == f"{q['image_id']:06d}.jpg"
    assert q["question"] == f"Is there a {q['object']} in the image?"  # POPE's files: no suffix
    vcd = build_pope(FREQ, "popular", n_images=4, seed=3, suffix=SUFFIXES["vcd"])[0]
    assert (
        vcd["question"]
        == f"Is there a {q['object']} in the image? Please answer this question with one word."
    )
    qs = build_pope(coco({1: ["apple"], 2: ["dog"]}), "popular", n_images=2, seed=0, per_image=1)
    texts = {x["object"]: x["question"] for x in qs}
    assert texts["apple"] == "Is there an apple in the image?"
    assert texts["dog"] == "Is there a dog in the image?"


def test_build_pope_errors():
    with pytest.raises(ConfigError, match="random"):
        build_pope(FREQ, "hard")
    with pytest.raises(ConfigError, match="only 7 images"):
        build_pope(FREQ, "random", n_images=500)
    with pytest.raises(ConfigError, match="per_image"):
        build_pope(FREQ, "random", per_image=0)
    with pytest.raises(ConfigError, match="no object"):
        build_pope(coco({1: ["person", "dog"]}), "random", n_images=1, per_image=2)


def test_save_load_round_trip_and_score(tmp_path):
    qs = build_pope(FREQ, "popular", n_images=2, seed=1, per_image=1)
    path = save_questions(qs, tmp_path / "pope.jsonl")
    assert path.read_text().count("\n") == 4
    assert load_questions(path) == qs
    # labels yes,no,yes,no; answers: yes (TP), "No, there isn't." (TN), "No." (FN), "Yes" (FP)
    s = score(["Yes, there is.", "No, there isn't.", "No.", "Yes"], qs)
    assert (s["accuracy"], s["precision"], s["recall"], s["f1"], s["yes_ratio"]) == (0.5, 0.5, 0.5, 0.5, 0.5)
    with pytest.raises(ConfigError, match="one answer per question"):
        score(["yes"], qs)
    with pytest.raises(ConfigError, match="'yes' or 'no'"):
        score(["yes"], [{"question": "q", "label": True}])
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(ConfigError, match="bad.jsonl:1"):
        load_questions(tmp_path / "bad.jsonl")


def test_ground_truth_adds_the_objects_reference_captions_mention():
    """POPE collected objects from segmentations and captions (CHAIR's parser): a "no" question never
    asks about an object a reference caption mentions."""
    ann = coco({1: ["person", "dog", "car"], 2: ["person", "dog", "bus"], 3: ["person", "cat", "bus"]})
    caps = {
        "images": [{"id": 1}, {"id": 2}, {"id": 3}],
        "annotations": [{"id": 1, "image_id": 1, "caption": "Two buses pass a man."}],
    }
    plain = build_pope(ann, "popular", n_images=3, seed=0, per_image=1)
    # frequencies: person 3, dog 2, bus 2, car 1, cat 1 -> image 1 (person, dog, car) is asked "bus?"
    assert dict(by_image(plain)[1]) == {"person": "yes", "bus": "no"}
    both = build_pope(ann, "popular", n_images=3, seed=0, per_image=1, captions=caps)
    # its caption mentions buses ("buses" -> "bus" by pattern's rules): bus is present; cat is left
    assert dict(by_image(both)[1]) == {"person": "yes", "cat": "no"}
    # the original CHAIR parser misses "bus" itself ("bus" -> "bu"): the same caption in the singular adds nothing  # noqa: E501
    caps["annotations"][0]["caption"] = "A bus passes a man."
    assert dict(by_image(build_pope(ann, "popular", n_images=3, seed=0, per_image=1, captions=caps))[1]) == {
        "person": "yes",
        "bus": "no",
    }
    assert dict(
        by_image(
            build_pope(ann, "popular", n_images=3, seed=0, per_image=1, captions=caps, chair_compat="fixed")
        )[1]
    ) == {"person": "yes", "cat": "no"}
