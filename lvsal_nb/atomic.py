"""Atomic file writes: a file the project writes is either its complete new version or its old one.

Every writer goes through `replacing(path)`: the new content goes to a temporary file in the same
folder (same file system, so the final rename is atomic), the temporary file is flushed to disk
(fsync), renamed over the target (`os.replace`), and the folder is fsync'ed so the rename survives a
power cut. If anything fails on the way (full disk, quota, permissions, a crash of the writer) the
temporary file is removed, the previous file is left byte-identical, and the error is a
`FileWriteError` that names the path and the cause.

JSON goes through `dumps`: non-finite floats (NaN, ±Infinity) are written as `null` (strict JSON,
which JupyterLab and browsers require), numpy scalars and arrays as plain numbers and lists.

    from lvsal_nb.atomic import write_json, write_bytes, replacing
    write_json("run.json", {"seed": 0})
    with replacing("table.parquet") as tmp:      # any writer that takes a path
        df.to_parquet(tmp)
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import FileWriteError, LvsalError

_CAUSES = {  # errno -> (cause, what to do)
    errno.ENOSPC: ("no space left on device", "free space or choose another folder"),
    errno.EDQUOT: ("disk quota exceeded", "free space or choose another folder"),
    errno.EACCES: ("permission denied", "choose a folder you can write to"),
    errno.EPERM: ("operation not permitted", "choose a folder you can write to"),
    errno.EROFS: ("read-only file system", "choose a writable folder"),
    errno.EFBIG: ("file too large for this file system", "choose another folder"),
    errno.EIO: ("input/output error (failing disk?)", "check the disk or choose another folder"),
}


def _errno_of(e: BaseException) -> int | None:
    """errno of an OSError, also when a library (pyarrow) only puts '[Errno 28]' into the text."""
    if isinstance(e, OSError) and e.errno:
        return e.errno
    m = re.search(r"\[Errno (\d+)\]", str(e))
    if m:
        return int(m.group(1))
    if "No space left" in str(e):
        return errno.ENOSPC
    return None


def describe_failure(path: Path, e: BaseException, existed: bool) -> str:
    """'<cause> while writing <path>; <fix>: the previous <name> is untouched' (or 'no file was left')."""
    code = _errno_of(e)
    cause, fix = _CAUSES.get(code, (None, "check the folder and try again"))
    if cause is None:
        cause = os.strerror(code) if code else (str(e) or type(e).__name__)
    kept = f"the previous {path.name} is untouched" if existed else f"no {path.name} was left behind"
    return f"{cause.lower()} while writing {path}; {fix}: {kept}"


def _fsync_path(p: str | Path, directory: bool = False) -> None:
    fd = os.open(p, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(p: str | Path) -> None:
    try:
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p, ignore_errors=True)
        else:
            os.unlink(p)
    except FileNotFoundError:
        pass


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; when the block ends normally, make it `path` atomically.

    The block writes the whole new content to the yielded path (any writer that takes a path).
    Raises FileWriteError (naming `path` and the cause) when the folder is missing or any write,
    fsync or rename fails; then the temporary file is gone and the old `path` untouched.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileWriteError(
            f"cannot write {path}: the folder {str(folder)!r} does not exist; create it "
            "or choose another path"
        )
    existed = path.exists()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        os.close(fd)
    except OSError as e:
        raise FileWriteError(describe_failure(path, e, existed)) from e
    try:
        yield Path(tmp)
        _fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException as e:  # Ctrl-C included: never leave a temp file behind
        _remove(tmp)
        if isinstance(e, OSError) and not isinstance(e, LvsalError):
            raise FileWriteError(describe_failure(path, e, existed)) from e
        raise
    try:
        _fsync_path(folder, directory=True)
    except OSError:  # the file is complete and in place; some file systems cannot sync a folder
        pass


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` atomically (see `replacing`). Returns the path."""
    path = Path(path)
    with replacing(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 `text` to `path` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def finite(obj: Any) -> Any:
    """A copy of `obj` that strict JSON can hold: NaN/±inf -> None, numpy scalars/arrays -> Python,
    tuples -> lists. Dicts, lists and tuples are walked; other objects are returned as they are."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if type(obj).__module__ == "numpy":
        if hasattr(obj, "tolist"):
            return finite(obj.tolist())
    return obj


def dumps(obj: Any, **kwargs) -> str:
    """`json.dumps` that never writes NaN or Infinity: non-finite numbers become null (see `finite`)."""
    return json.dumps(finite(obj), allow_nan=False, **kwargs)


def write_json(path: str | Path, obj: Any, **kwargs) -> Path:
    """Strict JSON (`dumps`) written atomically. kwargs go to json.dumps (indent=...)."""
    return write_text(path, dumps(obj, **kwargs))


@contextmanager
def replacing_folder_files(folder: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside `folder`; at the end move each file it holds into `folder`,
    each one atomically. A failure while the block writes leaves `folder` untouched.

    For writers that fill a folder (`save_pretrained`): if the disk fills up mid-way, none of the
    old files are replaced; the final moves are renames, which need no space.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder))
    except OSError as e:
        raise FileWriteError(describe_failure(folder, e, True)) from e
    try:
        yield tmp
        for f in sorted(tmp.iterdir()):
            _fsync_path(f)
        for f in sorted(tmp.iterdir()):
            os.replace(f, folder / f.name)
    except BaseException as e:
        _remove(tmp)
        if isinstance(e, OSError) and not isinstance(e, LvsalError):
            raise FileWriteError(
                describe_failure(folder, e, True).replace(
                    f"the previous {folder.name} is untouched", f"the files already in {folder} are untouched"
                )
            ) from e
        raise
    _remove(tmp)
    try:
        _fsync_path(folder, directory=True)
    except OSError:
        pass
