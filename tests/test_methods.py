"""The methods registry: one call for every decoding method, errors that list the options, and
LocoRE's default beta from the model family (one source)."""

import pytest

import lvsal_nb as lv
from lvsal_nb.decoding.dola import DoLa, dola_generate
from lvsal_nb.decoding.vcd import VCD, vcd_generate
from lvsal_nb.errors import ConfigError
from lvsal_nb.methods import available, decode_method, locore_beta, run_method

PROMPT = "describe this image ."


def test_available_lists_every_method():
    assert available() == ["greedy", "sgrs", "locore", "sgrs+locore", "vcd", "dola", "opera"]


def test_unknown_method_and_option_errors_list_the_options(llava_session, image):
    with pytest.raises(
        ConfigError,
        match="unknown method 'beam'; choose one of greedy, sgrs, locore, sgrs\\+locore, vcd, dola, opera",
    ):
        run_method("beam", llava_session, image, PROMPT)
    with pytest.raises(
        ConfigError, match="method 'dola' has no option\\(s\\) \\['alpha'\\]; its options are layers"
    ):
        run_method("dola", llava_session, image, PROMPT, alpha=1.0)
    with pytest.raises(ConfigError, match="'greedy' takes no options"):
        run_method("greedy", llava_session, image, PROMPT, k=3)
    with pytest.raises(ConfigError, match="its options are sgrs, locore"):
        run_method("sgrs+locore", llava_session, image, PROMPT, beta=0.3)


@pytest.mark.parametrize("fam, beta", [("llava", 0.15), ("qwen2_vl", 0.20)])
def test_locore_beta_comes_from_the_family(make_session, image, fam, beta):
    """PAPER.md: β = 0.15 for LLaVA-1.5, 0.20 for Qwen2-VL (lv.LocoRE() alone says 0.15 for both)."""
    s = make_session(fam)
    assert locore_beta(s) == beta
    tr = run_method("locore", s, image, PROMPT, max_new_tokens=2)
    assert tr.config["locore"]["beta"] == beta and tr.config["method_options"]["locore"]["beta"] == beta
    both = run_method("sgrs+locore", s, image, PROMPT, max_new_tokens=2, sgrs={"k": 2, "rounds": 2})
    assert both.config["locore"]["beta"] == beta and both.config["sgrs"]["k"] == 2
    assert run_method("locore", s, image, PROMPT, max_new_tokens=1, beta=0.5).config["locore"]["beta"] == 0.5


def test_each_method_equals_its_direct_call(llava_session, image):
    s = llava_session
    g = run_method("greedy", s, image, PROMPT, max_new_tokens=4, seed=2)
    plain = s.trace(image, PROMPT, max_new_tokens=4, seed=2)
    assert [r.token_id for r in g.records] == [r.token_id for r in plain.records]
    assert g.config["method"] == "greedy"
    sg = run_method("sgrs", s, image, PROMPT, max_new_tokens=3, seed=2, k=2, rounds=1)
    direct = s.trace(image, PROMPT, max_new_tokens=3, seed=2, sgrs=lv.SGRS(k=2, rounds=1))
    assert [r.token_id for r in sg.records] == [r.token_id for r in direct.records]
    v = run_method("vcd", s, image, PROMPT, max_new_tokens=3, seed=4, alpha=0.5)
    assert [r.token_id for r in v.records] == vcd_generate(
        s, image, PROMPT, VCD(alpha=0.5), max_new_tokens=3, seed=4
    ).token_ids
    assert v.config["method_options"]["alpha"] == 0.5 and v.config["method_options"]["decoding"] == "sample"
    d = decode_method("dola", s, image, PROMPT, max_new_tokens=3, analyze=False, decoding="greedy")
    assert d.trace is None
    assert d.token_ids == dola_generate(s, image, PROMPT, DoLa(), max_new_tokens=3).token_ids


def test_opera_through_the_registry_is_traced(llava_session, image):
    from lvsal_nb.decoding.opera import OPERA, opera_generate

    s = llava_session
    tr = run_method("opera", s, image, PROMPT, max_new_tokens=2, num_beams=2, num_attn_candidates=2)
    direct = opera_generate(s, image, PROMPT, OPERA(num_beams=2, num_attn_candidates=2), max_new_tokens=2)
    assert [r.token_id for r in tr.records] == direct.token_ids
    assert tr.config["method"] == "opera" and tr.config["decoding"] == "forced"  # analysed afterwards
    assert tr.config["method_options"]["num_beams"] == 2 and tr.config["method_options"]["threshold"] == 15
    assert all(r.saliency is not None for r in tr.records)
