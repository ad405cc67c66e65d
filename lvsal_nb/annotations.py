"""Hallucination marks: a small SQLite store of who labelled which generated token, and how.

One row per (trace id, step, author): re-marking a step replaces that author's label. The file
lives at `$LVSAL_DATA_DIR/marks.sqlite3`, else `$XDG_DATA_HOME/lvsal-nb/marks.sqlite3`, else
`~/.local/share/lvsal-nb/marks.sqlite3`; pass `path=` for another one.

    store = MarkStore()                                   # default file, created on first write
    store.add(tr.trace_id, 5, "hallucinated", token=" moon", note="no moon in the image")
    store.marks(tr.trace_id)                              # DataFrame, one row per mark
    tr.steps.merge(store.labels_for(tr.trace_id), on="step")  # labels for the detector evaluation

The database runs in WAL mode with a busy timeout, and every write is one short immediate
transaction, so several kernels or processes can mark at once without losing a write. A file that
is not a readable marks store is never deleted or overwritten: opening it raises
AnnotationStoreError naming the file and the fix (`MarkStore.move_aside`, or another `path=`).
"""

from __future__ import annotations

import datetime as _dt
import getpass
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from .errors import AnnotationStoreError, ConfigError

LABELS = ("hallucinated", "correct", "unsure")
COLUMNS = ["trace_id", "step", "token", "label", "note", "author", "time"]
FILE_NAME = "marks.sqlite3"
APPLICATION_ID = 0x4C56534C  # "LVSL": marks this SQLite file as ours
SCHEMA_VERSION = 1
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS marks (
    trace_id TEXT NOT NULL,
    step     INTEGER NOT NULL CHECK (step >= 0),
    token    TEXT NOT NULL DEFAULT '',
    label    TEXT NOT NULL CHECK (label IN {LABELS!r}),
    note     TEXT NOT NULL DEFAULT '',
    author   TEXT NOT NULL,
    time     TEXT NOT NULL,
    PRIMARY KEY (trace_id, step, author)
)"""


def default_path() -> Path:
    """Where marks go unless a path is given (see the module docstring)."""
    if os.environ.get("LVSAL_DATA_DIR"):
        return Path(os.environ["LVSAL_DATA_DIR"]).expanduser() / FILE_NAME
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base).expanduser() / "lvsal-nb" / FILE_NAME


def default_author() -> str:
    """$LVSAL_AUTHOR, else the login name."""
    try:
        return os.environ.get("LVSAL_AUTHOR") or getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "unknown"


class MarkStore:
    """Marks of generated tokens as hallucinated / correct / unsure, in one SQLite file.

    Args:
        path: the database file. Default: `default_path()`. Created (with its folder) on the
            first write; reading a store that does not exist yet gives no marks.
        timeout: seconds a write waits for another process's lock. Default: 30.
    """

    def __init__(self, path: str | Path | None = None, *, timeout: float = 30.0):
        self.path = Path(path).expanduser() if path is not None else default_path()
        self.timeout = timeout
        self._ready = False

    def __repr__(self) -> str:
        return f"<MarkStore {str(self.path)!r}>"

    # ---- writes ------------------------------------------------------------------------------
    def add(self, trace_id: str, step: int, label: str, *, token: str = "", note: str = "",
            author: str | None = None) -> None:
        """Mark `step` of trace `trace_id`; replaces this author's earlier mark of that step."""
        if label not in LABELS:
            raise ConfigError(f"label must be one of {LABELS}, got {label!r}")
        if not isinstance(trace_id, str) or not trace_id:
            raise ConfigError(f"trace_id must be a non-empty string (Trace.trace_id), got {trace_id!r}")
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise ConfigError(f"step must be an integer >= 0, got {step!r}")
        row = (trace_id, step, str(token), label, str(note or ""), author or default_author(), _now())
        with self._connect(write=True) as con:
            con.execute("INSERT INTO marks (trace_id, step, token, label, note, author, time) "
                        "VALUES (?,?,?,?,?,?,?) ON CONFLICT (trace_id, step, author) DO UPDATE SET "
                        "token=excluded.token, label=excluded.label, note=excluded.note, time=excluded.time",
                        row)

    def remove(self, trace_id: str, step: int, *, author: str | None = None) -> int:
        """Delete this author's mark of a step; returns how many rows went (0 or 1)."""
        if not self.path.exists():
            return 0
        with self._connect(write=True) as con:
            cur = con.execute("DELETE FROM marks WHERE trace_id=? AND step=? AND author=?",
                              (trace_id, int(step), author or default_author()))
            return cur.rowcount

    # ---- reads -------------------------------------------------------------------------------
    def marks(self, trace_id: str | None = None) -> pd.DataFrame:
        """Every mark (of one trace, or all), oldest first: columns trace_id, step, token, label,
        note, author, time (UTC ISO 8601)."""
        if not self.path.exists():
            return pd.DataFrame(columns=COLUMNS).astype({"step": "int64"})
        sql, args = "SELECT * FROM marks", ()
        if trace_id is not None:
            sql, args = sql + " WHERE trace_id=?", (trace_id,)
        with self._connect(write=False) as con:
            rows = con.execute(sql + " ORDER BY time, trace_id, step", args).fetchall()
        return pd.DataFrame(rows, columns=COLUMNS).astype({"step": "int64"})

    def latest(self, trace_id: str) -> pd.DataFrame:
        """One mark per step of a trace: the most recent over all authors (same columns as marks)."""
        df = self.marks(trace_id)
        return df.drop_duplicates("step", keep="last").sort_values("step").reset_index(drop=True)

    def labels_for(self, trace_id: str, *, include_unsure: bool = False) -> pd.DataFrame:
        """Token labels for the detector evaluation (eval.detect.detector_table).

        Returns:
            DataFrame [step, label, hallucinated]: one row per marked step (latest mark wins),
            `hallucinated` True for "hallucinated"; "unsure" rows are dropped unless asked for
            (then `hallucinated` is NA there).
        """
        df = self.latest(trace_id)[["step", "label"]]
        if not include_unsure:
            df = df[df["label"] != "unsure"].reset_index(drop=True)
        hall = df["label"].map({"hallucinated": True, "correct": False, "unsure": pd.NA})
        return df.assign(hallucinated=hall.astype("boolean" if include_unsure else bool))

    # ---- repair ------------------------------------------------------------------------------
    def move_aside(self) -> Path | None:
        """Rename an unreadable store (and its -wal / -shm files) to `<name>.corrupt-<time>` so a
        fresh one can start; nothing is deleted. Returns the new name, or None if there was no file."""
        if not self.path.exists():
            return None
        stamp = _dt.datetime.now().strftime("%Y%m%dT%H%M%S")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            target, n = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}"), n + 1
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                side.rename(target.with_name(target.name + suffix))
        self.path.rename(target)
        self._ready = False
        return target

    # ---- internals ---------------------------------------------------------------------------
    @contextmanager
    def _connect(self, write: bool) -> Iterator[sqlite3.Connection]:
        """A short-lived connection; with write=True one immediate transaction, committed on exit."""
        if write:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        except sqlite3.Error as e:
            raise self._error(f"cannot be opened ({e})") from e
        try:
            if not self._ready:
                self._init(con)
            if write:
                con.execute("BEGIN IMMEDIATE")
                try:
                    yield con
                except BaseException:
                    if con.in_transaction:
                        con.execute("ROLLBACK")
                    raise
                con.execute("COMMIT")
            else:
                yield con
        except sqlite3.DatabaseError as e:
            raise self._error(f"cannot be read or written ({e})") from e
        finally:
            con.close()

    def _check(self, con: sqlite3.Connection) -> bool:
        """Whether the file is already ours (False: empty). Raise for a foreign or newer file."""
        app_id = con.execute("PRAGMA application_id").fetchone()[0]
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if app_id != APPLICATION_ID and tables:
            raise self._error(f"is an SQLite database of another program (tables {sorted(tables)})")
        version = con.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise AnnotationStoreError(
                f"the marks store {str(self.path)!r} was written by a newer lvsal-nb (schema {version} > "
                f"{SCHEMA_VERSION}); upgrade lvsal-nb (pip install -U lvsal-nb)")
        return app_id == APPLICATION_ID

    def _init(self, con: sqlite3.Connection) -> None:
        """Check the file is ours (or empty), then make sure the schema and WAL mode are there.
        Each check reads one snapshot (a transaction): another process may be creating the store."""
        con.execute("BEGIN")
        try:
            ours = self._check(con)
        finally:
            if con.in_transaction:
                con.execute("COMMIT")
        if not ours:  # an empty file: make it a marks store, unless another process just did
            con.execute("BEGIN IMMEDIATE")
            try:
                if not self._check(con):
                    con.execute(_SCHEMA)
                    con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise
        self._wal(con)
        self._ready = True

    def _wal(self, con: sqlite3.Connection) -> None:
        """Switch the file to WAL (persistent: concurrent readers + one writer). The switch needs the
        file to itself and SQLite does not wait for that, so a busy file is retried until timeout."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                if con.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    con.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _error(self, what: str) -> AnnotationStoreError:
        return AnnotationStoreError(
            f"the marks store {str(self.path)!r} {what}. It was left untouched. To start a fresh "
            f"store, move it aside (MarkStore({str(self.path)!r}).move_aside(), or rename the file), "
            "or use another file with MarkStore(path=...) or $LVSAL_DATA_DIR")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")
