"""ROC and precision-recall curves of LOW saliency as a hallucination detector (per layer, combined).

The areas come from lvsal_nb.eval.detect (AUROC, AP with sklearn's tie rules); the curve points are
computed here the same way sklearn's roc_curve / precision_recall_curve do (one point per distinct
threshold, score = -saliency so that low saliency flags "hallucinated").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..eval.detect import auroc, average_precision


def _thresholds(score: np.ndarray, y: np.ndarray):
    order = np.argsort(-score, kind="mergesort")
    s, yy = score[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each tied block
    tp = np.cumsum(yy)[last].astype(float)
    fp = (last + 1 - tp).astype(float)
    return tp, fp


def roc_points(score, labels) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr), starting at (0, 0); higher score = positive."""
    y = np.asarray(labels, dtype=bool)
    tp, fp = _thresholds(np.asarray(score, dtype=float), y)
    return np.r_[0.0, fp / max((~y).sum(), 1)], np.r_[0.0, tp / max(y.sum(), 1)]


def pr_points(score, labels) -> tuple[np.ndarray, np.ndarray]:
    """(recall, precision) from the highest threshold down, starting at (0, 1) as sklearn's curve ends."""
    y = np.asarray(labels, dtype=bool)
    tp, fp = _thresholds(np.asarray(score, dtype=float), y)
    return np.r_[0.0, tp / max(y.sum(), 1)], np.r_[1.0, tp / (tp + fp)]


def detector_curves(tokens: pd.DataFrame, score_cols: list[str], label: pd.Series) -> dict[str, dict]:
    """{column: {fpr, tpr, recall, precision, auroc, ap, n, n_pos}} over the rows where `label` is
    not NA (True = hallucinated) and the column is finite. A column with one class only is left out."""
    out = {}
    mask = label.notna().to_numpy()
    y_all = label.fillna(False).astype(bool).to_numpy()
    for c in score_cols:
        x = tokens[c].to_numpy(dtype=float)
        keep = mask & np.isfinite(x)
        s, y = -x[keep], y_all[keep]
        if y.sum() == 0 or (~y).sum() == 0:
            continue
        fpr, tpr = roc_points(s, y)
        rec, prec = pr_points(s, y)
        out[c] = {
            "fpr": fpr,
            "tpr": tpr,
            "recall": rec,
            "precision": prec,
            "auroc": auroc(s, y),
            "ap": average_precision(s, y),
            "n": int(keep.sum()),
            "n_pos": int(y.sum()),
        }
    return out
