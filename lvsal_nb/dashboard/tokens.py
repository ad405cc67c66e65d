"""The per-token index of a run: one row per generated token of every answer, built once, cached.

    RUN/dashboard/tokens.parquet   key, trace_id, method, item_id, step, token, saliency, s_L<l> per layer,
                                   rel_pos (step / (n - 1), 0 = first token), chair_label, object

Building reads only the small columns and the metadata of each trace file (never the saliency rows),
and only for answers not in the cache yet: a run that grows (resumed eval) extends the index.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import TraceFileError
from .files import write_atomic
from .mentions import pope_labels, token_labels
from .rundir import CACHE_DIR

INDEX_FILE = "tokens.parquet"
BASE_COLUMNS = [
    "key",
    "trace_id",
    "method",
    "item_id",
    "step",
    "token",
    "saliency",
    "rel_pos",
    "chair_label",
    "object",
]


def read_trace_tokens(path: Path) -> dict:
    """The generated tokens of one trace file, without its saliency rows (special tokens dropped).

    Returns:
        dict: step [n] int, token [n] str, saliency [n] float (NaN = none), layers [L] (traced
        layers), scores [n, L] float (per-layer scores, NaN = none).
    Raises TraceFileError naming the file when it is missing or not an lvsal trace.
    """
    import pyarrow.parquet as pq

    try:  # one thread: these files are small, and a thread pool per file costs more than the read
        table = pq.read_table(path, columns=["step", "token", "saliency", "token_id"], use_threads=False)
    except (OSError, ValueError) as e:  # missing, damaged, or not Parquet at all
        raise TraceFileError(
            f"trace {str(path)!r} cannot be read ({e}); rerun that answer with "
            "`lvsal eval` (delete its results line), or open the run without it"
        ) from e
    raw = (table.schema.metadata or {}).get(b"lvsal.trace")
    if raw is None:
        raise TraceFileError(f"{str(path)!r} is Parquet but not an lvsal trace")
    meta = json.loads(raw)
    layers = list(meta.get("config", {}).get("layers", []))
    special = set(meta.get("config", {}).get("special_token_ids", []))
    keep = np.asarray([t not in special for t in table.column("token_id").to_pylist()], dtype=bool)
    sal = table.column("saliency").to_numpy(zero_copy_only=False).astype(float)
    scores = np.full((len(table), len(layers)), np.nan)
    for i, e in enumerate((meta.get("steps_extra") or [])[: len(table)]):
        ls = (e or {}).get("layer_scores")
        if ls:
            scores[i, : min(len(ls), len(layers))] = [np.nan if v is None else v for v in ls[: len(layers)]]
    return {
        "trace_id": str(meta.get("trace_id", "")),
        "step": table.column("step").to_numpy()[keep],
        "token": np.asarray(table.column("token").to_pylist(), dtype=object)[keep]
        if len(table)
        else np.asarray([], dtype=object),
        "saliency": sal[keep],
        "layers": layers,
        "scores": scores[keep],
    }


def answer_tokens(run: Path, rec: dict, task: str, dataset: str | None) -> dict | None:
    """The index columns of one answer (None when it has no trace)."""
    if not rec.get("trace"):
        return None
    t = read_trace_tokens(run / rec["trace"])
    toks = [str(x) for x in t["token"]]
    if task == "pope":
        labels = pope_labels(toks, rec.get("pred_yes"), rec.get("label"))
        objects = [(rec.get("object") or "") if lab else "" for lab in labels]
    else:
        labels, objects = token_labels(toks, rec.get("gt_objects"), dataset)
    n = len(toks)
    out = {
        "key": [rec["key"]] * n,
        "trace_id": [t["trace_id"]] * n,
        "method": [str(rec["method"])] * n,
        "item_id": [str(rec["item_id"])] * n,
        "step": t["step"],
        "token": toks,
        "saliency": t["saliency"],
        "rel_pos": t["step"] / max(n - 1, 1),
        "chair_label": labels,
        "object": objects,
    }
    for j, layer in enumerate(t["layers"]):
        out[f"s_L{layer}"] = t["scores"][:, j]
    return out


def token_index(
    run: Path, records: list[dict], task: str, dataset: str | None, rebuild: bool = False
) -> pd.DataFrame:
    """The cached index, extended with the answers it lacks (written back atomically)."""
    path = Path(run) / CACHE_DIR / INDEX_FILE
    old = None
    if path.is_file() and not rebuild:
        try:
            old = pd.read_parquet(path)
        except (OSError, ValueError):  # a damaged cache is rebuilt, never trusted
            old = None
    have = set(old["key"].unique()) if old is not None and len(old) else set()
    todo = [r for r in records if r["key"] not in have and r.get("trace")]
    if old is not None and not todo:
        return old
    parts = [p for p in (answer_tokens(Path(run), r, task, dataset) for r in todo) if p]
    cols: dict[str, list] = {}
    for p in parts:  # columns concatenated once: one DataFrame per answer would cost more than the reads
        for c in p:
            cols.setdefault(c, [])
    for p in parts:
        n = len(p["key"])
        for c in cols:
            cols[c].append(np.asarray(p[c]) if c in p else np.full(n, np.nan))
    new = (
        pd.DataFrame({c: np.concatenate(v) for c, v in cols.items()})
        if parts
        else pd.DataFrame(columns=BASE_COLUMNS)
    )
    frames = [f for f in (old, new) if f is not None and len(f)]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=BASE_COLUMNS)
    df["step"] = df["step"].astype("int64")
    write_atomic(path, lambda p: df.to_parquet(p, index=False))
    return df


def layer_columns(df: pd.DataFrame) -> list[str]:
    """The per-layer score columns, in layer order ("s_L6", "s_L7", ...)."""
    cols = [c for c in df.columns if c.startswith("s_L")]
    return sorted(cols, key=lambda c: int(c[3:]))
