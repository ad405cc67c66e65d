"""benchmarks/toy_mechanisms.py's bookkeeping: shards add up, rates from summed counts, distance bands."""

import argparse
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import toy_mechanisms as tm  # noqa: E402


def test_shard_option():
    assert tm.parse_shard("1/2") == (1, 2)
    with pytest.raises(argparse.ArgumentTypeError, match="needs 0 <= i < n"):
        tm.parse_shard("2/2")
    with pytest.raises(argparse.ArgumentTypeError, match="wants i/n such as 0/2"):
        tm.parse_shard("half")


def test_a_stopped_shard_resumed_with_skip_covers_each_scene_once():
    scenes = list(range(11))
    first = tm.shard_scenes(scenes, (1, 2))[:3]  # shard 1/2 stopped after 3 scenes
    rest = tm.shard_scenes(scenes, (1, 2), skip=3)
    assert first + rest == [1, 3, 5, 7, 9]
    assert sorted(tm.shard_scenes(scenes, (0, 2)) + first + rest) == scenes
    assert tm.shard_scenes(scenes, None, skip=4) == scenes[4:]


def test_shards_sum_and_rates_come_from_the_sums():
    a = [
        (
            "greedy",
            {
                "n_scenes": 2,
                "n_obj": 10,
                "n_hal": 1,
                "n_list": 6,
                "n_hal_list": 1,
                "covered": 5,
                "n_truth": 6,
                "n_words": 40,
                "recap_order": 1,
                "recap_omitted": 2,
                "seconds": 3,
            },
        )
    ]
    b = [("greedy", {"n_scenes": 1, "n_obj": 10, "n_hal": 4, "n_list": 4, "n_hal_list": 3, "covered": 1,
                     "n_truth": 4, "n_words": 20, "recap_order": 2, "seconds": 4})]  # fmt: skip
    merged = tm.merge_raw([a, b])
    assert merged[0][1]["n_obj"] == 20 and merged[0][1]["recap_order"] == 3
    row = tm.methods_table(merged).splitlines()[2].split(" | ")
    # CHAIR_I all 5/20 = 25.0 (not the mean of 10% and 40%), list 4/10 = 40.0, recall 6/10 = 60.0,
    # words 60/3 = 20.0; recap_order 1 + 2, omitted 2 + 0, seconds 3 + 4
    assert row[1:5] == ["25.0", "40.0", "60.0", "20.0"]
    # recap_order, recap_never_listed, recap_repeat, omitted, memory errors (3 + 0 + 0 + 2), seconds
    assert row[-6:] == ["3", "0", "0", "2", "5", "7 |"]


def test_memory_errors_by_distance_by_hand():
    df = pd.DataFrame({
        "part": ["recap"] * 5 + ["list"],
        "type": ["recap_correct", "recap_order", "repeat", "recap_never_listed", "overrun", "correct"],
        "dist": [4.0, 9.0, 12.0, 31.0, float("nan"), float("nan")],
    })  # fmt: skip
    lines = tm.memory_errors_by_distance(df).splitlines()[2:]
    assert lines == ["| 0-9 | 2 | 1 | 0 | 0 | 50.0 |", "| 10-19 | 1 | 0 | 0 | 1 | 100.0 |",
                     "| 30-39 | 1 | 0 | 1 | 0 | 100.0 |"]  # fmt: skip


def test_auroc_interval_brackets_the_hand_computed_auroc():
    import numpy as np

    # low score flags: positives 1, 2 vs negatives 3, 4: every pair ranked right in every resample
    assert tm.auroc_interval(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == (1.0, 1.0)
    # pos {1, 5}, neg {3, 3}: AUROC 0.5; a resample of pos can be {1, 1} (AUROC 1) or {5, 5} (AUROC 0)
    lo, hi = tm.auroc_interval(np.array([1.0, 5.0]), np.array([3.0, 3.0]))
    assert lo == 0.0 and hi == 1.0
