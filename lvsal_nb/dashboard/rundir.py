"""Reading an eval run folder (`lvsal eval chair|pope --out RUN`), tolerant of fields added later.

Only what the dashboard needs is read, through these functions, and every field is optional except
`key`, `method` and `item_id`: the eval engineers add fields (OPERA, compat modes) without breaking
the dashboard. Nothing here writes into the run folder except the dashboard's own cache folder
`RUN/dashboard/` (see tokens.py, labels.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..errors import ConfigError

CACHE_DIR = "dashboard"  # RUN/dashboard/: the index and the labels; never touched by `lvsal eval`


class RunFolderError(ConfigError):
    """The folder is not a readable eval run."""


def check_run(run: str | Path) -> Path:
    """The run folder as a Path; raises RunFolderError with the fix when it is not a run."""
    path = Path(run).expanduser()
    if not path.is_dir():
        raise RunFolderError(
            f"no run folder at {str(path)!r}; pass the --out folder of `lvsal eval chair|pope ... --out RUN`"
        )
    if not (path / "results.jsonl").is_file() and not (path / "results.parquet").is_file():
        raise RunFolderError(
            f"{str(path)!r} holds no results.jsonl: not an eval run folder, or a run "
            "that has not finished one answer yet; run `lvsal eval ... --out` first"
        )
    return path


def run_info(run: str | Path) -> dict:
    """task ("chair" | "pope"), dataset, model, seed from run.json (missing keys: None)."""
    path = check_run(run)
    fixed: dict = {}
    if (path / "run.json").is_file():
        try:
            fixed = json.loads((path / "run.json").read_text()).get("fixed", {}) or {}
        except (json.JSONDecodeError, AttributeError) as e:
            raise RunFolderError(
                f"{path / 'run.json'} is not valid JSON ({e}); restore it from the run or rerun the eval"
            ) from e
    return {k: fixed.get(k) for k in ("task", "dataset", "model", "seed")}


def read_records(run: str | Path) -> list[dict]:
    """Every results line (later lines with the same key win); a torn last line is skipped, not cut."""
    path = check_run(run)
    jsonl = path / "results.jsonl"
    if not jsonl.is_file():
        return pd.read_parquet(path / "results.parquet").to_dict("records")
    out: dict[str, dict] = {}
    lines = jsonl.read_text(encoding="utf-8").split("\n")
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            if n == len(lines):  # a line still being written by a running eval
                continue
            raise RunFolderError(
                f"{jsonl}:{n} is not a JSON line ({e}); the results file is damaged: "
                "delete that line (the eval reruns that unit) and reopen"
            ) from e
        if not isinstance(rec, dict) or not {"key", "method", "item_id"} <= rec.keys():
            raise RunFolderError(f"{jsonl}:{n} lacks key/method/item_id; is this an lvsal eval results file?")
        out[rec["key"]] = rec
    return list(out.values())


def task_of(records: list[dict], info: dict) -> str:
    """ "chair" or "pope": run.json's task, else guessed from the fields of the records."""
    if info.get("task") in ("chair", "pope"):
        return info["task"]
    return "pope" if records and "pred_yes" in records[0] else "chair"


def answers_table(records: list[dict], task: str) -> pd.DataFrame:
    """One row per answer with the columns the table shows (missing fields -> NaN / empty).

    Columns: key, method, max_new_tokens, item_id, image_id, text, trace, n_tokens, saliency, and
    CHAIR: chair_s, chair_i, recall, n_objects, n_hallucinated, n_covered, n_gt, n_words, objects,
    hallucinated (comma-joined); POPE: split, object, label, answer, correct.
    """
    rows = []
    for r in records:
        row = {
            "key": r["key"],
            "method": str(r["method"]),
            "max_new_tokens": r.get("max_new_tokens"),
            "item_id": str(r["item_id"]),
            "image_id": str(r.get("image_id", r["item_id"])),
            "text": str(r.get("text", "")),
            "trace": r.get("trace"),
            "n_tokens": r.get("n_tokens"),
            "saliency": r.get("saliency"),
        }
        if task == "chair":
            objs, bad = list(r.get("objects") or []), list(r.get("hallucinated") or [])
            cov, gt = list(r.get("covered") or []), list(r.get("gt_objects") or [])
            row.update(
                chair_s=r.get("chair_s", int(bool(bad))),
                chair_i=r.get("chair_i", len(bad) / len(objs) if objs else 0.0),
                recall=len(cov) / len(gt) if gt else float("nan"),
                n_objects=len(objs),
                n_hallucinated=len(bad),
                n_covered=len(cov),
                n_gt=len(gt),
                n_words=r.get("n_words", len(row["text"].split())),
                objects=", ".join(objs),
                hallucinated=", ".join(bad),
                gt_objects=", ".join(gt),
            )
        else:
            pred = r.get("pred_yes")
            row.update(
                split=r.get("split"),
                object=r.get("object"),
                label=r.get("label"),
                answer={True: "yes", False: "no"}.get(pred, "?"),
                correct=bool(r.get("correct")),
                pred_yes=pred,
            )
        rows.append(row)
    df = pd.DataFrame(rows)
    for c in ("saliency", "chair_i", "recall"):
        if c in df:
            df[c] = pd.to_numeric(df[c], errors="coerce")
    return df


def method_order(records: list[dict]) -> list[str]:
    """Methods in the order they first appear (the run's --methods order)."""
    return list(dict.fromkeys(str(r["method"]) for r in records))
