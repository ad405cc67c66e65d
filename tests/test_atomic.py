"""lvsal_nb.atomic: a write either completes or leaves the old file byte-identical, no temp file, and a
FileWriteError naming the path and the cause. Real full disks on a tiny tmpfs where one can be
mounted; a simulated ENOSPC everywhere else."""

import errno
import json
import math
import os

import numpy as np
import pytest

from lvsal_nb import atomic
from lvsal_nb.errors import FileWriteError, LvsalError


def _strict(s):
    def refuse(name):
        raise ValueError(name)

    return json.loads(s, parse_constant=refuse)


def _fail(code):
    def f(*a, **k):
        raise OSError(code, os.strerror(code))

    return f


def test_write_replaces_and_leaves_nothing_else(tmp_path):
    p = tmp_path / "a.json"
    atomic.write_json(p, {"x": 1})
    atomic.write_json(p, {"x": 2}, indent=1)
    assert json.loads(p.read_text()) == {"x": 2}
    assert [q.name for q in tmp_path.iterdir()] == ["a.json"]


@pytest.mark.parametrize("target", ["fsync", "replace"])
@pytest.mark.parametrize(
    "code, cause, fix",
    [
        (errno.ENOSPC, "no space left on device", "free space or choose another folder"),
        (errno.EDQUOT, "disk quota exceeded", "free space or choose another folder"),
        (errno.EACCES, "permission denied", "choose a folder you can write to"),
        (errno.EROFS, "read-only file system", "choose a writable folder"),
    ],
)
def test_a_failure_keeps_the_old_file(tmp_path, monkeypatch, target, code, cause, fix):
    p = tmp_path / "old.bin"
    p.write_bytes(b"old content")
    monkeypatch.setattr(atomic.os, target, _fail(code))
    msg = f"^{cause} while writing {p}; {fix}: the previous old.bin is untouched$"
    with pytest.raises(FileWriteError, match=msg):
        atomic.write_bytes(p, b"new content that never lands")
    monkeypatch.undo()
    assert p.read_bytes() == b"old content"
    assert [q.name for q in tmp_path.iterdir()] == ["old.bin"]


def test_a_new_file_that_fails_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic.os, "fsync", _fail(errno.ENOSPC))
    with pytest.raises(FileWriteError, match="no new.bin was left behind"):
        atomic.write_bytes(tmp_path / "new.bin", b"x")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_errors_of_the_writer_itself_propagate_and_clean_up(tmp_path):
    p = tmp_path / "t.parquet"
    p.write_bytes(b"old")
    with pytest.raises(ZeroDivisionError):
        with atomic.replacing(p) as tmp:
            tmp.write_bytes(b"half")
            raise ZeroDivisionError
    with pytest.raises(KeyboardInterrupt):
        with atomic.replacing(p) as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt
    assert p.read_bytes() == b"old" and [q.name for q in tmp_path.iterdir()] == ["t.parquet"]


def test_a_library_error_with_the_errno_only_in_its_text(tmp_path):
    """pyarrow raises OSError('... [Errno 28] No space left on device') without errno set."""
    p = tmp_path / "t.parquet"
    p.write_bytes(b"old")
    with pytest.raises(FileWriteError, match="^no space left on device while writing"):
        with atomic.replacing(p):
            raise OSError("IOError: [Errno 28] No space left on device. Detail: write failed")
    assert issubclass(FileWriteError, LvsalError) and issubclass(FileWriteError, OSError)


def test_missing_folder(tmp_path):
    with pytest.raises(FileWriteError, match="the folder .* does not exist; create it or choose another"):
        atomic.write_text(tmp_path / "no" / "x.txt", "x")


def test_strict_json_never_holds_nan():
    obj = {"a": float("nan"), "b": [1.5, float("inf"), -float("inf")], "c": np.float32(np.nan),
           "d": np.array([1.0, np.nan]), "e": (np.int64(3), np.bool_(True)), "f": "NaN"}  # fmt: skip
    s = atomic.dumps(obj)
    assert _strict(s) == {"a": None, "b": [1.5, None, None], "c": None, "d": [1.0, None], "e": [3, True],
                          "f": "NaN"}  # fmt: skip
    assert math.isnan(obj["a"])  # the caller's object is not changed


def test_folder_writer_keeps_old_files_when_it_fails(tmp_path, monkeypatch):
    out = tmp_path / "w"
    out.mkdir()
    (out / "config.json").write_text("old config")
    (out / "keep.txt").write_text("unrelated")
    with pytest.raises(FileWriteError, match="the files already in .* are untouched"):
        with atomic.replacing_folder_files(out) as tmp:
            (tmp / "config.json").write_text("new config")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "keep.txt"]
    assert (out / "config.json").read_text() == "old config"
    with atomic.replacing_folder_files(out) as tmp:
        (tmp / "config.json").write_text("new config")
        (tmp / "weights.bin").write_bytes(b"w")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "keep.txt", "weights.bin"]
    assert (out / "config.json").read_text() == "new config"


def test_really_full_disk(tiny_tmpfs):
    p = tiny_tmpfs / "run.json"
    atomic.write_json(p, {"fixed": {"seed": 0}})
    before = p.read_bytes()
    with pytest.raises(FileWriteError, match=f"^no space left on device while writing {p}"):
        atomic.write_json(p, {"fixed": {"seed": 0}, "big": "x" * 200_000})
    assert p.read_bytes() == before and [q.name for q in tiny_tmpfs.iterdir()] == ["run.json"]
    with pytest.raises(FileWriteError, match="no space left on device"):
        with atomic.replacing_folder_files(tiny_tmpfs) as tmp:
            (tmp / "model.safetensors").write_bytes(b"\0" * 200_000)
    assert p.read_bytes() == before and [q.name for q in tiny_tmpfs.iterdir()] == ["run.json"]
