"""Token labels at scale: CHAIR's (or POPE's) ground truth per object token, confirmed or corrected by
the analyst, both kept.

- source "chair": derived from the run's ground truth by mentions.py for every object token
  (POPE runs: the "yes" token, from the question's truth). Never stored: always recomputable.
- source "human": the analyst's marks, in a MarkStore of the run (`RUN/dashboard/marks.sqlite3`
  unless another store is given): "confirm" writes the chair label as the analyst's mark,
  "correct" writes the other one. Any author's latest mark of a token wins.
- "combined": the human label where there is one, else the chair label.

The MarkStore has no source column; the source is a column of the tables made here (`labels_table`),
so the store's schema stays as it is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..annotations import MarkStore
from ..errors import ConfigError
from .rundir import CACHE_DIR

SOURCES = ("chair", "human", "combined")
MARKS_FILE = "marks.sqlite3"


class LabelBook:
    """The labels of one run's tokens. `tokens` is the token index (tokens.py), one row per token.

    Args:
        store: the MarkStore for human labels. Default: `RUN/dashboard/marks.sqlite3`.
        author: name saved with marks. Default: $LVSAL_AUTHOR or the login name.
    """

    def __init__(
        self, run: Path, tokens: pd.DataFrame, store: MarkStore | None = None, author: str | None = None
    ):
        self.tokens = tokens
        self.store = store or MarkStore(Path(run) / CACHE_DIR / MARKS_FILE)
        self.author = author
        self._pos = {(t, int(s)): i for i, (t, s) in enumerate(zip(tokens["trace_id"], tokens["step"]))}
        self.version = 0  # bumped by every change of the human labels (views cache per version)
        self.human = pd.Series(pd.NA, index=tokens.index, dtype="object")  # "hallucinated"/"correct"/"unsure"
        self.reload()

    def reload(self) -> None:
        """Read the human marks again (another dashboard or notebook may have written some)."""
        self.human[:] = pd.NA
        self.version += 1
        marks = self.store.marks()
        if len(marks):
            marks = marks.drop_duplicates(["trace_id", "step"], keep="last")
            for t, s, lab in zip(marks["trace_id"], marks["step"], marks["label"]):
                i = self._pos.get((t, int(s)))
                if i is not None:
                    self.human.iat[i] = lab

    def _row(self, trace_id: str, step: int) -> int:
        i = self._pos.get((trace_id, int(step)))
        if i is None:
            raise ConfigError(
                f"no token {step} of trace {trace_id!r} in this run; pick a token of the "
                "answer shown (steps are 0-based)"
            )
        return i

    def mark(self, trace_id: str, step: int, label: str) -> None:
        """Store the analyst's label of one token (source "human")."""
        i = self._row(trace_id, step)
        self.store.add(
            trace_id,
            int(step),
            label,
            token=str(self.tokens["token"].iat[i]),
            author=self.author,
            note="dashboard",
        )
        self.human.iat[i] = label
        self.version += 1

    def confirm(self, trace_id: str, step: int) -> str:
        """Keep CHAIR's label of a token as the analyst's; returns it. A token CHAIR did not label
        cannot be confirmed: mark it instead."""
        lab = self.tokens["chair_label"].iat[self._row(trace_id, step)]
        if not lab:
            raise ConfigError(
                f"token {step} of trace {trace_id!r} has no CHAIR label to confirm; mark it "
                "'hallucinated', 'correct' or 'unsure' instead"
            )
        self.mark(trace_id, step, lab)
        return lab

    def correct(self, trace_id: str, step: int) -> str:
        """Flip CHAIR's label of a token (hallucinated <-> correct) as the analyst's; returns the new one."""
        lab = self.tokens["chair_label"].iat[self._row(trace_id, step)]
        if not lab:
            raise ConfigError(
                f"token {step} of trace {trace_id!r} has no CHAIR label to correct; mark it "
                "'hallucinated' or 'correct' instead"
            )
        new = "correct" if lab == "hallucinated" else "hallucinated"
        self.mark(trace_id, step, new)
        return new

    def hallucinated(self, source: str = "combined") -> pd.Series:
        """Per token: True (hallucinated), False (correct) or NA (unlabelled or unsure), by source."""
        if source not in SOURCES:
            raise ConfigError(f"label source must be one of {SOURCES}, got {source!r}")
        chair = self.tokens["chair_label"].replace("", pd.NA)
        lab = {"chair": chair, "human": self.human, "combined": self.human.fillna(chair)}[source]
        lab = lab.where(lab.isin(["hallucinated", "correct"]))
        return lab.map({"hallucinated": True, "correct": False}).astype("boolean")

    def labels_table(self) -> pd.DataFrame:
        """Every label with its source: chair rows for every object token, human rows for every mark.

        Columns: key, trace_id, method, item_id, step, token, object, label, source, author, time.
        """
        t = self.tokens
        cols = ["key", "trace_id", "method", "item_id", "step", "token", "object"]
        chair = t.loc[t["chair_label"] != "", cols].assign(
            label=t.loc[t["chair_label"] != "", "chair_label"], source="chair", author="", time=""
        )
        marks = self.store.marks()
        known = {(a, int(b)) for a, b in self._pos}
        ours = np.asarray(
            [(a, int(b)) in known for a, b in zip(marks["trace_id"], marks["step"])], dtype=bool
        )
        marks = marks[ours]  # a boolean array: an empty list would select no columns
        where = [self._pos[(a, int(b))] for a, b in zip(marks["trace_id"], marks["step"])]
        human = (
            t.iloc[where][cols]
            .reset_index(drop=True)
            .assign(
                label=marks["label"].to_numpy(),
                source="human",
                author=marks["author"].to_numpy(),
                time=marks["time"].to_numpy(),
            )
        )
        return pd.concat([chair, human], ignore_index=True)

    def token_table(self) -> pd.DataFrame:
        """The token index with the labels of each source: chair_label, human_label, label (combined)."""
        t = self.tokens.copy()
        t["human_label"] = self.human.fillna("").to_numpy()
        t["label"] = np.where(t["human_label"] != "", t["human_label"], t["chair_label"])
        return t
