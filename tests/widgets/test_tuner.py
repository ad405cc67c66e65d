"""Tuner: sliders -> settings, A/B runs with the same seed, token differences, CHAIR against truth."""

import difflib

import pytest

import lvsal_nb as lv
from lvsal_nb.errors import ConfigError
from lvsal_nb.trace import Spans, Step, Trace
from lvsal_nb.widgets import Tuner, tune

PROMPT = "describe this image ."


def test_sliders_make_the_trace_settings(llava_session, image):
    t = tune(llava_session, image, PROMPT, max_new_tokens=6, seed=7)
    t.k.value, t.alpha.value, t.window.value, t.rounds.value = 4, 0.8, 3, 2
    t.use_locore.value, t.beta.value, t.w_s.value, t.locore_layers.value = True, 0.3, 4, (1, 2)
    kw = t.settings()
    assert kw["sgrs"] == lv.SGRS(k=4, alpha=0.8, window=3, rounds=2)
    assert kw["locore"] == lv.LocoRE(beta=0.3, window=4, layers=(1, 2))
    assert (kw["seed"], kw["max_new_tokens"]) == (7, 6)
    t.k.value = 1  # R can never exceed K
    assert t.rounds.max == 1 and t.settings()["sgrs"].rounds == 1
    t.use_sgrs.value, t.use_locore.value = False, False
    assert t.settings()["sgrs"] is None and t.settings()["locore"] is None


def test_two_runs_side_by_side_with_differences(llava_session, image):
    t = tune(llava_session, image, PROMPT, max_new_tokens=8)
    t.use_sgrs.value = False
    a = t.run(wait=True)
    assert t.slot.value == "B"  # the next run goes into the other slot
    t.use_sgrs.value, t.alpha.value = True, 1.0
    b = t.run(wait=True)
    assert t.runs == {"A": a, "B": b}
    # the same seed and settings give the same tokens as a direct trace
    ref = llava_session.trace(image, PROMPT, max_new_tokens=8, sgrs=lv.SGRS(alpha=1.0), seed=0)
    assert [s.token_id for s in b.records] == [s.token_id for s in ref.records]
    ta, tb = [s.token_id for s in a.records], [s.token_id for s in b.records]
    assert ta != tb
    same = sum(
        blk.size for blk in difflib.SequenceMatcher(None, ta, tb, autojunk=False).get_matching_blocks()
    )
    diff = t.differences()
    assert len(ta) - len(diff["A"]) == same and len(tb) - len(diff["B"]) == same
    assert t.panels["B"].value.count("background:#ffe08a") == len(diff["B"])
    assert "SGRS K=5 α=1" in t.panels["B"].value and "no SGRS" in t.panels["A"].value
    assert t.sources["B"].data["saliency"] == [s.saliency for s in b.records]
    assert t.scores("A") is None  # no truth given


def _fake(text_words):
    recs = [
        Step(
            step=i,
            position=10 + i,
            token_id=i,
            token=(" " if i else "") + w,
            prob=0.5,
            logprob=-0.7,
            saliency=0.1,
        )
        for i, w in enumerate(text_words)
    ]
    n = 10 + len(recs)
    return Trace(
        records=recs,
        token_ids=list(range(n)),
        tokens=["t"] * n,
        spans=Spans(system=(0, 1), image=(1, 5), prompt=(5, 10), output=(10, n)),
        config={"layers": [1]},
    )


def test_chair_against_truth_and_hallucinations_in_red(llava_session, image):
    from lvsal_nb.toy.scenes import make_scene

    scene = make_scene(0)
    truth = set(scene.object_names())
    present = sorted(truth)[0]
    absent = next(s for s in ("star", "moon", "circle", "cross", "ring") if s not in truth)
    t = Tuner(llava_session, image, PROMPT, truth=scene)
    t.runs["A"], t.settings_of["A"] = (
        _fake(["a", present, "and", "a", absent, "and", "two", absent + "s"]),
        {"sgrs": None, "locore": None},
    )
    sc = t.scores("A")
    assert sc["mentioned"] == [present, absent, absent] and sc["hallucinated"] == [absent, absent]
    assert sc["chair_s"] == 1.0 and sc["chair_i"] == pytest.approx(2 / 3)
    assert sc["recall"] == pytest.approx(1 / len(truth))
    t._render()
    assert t.panels["A"].value.count("color:#d62728") == 2 and "CHAIR_I 0.67" in t.panels["A"].value
    with pytest.raises(ConfigError, match="not a string"):
        Tuner(llava_session, image, PROMPT, truth="star")


def test_run_errors(llava_session, image):
    t = tune(llava_session, image, PROMPT, max_new_tokens=4)
    with pytest.raises(ConfigError, match="slot"):
        t.run("C")


def test_runs_finished_before_display_are_in_the_snapshot(llava_session, image, bundle_data):
    t = tune(llava_session, image, PROMPT, max_new_tokens=4)
    t.run("A", wait=True)
    assert bundle_data(t.bokeh, t.sources["A"])["step"] == [0, 1, 2, 3]  # a browser view shows run A


def test_every_one_letter_slider_says_what_it_does(llava_session, image):
    t = tune(llava_session, image, PROMPT, max_new_tokens=4)
    for w in (t.k, t.alpha, t.window, t.rounds, t.beta, t.w_s):
        assert len(w.tooltip or "") > 20, w.description
    assert "SGRS" in t.alpha.tooltip and "1 + β" in t.beta.tooltip


def test_chair_of_a_real_model_uses_coco_synonyms(llava_session, image):
    """Issue 17: the toy's shape words found no object in a real caption, so CHAIR was 0."""
    from lvsal_nb.widgets.comparison import chair

    tr = _fake(["A", "cat", "sits", "next", "to", "a", "dog", "and", "a", "bicycle", "."])
    got = chair(tr, {"cat"})
    # by hand: 3 mentions (cat, dog, bicycle), 2 not in {cat}: CHAIR_I 2/3, CHAIR_S 1, recall 1
    assert got["mentioned"] == ["cat", "dog", "bicycle"] and got["hallucinated"] == ["dog", "bicycle"]
    assert got["chair_i"] == pytest.approx(2 / 3) and got["chair_s"] == pytest.approx(1.0)
    assert got["recall"] == pytest.approx(1.0)
    t = tune(llava_session, image, PROMPT, truth={"cat"})
    assert t.toy is False  # a tiny LLaVA is no toy: COCO words


def test_ab_chart_range_holds_both_runs(llava_session, image):
    t = tune(llava_session, image, PROMPT, max_new_tokens=3)
    t.runs["A"] = _fake(["a", "star"])
    t._render()
    t.runs["B"] = _fake(["a", "star", "and", "a", "moon", "."])
    t._render()
    # B has steps 0..5: the x range must reach past 5 (it stayed at A's 0..1 before)
    assert t.figure.x_range.start <= 0 and t.figure.x_range.end >= 5
    sal = t.sources["B"].data["saliency"] + t.sources["A"].data["saliency"]
    assert t.figure.y_range.end >= max(sal)
    assert {type(x).__name__ for x in t.figure.tools} >= {"PanTool", "WheelZoomTool", "ResetTool"}
