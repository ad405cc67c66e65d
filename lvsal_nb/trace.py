"""Trace: the immutable record of one traced generation, its pandas views and its file formats.

Positions are absolute token indices of the full sequence (prompt + generated tokens); spans are
half-open [start, stop). A step's saliency row covers keys 0..position (the query row q that
predicted the step's token), one row per target layer: `row[layer_i, key]`.

Files and payloads: `*.lvsal.parquet` (one row per step; metadata `lvsal.trace` = the JSON below,
`lvsal.sha256` = a checksum of everything, verified on load) and `*.lvsal.json` / the MIME payload.
All JSON written is strict: a non-finite number (NaN, ±Infinity) is written as `null` (read back as
NaN for prob/logprob/row entries, None for optional fields). Writes are atomic (lvsal_nb.atomic).
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import uuid
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .atomic import dumps, finite, replacing, write_text
from .errors import ConfigError, TraceFileError

SCHEMA_VERSION = 1
MIME_TYPE = "application/vnd.lvsal.trace+json"
_META_KEY = b"lvsal.trace"
_SUM_KEY = b"lvsal.sha256"  # content checksum of a Parquet trace, see _content_digest
CONTEXTS = ("text", "outputs")


@dataclass(frozen=True)
class Spans:
    """Where each part of the sequence lives: half-open [start, stop) token positions.

    `image` is None for a text-only prompt. `output` grows as tokens are generated.
    """

    system: tuple[int, int]
    image: tuple[int, int] | None
    prompt: tuple[int, int]
    output: tuple[int, int]

    def context(self, q: int, context: str = "text") -> np.ndarray:
        """The key positions J averaged into a score for query row q.

        "text": every position after the image (or after the system part when there is no image)
        up to and including q — the official code's choice, never empty. "outputs": generated
        positions up to q only (empty at the first step).
        """
        if context == "text":
            start = self.image[1] if self.image else self.prompt[0]
        elif context == "outputs":
            start = self.output[0]
        else:
            raise ConfigError(f"context must be one of {CONTEXTS}, got {context!r}")
        return np.arange(start, q + 1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready {name: [start, stop] or None}."""
        return {k: (list(v) if v is not None else None) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Spans:
        """Inverse of `to_dict`."""
        return cls(**{k: (tuple(v) if v is not None else None) for k, v in d.items()})  # type: ignore[arg-type]


@dataclass
class Candidate:
    """One scored candidate token at a step (SGRS scores top-K; plain decoding scores the chosen one)."""

    token_id: int
    token: str
    prob: float
    saliency: float | None
    layer_scores: list[float] | None = None
    round: int | None = None  # SGRS draw index (0-based) at which it was tried; None = never drawn
    accepted: bool = False


@dataclass
class Step:
    """One generated token. `position` is q, the query row that predicted it (the token sits at q+1)."""

    step: int
    position: int
    token_id: int
    token: str  # decoded text piece with its own spacing: "".join(tokens) is the text
    prob: float
    logprob: float
    saliency: float | None
    layer_scores: list[float] | None = None
    row: np.ndarray | None = None  # [layers, position + 1] float32, head-mean, l2-normalised
    tau: float | None = None
    decision: str = "greedy"  # greedy | sampled | accepted | fallback | forced
    round: int | None = None
    candidates: list[Candidate] = field(default_factory=list)
    # `prob`/`logprob` are the model's (temperature 1); these are the sampling distribution's
    # (temperature, top-p applied, renormalised); None when nothing was sampled (greedy, SGRS ...)
    sample_prob: float | None = None
    sample_logprob: float | None = None


@dataclass(eq=False)
class Trace:
    """A traced generation. `table` and `candidates` are DataFrames; `records` the Step objects.

    Examples::

        tr = session.trace(image, "Describe the image.", max_new_tokens=16)
        tr.table[["token", "saliency"]]      # one row per generated token
        tr.matrix().shape                    # (n_steps, n_positions)
        tr.save("run.lvsal.parquet"); Trace.load("run.lvsal.parquet")
    """

    records: list[Step]
    token_ids: list[int]  # the full sequence: prompt + generated
    tokens: list[str]  # text of every position (image tokens as "<image>")
    spans: Spans
    config: dict[str, Any]  # layers, context, engine, decoding, sgrs, locore, model_id, seed, dtype, device
    prompt: str = ""
    image_digest: str | None = None
    image_grid: tuple[int, int] | None = None  # patch grid (rows, cols) of the image span
    image_png: bytes | None = None  # small thumbnail for viewers
    trace_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    created: str = field(
        default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    )
    interrupted: bool = False

    # ---- views -------------------------------------------------------------------------------
    @property
    def layers(self) -> list[int]:
        """The target decoder layers (0-based) whose rows were recorded, in `config`'s order."""
        return list(self.config.get("layers", []))

    @property
    def text(self) -> str:
        """The generated text, without special tokens such as EOS (they stay in `table`)."""
        special = set(self.config.get("special_token_ids", []))
        return "".join(s.token for s in self.records if s.token_id not in special)

    @property
    def table(self) -> pd.DataFrame:
        """One row per generated token: step, position, token_id, token, prob, logprob, saliency,
        s_L<l> per target layer, tau, decision, round, n_candidates, sample_prob, sample_logprob.

        prob/logprob: the model's distribution (temperature 1); sample_prob/sample_logprob: the
        distribution the token was sampled from (temperature, top-p), NaN when none was sampled."""
        rows = []
        for s in self.records:
            r = {
                "step": s.step,
                "position": s.position,
                "token_id": s.token_id,
                "token": s.token,
                "prob": s.prob,
                "logprob": s.logprob,
                "saliency": np.nan if s.saliency is None else s.saliency,
            }
            for l, v in zip(self.layers, s.layer_scores or [np.nan] * len(self.layers)):
                r[f"s_L{l}"] = v
            r.update(
                tau=np.nan if s.tau is None else s.tau,
                decision=s.decision,
                round=pd.NA if s.round is None else s.round,
                n_candidates=len(s.candidates),
                sample_prob=np.nan if s.sample_prob is None else s.sample_prob,
                sample_logprob=np.nan if s.sample_logprob is None else s.sample_logprob,
            )
            rows.append(r)
        df = pd.DataFrame(rows)
        if not rows:
            df = pd.DataFrame(
                columns=["step", "position", "token_id", "token", "prob", "logprob", "saliency"]
            )
        return df

    @property
    def steps(self) -> pd.DataFrame:
        """Deprecated name of `table` (the DataFrame); the Step objects are `records`."""
        warnings.warn(
            "Trace.steps is deprecated: the DataFrame is Trace.table (the Step objects are Trace.records)",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.table

    @property
    def candidates(self) -> pd.DataFrame:
        """Every scored candidate of every step (accepted or rejected)."""
        rows = [
            {
                "step": s.step,
                "token_id": c.token_id,
                "token": c.token,
                "prob": c.prob,
                "saliency": np.nan if c.saliency is None else c.saliency,
                "round": pd.NA if c.round is None else c.round,
                "accepted": c.accepted,
            }
            for s in self.records
            for c in s.candidates
        ]
        cols = ["step", "token_id", "token", "prob", "saliency", "round", "accepted"]
        return pd.DataFrame(rows, columns=cols)

    def matrix(self, layer: int | None = None) -> np.ndarray:
        """Output steps x context positions: row q of every step, NaN past q.

        Args:
            layer: a target layer index (as in `self.layers`), or None for the mean over layers.
        Returns:
            float32 array [n_steps, len(self.token_ids)].
        """
        n = len(self.token_ids)
        out = np.full((len(self.records), n), np.nan, dtype=np.float32)
        if layer is not None and layer not in self.layers:
            raise ConfigError(f"layer {layer} was not traced; traced layers are {self.layers}")
        for i, s in enumerate(self.records):
            if s.row is None:
                continue
            r = s.row.mean(0) if layer is None else s.row[self.layers.index(layer)]
            out[i, : r.shape[0]] = r
        return out

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        eng = self.config.get("engine", "?")
        return (
            f"<Trace {self.trace_id}: {len(self.records)} steps, engine={eng}, "
            f"layers={self.layers}, text={self.text[:60]!r}>"
        )

    # ---- rich display (the JupyterLab extension renders MIME_TYPE without a kernel) ---------
    def _repr_mimebundle_(self, include=None, exclude=None):
        # strict JSON: a NaN/inf would make JupyterLab refuse the whole notebook output
        return {"text/plain": repr(self), MIME_TYPE: finite(self.to_json(digits=5))}

    # ---- JSON --------------------------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        return {
            "schema": "lvsal.trace",
            "schema_version": SCHEMA_VERSION,
            "trace_id": self.trace_id,
            "created": self.created,
            "prompt": self.prompt,
            "config": self.config,
            "spans": self.spans.to_dict(),
            "tokens": self.tokens,
            "token_ids": self.token_ids,
            "image_digest": self.image_digest,
            "image_grid": list(self.image_grid) if self.image_grid else None,
            "image_png": base64.b64encode(self.image_png).decode() if self.image_png else None,
            "interrupted": self.interrupted,
        }

    def to_json(self, digits: int | None = None, marks: Any = "store") -> dict[str, Any]:
        """Everything a viewer needs, as plain JSON: the MIME payload and the `*.lvsal.json` file.

        Args:
            digits: round every float to this many decimals (smaller notebook outputs; the rounded
                values are float64, so they print short); None keeps full precision.
            marks: the marks shown with the trace, as `"marks": [{step, label, note}]`, one per step:
                "store" (default) = the latest mark per step in the default MarkStore, a MarkStore =
                that store, a DataFrame / list of dicts with step, label (note) = those, None = none.
                An unreadable store gives no marks and says why in `"marks_error"`.
        """
        d = self._meta()
        d["layers"] = self.layers
        d["steps"] = [_step_json(s, digits) for s in self.records]
        d.update(_marks_json(self, marks))
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Trace:
        """A Trace from the dict `to_json` writes; raises TraceFileError on a schema this version
        cannot read."""
        _check_schema(d)
        records = [_step_from_json(s) for s in d["steps"]]
        return cls(
            records=records,
            token_ids=list(d["token_ids"]),
            tokens=list(d["tokens"]),
            spans=Spans.from_dict(d["spans"]),
            config=d["config"],
            prompt=d.get("prompt", ""),
            image_digest=d.get("image_digest"),
            image_grid=tuple(d["image_grid"]) if d.get("image_grid") else None,  # type: ignore[arg-type]
            image_png=base64.b64decode(d["image_png"]) if d.get("image_png") else None,
            trace_id=d["trace_id"],
            created=d["created"],
            interrupted=bool(d.get("interrupted", False)),
        )

    # ---- files ---------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write `*.parquet` (steps table + metadata + checksum) or `*.json`; the suffix decides.

        The write is atomic (lvsal_nb.atomic): on any failure (full disk ...) an existing file at
        `path` is left untouched and a FileWriteError names the path and the cause. JSON is strict:
        non-finite numbers (NaN, ±inf) are written as null.
        """
        path = Path(path)
        if path.suffix == ".json":
            return write_text(path, dumps(self.to_json()))
        if path.suffix != ".parquet":
            raise ConfigError(f"save() writes .parquet or .json files, not {path.name!r}")
        import pyarrow.parquet as pq

        table = self._table()
        with replacing(path) as tmp:
            pq.write_table(table, tmp, write_page_checksum=True)
        return path

    def _table(self):
        """The Parquet table: one row per step, metadata `lvsal.trace` (JSON) and `lvsal.sha256`."""
        import pyarrow as pa

        meta = self._meta()
        meta["steps_extra"] = [
            {
                "layer_scores": s.layer_scores,
                "candidates": [asdict(c) for c in s.candidates],
                "sample_prob": s.sample_prob,
                "sample_logprob": s.sample_logprob,
            }
            for s in self.records
        ]
        df = pd.DataFrame(
            {
                "step": pd.Series([s.step for s in self.records], dtype="int64"),
                "position": pd.Series([s.position for s in self.records], dtype="int64"),
                "token_id": pd.Series([s.token_id for s in self.records], dtype="int64"),
                "token": pd.Series([s.token for s in self.records], dtype="object"),
                "prob": pd.Series([s.prob for s in self.records], dtype="float64"),
                "logprob": pd.Series([s.logprob for s in self.records], dtype="float64"),
                "saliency": pd.Series([s.saliency for s in self.records], dtype="float64"),
                "tau": pd.Series([s.tau for s in self.records], dtype="float64"),
                "decision": pd.Series([s.decision for s in self.records], dtype="object"),
                "round": pd.Series([s.round for s in self.records], dtype="Int64"),
                "row": [
                    None if s.row is None else s.row.astype(np.float32).ravel().tolist() for s in self.records
                ],
                "row_layers": pd.Series(
                    [0 if s.row is None else int(s.row.shape[0]) for s in self.records], dtype="int64"
                ),
            }
        )
        table = pa.Table.from_pandas(df, preserve_index=False)
        raw = dumps(meta).encode()  # strict JSON: NaN/inf in settings or candidates become null
        records = _records_from_table(table.to_pandas(), meta["steps_extra"])
        digest = _content_digest(raw, records)
        return table.replace_schema_metadata(
            {**(table.schema.metadata or {}), _META_KEY: raw, _SUM_KEY: digest.encode()}
        )

    @classmethod
    def load(cls, path: str | Path) -> Trace:
        """Read a trace written by `save` (Parquet or JSON).

        Every failure (missing, truncated or damaged file, another kind of file, missing metadata,
        a checksum that does not match the content, a newer schema) raises TraceFileError naming the
        file and what to do. Parquet files written before checksums existed load with a warning.
        """
        path = Path(path)
        if not path.exists():
            raise TraceFileError(f"no trace file at {str(path)!r}; check the path")
        if path.suffix == ".json":
            try:
                d = json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise TraceFileError(
                    f"{path.name} is not valid JSON ({e}); was it written by Trace.save?"
                ) from e
            except OSError as e:
                raise TraceFileError(f"cannot read {path} ({e}); check the file and its permissions") from e
            try:
                return cls.from_json(d)
            except TraceFileError as e:
                raise TraceFileError(f"{path.name}: {e}") from e
            except Exception as e:  # fields missing or of the wrong type
                raise TraceFileError(
                    f"{path.name} is JSON but not a complete lvsal trace ({type(e).__name__}: {e}); "
                    "re-export the trace with Trace.save"
                ) from e
        try:
            return cls._load_parquet(path)
        except TraceFileError:
            raise
        except Exception as e:  # pyarrow, json and numpy raise many types for damaged files
            raise TraceFileError(
                f"{path.name} is not a readable lvsal trace ({type(e).__name__}: {e}); the file is "
                "damaged: re-export the trace (Trace.save) or restore it from a copy"
            ) from e

    @classmethod
    def _load_parquet(cls, path: Path) -> Trace:
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path, page_checksum_verification=True)
        except Exception as e:
            raise TraceFileError(
                f"{path.name} is not a readable Parquet file ({type(e).__name__}: {e}); it is damaged or "
                "of another kind: re-export the trace (Trace.save) or restore it from a copy"
            ) from e
        smeta = table.schema.metadata or {}
        raw = smeta.get(_META_KEY)
        if raw is None:
            raise TraceFileError(
                f"{path.name} is Parquet but not an lvsal trace (no {_META_KEY.decode()} metadata)"
            )
        try:
            meta = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise TraceFileError(
                f"{path.name}: its lvsal.trace metadata is damaged ({e}); restore the file from a copy"
            ) from e
        if not isinstance(meta, dict):
            raise TraceFileError(
                f"{path.name}: its lvsal.trace metadata is not a JSON object; the file is damaged"
            )
        try:
            _check_schema(meta)
        except TraceFileError as e:
            raise TraceFileError(f"{path.name}: {e}") from e
        records = _records_from_table(table.to_pandas(), meta["steps_extra"])
        stored = smeta.get(_SUM_KEY)
        if stored is None:
            warnings.warn(
                f"{path.name} has no checksum (written by an older lvsal-nb): its numbers cannot be "
                "verified; save it again to add one",
                UserWarning,
                stacklevel=3,
            )
        elif stored.decode("ascii", "replace") != _content_digest(raw, records):
            raise TraceFileError(
                f"{path.name} is damaged: its content does not match its checksum (a changed byte); "
                "restore the file from a copy or re-export the trace"
            )
        meta["steps"] = []
        tr = cls.from_json(meta)
        tr.records = records
        return tr


def _records_from_table(df: pd.DataFrame, steps_extra: list[dict[str, Any]]) -> list[Step]:
    """Steps from the Parquet table (one row per step) and the per-step extras of the metadata."""
    if len(steps_extra) != len(df):
        raise TraceFileError(f"the table has {len(df)} steps but the metadata {len(steps_extra)}")
    records = []
    for i, r in enumerate(df.itertuples(index=False)):
        extra = steps_extra[i]
        row = None
        if r.row is not None and r.row_layers:
            row = np.asarray(r.row, dtype=np.float32).reshape(int(r.row_layers), -1)
        records.append(
            Step(
                step=int(r.step),
                position=int(r.position),
                token_id=int(r.token_id),
                token=r.token,
                prob=float(r.prob),
                logprob=float(r.logprob),
                saliency=_opt_float(r.saliency),
                layer_scores=extra["layer_scores"],
                row=row,
                tau=_opt_float(r.tau),
                decision=r.decision,
                round=None if pd.isna(r.round) else int(r.round),
                candidates=[Candidate(**c) for c in extra["candidates"]],
                sample_prob=extra.get("sample_prob"),  # (absent in older files)
                sample_logprob=extra.get("sample_logprob"),
            )
        )
    return records


def _content_digest(meta_raw: bytes, records: list[Step]) -> str:
    """sha256 of everything a loaded trace holds: the metadata bytes and every step's values as
    they come back (floats by their exact repr, rows by their float32 bytes and shape), so any
    changed value, token or setting changes the digest."""
    h = hashlib.sha256(meta_raw)
    for s in records:
        scalars = (s.step, s.position, s.token_id, s.token, s.prob, s.logprob, s.saliency, s.tau,
                   s.decision, s.round)  # fmt: skip
        h.update(repr(scalars).encode())
        if s.row is None:
            h.update(b"|none|")
        else:
            h.update(repr(s.row.shape).encode())
            h.update(np.ascontiguousarray(s.row, dtype=np.float32).tobytes())
    return h.hexdigest()


def _nan_if_none(x) -> float:
    return float("nan") if x is None else x


def _opt_float(x) -> float | None:
    return None if x is None or (isinstance(x, float) and np.isnan(x)) else float(x)


def _check_schema(d: dict[str, Any]) -> None:
    if d.get("schema") != "lvsal.trace":
        raise TraceFileError("not an lvsal trace (missing schema 'lvsal.trace')")
    v = d.get("schema_version")
    if not isinstance(v, int) or isinstance(v, bool):
        raise TraceFileError(f"the trace has no valid schema_version ({v!r}); the file is damaged")
    if v > SCHEMA_VERSION:
        raise TraceFileError(
            f"trace schema version {v} is newer than this lvsal-nb reads ({SCHEMA_VERSION}); "
            "upgrade lvsal-nb (pip install -U lvsal-nb)"
        )


def _marks_json(tr: Trace, marks: Any) -> dict[str, Any]:
    """The payload's `marks` entry (see Trace.to_json); steps outside the trace are dropped."""
    from .annotations import LABELS, MarkStore  # lazy: the store is optional for a payload
    from .errors import LvsalError

    if marks is None:
        return {}
    if isinstance(marks, str) and marks == "store":
        marks = MarkStore()
    if isinstance(marks, MarkStore):
        try:
            marks = marks.latest(tr.trace_id)
        except LvsalError as e:  # a damaged store must not hide the trace itself
            return {"marks": [], "marks_error": str(e)}
    rows = marks.to_dict("records") if isinstance(marks, pd.DataFrame) else list(marks)
    out: dict[int, dict[str, Any]] = {}
    for r in rows:
        step, label = int(r["step"]), str(r["label"])
        if 0 <= step < len(tr.records) and label in LABELS:
            out[step] = {"step": step, "label": label, "note": str(r.get("note") or "")}
    return {"marks": [out[k] for k in sorted(out)]}


def _step_json(s: Step, digits: int | None) -> dict[str, Any]:
    def rnd(x):
        return None if x is None else (float(x) if digits is None else round(float(x), digits))

    return {
        "step": s.step,
        "position": s.position,
        "token_id": s.token_id,
        "token": s.token,
        "prob": rnd(s.prob),
        "logprob": rnd(s.logprob),
        "sample_prob": rnd(s.sample_prob),
        "sample_logprob": rnd(s.sample_logprob),
        "saliency": rnd(s.saliency),
        "layer_scores": None if s.layer_scores is None else [rnd(x) for x in s.layer_scores],
        "row": None
        if s.row is None
        else (s.row.tolist() if digits is None else np.round(s.row.astype(np.float64), digits).tolist()),
        # float64 before rounding: a float32 0.12346 widens to 0.12345999479293823 in JSON
        "tau": rnd(s.tau),
        "decision": s.decision,
        "round": s.round,
        "candidates": [
            {
                "token_id": c.token_id,
                "token": c.token,
                "prob": rnd(c.prob),
                "saliency": rnd(c.saliency),
                "layer_scores": None if c.layer_scores is None else [rnd(x) for x in c.layer_scores],
                "round": c.round,
                "accepted": c.accepted,
            }
            for c in s.candidates
        ],
    }


def _step_from_json(d: dict[str, Any]) -> Step:
    row = None if d.get("row") is None else np.asarray(d["row"], dtype=np.float32)
    return Step(
        step=d["step"],
        position=d["position"],
        token_id=d["token_id"],
        token=d["token"],
        prob=_nan_if_none(d["prob"]),  # strict JSON holds a non-finite number as null
        logprob=_nan_if_none(d["logprob"]),
        saliency=d["saliency"],
        layer_scores=d.get("layer_scores"),
        row=row,
        tau=d.get("tau"),
        decision=d.get("decision", "greedy"),
        round=d.get("round"),
        candidates=[Candidate(**c) for c in d.get("candidates", [])],
        sample_prob=d.get("sample_prob"),  # (absent in older files)
        sample_logprob=d.get("sample_logprob"),
    )
