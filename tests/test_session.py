"""Session.trace/analyze: decoding, streaming, interrupts, and clear errors for bad input."""

import threading

import numpy as np
import pytest
import torch

import lvsal_nb as lv
from lvsal_nb.saliency.reference import reference_step

PROMPT = "describe this image ."


def _plain_greedy(session, image, n):
    """Independent greedy tokens: transformers' own generate."""
    prepared = session.adapter.prepare(image, PROMPT)
    with torch.no_grad():
        out = session.model.generate(**prepared.inputs, max_new_tokens=n, do_sample=False)
    return out[0, prepared.n :].tolist()


def test_greedy_tokens_equal_transformers_generate(session, image):
    tr = session.trace(image, PROMPT, max_new_tokens=6)
    # generate stops at EOS as the trace does: the whole lists are equal (no slicing to the trace)
    assert [s.token_id for s in tr.records] == _plain_greedy(session, image, 6)


def test_sampling_is_seeded(llava_session, image):
    a = llava_session.trace(image, PROMPT, max_new_tokens=8, decoding="sample", seed=3)
    b = llava_session.trace(image, PROMPT, max_new_tokens=8, decoding="sample", seed=3)
    c = llava_session.trace(image, PROMPT, max_new_tokens=8, decoding="sample", seed=4)
    ids = lambda t: [s.token_id for s in t.records]  # noqa: E731
    assert ids(a) == ids(b) and ids(a) != ids(c)
    assert a.config["seed"] == 3 and all(s.decision == "sampled" for s in a.records)


def test_eos_stops(llava_session, image):
    eos = sorted(llava_session.adapter.eos_token_ids)[0]
    head = llava_session.model.lm_head
    saved = head.bias
    head.bias = torch.nn.Parameter(
        torch.zeros(head.out_features, dtype=head.weight.dtype), requires_grad=False
    )
    head.bias.data[eos] = 1e3  # EOS always wins
    try:
        tr = llava_session.trace(image, PROMPT, max_new_tokens=5)
    finally:
        head.bias = saved
    assert [s.token_id for s in tr.records] == [eos]


def test_streaming_callback_sees_every_step_in_order(llava_session, image):
    seen = []
    tr = llava_session.trace(image, PROMPT, max_new_tokens=7, chunk=3, on_step=seen.append)
    assert [s.step for s in seen] == list(range(7)) and seen == tr.records


def test_stop_event_keeps_partial_trace(llava_session, image):
    stop = threading.Event()

    def on_step(step):
        if step.step == 2:
            stop.set()

    tr = llava_session.trace(image, PROMPT, max_new_tokens=20, engine="step", on_step=on_step, stop=stop)
    assert len(tr) == 3 and tr.interrupted


def test_keyboard_interrupt_keeps_partial_trace(llava_session, image):
    def on_step(step):
        if step.step == 3:
            raise KeyboardInterrupt

    tr = llava_session.trace(image, PROMPT, max_new_tokens=20, chunk=2, on_step=on_step)
    assert tr.interrupted and len(tr) >= 4
    assert all(s.row is not None for s in tr.records)


def test_beam_search_through_generate(llava_session, image):
    tr = llava_session.trace(image, PROMPT, max_new_tokens=5, num_beams=3)
    prepared = llava_session.adapter.prepare(image, PROMPT)
    with torch.no_grad():
        ref = llava_session.model.generate(**prepared.inputs, max_new_tokens=5, num_beams=3, do_sample=False)
    assert [s.token_id for s in tr.records] == ref[0, prepared.n :].tolist()
    assert tr.config["generate"] == {"num_beams": 3} and tr.records[0].decision == "generated"


def test_analyze_equals_trace(llava_session, image):
    tr = llava_session.trace(image, PROMPT, max_new_tokens=6, alternatives=1)
    an = llava_session.analyze(image, PROMPT, [s.token_id for s in tr.records], alternatives=1)
    for a, b in zip(tr.records, an.records):
        assert a.saliency == pytest.approx(b.saliency, abs=1e-12) and b.decision == "forced"
    text_an = llava_session.analyze(image, PROMPT, "red cat on a table")
    assert [s.token for s in text_an.records] == ["red", " cat", " on", " a", " table"]
    _assert_reference(llava_session, image, text_an)


def test_trace_has_spans_tokens_and_image(session, image):
    tr = session.trace(image, PROMPT, max_new_tokens=4)
    n = len(tr.token_ids)
    assert tr.spans.output == (n - len(tr), n)
    assert tr.tokens[tr.spans.image[0]] == "<image>" and len(tr.tokens) == n
    assert tr.image_png.startswith(b"\x89PNG") and tr.image_digest
    assert tr.config["family"] == session.adapter.family


