"""The marks store: round trips, labels for the detector, two writing processes, damaged files."""

import multiprocessing as mp
import sqlite3
import threading

import pandas as pd
import pytest

from lvsal_nb.annotations import MarkStore, default_path
from lvsal_nb.errors import AnnotationStoreError, ConfigError


@pytest.fixture
def store(tmp_path):
    return MarkStore(tmp_path / "marks.sqlite3")


def test_default_path_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("LVSAL_DATA_DIR", str(tmp_path / "d"))
    assert default_path() == tmp_path / "d" / "marks.sqlite3"
    monkeypatch.delenv("LVSAL_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "x"))
    assert default_path() == tmp_path / "x" / "lvsal-nb" / "marks.sqlite3"


def test_reading_a_missing_store_creates_nothing(store):
    assert store.marks().empty and store.labels_for("t").empty
    assert not store.path.exists()


def test_add_replace_remove_round_trip(store):
    store.add("t1", 3, "hallucinated", token=" moon", note="no moon", author="ann")
    store.add("t1", 5, "correct", token=" star", author="ann")
    store.add("t2", 0, "unsure", author="bob")
    store.add("t1", 3, "correct", token=" moon", note="it is there", author="ann")  # replaces ann's mark
    df = MarkStore(store.path).marks("t1")  # a fresh object on the same file: reopening shows the marks
    assert list(df.columns) == [
        "trace_id",
        "step",
        "token",
        "label",
        "note",
        "author",
        "time",
        "setup",
        "step_key",
    ]
    assert sorted(zip(df.step, df.label, df.note)) == [(3, "correct", "it is there"), (5, "correct", "")]
    assert len(store.marks()) == 3
    assert store.remove("t1", 5, author="ann") == 1
    assert store.remove("t1", 5, author="ann") == 0
    assert list(store.marks("t1").step) == [3]


def test_labels_for_takes_latest_mark_and_drops_unsure(store):
    store.add("t", 1, "correct", author="ann")
    store.add("t", 1, "hallucinated", author="bob")  # later: wins
    store.add("t", 2, "unsure", author="ann")
    store.add("t", 0, "correct", author="ann")
    lab = store.labels_for("t")
    assert lab.to_dict("list") == {
        "step": [0, 1],
        "label": ["correct", "hallucinated"],
        "hallucinated": [False, True],
    }
    assert lab["hallucinated"].dtype == bool
    full = store.labels_for("t", include_unsure=True)
    assert list(full.step) == [0, 1, 2] and pd.isna(full.hallucinated[2])


def test_labels_feed_the_detector_table(store):
    from lvsal_nb.eval.detect import detector_table

    steps = pd.DataFrame({"step": [0, 1, 2, 3], "saliency": [0.5, 0.1, 0.45, 0.2]})
    for s, lab in [(0, "correct"), (1, "hallucinated"), (2, "correct"), (3, "hallucinated")]:
        store.add("t", s, lab, author="a")
    df = steps.merge(store.labels_for("t"), on="step")
    assert detector_table(df, "saliency", "hallucinated").loc["saliency", "auroc"] == 1.0


@pytest.mark.parametrize("bad", [dict(label="wrong"), dict(step=-1), dict(trace_id="")])
def test_add_validates(store, bad):
    kw = dict(trace_id="t", step=0, label="correct") | bad
    with pytest.raises(ConfigError, match=list(bad)[0]):
        store.add(kw["trace_id"], kw["step"], kw["label"])


def test_store_is_in_wal_mode(store):
    store.add("t", 0, "correct")
    with sqlite3.connect(store.path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _writer(path, who, n, start):
    start.wait()
    s = MarkStore(path)
    for i in range(n):
        s.add(f"trace-{who}", i, "hallucinated" if i % 2 else "correct", note=f"{who}{i}", author=who)


def test_two_processes_writing_at_once_lose_nothing(store):
    n = 60
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_writer, args=(store.path, who, n, start)) for who in ("p1", "p2")]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    df = store.marks()
    assert len(df) == 2 * n
    for who in ("p1", "p2"):
        mine = df[df.author == who]
        assert sorted(mine.step) == list(range(n)) and set(mine.trace_id) == {f"trace-{who}"}


