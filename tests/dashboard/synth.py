"""A synthetic eval run in the real file format (results.jsonl, run.json, trace Parquet files), made
without a model: captions from the toy world's template words, exact CHAIR fields, and traces whose
saliency is lower on hallucinated object tokens (so the detector has something to find)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lvsal_nb.trace import Spans, Step, Trace

SHAPES = ("circle", "square", "triangle", "star", "heart", "moon", "ring", "cross", "diamond", "hexagon")
COLORS = ("red", "blue", "green", "yellow", "purple")
LAYERS = [2, 3, 4]
PROMPT = ["<bos>", "user", ":", "describe", "the", "image", ".", "assistant", ":"]


def _caption(rng, truth: list[str]) -> list[str]:
    """Tokens of one caption: 1-4 objects, each from the truth (p 0.7) or not (a hallucination)."""
    words = ["there", " is"]
    for k in range(int(rng.integers(1, 5))):
        obj = (
            truth[int(rng.integers(len(truth)))]
            if rng.random() < 0.7
            else [s for s in SHAPES if s not in truth][int(rng.integers(len(SHAPES) - len(truth)))]
        )
        words += ([" and"] if k else []) + [" a", " small", f" {COLORS[int(rng.integers(5))]}", f" {obj}"]
    return words + [" ."]


def make_trace(rng, tokens: list[str], truth: set[str], seed: int) -> Trace:
    n0 = len(PROMPT)
    records = []
    for i, tok in enumerate(tokens):
        q = n0 + i - 1
        bad = tok.strip() in SHAPES and tok.strip() not in truth
        base = 0.12 if bad else 0.3
        scores = [float(max(0.01, base + 0.08 * rng.standard_normal())) for _ in LAYERS]
        row = rng.random((len(LAYERS), q + 1)).astype(np.float32) * 0.3
        records.append(
            Step(
                step=i,
                position=q,
                token_id=100 + i,
                token=tok,
                prob=0.9,
                logprob=-0.1,
                saliency=float(np.mean(scores)),
                layer_scores=scores,
                row=row,
            )
        )
    return Trace(
        records=records,
        token_ids=list(range(n0 + len(tokens))),
        tokens=PROMPT + tokens,
        spans=Spans(system=(0, 1), image=None, prompt=(1, n0), output=(n0, n0 + len(tokens))),
        config={"layers": LAYERS, "context": "text", "engine": "step", "seed": seed},
    )


def save_trace(tr: Trace, path: Path) -> None:
    """`Trace.save`'s Parquet layout written straight from lists (a third of its time: the 3000-trace
    browser fixture); `test_synth_traces_load_back` checks Trace.load reads it back exactly."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    meta = tr._meta()
    meta["steps_extra"] = [{"layer_scores": s.layer_scores, "candidates": []} for s in tr.records]
    r = tr.records
    table = pa.table(
        {
            "step": pa.array([s.step for s in r], pa.int64()),
            "position": pa.array([s.position for s in r], pa.int64()),
            "token_id": pa.array([s.token_id for s in r], pa.int64()),
            "token": pa.array([s.token for s in r], pa.string()),
            "prob": pa.array([s.prob for s in r], pa.float64()),
            "logprob": pa.array([s.logprob for s in r], pa.float64()),
            "saliency": pa.array([s.saliency for s in r], pa.float64()),
            "tau": pa.array([s.tau for s in r], pa.float64()),
            "decision": pa.array([s.decision for s in r], pa.string()),
            "round": pa.array([s.round for s in r], pa.float64()),
            "row": pa.array([s.row.ravel().tolist() for s in r], pa.list_(pa.float32())),
            "row_layers": pa.array([s.row.shape[0] for s in r], pa.int64()),
        }
    )
    pq.write_table(table.replace_schema_metadata({b"lvsal.trace": json.dumps(meta)}), path)


def make_run(
    root: Path, n_images: int = 20, methods=("greedy", "sgrs"), seed: int = 0, max_new_tokens: int = 64
) -> Path:
    """Write a CHAIR run on the toy dataset into `root`; returns it."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "run.json").write_text(
        json.dumps({"fixed": {"task": "chair", "dataset": "toy", "model": "synthetic", "seed": seed}})
    )
    truths = [
        sorted(rng.choice(SHAPES, size=int(rng.integers(2, 5)), replace=False).tolist())
        for _ in range(n_images)
    ]
    lines = []
    for m in methods:
        for i, truth in enumerate(truths):
            toks = _caption(rng, truth)
            tr = make_trace(rng, toks, set(truth), seed)
            rel = f"traces/{m}/{max_new_tokens}/img_{i}.lvsal.parquet"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            save_trace(tr, root / rel)
            text = "".join(toks).strip()
            objs = [t.strip() for t in toks if t.strip() in SHAPES]
            bad = [o for o in objs if o not in truth]
            lines.append(
                {
                    "key": f"img:{i}|{m}|{max_new_tokens}",
                    "item_id": f"img:{i}",
                    "image_id": i,
                    "method": m,
                    "max_new_tokens": max_new_tokens,
                    "seed": i,
                    "prompt": "Describe.",
                    "text": text,
                    "token_ids": list(range(len(toks))),
                    "n_tokens": len(toks),
                    "saliency": float(np.mean([s.saliency for s in tr.records])),
                    "seconds": 0.1,
                    "worker": "synthetic",
                    "trace": rel,
                    "objects": objs,
                    "hallucinated": bad,
                    "covered": sorted(set(objs) & set(truth)),
                    "gt_objects": truth,
                    "n_words": len(text.split()),
                    "chair_s": int(bool(bad)),
                    "chair_i": len(bad) / len(objs) if objs else 0.0,
                    "future_field": {"x": 1},
                }
            )
    (root / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return root
