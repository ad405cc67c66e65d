"""AUROC / AP against hand-computed values (sklearn's tie conventions) and the detector table."""

import numpy as np
import pandas as pd
import pytest

from lvsal_nb.errors import ConfigError
from lvsal_nb.eval.detect import auroc, average_precision, detector_table


def test_sklearn_docs_example():
    # sklearn's documented example: roc_auc_score = 0.75, average_precision_score = 0.8333...
    s, y = [0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]
    assert auroc(s, y) == pytest.approx(0.75)
    assert average_precision(s, y) == pytest.approx(5 / 6)


def test_ties_count_half_and_form_one_threshold():
    # positives score 1, 1; negatives 1, 0 -> pairs: tie .5, win, tie .5, win = 3/4
    s, y = [1, 1, 1, 0], [True, False, True, False]
    assert auroc(s, y) == pytest.approx(0.75)
    # one threshold at 1: P = 2/3, R = 1 -> AP = 2/3 (no credit for an arbitrary order inside the tie)
    assert average_precision(s, y) == pytest.approx(2 / 3)
    # all tied: AUROC 0.5, AP = positive rate
    assert auroc([3, 3, 3, 3], [1, 0, 0, 1]) == pytest.approx(0.5)
    assert average_precision([3, 3, 3, 3], [1, 0, 0, 0]) == pytest.approx(0.25)


def test_ranking_cases_by_hand():
    # order by score desc: + - + - -  -> AUROC: positive 1 beats 3 neg, positive 2 beats 2 -> 5/6
    s = np.array([0.9, 0.8, 0.7, 0.2, 0.1])
    y = np.array([1, 0, 1, 0, 0])
    assert auroc(s, y) == pytest.approx(5 / 6)
    # AP = 1/2 * 1 + 1/2 * 2/3
    assert average_precision(s, y) == pytest.approx(0.5 + 1 / 3)
    assert auroc(-s, y) == pytest.approx(1 / 6)
    assert auroc([0.1, 0.9], [1, 0]) == 0.0


def test_validation():
    with pytest.raises(ConfigError, match="both classes"):
        auroc([0.1, 0.2], [1, 1])
    with pytest.raises(ConfigError, match="at least one positive"):
        average_precision([0.1, 0.2], [0, 0])
    with pytest.raises(ConfigError, match="one label per score"):
        auroc([0.1, 0.2], [1])
    with pytest.raises(ConfigError, match="NaN"):
        auroc([np.nan, 0.2], [1, 0])
    with pytest.raises(ConfigError, match="0/1"):
        auroc([0.1, 0.2], [2, 0])


def test_detector_table_negates_saliency():
    df = pd.DataFrame(
        {
            # layer_a: hallucinated tokens have LOW saliency -> perfect detector after negation
            "layer_a": [0.9, 0.8, 0.1, 0.2, 0.7],
            # layer_b: one NaN row (dropped), ties between a hallucinated and a correct token
            "layer_b": [0.5, np.nan, 0.5, 0.1, 0.9],
            "halluc": [False, False, True, True, False],
        }
    )
    t = detector_table(df, ["layer_a", "layer_b"], "halluc")
    assert list(t.index) == ["layer_a", "layer_b"]
    assert t.loc["layer_a", "auroc"] == pytest.approx(1.0)
    assert t.loc["layer_a", "ap"] == pytest.approx(1.0)
    assert t.loc["layer_a", "mean_pos"] == pytest.approx(0.15)
    assert t.loc["layer_a", "mean_neg"] == pytest.approx(0.8)
    # layer_b rows used: (0.5,F), (0.5,T), (0.1,T), (0.9,F); -score: -.5,-.5,-.1,-.9
    # pairs (pos vs neg): (-.5 vs -.5 tie .5, -.5 vs -.9 win), (-.1 vs -.5 win, -.1 vs -.9 win) -> 3.5/4
    assert t.loc["layer_b", "auroc"] == pytest.approx(3.5 / 4)
    # -score desc: -.1(T) | -.5(F), -.5(T) tie | -.9(F): AP = 1/2*1 + 1/2*(2/3)
    assert t.loc["layer_b", "ap"] == pytest.approx(0.5 + 1 / 3)
    assert (t.loc["layer_b", "n"], t.loc["layer_b", "n_pos"]) == (4, 2)
    raw = detector_table(df, "layer_a", "halluc", negate=False)
    assert raw.loc["layer_a", "auroc"] == pytest.approx(0.0)


def test_detector_table_errors():
    df = pd.DataFrame({"s": [0.1, 0.2], "y": [True, True]})
    with pytest.raises(ConfigError, match="column 's'"):
        detector_table(df, ["s"], "y")
    with pytest.raises(ConfigError, match="no column"):
        detector_table(df, ["t"], "y")
