"""Traces record the same metadata as before the settings refactor (issue 18).

`tests/data/trace_meta_golden.json` was written by this file's `record()` from the code before
`TraceSettings` / `RunRecord` replaced the untyped config dict (commit ac9f08f): the meta dict of a
trace (what run.json, the Parquet metadata and `fingerprint.py` read) for a few settings, with the
run's random id, its creation time and measured times masked. Saved traces and marks' fingerprints
must not change, so the meta dicts must be equal, key order included (the JSON written to files).

Regenerate ONLY from code whose behaviour is known to be right:
    .venv/bin/python tests/test_trace_meta_golden.py
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import lvsal_nb as lv
from lvsal_nb import fingerprint
from lvsal_nb.models import tiny

GOLDEN = Path(__file__).parent / "data" / "trace_meta_golden.json"
PROMPT = "describe this image ."

# name -> (family, call, keywords); call "trace" or "analyze"
CASES = {
    "default": ("llava", "trace", {"max_new_tokens": 4}),
    "sgrs_locore": (
        "llava",
        "trace",
        {"max_new_tokens": 4, "sgrs": {"k": 3, "order": "greedy"}, "locore": 0.2, "layers": [0, 1]},
    ),
    "sample": (
        "llava",
        "trace",
        {
            "max_new_tokens": 5,
            "decoding": "sample",
            "temperature": 0.7,
            "top_p": 0.9,
            "seed": 5,
            "alternatives": 1,
            "chunk": 2,
            "context": "outputs",
        },
    ),
    "step_alternatives": ("llava", "trace", {"max_new_tokens": 3, "engine": "step", "alternatives": 2}),
    "beams": ("llava", "trace", {"max_new_tokens": 3, "num_beams": 2}),
    "locore_layers": (
        "llava",
        "trace",
        {"max_new_tokens": 3, "locore": {"beta": 0.1, "layers": [1], "window": 3}, "chunk": None},
    ),
    "qwen_locore": ("qwen2_vl", "trace", {"max_new_tokens": 3, "locore": {}}),
    "analyze_text": ("llava", "analyze", {"output": "this image .", "alternatives": 1}),
    "analyze_ids": ("qwen2_vl", "analyze", {"output": [5, 6, 7], "locore": 0.3, "chunk": 2}),
}


def _image():
    return Image.fromarray((np.random.RandomState(0).rand(60, 80, 3) * 255).astype(np.uint8))


def _session(family: str):
    model, proc = getattr(tiny, f"tiny_{family}")(dtype=torch.float64)
    return lv.load(model, proc, device="cpu", dtype=torch.float64)


def _masked_meta(tr) -> dict:
    meta = json.loads(json.dumps(tr._meta(), default=str))  # as written to run.json / Parquet
    meta["trace_id"] = meta["created"] = "<masked>"
    if "timing" in meta["config"]:
        meta["config"]["timing"] = {k: "<seconds>" for k in meta["config"]["timing"]}
    meta["content_fingerprint"] = fingerprint.content_fingerprint(tr)
    return meta


def _run(sessions: dict, family: str, call: str, kw: dict):
    if family not in sessions:
        sessions[family] = _session(family)
    s = sessions[family]
    kw = dict(kw)
    if "sgrs" in kw:
        kw["sgrs"] = lv.SGRS(**kw["sgrs"])
    if isinstance(kw.get("locore"), dict):
        kw["locore"] = lv.LocoRE(**kw["locore"])
    if call == "analyze":
        return s.analyze(_image(), PROMPT, kw.pop("output"), **kw)
    return s.trace(_image(), PROMPT, **kw)


def metas() -> dict:
    """The masked meta dict of every case, in CASES order."""
    sessions: dict = {}
    return {name: _masked_meta(_run(sessions, *case)) for name, case in CASES.items()}


def record() -> None:
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(metas(), indent=1) + "\n")


@pytest.fixture(scope="module")
def now():
    return metas()


@pytest.mark.parametrize("name", list(CASES))
def test_meta_identical_to_before_the_refactor(now, name):
    want = json.loads(GOLDEN.read_text())[name]
    got = now[name]
    assert got == want
    assert list(got["config"]) == list(want["config"])  # key order: the same JSON bytes in files


if __name__ == "__main__":
    torch.set_num_threads(1)
    record()
    sys.exit(0)
