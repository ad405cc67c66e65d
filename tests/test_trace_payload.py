"""The JSON / MIME payload of a trace: rounding that takes effect, and the marks it carries."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import lvsal_nb as lv
from lvsal_nb.annotations import MarkStore
from lvsal_nb.trace import MIME_TYPE, Candidate, Spans, Step, Trace


def _trace(n_steps: int = 4, width: int = 40) -> Trace:
    """A hand-made trace with float32 rows (what the engines record) of awkward values."""
    rng = np.random.default_rng(3)
    steps = []
    for t in range(n_steps):
        q = width - n_steps + t
        row = rng.uniform(0, 1, (2, q + 1)).astype(np.float32) / 7  # 1/7: never short in binary
        steps.append(
            Step(
                step=t,
                position=q,
                token_id=10 + t,
                token=f" w{t}",
                prob=float(np.float32(0.3)),
                logprob=float(np.log(np.float32(0.3))),
                saliency=float(np.float32(1 / 3)),
                layer_scores=[float(np.float32(1 / 3)), float(np.float32(2 / 7))],
                row=row,
                tau=None,
                decision="greedy",
                round=None,
                candidates=[Candidate(token_id=5, token=" x", prob=float(np.float32(0.1)), saliency=None)],
            )
        )
    n = width + 1
    return Trace(
        records=steps,
        token_ids=list(range(n)),
        tokens=[f"t{i}" for i in range(n)],
        spans=Spans(
            system=None, image=(0, 16), prompt=(16, width - n_steps + 1), output=(width - n_steps + 1, n)
        ),
        config={"engine": "step"},
        prompt="p",
        image_grid=(4, 4),
        trace_id="payload0",
    )


NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _decimals(x: str) -> int:
    """Decimals a JSON number actually carries (1.5e-05 carries 6)."""
    mant, _, exp = x.partition("e")
    frac = mant.partition(".")[2]
    return max(len(frac) - int(exp or 0), 0)


def test_rounded_payload_has_at_most_five_decimals():
    text = json.dumps(_trace().to_json(digits=5, marks=None)["steps"])
    numbers = NUMBER.findall(text)
    assert len(numbers) > 150
    worst = max(numbers, key=_decimals)
    assert _decimals(worst) <= 5, worst  # float32 rows printed as 0.12345999479293823 before the fix


def test_rounded_payload_is_about_half_the_full_one():
    tr = _trace(n_steps=8, width=400)
    full = len(json.dumps(tr.to_json(marks=None)["steps"]))
    small = len(json.dumps(tr.to_json(digits=5, marks=None)["steps"]))
    # a row value costs ~20 chars at full precision and 7 + ", " at 5 digits ("0.12346, ")
    values = sum(s.row.size for s in tr.records)
    assert small < 0.5 * full
    assert small < 10 * values  # ≤ 9 chars per value ("0.12346, ") plus the small fields


def test_mime_bundle_is_rounded(tmp_path, monkeypatch):
    monkeypatch.setenv("LVSAL_DATA_DIR", str(tmp_path))
    payload = _trace()._repr_mimebundle_()[MIME_TYPE]
    assert payload["steps"][0]["saliency"] == 0.33333
    assert all(_decimals(x) <= 5 for x in NUMBER.findall(json.dumps(payload["steps"])))


def test_marks_from_a_store(tmp_path):
    store = MarkStore(tmp_path / "m.sqlite3")
    store.add("payload0", 2, "hallucinated", note="no dog", author="a")
    store.add("payload0", 1, "unsure", author="a")
    store.add("payload0", 1, "correct", author="b")  # later mark of step 1 wins
    store.add("payload0", 9, "hallucinated", author="a")  # outside the 4 steps: dropped
    store.add("other", 0, "hallucinated", author="a")
    d = _trace().to_json(marks=store)
    assert d["marks"] == [
        {"step": 1, "label": "correct", "note": ""},
        {"step": 2, "label": "hallucinated", "note": "no dog"},
    ]


def test_marks_default_store_and_saved_json(tmp_path, monkeypatch):
    monkeypatch.setenv("LVSAL_DATA_DIR", str(tmp_path))
    MarkStore().add("payload0", 0, "unsure", author="a")
    tr = _trace()
    assert tr._repr_mimebundle_()[MIME_TYPE]["marks"] == [{"step": 0, "label": "unsure", "note": ""}]
    saved = json.loads(tr.save(tmp_path / "t.lvsal.json").read_text())
    assert saved["marks"] == [{"step": 0, "label": "unsure", "note": ""}]
    assert len(lv.Trace.load(tmp_path / "t.lvsal.json")) == 4  # the loader ignores the marks


def test_marks_given_as_rows_and_none():
    tr = _trace()
    rows = [{"step": 3, "label": "hallucinated"}, {"step": 0, "label": "not-a-label"}]
    assert tr.to_json(marks=rows)["marks"] == [{"step": 3, "label": "hallucinated", "note": ""}]
    assert "marks" not in tr.to_json(marks=None)


def test_damaged_store_gives_the_trace_without_marks(tmp_path):
    bad = tmp_path / "m.sqlite3"
    bad.write_bytes(b"this is not sqlite" * 100)
    d = _trace().to_json(marks=MarkStore(bad))
    assert d["marks"] == [] and len(d["steps"]) == 4
    assert d["marks_error"]


@pytest.mark.parametrize("digits", [None, 5])
def test_payload_is_strict_json(digits):
    json.loads(json.dumps(_trace().to_json(digits=digits, marks=None), allow_nan=False))
