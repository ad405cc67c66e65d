"""TraceSettings (frozen, validated once) and RunRecord (what was measured) replace the untyped
config dict (issue 18); the dict a Trace records is unchanged (tests/test_trace_meta_golden.py)."""

import dataclasses

import pytest

import lvsal_nb as lv
from lvsal_nb.errors import ConfigError
from lvsal_nb.settings import RunRecord, TraceSettings

CALL = dict(
    max_new_tokens=4,
    decoding="greedy",
    temperature=1.0,
    top_p=1.0,
    sgrs=None,
    locore=None,
    layers=None,
    context="text",
    engine="auto",
    alternatives=0,
    chunk=16,
    seed=0,
    generate_kwargs={},
)


def _checked(session, **kw):
    return TraceSettings.checked(session.adapter, 46, **{**CALL, **kw})


def test_settings_are_frozen_and_typed(llava_session):
    st = _checked(llava_session, layers=2, locore=0.25, sgrs=lv.SGRS(k=3))
    assert st.layers == (2,) and st.engine == "step" and st.k == 3
    assert st.locore == lv.LocoRE(beta=0.25)
    with pytest.raises(dataclasses.FrozenInstanceError):
        st.layers = (1,)
    with pytest.raises(TypeError):
        st.generate_kwargs["num_beams"] = 2  # a read-only mapping


def test_locore_beta_comes_from_the_adapter(llava_session, make_session):
    assert _checked(llava_session, locore=lv.LocoRE()).locore.beta == 0.15
    qwen = make_session("qwen2_vl")
    assert TraceSettings.checked(qwen.adapter, 46, **{**CALL, "locore": lv.LocoRE()}).locore.beta == 0.20


def test_k_is_alternatives_plus_one_without_sgrs(llava_session):
    assert _checked(llava_session, alternatives=3).k == 4


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(seed=-1), "seed must be an integer in 0..2"),
        (dict(chunk=0), "chunk must be an integer >= 1"),
        (dict(engine="fast"), "engine must be one of"),
        (dict(alternatives=46), "use alternatives <= 45"),
        (dict(locore="0.2"), "locore must be an lvsal_nb.LocoRE"),
        (dict(sgrs=lv.SGRS(), generate_kwargs={"num_beams": 2}), "drop the generate keywords"),
    ],
)
def test_bad_settings_are_refused_once_with_the_fix(llava_session, kw, match):
    with pytest.raises(ConfigError, match=match):
        _checked(llava_session, **kw)


def test_run_record_writes_what_ran():
    rec = RunRecord()
    assert rec.config() == {"timing": {"analysis_s": 0.0}}  # transformers' generate: no own loop

    class Loop:
        kind, capture_s = "dynamic", 0.0

    rec.analysis_s = 1.5
    rec.record_loop(Loop())
    rec.finish()
    cfg = rec.config()
    assert list(cfg) == ["timing", "step_loop"] and cfg["step_loop"] == "dynamic"
    assert (
        list(cfg["timing"]) == ["analysis_s", "capture_s", "total_s"] and cfg["timing"]["analysis_s"] == 1.5
    )
    rec.restart()
    assert rec.analysis_s == 0.0


def test_analysis_settings_record_no_sampling(llava_session):
    st = _checked(llava_session, decoding="forced", seed=None)
    cfg = st.config({"model_id": "m", "family": "llava", "device": "cpu", "dtype": "float64"})
    assert "seed" not in cfg and "temperature" not in cfg and cfg["decoding"] == "forced"