def test_text_only_prompt(llava_session):
    tr = llava_session.trace(None, PROMPT, max_new_tokens=3)
    assert tr.spans.image is None and len(tr) == 3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(prompt=""), "prompt is empty"),
        (dict(max_new_tokens=0), "max_new_tokens must be an integer >= 1"),
        (dict(layers=[9]), r"out of range: this model has 4 decoder layers"),
        (dict(layers=[]), "layers is empty"),
        (dict(decoding="beam"), "decoding must be one of"),
        (dict(temperature=0), "temperature must be > 0"),
        (dict(context="image"), "context must be one of"),
        (dict(engine="fast"), "engine must be one of"),
        (dict(sgrs=lv.SGRS(), engine="sequence"), "needs engine='step'"),
    ],
)
def test_bad_input_names_the_fix(llava_session, image, kwargs, match):
    args = dict(image=image, prompt=PROMPT, max_new_tokens=2)
    args.update(kwargs)
    with pytest.raises(lv.LvsalError, match=match):
        llava_session.trace(args.pop("image"), args.pop("prompt"), **args)


def test_analyze_rejects_ids_outside_the_vocabulary(llava_session, image):
    vocab = llava_session.adapter.head.weight.shape[0]
    for ids in ([5, vocab], [-1, 5]):
        with pytest.raises(lv.ConfigError, match=rf"outside this model's vocabulary \(0..{vocab - 1}\)"):
            llava_session.analyze(image, PROMPT, ids)
    assert len(llava_session.analyze(image, PROMPT, [5, vocab - 1])) == 2


def test_bad_images(llava_session, tmp_path):
    with pytest.raises(lv.ImageError, match="does not exist"):
        llava_session.trace(tmp_path / "nope.png", PROMPT)
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    with pytest.raises(lv.ImageError, match="cannot read"):
        llava_session.trace(bad, PROMPT)
    with pytest.raises(lv.ImageError, match="1, 3 or 4 channels"):  # HxW is a grey image (lvsal_nb.images)
        llava_session.trace(np.zeros((5, 5, 2)), PROMPT)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(k=0), "k must be an integer >= 1"),
        (dict(alpha=-1), "alpha must be >= 0"),
        (dict(rounds=6), "rounds must be an integer in 1..k"),
        (dict(window=0), "window must be"),
    ],
)
def test_bad_sgrs(kwargs, match):
    with pytest.raises(lv.ConfigError, match=match):
        lv.SGRS(**kwargs)


def test_bad_locore():
    with pytest.raises(lv.ConfigError, match="beta must be >= 0"):
        lv.LocoRE(beta=-0.1)


def test_unsupported_model_and_missing_checkpoint(tmp_path):
    with pytest.raises(lv.UnsupportedModelError, match="is not supported"):
        lv.load(torch.nn.Linear(2, 2))
    with pytest.raises(lv.ConfigError, match="never downloads"):
        lv.load(str(tmp_path / "no-such-model"))


def test_load_local_checkpoint(model_dir, image):
    s = lv.load(model_dir, device="cpu")
    tr = s.trace(image, PROMPT, max_new_tokens=3)
    assert len(tr) == 3 and s.adapter.family == "llava"


@pytest.mark.parametrize("engine", ["sequence", "step"])
def test_trace_inside_no_grad(llava_session, image, engine):
    """Users often wrap inference in torch.no_grad(); both engines still get their gradients:
    every candidate's saliency equals the naive full-recompute reference."""
    with torch.no_grad():
        tr = llava_session.trace(image, PROMPT, max_new_tokens=4, engine=engine, alternatives=1)
    _assert_reference(llava_session, image, tr)


def _assert_reference(session, image, tr):
    prepared = session.adapter.prepare(image, PROMPT)
    out = [s.token_id for s in tr.records]
    assert len(out) > 1
    for t in range(1, len(out)):  # step 0 of context "text" may have an empty J
        cands = [c.token_id for c in tr.records[t].candidates]
        ref = reference_step(session.adapter, prepared, out, t, cands, tr.layers)
        assert [c.saliency for c in tr.records[t].candidates] == pytest.approx(ref["scores"], abs=1e-12)


