"""Atomic file writes for the dashboard's cache and exports (temp file in the same folder + os.replace),
so a reader never sees half a file and a crash leaves the old file or none."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ..errors import ConfigError


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp_path)`, then rename the temp file onto `path`. Returns `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """A DataFrame to `.parquet` or `.csv` (the suffix decides), atomically."""
    path = Path(path)
    if path.suffix == ".parquet":
        return write_atomic(path, lambda p: df.to_parquet(p, index=False))
    if path.suffix == ".csv":
        return write_atomic(path, lambda p: df.to_csv(p, index=False))
    raise ConfigError(f"export writes .parquet or .csv files, not {path.name!r}; pick one of those suffixes")
