"""The run folder under faults: a full disk, damaged run.json / images.json, two runs on one --out,
non-finite numbers in the results."""

import errno
import json
import os
import subprocess
import sys

import pytest

from lvsal_nb.errors import FileWriteError
from lvsal_nb.eval.lock import LOCK_NAME
from lvsal_nb.eval.results import ResultStore
from lvsal_nb.eval.runner import main


def cmd(model_dir, out):
    return ["chair", "--dataset", "toy", "--n", "2", "--model", model_dir, "--methods", "greedy",
            "--max-new-tokens", "2", "--no-progress", "--threads", "1", "--out", str(out)]  # fmt: skip


def snapshot(folder):
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in files}


def strict(s):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(s, parse_constant=refuse)


@pytest.fixture(scope="module")
def done_run(model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "r"
    assert main(cmd(model_dir, out)) == 0
    return out


def _enospc(*a, **k):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_leaves_every_file_of_the_run_as_it_was(
    done_run, model_dir, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "r"
    import shutil

    shutil.copytree(done_run, out)
    before = snapshot(out)
    assert {"run.json", "images.json", "results.jsonl", "summary.md", "summary.parquet"} <= set(before)
    monkeypatch.setattr(os, "fsync", _enospc)  # the disk is full: the first write that reaches it fails
    assert main(cmd(model_dir, out)) == 2
    err = capsys.readouterr().err
    assert err.startswith("lvsal eval: error: no space left on device while writing")
    assert "free space or choose another folder: the previous" in err and "is untouched" in err
    monkeypatch.undo()
    assert snapshot(out) == before  # byte-identical, no temp files, no lock left behind


def test_a_failed_results_append_is_cut_back(tmp_path, monkeypatch):
    store = ResultStore(tmp_path / "results.jsonl")
    store.append({"key": "a|greedy|2", "text": "x"})
    before = (tmp_path / "results.jsonl").read_bytes()
    monkeypatch.setattr(os, "fsync", _enospc)
    msg = (
        "no space left on device while writing .*results.jsonl; free space or choose another folder: "
        "the answers recorded so far are kept: rerun the same command"
    )
    with pytest.raises(FileWriteError, match=msg):
        store.append({"key": "b|greedy|2", "text": "y" * 1000})
    monkeypatch.undo()
    assert (tmp_path / "results.jsonl").read_bytes() == before
    assert "b|greedy|2" not in store and len(ResultStore(tmp_path / "results.jsonl")) == 1


def test_results_hold_no_nan(tmp_path):
    store = ResultStore(tmp_path / "results.jsonl")
    store.append({"key": "a|greedy|2", "saliency": float("nan"), "scores": [1.0, float("inf")]})
    line = (tmp_path / "results.jsonl").read_text()
    assert strict(line) == {"key": "a|greedy|2", "saliency": None, "scores": [1.0, None]}
    assert store.records["a|greedy|2"] == ResultStore(tmp_path / "results.jsonl").records["a|greedy|2"]


def test_run_files_are_strict_json(done_run):
    for name in ("run.json", "images.json"):
        strict((done_run / name).read_text())
    for line in (done_run / "results.jsonl").read_text().splitlines():
        strict(line)


@pytest.mark.parametrize(
    "name, content, match",
    [
        ("run.json", '{"fixed": {"task": "ch', r"run.json is damaged \(JSONDecodeError"),
        ("run.json", "[1, 2]", "run.json is damaged .*'fixed' object"),
        ("run.json", '{"fixed": 3}', "run.json is damaged .*'fixed' object"),
        ("run.json", "", r"run.json is damaged \(JSONDecodeError"),
        ("images.json", '["toy:0", "to', r"images.json is damaged \(JSONDecodeError"),
        ("images.json", '{"a": 1}', "images.json must hold a non-empty JSON list"),
        ("images.json", "[null, 3]", "images.json holds 1 entries that are not image ids"),
        ("images.json", b"\xff\xfe\x00", r"images.json is damaged \(UnicodeDecodeError"),
    ],
)
def test_damaged_run_files_are_clear_errors(done_run, model_dir, tmp_path, capsys, name, content, match):
    import shutil

    out = tmp_path / "r"
    shutil.copytree(done_run, out)
    (out / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    assert main(cmd(model_dir, out)) == 2
    err = capsys.readouterr().err
    assert err.startswith("lvsal eval: error:") and err.count("\n") == 1
    import re

    assert re.search(match, err), err
    assert "pass a new --out" in err and "restore it" in err


HOLD = """
import sys, time
from lvsal_nb.eval.lock import run_lock
with run_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_two_runs_on_one_folder(model_dir, tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(cmd(model_dir, out)) == 2
        err = capsys.readouterr().err
        assert f"another lvsal eval (pid {holder.pid} on " in err and "pass another --out" in err
        assert not (out / "results.jsonl").exists()  # the second run wrote nothing
    finally:
        holder.kill()
        holder.wait()
    # the holder died without releasing (SIGKILL): its lock file is stale and is taken over
    assert json.loads((out / LOCK_NAME).read_text())["pid"] == holder.pid
    assert main(cmd(model_dir, out)) == 0
    assert not (out / LOCK_NAME).exists()


def test_a_stale_lock_from_a_dead_pid_is_taken_over(model_dir, tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / LOCK_NAME).write_text(json.dumps({"pid": dead.pid, "host": "here", "started": "yesterday"}))
    assert main(cmd(model_dir, out)) == 0
    assert len((out / "results.jsonl").read_text().splitlines()) == 2


def test_pid_fallback_where_flock_is_unavailable(tmp_path, monkeypatch):
    import socket

    from lvsal_nb.errors import RunBusyError
    from lvsal_nb.eval import lock

    monkeypatch.setattr(lock, "fcntl", None)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": live.pid, "host": socket.gethostname()}))
        with pytest.raises(RunBusyError, match=f"another lvsal eval \\(pid {live.pid} on "):
            with lock.run_lock(tmp_path):
                pass
    finally:
        live.kill()
        live.wait()
    with lock.run_lock(tmp_path):  # the holder is gone: taken over
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (tmp_path / LOCK_NAME).exists()
