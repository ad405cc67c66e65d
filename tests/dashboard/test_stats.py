import numpy as np
import pandas as pd
import pytest

from lvsal_nb.dashboard.model import RunData
from lvsal_nb.dashboard.stats import (
    bootstrap,
    chair_metrics,
    paired_differences,
    paired_interval,
    pope_metrics,
    summary_table,
)
from lvsal_nb.errors import ConfigError
from lvsal_nb.eval.scores import chair_scores, pope_scores


def _naive_bootstrap(values_fn, n, n_boot, seed):
    """The textbook loop: B resamples of n indices with replacement, one rng, in order."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))  # the same draws as B consecutive rng.integers(0, n, n)
    stats = []
    for b in range(n_boot):
        stats.append(values_fn(idx[b]))
    return np.percentile(stats, 2.5), np.percentile(stats, 97.5)


def test_rng_draws_match_a_per_replicate_loop():
    a = np.random.default_rng(5).integers(0, 17, size=(40, 17))
    rng = np.random.default_rng(5)
    b = np.stack([rng.integers(0, 17, size=17) for _ in range(40)])
    np.testing.assert_array_equal(a, b)


def test_chair_bootstrap_equals_naive_loop_and_point_equals_chair_scores(run):
    d = RunData(run)
    g = d.answers[d.answers["method"] == "greedy"].reset_index(drop=True)
    recs = [
        r
        for r in __import__("lvsal_nb.dashboard.rundir", fromlist=["x"]).read_records(run)
        if r["method"] == "greedy"
    ]
    ref = chair_scores(
        [r["objects"] for r in recs], [r["gt_objects"] for r in recs], [r["n_words"] for r in recs]
    )
    res = bootstrap(g, chair_metrics, n_boot=300, seed=11)
    for m in ("chair_s", "chair_i", "recall", "avg_len"):
        assert res[m][0] == pytest.approx(ref[m])

    def chair_i(ix):
        sub = [recs[i] for i in ix]
        return chair_scores([r["objects"] for r in sub], [r["gt_objects"] for r in sub])["chair_i"]

    lo, hi = _naive_bootstrap(chair_i, len(recs), 300, 11)
    assert res["chair_i"][1] == pytest.approx(lo) and res["chair_i"][2] == pytest.approx(hi)
    assert lo <= res["chair_i"][0] <= hi


def test_pope_bootstrap_equals_naive_loop():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {"pred_yes": rng.random(50) < 0.5, "label": np.where(rng.random(50) < 0.5, "yes", "no")}
    )
    res = bootstrap(df, pope_metrics, n_boot=200, seed=3)
    ref = pope_scores(df["pred_yes"].tolist(), (df["label"] == "yes").tolist())
    assert res["accuracy"][0] == pytest.approx(ref["accuracy"]) and res["f1"][0] == pytest.approx(ref["f1"])
    lo, hi = _naive_bootstrap(
        lambda ix: pope_scores(df["pred_yes"].iloc[ix].tolist(), (df["label"].iloc[ix] == "yes").tolist())[
            "f1"
        ],
        50,
        200,
        3,
    )
    assert (res["f1"][1], res["f1"][2]) == pytest.approx((lo, hi))


def test_summary_is_seeded_and_ordered(run):
    d = RunData(run)
    a = summary_table(d.answers, "chair", ["sgrs", "greedy"], n_boot=100, seed=1)
    b = summary_table(d.answers, "chair", ["sgrs", "greedy"], n_boot=100, seed=1)
    pd.testing.assert_frame_equal(a, b)
    assert a["method"].tolist() == ["sgrs", "greedy"]
    assert (a["chair_i_lo"] <= a["chair_i"]).all() and (a["chair_i"] <= a["chair_i_hi"]).all()


def test_paired_differences_by_hand():
    df = pd.DataFrame(
        {
            "item_id": ["a", "b", "a", "b", "c"],
            "max_new_tokens": [8] * 5,
            "method": ["g", "g", "s", "s", "s"],
            "chair_i": [0.5, 0.0, 0.25, 0.5, 1.0],
        }
    )
    d = paired_differences(df, "g", "s")
    assert d["item_id"].tolist() == ["b", "a"] and d["diff"].tolist() == [0.5, -0.25]  # c: unpaired
    mean, lo, hi = paired_interval(d["diff"].to_numpy(), n_boot=50)
    assert mean == pytest.approx(0.125) and -0.25 <= lo <= hi <= 0.5
    with pytest.raises(ConfigError, match="method 'x' is not in this run"):
        paired_differences(df, "g", "x")
    with pytest.raises(ConfigError, match="no column 'nope'"):
        paired_differences(df, "g", "s", "nope")


def test_empty_group_is_a_clear_error():
    with pytest.raises(ConfigError, match="no answers to summarise"):
        bootstrap(pd.DataFrame(), chair_metrics)
