"""Trace files round-trip; damaged or newer files fail with a clear message."""

import json

import numpy as np
import pandas as pd
import pytest

import lvsal_nb as lv
from lvsal_nb.trace import SCHEMA_VERSION

PROMPT = "describe this image ."


@pytest.fixture(scope="module")
def trace(image, llava_session):
    return llava_session.trace(image, PROMPT, max_new_tokens=5, sgrs=lv.SGRS(k=3, rounds=2), layers=[1, 2])


def _same(a: lv.Trace, b: lv.Trace):
    pd.testing.assert_frame_equal(a.table, b.table, check_dtype=False)
    pd.testing.assert_frame_equal(a.candidates, b.candidates, check_dtype=False)
    np.testing.assert_allclose(a.matrix(), b.matrix(), atol=1e-6, equal_nan=True)
    assert (a.spans, a.tokens, a.token_ids, a.config, a.trace_id, a.image_png) == (
        b.spans,
        b.tokens,
        b.token_ids,
        b.config,
        b.trace_id,
        b.image_png,
    )


@pytest.mark.parametrize("suffix", [".lvsal.parquet", ".lvsal.json"])
def test_round_trip(trace, tmp_path, suffix):
    path = trace.save(tmp_path / f"run{suffix}")
    _same(trace, lv.Trace.load(path))


def test_views(trace):
    steps = trace.table
    assert list(steps["step"]) == list(range(len(trace)))
    assert {"s_L1", "s_L2", "tau", "decision"} <= set(steps.columns)
    assert len(trace.candidates) == 3 * len(trace)
    m = trace.matrix()
    assert m.shape == (len(trace), len(trace.token_ids))
    q0 = trace.records[0].position
    assert np.isnan(m[0, q0 + 1 :]).all() and not np.isnan(m[0, : q0 + 1]).any()
    np.testing.assert_allclose(m[0, : q0 + 1], trace.records[0].row.mean(0), atol=1e-7)
    with pytest.raises(lv.ConfigError, match="traced layers"):
        trace.matrix(layer=7)
    assert trace.text == "".join(s.token for s in trace.records)
    assert lv.MIME_TYPE in trace._repr_mimebundle_()


def test_steps_is_a_deprecated_name_of_table(trace):
    """Issue 18: the DataFrame is `table` (Step objects are `records`); the old name still works and
    says where to go."""
    with pytest.warns(DeprecationWarning, match=r"Trace\.steps is deprecated.*Trace\.table"):
        old = trace.steps
    pd.testing.assert_frame_equal(old, trace.table)
    assert list(old["token_id"]) == [s.token_id for s in trace.records]


def test_corrupt_file(tmp_path):
    bad = tmp_path / "bad.lvsal.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(lv.TraceFileError, match="not a readable Parquet"):
        lv.Trace.load(bad)
    with pytest.raises(lv.TraceFileError, match="no trace file"):
        lv.Trace.load(tmp_path / "missing.lvsal.parquet")


def test_newer_schema_is_refused(trace, tmp_path):
    d = trace.to_json()
    d["schema_version"] = SCHEMA_VERSION + 1
    p = tmp_path / "new.lvsal.json"
    p.write_text(json.dumps(d))
    with pytest.raises(lv.TraceFileError, match="upgrade lvsal-nb"):
        lv.Trace.load(p)


def test_plain_parquet_is_not_a_trace(tmp_path):
    p = tmp_path / "other.parquet"
    pd.DataFrame({"a": [1]}).to_parquet(p)
    with pytest.raises(lv.TraceFileError, match="not an lvsal trace"):
        lv.Trace.load(p)
