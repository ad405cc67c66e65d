"""Trace files under faults: full disk (atomic save), bit flips (checksum), strict JSON, damaged files."""

import errno
import json
import os
import random
import time
import warnings

import numpy as np
import pyarrow.parquet as pq
import pytest

import lvsal_nb as lv
from lvsal_nb.errors import FileWriteError, TraceFileError
from lvsal_nb.trace import Candidate, Spans, Step

PROMPT = "describe this image ."


def _strict_loads(s: str):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(s, parse_constant=refuse)


def _synthetic(n_steps=6, layers=(1, 2), seed=0, nan=False) -> lv.Trace:
    """A small hand-made trace (no model): known values in every field."""
    rng = np.random.default_rng(seed)
    n_prompt = 5
    records = []
    for t in range(n_steps):
        q = n_prompt - 1 + t
        row = rng.random((len(layers), q + 1)).astype(np.float32)
        cands = [Candidate(token_id=int(7 + k), token=f"w{k}", prob=float(rng.random()),
                           saliency=float(rng.random()), round=k, accepted=k == 0,
                           layer_scores=[float(x) for x in rng.random(len(layers))])
                 for k in range(2)]  # fmt: skip
        records.append(Step(step=t, position=q, token_id=10 + t, token=f" tok{t}", prob=float(rng.random()),
                            logprob=float(np.log(rng.random())), saliency=float(rng.random()),
                            layer_scores=[float(x) for x in rng.random(len(layers))], row=row,
                            tau=None if t == 0 else float(rng.random()), decision="accepted", round=0,
                            candidates=cands))  # fmt: skip
    if nan:
        records[1].saliency = float("nan")
        records[2].tau = float("inf")
        records[2].prob = float("nan")
        records[3].row[0, 0] = np.nan
        records[3].candidates[0].saliency = float("-inf")
    n = n_prompt + n_steps
    return lv.Trace(records=records, token_ids=list(range(n)), tokens=[f"t{i}" for i in range(n)],
                    spans=Spans(system=(0, 1), image=(1, 3), prompt=(3, n_prompt), output=(n_prompt, n)),
                    config={"layers": list(layers), "engine": "step",
                            "locore": {"beta": float("inf") if nan else 0.15}},
                    prompt=PROMPT, image_grid=(1, 2))  # fmt: skip


def _equal(a: lv.Trace, b: lv.Trace) -> bool:
    """Exactly the same numbers, tokens and settings (NaN equals NaN)."""
    if len(a.records) != len(b.records):
        return False
    for x, y in zip(a.records, b.records):
        sx = (x.step, x.position, x.token_id, x.token, x.decision, x.round, x.layer_scores,
              [c.__dict__ for c in x.candidates])  # fmt: skip
        sy = (y.step, y.position, y.token_id, y.token, y.decision, y.round, y.layer_scores,
              [c.__dict__ for c in y.candidates])  # fmt: skip
        if sx != sy:
            return False
        for u, v in ((x.prob, y.prob), (x.logprob, y.logprob), (x.saliency, y.saliency), (x.tau, y.tau)):
            if not (u == v or (u is not None and v is not None and np.isnan(u) and np.isnan(v))):
                return False
        if (x.row is None) != (y.row is None):
            return False
        if x.row is not None and (x.row.shape != y.row.shape or x.row.tobytes() != y.row.tobytes()):
            return False
    return (a.token_ids, a.tokens, a.spans, a.config, a.prompt, a.trace_id, a.created, a.image_grid) == (
        b.token_ids, b.tokens, b.spans, b.config, b.prompt, b.trace_id, b.created, b.image_grid)  # fmt: skip


