"""What a trace was asked to do (`TraceSettings`, frozen, validated once) and what was measured while
it ran (`RunRecord`, mutable): together they are a Trace's `config` dict.

`Session.trace` / `Session.analyze` build the settings with `TraceSettings.checked(...)`: every
setting is validated there (a ConfigError names the fix), LocoRE's beta resolved from the adapter
and the engine chosen, so the engines and the decode loop read typed fields and never re-check.
`config(...)` writes the dict a Trace records, with the same keys, values and order as ever (saved
traces and marks' fingerprints depend on them; tests/test_trace_meta_golden.py).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .decoding import sampling
from .decoding.locore import LocoRE
from .decoding.sgrs import SGRS
from .errors import ConfigError
from .trace import CONTEXTS

ENGINES = ("auto", "sequence", "step")
MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed's range


@dataclass(frozen=True)
class TraceSettings:
    """Validated settings of one trace or analysis (see `Session.trace` for each one's meaning).

    Attributes:
        max_new_tokens: tokens to generate (analyze: the output's length).
        decoding: "greedy" | "sample" | "forced" (analyze: the tokens are given).
        temperature, top_p: the sampling distribution's (recorded for "forced" as well: unused).
        seed: the trace's generator seed; None for an analysis (nothing is drawn).
        sgrs: SGRS settings, or None.
        locore: LocoRE settings with beta resolved from the adapter, or None.
        layers: sorted distinct decoder layers read (default: the adapter's).
        context: "text" | "outputs" (PAPER.md's J).
        engine: the engine that runs: "step" | "sequence" ("auto" resolved).
        alternatives: extra candidates scored per step.
        chunk: sequence-engine positions per pass (None: all at once).
        generate_kwargs: transformers' `generate` keywords (non-empty: its decoding runs).
    """

    max_new_tokens: int
    decoding: str
    layers: tuple[int, ...]
    context: str
    engine: str
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    sgrs: SGRS | None = None
    locore: LocoRE | None = None
    alternatives: int = 0
    chunk: int | None = None
    generate_kwargs: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def checked(
        cls,
        adapter,
        vocab: int,
        *,
        max_new_tokens,
        decoding,
        temperature,
        top_p,
        sgrs,
        locore,
        layers,
        context,
        engine,
        alternatives,
        chunk,
        seed,
        generate_kwargs: Mapping[str, Any],
    ) -> TraceSettings:
        """Validate a call's settings against the model (its adapter and vocabulary size `vocab`).

        Args:
            seed: None for an analysis (`decoding="forced"`), else an int in 0..2**63-1.
            locore: LocoRE settings, a beta (float) or None; beta=None resolves to the adapter's.
            engine: "auto" | "sequence" | "step" ("auto": step for SGRS, else sequence).
        Returns:
            The frozen settings. Raises ConfigError naming the fix for anything out of range.
        """
        if seed is not None:
            check_seed(seed)
        check_chunk(chunk)
        if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be an integer >= 1, got {max_new_tokens!r}")
        sampling.check_sampling("greedy" if decoding == "forced" else decoding, temperature, top_p)
        if context not in CONTEXTS:
            raise ConfigError(f"context must be one of {CONTEXTS}, got {context!r}")
        if engine not in ENGINES:
            raise ConfigError(f"engine must be one of {ENGINES}, got {engine!r}")
        if sgrs is not None and not isinstance(sgrs, SGRS):
            raise ConfigError("sgrs must be an lvsal_nb.SGRS(...) or None")
        if sgrs is not None and engine == "sequence":
            raise ConfigError("SGRS scores candidates before choosing: it needs engine='step' (or 'auto')")
        if sgrs is not None and generate_kwargs:
            raise ConfigError(
                f"SGRS runs its own decoding loop; drop the generate keywords {sorted(generate_kwargs)}"
            )
        if generate_kwargs and engine == "step":
            raise ConfigError("generate keywords run transformers' generate: use engine='sequence' or 'auto'")
        if not isinstance(alternatives, int) or alternatives < 0:
            raise ConfigError(f"alternatives must be an integer >= 0, got {alternatives!r}")
        locore = _locore(locore, adapter)
        if alternatives + 1 > vocab:
            raise ConfigError(
                f"alternatives={alternatives} asks for {alternatives + 1} candidates per step, but this "
                f"model's vocabulary has {vocab} tokens; use alternatives <= {vocab - 1}"
            )
        if sgrs is not None and sgrs.k > vocab:
            raise ConfigError(
                f"SGRS k={sgrs.k} is larger than this model's vocabulary ({vocab} tokens); use k <= {vocab}"
            )
        lay = adapter.check_layers(layers)
        if locore is not None and locore.layers is not None:
            adapter.check_layers(locore.layers)
        return cls(
            max_new_tokens=max_new_tokens,
            decoding=decoding,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            sgrs=sgrs,
            locore=locore,
            layers=tuple(lay),
            context=context,
            engine="step" if engine == "step" or (engine == "auto" and sgrs is not None) else "sequence",
            alternatives=alternatives,
            chunk=chunk,
            generate_kwargs=MappingProxyType(dict(generate_kwargs)),
        )

    @property
    def k(self) -> int:
        """Candidates scored per step by the step engine: SGRS's K, else the token + alternatives."""
        return self.sgrs.k if self.sgrs is not None else self.alternatives + 1

    def config(self, model: Mapping[str, str]) -> dict[str, Any]:
        """The settings part of a Trace's `config` dict (keys and order as every Trace has them).

        Args:
            model: {"model_id", "family", "device", "dtype"} of the Session, as strings.
        """
        out: dict[str, Any] = {
            "layers": list(self.layers),
            "context": self.context,
            "decoding": self.decoding,
            "engine": self.engine,
            "sgrs": self.sgrs.to_dict() if self.sgrs else None,
            "locore": self.locore.to_dict() if self.locore else None,
            "alternatives": self.alternatives,
            "chunk": self.chunk,
            # only plain values: a streamer or a logits processor is not a setting a file can hold
            "generate": {
                k: v for k, v in self.generate_kwargs.items() if isinstance(v, (int, float, str, bool))
            },
            **{k: model[k] for k in ("model_id", "family", "device", "dtype")},
            "max_new_tokens": self.max_new_tokens,
        }
        if self.decoding != "forced":  # an analysis draws nothing: no seed, no distribution
            out.update(seed=self.seed, temperature=self.temperature, top_p=self.top_p)
        return out


@dataclass
class RunRecord:
    """What was measured while a trace ran (host seconds), for the Trace's `config["timing"]` and
    `config["step_loop"]`.

    Attributes:
        analysis_s: sequence-engine time spent scoring (s).
        capture_s: the own loop's CUDA graph capture time (s); None when no own loop ran.
        total_s: the whole trace (s); None until it ends.
        step_loop: which own loop ran ("dynamic", "static", "static, CUDA graphs"); None: none.
        interrupted: Ctrl-C or the stop event ended it early.
    """

    analysis_s: float = 0.0
    capture_s: float | None = None
    total_s: float | None = None
    step_loop: str | None = None
    interrupted: bool = False
    started: float = field(default_factory=time.perf_counter, repr=False)

    def restart(self) -> None:
        """Forget a failed attempt's measurements (a rerun after running out of memory)."""
        self.analysis_s = 0.0

    def record_loop(self, loop) -> None:
        """Which own loop ran (after the run: a failed graph capture falls back) and its capture time."""
        self.step_loop = loop.kind
        self.capture_s = loop.capture_s

    def finish(self) -> None:
        """Stamp the total time."""
        self.total_s = time.perf_counter() - self.started

    def config(self) -> dict[str, Any]:
        """The measured part of a Trace's `config` dict: {"timing": {...}, "step_loop": ...}."""
        timing: dict[str, float] = {"analysis_s": self.analysis_s}
        if self.capture_s is not None:
            timing["capture_s"] = self.capture_s
        if self.total_s is not None:
            timing["total_s"] = self.total_s
        out: dict[str, Any] = {"timing": timing}
        if self.step_loop is not None:
            out["step_loop"] = self.step_loop
        return out


def _locore(locore, adapter) -> LocoRE | None:
    """LocoRE settings from a LocoRE, a beta or None; beta=None resolved from the adapter (one source)."""
    if isinstance(locore, (int, float)) and not isinstance(locore, bool):
        locore = LocoRE(beta=float(locore))
    if locore is not None and not isinstance(locore, LocoRE):
        raise ConfigError("locore must be an lvsal_nb.LocoRE(...), a beta, or None")
    return locore.for_adapter(adapter) if locore is not None else None


def check_seed(seed) -> None:
    """A seed is an int in 0..2**63-1 (torch.Generator's range); else ConfigError."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed must be an integer in 0..2**63-1, got {seed!r}")


def check_chunk(chunk) -> None:
    """A chunk is an int >= 1 or None; else ConfigError."""
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
        raise ConfigError(
            f"chunk must be an integer >= 1 (positions per sequence-engine pass) or None (all at once), "
            f"got {chunk!r}"
        )
