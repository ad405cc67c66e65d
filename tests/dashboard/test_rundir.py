import json

import pytest

from lvsal_nb.dashboard.model import RunData
from lvsal_nb.dashboard.rundir import RunFolderError, answers_table, read_records


def test_missing_folder_and_non_run_say_what_to_do(tmp_path):
    with pytest.raises(RunFolderError, match="no run folder .* --out folder"):
        RunData(tmp_path / "nope")
    with pytest.raises(RunFolderError, match="holds no results.jsonl"):
        RunData(tmp_path)


def test_extra_fields_are_tolerated_and_missing_ones_filled(run):
    recs = read_records(run)
    assert all("future_field" in r for r in recs)  # written by a newer eval: kept, ignored
    slim = [{"key": "a|greedy|8", "method": "greedy", "item_id": "a", "text": "a red star"}]
    df = answers_table(slim, "chair")
    assert df.loc[0, "n_objects"] == 0 and df.loc[0, "chair_s"] == 0


def test_torn_last_line_is_skipped_but_a_damaged_middle_line_is_an_error(run):
    path = run / "results.jsonl"
    n = len(path.read_text().splitlines())
    with path.open("a") as f:
        f.write('{"key": "img:99|gre')  # an eval still writing
    assert len(read_records(run)) == n
    lines = path.read_text().splitlines()
    lines[2] = "{not json"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RunFolderError, match=r"results.jsonl:3 is not a JSON line.*delete that line"):
        read_records(run)


def test_damaged_run_json(run):
    (run / "run.json").write_text("{")
    with pytest.raises(RunFolderError, match="run.json is not valid JSON"):
        RunData(run)


def test_later_line_of_same_key_wins(run):
    path = run / "results.jsonl"
    first = json.loads(path.read_text().splitlines()[0])
    path.write_text(path.read_text() + json.dumps({**first, "text": "changed"}) + "\n")
    recs = {r["key"]: r for r in read_records(run)}
    assert recs[first["key"]]["text"] == "changed"
