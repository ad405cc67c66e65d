import pandas as pd
import pytest

from lvsal_nb.dashboard.files import write_table
from lvsal_nb.dashboard.model import RunData
from lvsal_nb.errors import ConfigError


@pytest.fixture
def data(run):
    return RunData(run, author="ana")


def _first(data, label):
    t = data.tokens
    r = t[t["chair_label"] == label].iloc[0]
    return r["trace_id"], int(r["step"])


def test_confirm_and_correct_keep_both_sources(data):
    tid, step = _first(data, "hallucinated")
    tid2, step2 = _first(data, "correct")
    assert data.labels.confirm(tid, step) == "hallucinated"
    assert data.labels.correct(tid2, step2) == "hallucinated"
    tab = data.labels.labels_table()
    human = tab[tab["source"] == "human"]
    assert sorted(zip(human["step"], human["label"], human["author"])) == sorted(
        [(step, "hallucinated", "ana"), (step2, "hallucinated", "ana")]
    )
    chair = tab[(tab["source"] == "chair") & (tab["trace_id"] == tid2) & (tab["step"] == step2)]
    assert chair["label"].tolist() == ["correct"]  # CHAIR's label is kept next to the analyst's
    n_chair = int((data.tokens["chair_label"] != "").sum())
    assert (tab["source"] == "chair").sum() == n_chair


def test_sources_select_labels(data):
    tid, step = _first(data, "correct")
    i = data.tokens.index[(data.tokens["trace_id"] == tid) & (data.tokens["step"] == step)][0]
    before = data.labels.hallucinated("combined")
    assert data.labels.hallucinated("human").isna().all()
    data.labels.correct(tid, step)
    assert bool(data.labels.hallucinated("chair")[i]) is False
    assert bool(data.labels.hallucinated("human")[i]) is True
    assert bool(data.labels.hallucinated("combined")[i]) is True
    assert (data.labels.hallucinated("combined") != before).sum() == 1
    data.labels.mark(tid, step, "unsure")  # unsure: no label for the detector
    assert pd.isna(data.labels.hallucinated("combined")[i])


def test_marks_survive_a_reopen(run, data):
    tid, step = _first(data, "hallucinated")
    data.labels.correct(tid, step)
    again = RunData(run)
    assert again.labels.human.notna().sum() == 1


def test_bad_label_requests(data):
    t = data.tokens
    r = t[t["chair_label"] == ""].iloc[0]
    with pytest.raises(ConfigError, match="has no CHAIR label to confirm"):
        data.labels.confirm(r["trace_id"], int(r["step"]))
    with pytest.raises(ConfigError, match="no token 999 of trace"):
        data.labels.mark(r["trace_id"], 999, "correct")
    with pytest.raises(ConfigError, match="label source must be one of"):
        data.labels.hallucinated("gpt")


def test_export_parquet_and_csv_round_trip(data, tmp_path):
    tid, step = _first(data, "hallucinated")
    data.labels.confirm(tid, step)
    tab = data.labels.labels_table()
    for ext in ("parquet", "csv"):
        p = write_table(tab, tmp_path / f"labels.{ext}")
        back = pd.read_parquet(p) if ext == "parquet" else pd.read_csv(p, keep_default_na=False)
        assert len(back) == len(tab) and set(back["source"]) == {"chair", "human"}
    assert not list(tmp_path.glob("*.part"))  # no temp file left behind
    with pytest.raises(ConfigError, match="writes .parquet or .csv"):
        write_table(tab, tmp_path / "labels.xlsx")


def test_failed_export_leaves_the_old_file(data, tmp_path, monkeypatch):
    p = write_table(pd.DataFrame({"a": [1]}), tmp_path / "t.csv")

    def fail(self, *a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", fail)
    with pytest.raises(OSError, match="disk full"):
        write_table(pd.DataFrame({"a": [2]}), p)
    assert p.read_text().split() == ["a", "1"] and not list(tmp_path.glob("*.part"))
