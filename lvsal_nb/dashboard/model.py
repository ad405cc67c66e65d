"""RunData: everything the dashboard shows of one run, loaded once (answers, token index, labels).

Traces are not loaded here: the trace view reads one answer's file when its row is selected.
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from ..annotations import MarkStore
from ..trace import Trace
from .labels import LabelBook
from .mentions import object_spans
from .rundir import answers_table, check_run, method_order, read_records, run_info, task_of
from .tokens import layer_columns, token_index

# The shared mark colours (coordinator's colour language): 2 px red underline, 1 px white halo.
HALLUCINATED_STYLE = (
    "text-decoration: underline; text-decoration-color: #D62728; "
    "text-decoration-thickness: 2px; text-shadow: 0 0 1px #fff; color: #D62728; "
    "font-weight: 600"
)


class RunData:
    """One run folder, read once.

    Attributes:
        answers: one row per answer (rundir.answers_table) plus `caption_html` (hallucinated objects
            underlined in red) and `row` (0..n-1, the table's row id).
        tokens: the token index (tokens.py); labels: its LabelBook; methods: in run order.
    """

    def __init__(
        self,
        run: str | Path,
        *,
        store: MarkStore | None = None,
        author: str | None = None,
        rebuild_index: bool = False,
    ):
        self.run = check_run(run)
        self.info = run_info(self.run)
        records = read_records(self.run)
        self.task = task_of(records, self.info)
        self.methods = method_order(records)
        self.answers = answers_table(records, self.task)
        self.answers["row"] = range(len(self.answers))
        self.tokens = token_index(
            self.run, records, self.task, self.info.get("dataset"), rebuild=rebuild_index
        )
        self.layer_cols = layer_columns(self.tokens)
        self.labels = LabelBook(self.run, self.tokens, store=store, author=author)
        self.answers["caption_html"] = [self._caption_html(r) for r in self.answers.itertuples()]
        self._key_rows = self.tokens.groupby("key", sort=False).indices  # key -> token rows
        self._cache: dict = {}

    def summary(self, n_boot: int = 1000, seed: int = 0):
        """The methods' summary with bootstrap intervals (stats.summary_table), computed once per run."""
        from .stats import summary_table

        key = ("summary", n_boot, seed)
        if key not in self._cache:
            self._cache[key] = summary_table(self.answers, self.task, self.methods, n_boot=n_boot, seed=seed)
        return self._cache[key]

    def curves(self, source: str, cols: list[str]) -> dict:
        """Detector curves (curves.detector_curves) for a label source, cached until the labels change:
        every page of a served run shares them."""
        from .curves import detector_curves

        key = ("curves", source, tuple(cols), self.labels.version)
        if key not in self._cache:
            self._cache = {k: v for k, v in self._cache.items() if k[0] != "curves" or k[-1] == key[-1]}
            self._cache[key] = detector_curves(self.tokens, cols, self.labels.hallucinated(source))
        return self._cache[key]

    def _caption_html(self, r) -> str:
        """The caption, escaped, with the mentions of hallucinated objects underlined in red."""
        text = r.text
        if self.task != "chair" or not getattr(r, "hallucinated", ""):
            return html.escape(text)
        bad = set(r.hallucinated.split(", "))
        out, last = [], 0
        for s, e, obj in object_spans(text, self.info.get("dataset")):
            if obj in bad:
                out += [
                    html.escape(text[last:s]),
                    f'<span style="{HALLUCINATED_STYLE}">',
                    html.escape(text[s:e]),
                    "</span>",
                ]
                last = e
        return "".join(out) + html.escape(text[last:])

    def objects(self) -> list[str]:
        """Every object named by some answer (CHAIR: mentioned; POPE: asked about), sorted."""
        if self.task == "pope":
            return sorted({str(o) for o in self.answers["object"].dropna()})
        return sorted({o for s in self.answers["objects"] for o in s.split(", ") if o})

    def filter_rows(
        self, method: str | None = None, hallucinated_only: bool = False, obj: str | None = None
    ) -> list[int]:
        """Answer rows passing the filters (method; hallucinated answers only; naming `obj`)."""
        a = self.answers
        m = pd.Series(True, index=a.index)
        if method:
            m &= a["method"] == method
        if hallucinated_only:
            m &= (a["chair_s"] > 0) if self.task == "chair" else (a["correct"] == False)  # noqa: E712
        if obj:
            if self.task == "chair":
                m &= a["objects"].map(lambda s: obj in s.split(", "))
            else:
                m &= a["object"] == obj
        return a.index[m.to_numpy()].tolist()

    def answer_tokens(self, key: str) -> pd.DataFrame:
        """The token index rows of one answer, with their labels (chair_label, human_label, label)."""
        rows = self._key_rows.get(key)
        rows = [] if rows is None else rows
        t = self.tokens.iloc[rows].copy()
        t["human_label"] = self.labels.human.iloc[rows].fillna("").to_numpy()
        t["label"] = t["human_label"].where(t["human_label"] != "", t["chair_label"])
        return t

    def load_trace(self, row: int) -> Trace | None:
        """The full Trace of one answer (None if the run kept no trace for it): read on demand only."""
        rel = self.answers["trace"].iat[row]
        return Trace.load(self.run / rel) if isinstance(rel, str) and rel else None
