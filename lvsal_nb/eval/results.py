"""The append-only results file of a run (JSON Lines), which is what makes a run resumable.

One line per finished unit, written and fsync'ed only after the unit's trace file is in place, so a
line on disk means the unit is complete. A crash can at worst leave a torn last line: it is cut off
when the file is opened again, and that unit runs again. Keys are "<item_id>|<method>|<max_new_tokens>".
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lvsal_nb.atomic import describe_failure, dumps, write_bytes
from lvsal_nb.errors import ConfigError, FileWriteError


def unit_key(item_id: str, method: str, max_new_tokens: int) -> str:
    """The key of one unit of work: "item_id|method|max_new_tokens"."""
    return f"{item_id}|{method}|{max_new_tokens}"


class ResultStore:
    """Records of finished units, by key. `append` adds one durably; duplicates are refused."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.records: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            self._read()

    def _read(self) -> None:
        raw = self.path.read_bytes()
        end = raw.rfind(b"\n") + 1
        if end < len(raw):  # a torn last line from a crash mid-write: drop it, that unit runs again
            with self.path.open("r+b") as f:
                f.truncate(end)
            raw = raw[:end]
        for n, line in enumerate(raw.decode("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ConfigError(
                    f"{self.path}:{n} is not a JSON line ({e}); the results file is damaged: "
                    "delete that line (the unit will run again) or start a new --out folder"
                ) from e
            if not isinstance(rec, dict) or not isinstance(rec.get("key"), str):
                raise ConfigError(
                    f"{self.path}:{n} is not a results record (no 'key'); the results file is "
                    "damaged: delete that line (the unit will run again) or start a new --out"
                )
            self.records[rec["key"]] = rec

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def __len__(self) -> int:
        return len(self.records)

    def append(self, record: dict[str, Any]) -> None:
        """Add one record durably (strict JSON: NaN/inf become null). On a write failure (full disk)
        the file is cut back to its previous length and a FileWriteError says how to resume."""
        key = record["key"]
        if key in self.records:
            raise ConfigError(f"unit {key!r} is already in {self.path}; it must not run twice")
        line = dumps(record, default=_plain) + "\n"
        size = self.path.stat().st_size if self.path.exists() else 0
        try:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            try:  # no torn line in the middle of the file: the next append would follow it
                os.truncate(self.path, size)
            except OSError:
                pass
            raise FileWriteError(
                describe_failure(self.path, e, True).replace(
                    f"the previous {self.path.name} is untouched",
                    "the answers recorded so far are kept: rerun the same command to resume",
                )
            ) from e
        self.records[key] = json.loads(line)  # as it reads back from disk (null, not NaN)


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file so that it is either absent or complete (lvsal_nb.atomic: temp file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, data)


def _plain(x):
    """numpy scalars and similar to plain JSON."""
    if hasattr(x, "item"):
        return x.item()
    if isinstance(x, (set, frozenset, tuple)):
        return list(x)
    raise TypeError(f"cannot write {type(x).__name__} to the results file")
