"""Saliency as a hallucination detector: AUROC and average precision, in plain numpy.

The paper's claim is that hallucinated tokens have LOW saliency (LLaVA: 0.193 on hallucinated vs
0.472 on correct tokens). With "hallucinated" as the positive class, a detector therefore flags a
token when its saliency is low, so :func:`detector_table` scores ``-saliency`` by default.

Both metrics treat tied scores as sklearn does: ``auroc`` equals ``roc_auc_score`` (ties count
half, the trapezoid through tied thresholds) and ``average_precision`` equals
``average_precision_score`` (tied scores form one threshold; AP = sum over thresholds of
(R_n - R_{n-1}) * P_n, no interpolation).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from lvsal_nb.errors import ConfigError

__all__ = ["auroc", "average_precision", "detector_table"]


def _check(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels)
    if s.ndim != 1 or y.ndim != 1:
        raise ConfigError(f"scores and labels must be 1-D, got shapes {s.shape} and {y.shape}.")
    if s.shape != y.shape:
        raise ConfigError(f"{s.size} scores but {y.size} labels; pass one label per score.")
    if not np.all(np.isfinite(s)):
        raise ConfigError(
            "scores hold NaN or inf; drop those rows first (detector_table does it per column)."
        )
    if y.dtype != bool:
        if not np.all(np.isin(y, (0, 1))):
            raise ConfigError("labels must be booleans or 0/1 (1 = positive, e.g. hallucinated).")
        y = y.astype(bool)
    return s, y


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve; higher scores should mean positive.

    Equals the probability that a random positive outscores a random negative, ties counting
    half (the Mann-Whitney U statistic over n_pos * n_neg), which is sklearn's ``roc_auc_score``.

    Args:
        scores (Sequence[float]): one finite score per item, shape [n].
        labels (Sequence[bool]): True / 1 for positives, shape [n].

    Returns:
        float: AUROC in [0, 1]; 0.5 is chance.

    Examples::

        >>> auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
        0.75
    """
    s, y = _check(scores, labels)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ConfigError(f"AUROC needs both classes; got {n_pos} positive and {n_neg} negative labels.")
    # Average ranks (1-based) with ties sharing their mean rank.
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(len(s), dtype=float)
    bounds = np.flatnonzero(np.diff(sorted_s)) + 1
    starts = np.r_[0, bounds]
    stops = np.r_[bounds, len(s)]
    for a, b in zip(starts, stops):
        ranks[order[a:b]] = (a + 1 + b) / 2.0
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def average_precision(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Average precision (area under the step precision-recall curve); higher scores = positive.

    Args:
        scores (Sequence[float]): one finite score per item, shape [n].
        labels (Sequence[bool]): True / 1 for positives, shape [n].

    Returns:
        float: AP in [0, 1]; chance level is the positive rate.

    Examples::

        >>> average_precision([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
        0.8333333333333333
    """
    s, y = _check(scores, labels)
    if not y.any():
        raise ConfigError("average precision needs at least one positive label; got none.")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each tied block
    tp = np.cumsum(y)[last]
    precision = tp / (last + 1)
    recall = tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def detector_table(
    df: pd.DataFrame, score_cols: str | Sequence[str], label_col: str, *, negate: bool = True
) -> pd.DataFrame:
    """AUROC and AP of each score column as a detector of hallucinated tokens.

    LOW saliency should flag hallucination, so by default each column is negated before
    scoring: the table reports AUROC / AP of ``-df[col]`` against ``df[label_col]`` (True =
    hallucinated). AUROC above 0.5 then means hallucinated tokens have lower saliency.

    Args:
        df (pandas.DataFrame): one row per token (e.g. ``Trace.table`` joined with marks).
        score_cols (str | Sequence[str]): saliency columns, e.g. one per layer and the combined score.
        label_col (str): boolean or 0/1 column, True = hallucinated.
        negate (bool): score ``-col`` (low flags hallucination). Default: True. False scores the
            column as is (for scores where high means hallucinated).

    Returns:
        pandas.DataFrame: indexed by score column, with ``auroc``, ``ap``, ``n`` (rows used:
        rows where the column is NaN are dropped), ``n_pos`` (hallucinated rows used),
        ``mean_pos`` and ``mean_neg`` (mean raw score on hallucinated / correct rows).
    """
    if not isinstance(df, pd.DataFrame):
        raise ConfigError(f"df must be a pandas DataFrame, got {type(df).__name__}.")
    cols = [score_cols] if isinstance(score_cols, str) else list(score_cols)
    if not cols:
        raise ConfigError("score_cols is empty; name at least one score column.")
    missing = [c for c in [*cols, label_col] if c not in df.columns]
    if missing:
        raise ConfigError(f"df has no column(s) {missing}; its columns are {list(df.columns)}.")
    if df[label_col].isna().any():
        raise ConfigError(f"{label_col!r} has missing labels; drop unlabelled rows first.")
    rows = {}
    for c in cols:
        part = df[[c, label_col]].dropna(subset=[c])
        x = part[c].to_numpy(dtype=float)
        y = part[label_col].to_numpy()
        _, yb = _check(x, y)
        sign = -1.0 if negate else 1.0
        try:
            auc, ap = auroc(sign * x, yb), average_precision(sign * x, yb)
        except ConfigError as e:
            raise ConfigError(f"column {c!r}: {e}") from e
        rows[c] = {
            "auroc": auc,
            "ap": ap,
            "n": int(len(x)),
            "n_pos": int(yb.sum()),
            "mean_pos": float(x[yb].mean()),
            "mean_neg": float(x[~yb].mean()),
        }
    return pd.DataFrame.from_dict(rows, orient="index")
