"""Methods side by side: summary metrics with seeded bootstrap 95% intervals, per-image differences.

Bootstrap: B resamples of the answers (CHAIR: captions; POPE: questions of one split) with
replacement, drawn as `rng.integers(0, n, size=(B, n))` from `np.random.default_rng(seed)`; the
interval is the 2.5th and 97.5th percentile (numpy's default linear interpolation) of the metric
over the resamples. Ratio metrics are recomputed from the resampled sums (CHAIR_I = hallucinated
mentions / mentions, recall = covered / ground-truth objects), as the point estimates are.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ConfigError

CHAIR_METRICS = ("chair_s", "chair_i", "recall", "avg_len")
POPE_METRICS = ("accuracy", "f1")


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)


def chair_metrics(df: pd.DataFrame, idx: np.ndarray) -> dict[str, np.ndarray]:
    """CHAIR metrics of the answer rows `idx` ([B, n] or [n] row positions), as chair_scores computes
    them (micro averages); each value has shape idx.shape[:-1]."""
    cols = {
        c: df[c].to_numpy(dtype=float)[idx]
        for c in ("chair_s", "n_hallucinated", "n_objects", "n_covered", "n_gt", "n_words")
    }
    return {
        "chair_s": cols["chair_s"].mean(-1),
        "chair_i": _ratio(cols["n_hallucinated"].sum(-1), cols["n_objects"].sum(-1)),
        "recall": _ratio(cols["n_covered"].sum(-1), cols["n_gt"].sum(-1)),
        "avg_len": cols["n_words"].mean(-1),
    }


def pope_metrics(df: pd.DataFrame, idx: np.ndarray) -> dict[str, np.ndarray]:
    """POPE accuracy and F1 ("yes" positive) of the question rows `idx`."""
    pred = (df["pred_yes"] == True).to_numpy()[idx]  # noqa: E712  (None = unparsed = not yes)
    yes = (df["label"] == "yes").to_numpy()[idx]
    tp, fp = (pred & yes).sum(-1), (pred & ~yes).sum(-1)
    fn = (~pred & yes).sum(-1)
    prec, rec = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return {"accuracy": (pred == yes).mean(-1), "f1": _ratio(2 * prec * rec, prec + rec)}


def bootstrap(
    df: pd.DataFrame, fn, *, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, tuple[float, float, float]]:
    """{metric: (point estimate, low, high)} of `fn(df, idx)` with a percentile bootstrap interval."""
    n = len(df)
    if n == 0:
        raise ConfigError("no answers to summarise; check the filters (method, split)")
    if n_boot < 1:
        raise ConfigError(f"n_boot must be >= 1, got {n_boot}")
    point = fn(df, np.arange(n))
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    boot = fn(df, idx)
    q = 100 * np.array([(1 - level) / 2, (1 + level) / 2])
    return {k: (float(point[k]), *map(float, np.percentile(boot[k], q))) for k in point}


def summary_table(
    answers: pd.DataFrame, task: str, methods: list[str], *, n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """One row per method (and max_new_tokens; POPE: and split): each metric with `<m>_lo`, `<m>_hi`."""
    keys = ["method", "max_new_tokens"] + (["split"] if task == "pope" else [])
    fn = pope_metrics if task == "pope" else chair_metrics
    rows = []
    for k, g in answers.groupby(keys, sort=False, dropna=False):
        res = bootstrap(g.reset_index(drop=True), fn, n_boot=n_boot, seed=seed)
        row = dict(zip(keys, k))
        row["n"] = len(g)
        for m, (v, lo, hi) in res.items():
            row[m], row[f"{m}_lo"], row[f"{m}_hi"] = v, lo, hi
        rows.append(row)
    out = pd.DataFrame(rows)
    if len(out):
        order = {m: i for i, m in enumerate(methods)}
        out = out.sort_values(
            keys, key=lambda s: s.map(order) if s.name == "method" else s, kind="stable"
        ).reset_index(drop=True)
    return out


def paired_differences(answers: pd.DataFrame, a: str, b: str, metric: str = "chair_i") -> pd.DataFrame:
    """Per image: `metric` of method b minus method a on the same item (and max_new_tokens).

    Returns:
        DataFrame [item_id, max_new_tokens, a, b, diff], sorted by diff (largest b - a first).
    """
    if metric not in answers.columns:
        raise ConfigError(
            f"no column {metric!r} to compare; choose one of "
            f"{[c for c in ('chair_s', 'chair_i', 'recall', 'n_words', 'saliency') if c in answers]}"
        )
    for m in (a, b):
        if m not in set(answers["method"]):
            raise ConfigError(f"method {m!r} is not in this run; it has {sorted(set(answers['method']))}")
    keys = ["item_id", "max_new_tokens"]
    left = answers[answers["method"] == a][keys + [metric]].rename(columns={metric: "a"})
    right = answers[answers["method"] == b][keys + [metric]].rename(columns={metric: "b"})
    out = left.merge(right, on=keys)
    out["diff"] = out["b"].astype(float) - out["a"].astype(float)
    return out.sort_values("diff", ascending=False, kind="stable").reset_index(drop=True)


def paired_interval(diff: np.ndarray, *, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): the mean per-image difference with its bootstrap 95% interval."""
    d = np.asarray(diff, dtype=float)
    d = d[np.isfinite(d)]
    if d.size == 0:
        raise ConfigError("the two methods share no answered image; nothing to compare")
    idx = np.random.default_rng(seed).integers(0, d.size, size=(n_boot, d.size))
    lo, hi = np.percentile(d[idx].mean(-1), [2.5, 97.5])
    return float(d.mean()), float(lo), float(hi)