def test_switch_to_wal_waits_for_a_writer(store):
    """The WAL switch needs the file to itself; while another connection holds a write lock SQLite
    refuses it at once instead of waiting (deadlock avoidance). Two processes creating a store at
    once hit that ('database is locked') before the switch was retried."""
    store.add("t", 0, "correct")
    with sqlite3.connect(store.path) as con:
        con.execute("PRAGMA journal_mode = DELETE")
    writer = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE marks SET note = 'other process' WHERE step = 0")
    release = threading.Timer(0.3, lambda: writer.execute("COMMIT"))
    release.start()
    try:
        MarkStore(store.path).add("t", 1, "hallucinated")
    finally:
        release.join()
        writer.close()
    with sqlite3.connect(store.path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert sorted(store.marks().step) == [0, 1] and store.marks().note[0] == "other process"


def test_corrupt_store_raises_clear_error_and_keeps_the_file(tmp_path):
    path = tmp_path / "marks.sqlite3"
    junk = b"this is not a database, but it is the user's file\n" * 200
    path.write_bytes(junk)
    other = tmp_path / "notes.txt"
    other.write_text("keep me")
    s = MarkStore(path)
    for op in (lambda: s.marks(), lambda: s.add("t", 0, "correct")):
        with pytest.raises(AnnotationStoreError, match=r"marks\.sqlite3.*left untouched.*move_aside"):
            op()
    assert path.read_bytes() == junk and other.read_text() == "keep me"
    moved = s.move_aside()
    assert moved.read_bytes() == junk and not path.exists() and moved.parent == tmp_path
    s.add("t", 0, "correct")  # a fresh store now
    assert len(s.marks()) == 1 and moved.read_bytes() == junk


def test_sqlite_file_of_another_program_is_refused(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE customers (name TEXT)")
        con.execute("INSERT INTO customers VALUES ('ada')")
    with pytest.raises(AnnotationStoreError, match="another program"):
        MarkStore(path).add("t", 0, "correct")
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT name FROM customers").fetchall() == [("ada",)]


# ---- content keys, schema migration, read-only stores ------------------------------------------------
def test_marks_of_an_earlier_run_carry_over_by_step_key(store):
    store.add("run1", 0, "correct", token="a", setup="S", step_key="k0", author="ann")
    store.add("run1", 2, "hallucinated", token="moon", setup="S", step_key="k2", author="ann")
    store.add("run1", 3, "unsure", token="x", setup="S", step_key="k3", author="ann")
    store.add("other", 0, "hallucinated", setup="T", step_key="z0", author="ann")  # another image
    # a rerun (new id) whose tokens agree up to step 2 and then differ; its step 1 was marked here
    store.add("run2", 1, "correct", setup="S", step_key="k1", author="bob")
    df, lost = store.latest_for("run2", ["k0", "k1", "k2", "k3b"], setup="S")
    assert list(zip(df.step, df.label)) == [(0, "correct"), (1, "correct"), (2, "hallucinated")]
    assert lost == 1  # the mark of run1's step 3: its token changed
    # a run whose first token differs keeps none of them
    df, lost = store.latest_for("run3", ["q0"], setup="S")
    assert df.empty and lost == 4  # all four marks of setup S (run1: 3, run2: 1)


def _v1_store(path):
    """A marks store as schema 1 wrote it (no content keys)."""
    from contextlib import closing

    with closing(sqlite3.connect(path)) as con, con:
        con.execute("""CREATE TABLE marks (trace_id TEXT NOT NULL, step INTEGER NOT NULL CHECK (step >= 0),
            token TEXT NOT NULL DEFAULT '', label TEXT NOT NULL CHECK (label IN ('hallucinated', 'correct',
            'unsure')), note TEXT NOT NULL DEFAULT '', author TEXT NOT NULL, time TEXT NOT NULL,
            PRIMARY KEY (trace_id, step, author))""")
        con.execute("INSERT INTO marks VALUES ('old', 4, ' moon', 'hallucinated', 'n', 'ann', '2025-01-01')")
        con.execute(f"PRAGMA application_id = {0x4C56534C}")
        con.execute("PRAGMA user_version = 1")


def test_schema_1_store_is_migrated_and_keeps_its_marks(tmp_path):
    path = tmp_path / "marks.sqlite3"
    _v1_store(path)
    s = MarkStore(path)
    df = s.marks("old")
    assert list(zip(df.step, df.label, df.note, df.setup, df.step_key)) == [(4, "hallucinated", "n", "", "")]
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == 2
        cols = [r[1] for r in con.execute("PRAGMA table_info(marks)")]
    assert cols[-2:] == ["setup", "step_key"]
    s.add("new", 0, "correct", setup="S", step_key="k0")
    assert len(MarkStore(path).marks()) == 2


def _mount_tmpfs(where):
    import subprocess

    where.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where)], capture_output=True)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.decode().strip()})")
    return lambda opts: subprocess.run(["mount", "-o", f"remount,{opts}", str(where)], check=True)


@pytest.mark.parametrize("schema", [1, 2])
def test_store_on_a_read_only_filesystem_stays_readable(tmp_path, schema):
    """Issue 17: reading failed there, and a write error advised moving the store aside."""
    import subprocess

    mnt = tmp_path / "ro"
    remount = _mount_tmpfs(mnt)
    try:
        path = mnt / "marks.sqlite3"
        if schema == 1:
            _v1_store(path)
        else:
            MarkStore(path).add("t", 2, "hallucinated", token=" moon", setup="S", step_key="k2")
        remount("ro")
        s = MarkStore(path)
        df = s.marks()
        assert list(zip(df.step, df.label)) == [(4 if schema == 1 else 2, "hallucinated")]
        if schema == 2:
            got, lost = s.latest_for("rerun", ["k0", "k1", "k2"], setup="S")
            assert list(got.step) == [2] and lost == 0
        with pytest.raises(AnnotationStoreError, match="read-only.*still readable") as e:
            s.add("t", 0, "correct")
        assert "move" not in str(e.value)
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_write_error_of_a_read_only_file_does_not_say_move_aside(store, monkeypatch):
    """Where no tmpfs can be mounted: SQLite's own read-only error, as a read-only file gives it."""
    store.add("t", 0, "correct")
    real = sqlite3.connect

    class RO:
        def __init__(self, con):
            self.con = con

        def execute(self, sql, *a):
            if sql.startswith(("INSERT", "DELETE", "BEGIN IMMEDIATE")):
                raise sqlite3.OperationalError("attempt to write a readonly database")
            return self.con.execute(sql, *a)

        def __getattr__(self, name):
            return getattr(self.con, name)

    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: RO(real(*a, **k)))
    assert len(MarkStore(store.path).marks()) == 1
    with pytest.raises(AnnotationStoreError, match="read-only") as e:
        MarkStore(store.path).add("t", 1, "correct")
    assert "move_aside" not in str(e.value) and "still readable" in str(e.value)
