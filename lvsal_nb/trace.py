"""Trace: the immutable record of one traced generation, its pandas views and its file formats.

Positions are absolute token indices of the full sequence (prompt + generated tokens); spans are
half-open [start, stop). A step's saliency row covers keys 0..position (the query row q that
predicted the step's token), one row per target layer: `row[layer_i, key]`.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import ConfigError, TraceFileError

SCHEMA_VERSION = 1
MIME_TYPE = "application/vnd.lvsal.trace+json"
_META_KEY = b"lvsal.trace"
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
        return {k: (list(v) if v is not None else None) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Spans:
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
    """A traced generation. `steps` and `candidates` are DataFrames; `records` the Step objects.

    Examples::

        tr = session.trace(image, "Describe the image.", max_new_tokens=16)
        tr.steps[["token", "saliency"]]      # one row per generated token
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
        return list(self.config.get("layers", []))

    @property
    def text(self) -> str:
        """The generated text, without special tokens such as EOS (they stay in `steps`)."""
        special = set(self.config.get("special_token_ids", []))
        return "".join(s.token for s in self.records if s.token_id not in special)

    @property
    def steps(self) -> pd.DataFrame:
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
        return {"text/plain": repr(self), MIME_TYPE: self.to_json(digits=5)}

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

    def to_json(self, digits: int | None = None) -> dict[str, Any]:
        """Everything a viewer needs, as plain JSON: the MIME payload and the `*.lvsal.json` file.
        `digits` rounds floats (smaller notebook outputs); None keeps full precision."""
        d = self._meta()
        d["layers"] = self.layers
        d["steps"] = [_step_json(s, digits) for s in self.records]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Trace:
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
        """Write `*.parquet` (steps table + metadata) or `*.json`; the suffix decides."""
        path = Path(path)
        if path.suffix == ".json":
            path.write_text(json.dumps(self.to_json()))
            return path
        if path.suffix != ".parquet":
            raise ConfigError(f"save() writes .parquet or .json files, not {path.name!r}")
        import pyarrow as pa
        import pyarrow.parquet as pq

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
                "step": [s.step for s in self.records],
                "position": [s.position for s in self.records],
                "token_id": [s.token_id for s in self.records],
                "token": [s.token for s in self.records],
                "prob": [s.prob for s in self.records],
                "logprob": [s.logprob for s in self.records],
                "saliency": [s.saliency for s in self.records],
                "tau": [s.tau for s in self.records],
                "decision": [s.decision for s in self.records],
                "round": [s.round for s in self.records],
                "row": [
                    None if s.row is None else s.row.astype(np.float32).ravel().tolist() for s in self.records
                ],
                "row_layers": [0 if s.row is None else int(s.row.shape[0]) for s in self.records],
            }
        )
        table = pa.Table.from_pandas(df, preserve_index=False)
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), _META_KEY: json.dumps(meta)})
        pq.write_table(table, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Trace:
        """Read a trace written by `save` (Parquet or JSON). Raises TraceFileError with the fix."""
        path = Path(path)
        if not path.exists():
            raise TraceFileError(f"no trace file at {str(path)!r}; check the path")
        if path.suffix == ".json":
            try:
                d = json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise TraceFileError(
                    f"{path.name} is not valid JSON ({e}); was it written by Trace.save?"
                ) from e
            return cls.from_json(d)
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as e:  # pyarrow raises several types for damaged files
            raise TraceFileError(
                f"{path.name} is not a readable Parquet file ({e}); re-export the trace"
            ) from e
        raw = (table.schema.metadata or {}).get(_META_KEY)
        if raw is None:
            raise TraceFileError(
                f"{path.name} is Parquet but not an lvsal trace (no {_META_KEY.decode()} metadata)"
            )
        meta = json.loads(raw)
        _check_schema(meta)
        df = table.to_pandas()
        records = []
        for i, r in enumerate(df.itertuples(index=False)):
            extra = meta["steps_extra"][i]
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
        meta["steps"] = []
        tr = cls.from_json(meta)
        tr.records = records
        return tr


def _opt_float(x) -> float | None:
    return None if x is None or (isinstance(x, float) and np.isnan(x)) else float(x)


def _check_schema(d: dict[str, Any]) -> None:
    if d.get("schema") != "lvsal.trace":
        raise TraceFileError("not an lvsal trace (missing schema 'lvsal.trace')")
    v = d.get("schema_version")
    if not isinstance(v, int) or v > SCHEMA_VERSION:
        raise TraceFileError(
            f"trace schema version {v} is newer than this lvsal-nb reads ({SCHEMA_VERSION}); "
            "upgrade lvsal-nb (pip install -U lvsal-nb)"
        )


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
        else (s.row.tolist() if digits is None else np.round(s.row, digits).tolist()),
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
        prob=d["prob"],
        logprob=d["logprob"],
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