# ---- issue 17: settings that are not finite, and inputs that used to fail deep or silently ----------
INF, NAN = float("inf"), float("nan")


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: lv.LocoRE(beta=INF), "LocoRE beta must be >= 0 and finite"),
        (lambda: lv.LocoRE(beta=NAN), "LocoRE beta must be >= 0 and finite"),
        (lambda: lv.LocoRE(window=INF), "LocoRE window must be an integer"),
        (lambda: lv.LocoRE(window=True), "LocoRE window must be an integer"),
        (lambda: lv.LocoRE(layers="23"), "LocoRE layers must be a list"),
        (lambda: lv.LocoRE(layers=[1.5]), "LocoRE layers must be integer"),
        (lambda: lv.SGRS(alpha=INF), "SGRS alpha must be >= 0 and finite"),
        (lambda: lv.SGRS(alpha=NAN), "SGRS alpha must be >= 0 and finite"),
        (lambda: lv.SGRS(k=INF), "SGRS k must be an integer"),
        (lambda: lv.SGRS(window=NAN), "SGRS window must be an integer"),
        (lambda: lv.SGRS(rounds=INF), "SGRS rounds must be an integer"),
        (lambda: lv.SGRS(k=True), "SGRS k must be an integer"),
    ],
)
def test_non_finite_settings_are_refused(make, match):
    with pytest.raises(lv.ConfigError, match=match):
        make()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(decoding="sample", temperature=INF), "temperature must be > 0 and finite"),
        (dict(decoding="sample", temperature=NAN), "temperature must be > 0 and finite"),
        (dict(decoding="sample", top_p=NAN), r"top_p must be a number in \(0, 1\]"),
        (dict(locore=INF), "LocoRE beta must be >= 0 and finite"),
        (dict(chunk=0), "chunk must be an integer >= 1"),
        (dict(chunk=-1), "chunk must be an integer >= 1"),
        (dict(chunk=2.5), "chunk must be an integer >= 1"),
        (dict(alternatives=46), r"alternatives=46 .* vocabulary has 46 tokens; use alternatives <= 45"),
        (dict(sgrs=lv.SGRS(k=47, rounds=3)), r"SGRS k=47 is larger than this model's vocabulary \(46"),
        (dict(seed=-1), r"seed must be an integer in 0..2\*\*63-1"),
        (dict(seed=2**63), r"seed must be an integer in 0..2\*\*63-1"),
        (dict(seed=1.5), r"seed must be an integer in 0..2\*\*63-1"),
        (dict(layers="23"), "layers must be a list of decoder layer indices"),
        (dict(layers=[1.7]), "layers must be integer layer indices"),
        (dict(layers=[True]), "layers must be integer layer indices"),
        (dict(prompt=["describe"]), "the prompt must be a string, not list"),
        (dict(prompt=None), "the prompt must be a string, not NoneType"),
        (dict(max_new_tokens=4090), r"this model has 4096 positions; lower max_new_tokens"),
    ],
)
def test_more_bad_input_names_the_fix(llava_session, image, kwargs, match):
    args = dict(image=image, prompt=PROMPT, max_new_tokens=2)
    args.update(kwargs)
    with pytest.raises(lv.ConfigError, match=match):
        llava_session.trace(args.pop("image"), args.pop("prompt"), **args)


def test_an_int_layer_is_that_one_layer(llava_session, image):
    a = llava_session.trace(image, PROMPT, max_new_tokens=3, layers=2)
    b = llava_session.trace(image, PROMPT, max_new_tokens=3, layers=[2])
    assert a.layers == [2] and [s.saliency for s in a.records] == [s.saliency for s in b.records]


def test_a_prompt_longer_than_the_model_positions(image):
    s = lv.load("toy", device="cpu")
    limit = s.adapter.text_config.max_position_embeddings
    with pytest.raises(lv.ConfigError, match=rf"this model has {limit} positions; shorten the prompt"):
        s.trace(None, "is there a" + " red" * limit + " circle ?", max_new_tokens=2)
    n = s.adapter.prepare(None, "is there a red circle ?").n
    with pytest.raises(lv.ConfigError, match=rf"this model has {limit} positions; lower max_new_tokens"):
        s.trace(None, "is there a red circle ?", max_new_tokens=limit - n + 1)
    room = limit - n
    with pytest.raises(lv.ConfigError, match=rf"this model has {limit} positions; lower .* to <= {room}"):
        s.analyze(None, "is there a red circle ?", [5] * (limit - n + 1))


