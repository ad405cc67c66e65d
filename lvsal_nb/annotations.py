"""Hallucination marks: a small SQLite store of who labelled which generated token, and how.

One row per (trace id, step, author): re-marking a step replaces that author's label. Each mark
also carries the content keys of its token (fingerprint.py): `setup` (model + weights, image,
prompt) and `step_key` (setup + the output token ids up to that step). A rerun has a new trace id
but the same step keys for the tokens that did not change, so `marks_for(trace)` finds the marks
made on an earlier run of the same generation. The file
lives at `$LVSAL_DATA_DIR/marks.sqlite3`, else `$XDG_DATA_HOME/lvsal-nb/marks.sqlite3`, else
`~/.local/share/lvsal-nb/marks.sqlite3`; pass `path=` for another one.

    store = MarkStore()                                   # default file, created on first write
    store.add(tr.trace_id, 5, "hallucinated", token=" moon", note="no moon in the image")
    store.marks(tr.trace_id)                              # DataFrame, one row per mark
    tr.table.merge(store.labels_for(tr.trace_id), on="step")  # labels for the detector evaluation

The database runs in WAL mode with a busy timeout, and every write is one short immediate
transaction, so several kernels or processes can mark at once without losing a write. A file that
is not a readable marks store is never deleted or overwritten: opening it raises
AnnotationStoreError naming the file and the fix (`MarkStore.move_aside`, or another `path=`).
A store on a read-only filesystem (or a file that cannot be written) stays readable; writing then
raises AnnotationStoreError saying the store is read-only. Stores of schema 1 (no content keys)
are migrated in place on first open when writable, and read as they are when not.
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
COLUMNS = ["trace_id", "step", "token", "label", "note", "author", "time", "setup", "step_key"]
V1_COLUMNS = COLUMNS[:7]
FILE_NAME = "marks.sqlite3"
APPLICATION_ID = 0x4C56534C  # "LVSL": marks this SQLite file as ours
SCHEMA_VERSION = 2  # 2: + setup, step_key (content keys, fingerprint.py)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS marks (
    trace_id TEXT NOT NULL,
    step     INTEGER NOT NULL CHECK (step >= 0),
    token    TEXT NOT NULL DEFAULT '',
    label    TEXT NOT NULL CHECK (label IN {LABELS!r}),
    note     TEXT NOT NULL DEFAULT '',
    author   TEXT NOT NULL,
    time     TEXT NOT NULL,
    setup    TEXT NOT NULL DEFAULT '',
    step_key TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (trace_id, step, author)
)"""
_MIGRATE_1_2 = (
    "ALTER TABLE marks ADD COLUMN setup TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE marks ADD COLUMN step_key TEXT NOT NULL DEFAULT ''",
)
_INDEX = "CREATE INDEX IF NOT EXISTS marks_by_key ON marks (step_key)"


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
        self._version = SCHEMA_VERSION  # the file's schema (1 only while a read-only v1 store is read)

    def __repr__(self) -> str:
        return f"<MarkStore {str(self.path)!r}>"

    # ---- writes ------------------------------------------------------------------------------
    def add(
        self,
        trace_id: str,
        step: int,
        label: str,
        *,
        token: str = "",
        note: str = "",
        author: str | None = None,
        setup: str = "",
        step_key: str = "",
    ) -> None:
        """Mark `step` of trace `trace_id`; replaces this author's earlier mark of that step.
        `setup` / `step_key`: the step's content keys (fingerprint.setup_key / step_keys)."""
        if label not in LABELS:
            raise ConfigError(f"label must be one of {LABELS}, got {label!r}")
        if not isinstance(trace_id, str) or not trace_id:
            raise ConfigError(f"trace_id must be a non-empty string (Trace.trace_id), got {trace_id!r}")
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise ConfigError(f"step must be an integer >= 0, got {step!r}")
        row = (
            trace_id,
            step,
            str(token),
            label,
            str(note or ""),
            author or default_author(),
            _now(),
            str(setup),
            str(step_key),
        )
        with self._connect(write=True) as con:
            con.execute(
                "INSERT INTO marks (trace_id, step, token, label, note, author, time, setup, "
                "step_key) "
                "VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (trace_id, step, author) DO UPDATE SET "
                "token=excluded.token, label=excluded.label, note=excluded.note, time=excluded.time, "
                "setup=excluded.setup, step_key=excluded.step_key",
                row,
            )

    def remove(self, trace_id: str, step: int, *, author: str | None = None, step_key: str = "") -> int:
        """Delete this author's mark of a step, and with `step_key` also their marks of the same
        token in earlier runs (which would otherwise carry over again); returns how many rows went."""
        if not self.path.exists():
            return 0
        who = author or default_author()
        with self._connect(write=True) as con:
            cur = con.execute(
                "DELETE FROM marks WHERE author=? AND ((trace_id=? AND step=?) OR "
                "(step_key<>'' AND step_key=?))",
                (who, trace_id, int(step), step_key),
            )
            return cur.rowcount

    # ---- reads -------------------------------------------------------------------------------
    def marks(self, trace_id: str | None = None) -> pd.DataFrame:
        """Every mark (of one trace, or all), oldest first: columns trace_id, step, token, label,
        note, author, time (UTC ISO 8601), setup, step_key (content keys; '' for marks made
        before schema 2)."""
        if trace_id is None:
            return self._select("", ())
        return self._select(" WHERE trace_id=?", (trace_id,))

    def marks_for(self, trace_id: str, step_keys: list[str], setup: str = "") -> tuple[pd.DataFrame, int]:
        """The marks that hold for a trace: its own (by trace id) and those of earlier runs whose
        step key equals one of this trace's (same model, image, prompt and the same tokens up to
        that step). Step numbers are this trace's.

        Returns:
            (marks, lost): marks as in `marks()`, oldest first; lost = how many marks of earlier
            runs of the same setup (same model, image, prompt) match no step here (their token or
            an earlier one changed) and so did not carry over.
        """
        where = {k: i for i, k in enumerate(step_keys)}
        keys = [k for k in step_keys if k]
        df = self._select(" WHERE trace_id=?", (trace_id,))
        lost = 0
        if keys or setup:
            clauses, args = [], []
            if keys:
                clauses.append(f"step_key IN ({','.join('?' * len(keys))})")
                args += keys
            if setup:
                clauses.append("setup=?")
                args.append(setup)
            other = self._select(f" WHERE trace_id<>? AND ({' OR '.join(clauses)})", (trace_id, *args))
            hit = other["step_key"].isin(where.keys()) & (other["step_key"] != "")
            lost = int((~hit).sum())
            carried = other[hit].assign(step=other.loc[hit, "step_key"].map(where).astype("int64"))
            df = pd.concat([carried, df] if len(carried) else [df], ignore_index=True)
            df = df.sort_values("time", kind="stable").reset_index(drop=True)
        return df, lost

    def _select(self, where: str, args: tuple) -> pd.DataFrame:
        if not self.path.exists():
            return pd.DataFrame(columns=COLUMNS).astype({"step": "int64"})
        with self._connect(write=False) as con:
            if self._version < 2:  # a schema-1 store that could not be migrated (read-only)
                if "step_key" in where or "setup" in where:
                    return pd.DataFrame(columns=COLUMNS).astype({"step": "int64"})
                rows = con.execute(
                    f"SELECT {', '.join(V1_COLUMNS)}, '', '' FROM marks{where} ORDER BY time, trace_id, step",
                    args,
                ).fetchall()
            else:
                sql = f"SELECT {', '.join(COLUMNS)} FROM marks{where} ORDER BY time, trace_id, step"
                rows = con.execute(sql, args).fetchall()
        return pd.DataFrame(rows, columns=COLUMNS).astype({"step": "int64"})

    def latest(self, trace_id: str) -> pd.DataFrame:
        """One mark per step of a trace: the most recent over all authors (same columns as marks)."""
        return _latest(self.marks(trace_id))

    def latest_for(self, trace_id: str, step_keys: list[str], setup: str = "") -> tuple[pd.DataFrame, int]:
        """`marks_for`, one mark per step (the most recent over authors and runs), and the lost count."""
        df, lost = self.marks_for(trace_id, step_keys, setup)
        return _latest(df), lost

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
        """A short-lived connection; with write=True one immediate transaction, committed on exit.
        A read that fails because the file or its folder cannot be written (a WAL store needs its
        -shm file) is retried on an immutable read-only connection."""
        if not write:
            yielded = False
            try:
                with self._connect_rw(write=False) as con:
                    yielded = True
                    yield con
                return
            except AnnotationStoreError as e:
                if yielded or not _read_only(e.__cause__):  # the caller's query failed: no retry
                    raise
            with self._connect_ro() as con:
                yield con
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise self._write_error(e) from e
        with self._connect_rw(write=True) as con:
            yield con

    @contextmanager
    def _connect_ro(self) -> Iterator[sqlite3.Connection]:
        uri = f"{self.path.resolve().as_uri()}?mode=ro&immutable=1"
        try:
            con = sqlite3.connect(uri, uri=True, timeout=self.timeout, isolation_level=None)
        except sqlite3.Error as e:
            raise self._error(f"cannot be opened read-only ({e})") from e
        try:
            self._check(con)
            self._version = con.execute("PRAGMA user_version").fetchone()[0] or SCHEMA_VERSION
            yield con
        except sqlite3.DatabaseError as e:
            raise self._error(f"cannot be read ({e})") from e
        finally:
            con.close()

    @contextmanager
    def _connect_rw(self, write: bool) -> Iterator[sqlite3.Connection]:
        try:
            con = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        except sqlite3.Error as e:
            raise (self._write_error(e) if _read_only(e) else self._error(f"cannot be opened ({e})")) from e
        try:
            if not self._ready:
                self._init(con, write)
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
            if _read_only(e):
                raise self._write_error(e) from e
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
                f"{SCHEMA_VERSION}); upgrade lvsal-nb (pip install -U lvsal-nb)"
            )
        return app_id == APPLICATION_ID

    def _init(self, con: sqlite3.Connection, write: bool = True) -> None:
        """Check the file is ours (or empty), then make sure the schema (migrating schema 1) and WAL
        mode are there. Each check reads one snapshot (a transaction): another process may be
        creating or migrating the store. A read of a schema-1 store that cannot be written reads
        it as it is (no content keys)."""
        con.execute("BEGIN")
        try:
            ours = self._check(con)
            version = con.execute("PRAGMA user_version").fetchone()[0]
        finally:
            if con.in_transaction:
                con.execute("COMMIT")
        if not ours or version < SCHEMA_VERSION:
            try:
                self._create_or_migrate(con)
            except sqlite3.OperationalError as e:
                if write or not ours or not _read_only(e):
                    raise
                self._version = version  # read-only schema 1: read the old columns
                return
        self._version = SCHEMA_VERSION
        self._wal(con)
        self._ready = True

    def _create_or_migrate(self, con: sqlite3.Connection) -> None:
        """Make an empty file a marks store, or a schema-1 store schema 2, unless another process
        just did (checked again inside the write transaction)."""
        con.execute("BEGIN IMMEDIATE")
        try:
            ours = self._check(con)
            version = con.execute("PRAGMA user_version").fetchone()[0]
            if not ours:
                con.execute(_SCHEMA)
                con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            elif version < 2:
                for sql in _MIGRATE_1_2:
                    con.execute(sql)
            con.execute(_INDEX)
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise

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

    def _write_error(self, e: BaseException) -> AnnotationStoreError:
        """A store that cannot be written (read-only file or filesystem): nothing is wrong with
        it, so no advice to move it aside."""
        return AnnotationStoreError(
            f"the marks store {str(self.path)!r} is read-only ({e}); the mark was not saved. Its marks "
            "are still readable. To save marks, make the file and its folder writable, or use a "
            "writable store with MarkStore(path=...) or $LVSAL_DATA_DIR"
        )

    def _error(self, what: str) -> AnnotationStoreError:
        return AnnotationStoreError(
            f"the marks store {str(self.path)!r} {what}. It was left untouched. To start a fresh "
            f"store, move it aside (MarkStore({str(self.path)!r}).move_aside(), or rename the file), "
            "or use another file with MarkStore(path=...) or $LVSAL_DATA_DIR"
        )


def _latest(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop_duplicates("step", keep="last").sort_values("step").reset_index(drop=True)


def _read_only(e: BaseException | None) -> bool:
    """Whether an SQLite / OS error means the file or its folder cannot be written."""
    if isinstance(e, OSError) and getattr(e, "errno", None) in (30, 13):  # EROFS, EACCES
        return True
    text = str(e).lower()
    return isinstance(e, sqlite3.Error) and any(
        m in text for m in ("readonly", "read-only", "unable to open database file")
    )


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")