# ---- integrity: bit flips ------------------------------------------------------------------------
def test_every_single_bit_flip_loads_equal_or_raises_trace_file_error(tmp_path):
    tr = _synthetic()
    path = tr.save(tmp_path / "t.lvsal.parquet")
    good = path.read_bytes()
    assert _equal(lv.Trace.load(path), tr)
    rng = random.Random(17)
    positions = sorted(rng.sample(range(len(good) * 8), 300))
    outcome = {"equal": 0, "refused": 0}
    t0 = time.perf_counter()
    for bit in positions:
        data = bytearray(good)
        data[bit // 8] ^= 1 << (bit % 8)
        bad = tmp_path / "flipped.lvsal.parquet"
        bad.write_bytes(bytes(data))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # a flip must not turn into "old file, no checksum"
                got = lv.Trace.load(bad)
        except TraceFileError as e:
            assert "flipped.lvsal.parquet" in str(e)
            outcome["refused"] += 1
            continue
        except UserWarning as w:  # a flip in the checksum's key itself: still reported loudly
            assert "no checksum" in str(w)
            outcome["refused"] += 1
            continue
        assert _equal(got, tr), f"bit {bit}: loaded different numbers without an error"
        outcome["equal"] += 1
    assert outcome["equal"] + outcome["refused"] == 300
    assert outcome["refused"] > 100  # most flips land in data or metadata and are caught
    assert time.perf_counter() - t0 < 60


def test_a_changed_value_is_caught_by_the_checksum(tmp_path):
    """Rewrite the table with one float changed but the old metadata and checksum kept."""
    tr = _synthetic()
    path = tr.save(tmp_path / "t.lvsal.parquet")
    table = pq.read_table(path)
    sal = table.column("saliency").to_pylist()
    sal[2] = sal[2] + 1e-12
    idx = table.schema.get_field_index("saliency")
    import pyarrow as pa

    forged = table.set_column(idx, "saliency", pa.array(sal)).replace_schema_metadata(table.schema.metadata)
    pq.write_table(forged, path)
    with pytest.raises(TraceFileError, match="does not match its checksum"):
        lv.Trace.load(path)


def test_old_file_without_checksum_loads_with_a_warning(tmp_path):
    tr = _synthetic()
    path = tr.save(tmp_path / "t.lvsal.parquet")
    table = pq.read_table(path)
    meta = {k: v for k, v in table.schema.metadata.items() if k != b"lvsal.sha256"}
    pq.write_table(table.replace_schema_metadata(meta), path)
    with pytest.warns(UserWarning, match="no checksum"):
        got = lv.Trace.load(path)
    assert _equal(got, tr)


@pytest.mark.parametrize("damage", ["truncated", "empty", "png", "text", "meta_missing_steps"])
def test_damaged_files_raise_trace_file_error(tmp_path, damage):
    tr = _synthetic()
    path = tr.save(tmp_path / "t.lvsal.parquet")
    good = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "png":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    elif damage == "text":
        path.write_text("step,token\n0,a\n")
    else:
        table = pq.read_table(path)
        meta = json.loads(table.schema.metadata[b"lvsal.trace"])
        del meta["steps_extra"]
        pq.write_table(table.replace_schema_metadata({b"lvsal.trace": json.dumps(meta)}), path)
    with pytest.raises(TraceFileError, match="t.lvsal.parquet"):
        lv.Trace.load(path)


@pytest.mark.parametrize("damage", ["truncated", "missing_field", "list"])
def test_damaged_json_raises_trace_file_error(tmp_path, damage):
    tr = _synthetic()
    path = tr.save(tmp_path / "t.lvsal.json")
    d = json.loads(path.read_text())
    if damage == "truncated":
        path.write_text(path.read_text()[:200])
    elif damage == "missing_field":
        del d["steps"][0]["token"]
        path.write_text(json.dumps(d))
    else:
        path.write_text("[1, 2]")
    with pytest.raises(TraceFileError, match="t.lvsal.json"):
        lv.Trace.load(path)


# ---- strict JSON ---------------------------------------------------------------------------------
def test_json_file_and_mime_bundle_hold_no_nan_or_infinity(tmp_path):
    tr = _synthetic(nan=True)
    path = tr.save(tmp_path / "t.lvsal.json")
    d = _strict_loads(path.read_text())  # raises on NaN / Infinity
    assert d["steps"][1]["saliency"] is None and d["steps"][2]["tau"] is None
    assert d["steps"][3]["row"][0][0] is None and d["config"]["locore"]["beta"] is None
    assert d["steps"][3]["candidates"][0]["saliency"] is None
    bundle = tr._repr_mimebundle_()[lv.MIME_TYPE]
    _strict_loads(json.dumps(bundle, allow_nan=False))
    back = lv.Trace.load(path)  # null comes back as "no value": NaN for prob, None for optionals
    assert np.isnan(back.records[2].prob) and back.records[1].saliency is None
    assert np.isnan(back.records[3].row[0, 0]) and back.records[3].row[0, 1] == tr.records[3].row[0, 1]
    # the Parquet metadata is strict JSON too, and the table round-trips exactly
    ppath = tr.save(tmp_path / "t.lvsal.parquet")
    _strict_loads(pq.read_table(ppath).schema.metadata[b"lvsal.trace"].decode())
    assert lv.Trace.load(ppath).records[3].row.tobytes() == tr.records[3].row.tobytes()


# ---- atomic save ---------------------------------------------------------------------------------
def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("suffix", [".lvsal.parquet", ".lvsal.json"])
@pytest.mark.parametrize("where", ["fsync", "replace", "write"])
def test_save_on_a_full_disk_keeps_the_old_file(tmp_path, monkeypatch, suffix, where):
    old = _synthetic(seed=1)
    path = old.save(tmp_path / f"t{suffix}")
    before = path.read_bytes()
    import lvsal_nb.atomic as atomic

    if where == "fsync":
        monkeypatch.setattr(atomic.os, "fsync", _enospc)
    elif where == "replace":
        monkeypatch.setattr(atomic.os, "replace", _enospc)
    elif suffix == ".lvsal.json":
        monkeypatch.setattr("builtins.open", _enospc)
    else:
        monkeypatch.setattr(pq, "write_table", _enospc)
    msg = (
        f"no space left on device while writing .*t{suffix}; free space or choose another folder: "
        f"the previous t{suffix} is untouched"
    )
    with pytest.raises(FileWriteError, match=msg):
        _synthetic(seed=2).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"t{suffix}"]  # no temp file left
    assert _equal(lv.Trace.load(path), old)


def test_save_into_a_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileWriteError, match="folder .* does not exist"):
        _synthetic().save(tmp_path / "nope" / "t.lvsal.parquet")


@pytest.mark.parametrize("suffix", [".lvsal.parquet", ".lvsal.json"])
def test_save_on_a_really_full_tmpfs_keeps_the_old_file(tiny_tmpfs, suffix):
    small = _synthetic(n_steps=2, seed=1)
    path = small.save(tiny_tmpfs / f"t{suffix}")
    before = path.read_bytes()
    big = _synthetic(n_steps=120, seed=2)  # rows of up to 125 floats x 2 layers x 120 steps: > 64 KiB
    with pytest.raises(FileWriteError, match=f"no space left on device while writing .*t{suffix}"):
        big.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tiny_tmpfs.iterdir()) == [f"t{suffix}"]
    assert _equal(lv.Trace.load(path), small)