def test_analyze_refuses_unknown_words_naming_them(llava_session, image):
    tok = llava_session.adapter.tokenizer
    word = "zebra\u2603"  # a character outside the tiny vocabulary
    assert tok.unk_token_id in tok(word, add_special_tokens=False)["input_ids"]
    with pytest.raises(lv.ConfigError, match=r"does not know \['zebra\u2603'\].*<unk>.*pass token ids"):
        llava_session.analyze(image, PROMPT, f"red {word} on a table")
    with pytest.raises(lv.ConfigError, match="the prompt must be a string"):
        llava_session.analyze(image, 3, "red cat")
    with pytest.raises(lv.ConfigError, match="chunk must be an integer >= 1"):
        llava_session.analyze(image, PROMPT, "red cat", chunk=0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(dtype="Tensor"), r"unknown or non-floating dtype"),
        (dict(dtype="int64"), r"unknown or non-floating dtype"),
        (dict(dtype="no_such"), r"unknown or non-floating dtype"),
        (dict(device="gpu"), r"unknown device 'gpu'"),
    ],
)
def test_load_bad_dtype_or_device(kwargs, match):
    with pytest.raises(lv.ConfigError, match=match):
        lv.load("tiny:llava", **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_load_cuda_without_cuda():
    with pytest.raises(lv.ConfigError, match="no CUDA device; use 'cpu'"):
        lv.load("tiny:llava", device="cuda")


def test_load_keeps_a_model_objects_dtype_and_device():
    from lvsal_nb.models.tiny import tiny_llava

    model, proc = tiny_llava(dtype=torch.float64)
    s = lv.load(model, proc)
    assert s.model is model and s.dtype == torch.float64 and s.device.type == "cpu"
    assert all(p.dtype == torch.float64 for p in model.parameters())
    s = lv.load(model, proc, dtype="float32")  # asked for: converted (in place, said in the docstring)
    assert s.dtype == torch.float32 and next(model.parameters()).dtype == torch.float32


def test_sampling_with_generate_keywords_leaves_the_global_rng_alone(llava_session, image):
    torch.manual_seed(1234)
    state = torch.get_rng_state()
    a = llava_session.trace(image, PROMPT, max_new_tokens=4, decoding="sample", num_beams=2, seed=5)
    assert torch.equal(torch.get_rng_state(), state)
    b = llava_session.trace(image, PROMPT, max_new_tokens=4, decoding="sample", num_beams=2, seed=5)
    assert [s.token_id for s in a.records] == [s.token_id for s in b.records]  # still seeded


@pytest.mark.parametrize("engine", ["sequence", "step"])
def test_sampled_steps_record_model_and_sampling_probabilities(llava_session, image, engine):
    """prob/logprob: the model's distribution (temperature 1); sample_prob/sample_logprob: the
    distribution the token was drawn from (temperature, then top-p, renormalised), hand-computed
    from the model's logits at that step."""
    tr = llava_session.trace(
        image, PROMPT, max_new_tokens=4, decoding="sample", temperature=0.7, top_p=0.9, seed=2, engine=engine
    )
    prepared = llava_session.adapter.prepare(image, PROMPT)
    out = [s.token_id for s in tr.records]
    for t, rec in enumerate(tr.records):
        inputs = llava_session.adapter.full_inputs(prepared, out[:t])
        with torch.no_grad():
            logits = llava_session.model(**inputs).logits[0, -1].double()
        p = torch.softmax(logits, -1)
        assert rec.prob == pytest.approx(float(p[rec.token_id]), rel=1e-9)
        assert rec.logprob == pytest.approx(float(p[rec.token_id].log()), abs=1e-9)
        q = torch.softmax(logits / 0.7, -1)
        sq, idx = torch.sort(q, descending=True)
        keep = idx[(sq.cumsum(0) - sq) < 0.9]
        expect = float(q[rec.token_id] / q[keep].sum())
        assert rec.sample_prob == pytest.approx(expect, rel=1e-5)  # (drawn from a float32 distribution)
        assert rec.sample_logprob == pytest.approx(np.log(expect), abs=1e-5)
    df = tr.table
    assert {"sample_prob", "sample_logprob"} <= set(df.columns)
    greedy = llava_session.trace(image, PROMPT, max_new_tokens=2)
    assert greedy.table["sample_prob"].isna().all() and greedy.records[0].sample_prob is None


@pytest.mark.parametrize("suffix", [".parquet", ".json"])
def test_sampling_probabilities_survive_save_and_old_files_load(llava_session, image, tmp_path, suffix):
    import json

    tr = llava_session.trace(image, PROMPT, max_new_tokens=3, decoding="sample", temperature=0.5, seed=1)
    back = lv.Trace.load(tr.save(tmp_path / f"t{suffix}"))
    assert [s.sample_prob for s in back.records] == pytest.approx([s.sample_prob for s in tr.records])
    assert [s.sample_logprob for s in back.records] == pytest.approx([s.sample_logprob for s in tr.records])
    if suffix == ".json":  # a file written before the columns existed
        d = json.loads((tmp_path / "t.json").read_text())
        for st in d["steps"]:
            del st["sample_prob"], st["sample_logprob"]
        (tmp_path / "old.json").write_text(json.dumps(d))
        old = lv.Trace.load(tmp_path / "old.json")
        assert old.records[0].sample_prob is None and old.table["sample_prob"].isna().all()
