import json

import numpy as np
import pytest

from lvsal_nb.dashboard import tokens as T
from lvsal_nb.dashboard.mentions import pope_labels, token_labels
from lvsal_nb.dashboard.rundir import read_records
from lvsal_nb.errors import TraceFileError


def test_toy_token_labels_by_hand():
    toks = ["there", " is", " a", " red", " star", " and", " two", " moons", " ."]
    labels, objs = token_labels(toks, ["star"], "toy")
    assert labels == ["", "", "", "", "correct", "", "", "hallucinated", ""]
    assert objs[7] == "moon"


def test_coco_mention_split_over_tokens_labels_every_piece():
    # CHAIR's parser singularises "cats" -> cat; the mention covers both tokens " cat" + "s"
    toks = ["A", " dog", " and", " two", " cat", "s", " ."]
    labels, objs = token_labels(toks, ["dog"], "coco")
    assert labels == ["", "correct", "", "", "hallucinated", "hallucinated", ""]
    assert objs[4] == objs[5] == "cat"


def test_pope_yes_on_absent_object_is_hallucinated():
    assert pope_labels(["Yes", ",", " there"], True, "no") == ["hallucinated", "", ""]
    assert pope_labels(["Yes"], True, "yes") == ["correct"]
    assert pope_labels(["No"], False, "yes") == [""]


def test_index_matches_the_trace_files_and_is_cached(run, monkeypatch):
    from lvsal_nb.trace import Trace

    recs = read_records(run)
    df = T.token_index(run, recs, "chair", "toy")
    tr = Trace.load(run / recs[0]["trace"])
    rows = df[df["key"] == recs[0]["key"]]
    assert rows["token"].tolist() == [s.token for s in tr.records]
    np.testing.assert_allclose(rows["saliency"], [s.saliency for s in tr.records])
    np.testing.assert_allclose(rows["s_L3"], [s.layer_scores[1] for s in tr.records])
    assert (run / "dashboard" / "tokens.parquet").is_file()

    def boom(*a, **k):
        raise AssertionError("a cached index must not read traces again")

    monkeypatch.setattr(T, "read_trace_tokens", boom)
    again = T.token_index(run, recs, "chair", "toy")
    assert len(again) == len(df)


def test_index_grows_with_a_resumed_run_reading_only_new_answers(run, monkeypatch):
    recs = read_records(run)
    T.token_index(run, recs[:-3], "chair", "toy")
    seen = []
    real = T.read_trace_tokens
    monkeypatch.setattr(T, "read_trace_tokens", lambda p: seen.append(p) or real(p))
    df = T.token_index(run, recs, "chair", "toy")
    assert len(seen) == 3 and df["key"].nunique() == len(recs)


def test_damaged_cache_is_rebuilt(run):
    recs = read_records(run)
    n = len(T.token_index(run, recs, "chair", "toy"))
    (run / "dashboard" / "tokens.parquet").write_bytes(b"garbage")
    assert len(T.token_index(run, recs, "chair", "toy")) == n


def test_missing_trace_file_names_it(run):
    recs = read_records(run)
    (run / recs[0]["trace"]).unlink()
    with pytest.raises(TraceFileError, match=r"img_0.lvsal.parquet.*cannot be read.*rerun that answer"):
        T.token_index(run, recs, "chair", "toy")


def test_not_a_trace_parquet(run, tmp_path):
    import pandas as pd

    recs = read_records(run)
    p = run / recs[0]["trace"]
    pd.DataFrame({"step": [0], "token": ["a"], "saliency": [0.1], "token_id": [1]}).to_parquet(p)
    with pytest.raises(TraceFileError, match="not an lvsal trace"):
        T.read_trace_tokens(p)
    assert json  # keep the import used


def test_synth_traces_load_back(tmp_path):
    """The fixture's fast writer must produce what Trace.save does (else the tests test a fake format)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    import synth

    from lvsal_nb.trace import Trace

    rng = np.random.default_rng(0)
    tr = synth.make_trace(rng, synth._caption(rng, ["star", "moon"]), {"star"}, 0)
    synth.save_trace(tr, tmp_path / "fast.lvsal.parquet")
    tr.save(tmp_path / "ref.lvsal.parquet")
    a, b = Trace.load(tmp_path / "fast.lvsal.parquet"), Trace.load(tmp_path / "ref.lvsal.parquet")
    assert a.to_json() == b.to_json()
