"""Content fingerprints (fingerprint.py): which changes make a generation another one, checked
against keys computed here by hand from the rule in the module docstring."""

import dataclasses
import hashlib
import json

import torch

from lvsal_nb import fingerprint as F
from lvsal_nb.trace import Spans, Step, Trace


def _trace(ids=(5, 6, 7), prompt="describe", image="img1", cfg=None, trace_id="a"):
    recs = [
        Step(step=i, position=10 + i, token_id=t, token=f"t{t}", prob=0.5, logprob=-0.7, saliency=0.1)
        for i, t in enumerate(ids)
    ]
    n = 10 + len(recs)
    config = {
        "model_id": "m",
        "weights_digest": "w1",
        "decoding": "greedy",
        "seed": 0,
        "sgrs": None,
        "locore": None,
    } | (cfg or {})
    return Trace(
        records=recs,
        token_ids=list(range(10)) + list(ids),
        tokens=["t"] * n,
        spans=Spans(system=(0, 1), image=(1, 5), prompt=(5, 10), output=(10, n)),
        config=config,
        prompt=prompt,
        image_digest=image,
        trace_id=trace_id,
    )


def _hand_setup(model="m", weights="w1", image="img1", prompt="describe"):
    obj = {"image": image, "model_id": model, "prompt": prompt, "weights": weights}
    return hashlib.sha256(json.dumps(obj, separators=(",", ":")).encode()).hexdigest()[:32]


def test_setup_key_is_model_weights_image_prompt_only():
    tr = _trace()
    assert F.setup_key(tr) == _hand_setup()
    assert F.setup_key(_trace(trace_id="b", cfg={"seed": 9, "sgrs": {"k": 5}}, ids=(1,))) == _hand_setup()
    assert F.setup_key(_trace(prompt="other")) == _hand_setup(prompt="other")
    assert F.setup_key(_trace(image="img2")) != F.setup_key(tr)
    assert F.setup_key(_trace(cfg={"weights_digest": "w2"})) != F.setup_key(tr)
    assert F.setup_key(_trace(cfg={"model_id": "n"})) != F.setup_key(tr)


def test_step_keys_chain_the_output_ids():
    tr = _trace(ids=(5, 6, 7))
    k, expect = _hand_setup(), []
    for t in (5, 6, 7):
        k = hashlib.sha256(f"{k}:{t}".encode()).hexdigest()[:32]
        expect.append(k)
    assert F.step_keys(tr) == expect
    # same prefix -> same keys; a changed token changes its key and every later one
    other = F.step_keys(_trace(ids=(5, 9, 7), trace_id="b"))
    assert other[0] == expect[0] and other[1] != expect[1] and other[2] != expect[2]
    assert F.step_keys(_trace(ids=(5, 6, 7, 8)))[:3] == expect  # a longer run keeps the first three


def test_content_fingerprint_same_generation_only():
    a = _trace(trace_id="a")
    assert F.content_fingerprint(a) == F.content_fingerprint(_trace(trace_id="zzz"))  # the id is the instance
    assert F.content_fingerprint(a) != F.content_fingerprint(_trace(cfg={"sgrs": {"k": 5}}))
    assert F.content_fingerprint(a) != F.content_fingerprint(_trace(ids=(5, 6)))
    assert F.content_fingerprint(a) != F.content_fingerprint(_trace(cfg={"seed": 1}))


def test_weights_digest_follows_the_values_and_in_place_changes():
    torch.manual_seed(0)
    m = torch.nn.Linear(64, 64)
    twin = torch.nn.Linear(64, 64)
    twin.load_state_dict(m.state_dict())
    d = F.weights_digest(m)
    assert d == F.weights_digest(twin) and len(d) == 32
    with torch.no_grad():
        m.weight[3, 7] += 1e-3  # one element, in place: the cache must notice (version counter)
    assert F.weights_digest(m) != d
    assert F.weights_digest(twin) == d


def test_step_keys_of_a_rerun_with_the_same_tokens_are_equal(llava_session, image):
    a = llava_session.trace(image, "describe this image .", max_new_tokens=4)
    b = llava_session.trace(image, "describe this image .", max_new_tokens=4)
    assert a.trace_id != b.trace_id and F.step_keys(a) == F.step_keys(b)
    assert F.content_fingerprint(a) == F.content_fingerprint(b)
    c = dataclasses.replace(b, prompt="describe it")
    assert set(F.step_keys(c)).isdisjoint(F.step_keys(a))
