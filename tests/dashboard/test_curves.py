import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from lvsal_nb.dashboard.curves import detector_curves, pr_points, roc_points


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_curves_equal_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    s = np.round(rng.random(300), 1)  # many ties
    y = rng.random(300) < 0.3
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    f, t = roc_points(s, y)
    np.testing.assert_allclose(f, fpr)
    np.testing.assert_allclose(t, tpr)
    prec, rec, _ = precision_recall_curve(y, s, drop_intermediate=False)
    r, p = pr_points(s, y)
    np.testing.assert_allclose(r, rec[::-1])
    np.testing.assert_allclose(p, prec[::-1])


def test_detector_curves_score_low_saliency_and_skip_unlabelled():
    rng = np.random.default_rng(4)
    df = pd.DataFrame({"saliency": rng.random(200), "s_L1": rng.random(200)})
    lab = pd.Series(rng.random(200) < 0.4, dtype="boolean")
    lab[:50] = pd.NA
    out = detector_curves(df, ["s_L1", "saliency"], lab)
    keep = lab.notna().to_numpy()
    y = lab[keep].astype(bool).to_numpy()
    for c in ("s_L1", "saliency"):
        x = -df[c].to_numpy()[keep]
        assert out[c]["auroc"] == pytest.approx(roc_auc_score(y, x))
        assert out[c]["ap"] == pytest.approx(average_precision_score(y, x))
        assert out[c]["n"] == 150
    assert detector_curves(df, ["saliency"], pd.Series([False] * 200, dtype="boolean")) == {}
