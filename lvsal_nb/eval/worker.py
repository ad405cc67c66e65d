"""One evaluation worker: loads the model once, then answers work units (item × method × length).

Both engines use it: the local engine calls `Worker.run` in-process, the Ray engine wraps the same
class as an actor. A unit is a plain dict, so it travels anywhere:

    {"key", "item_id", "image": <source spec>, "prompt", "method", "max_new_tokens", "seed"}

`run(unit)` returns a dict: the output (`token_ids`, `text`), the mean saliency of its tokens,
seconds, which process answered (`worker`, "host:pid"), and the trace as Parquet bytes
(`trace_bytes`, None with traces off). Every method has
saliency: the own-loop methods record it while decoding; VCD and DoLa decode first, then
`Session.analyze` scores their tokens under the plain model (the sequence engine).

Methods come from the registry (`lvsal_nb.methods`): greedy · sgrs (SGRS, official defaults, seeded
sampling order) · locore (greedy + LocoRE with the family's β: 0.15 LLaVA, 0.20 Qwen2-VL) ·
sgrs+locore · vcd (VCD as published: its schedule, sampling) · dola (DoLa()) · opera (OPERA(), opt-in).
A unit may carry `"options"` (that method's keyword options); the answer reports every option as
it ran (`options`), defaults included.
"""

from __future__ import annotations

import math
import os
import socket
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

from lvsal_nb.errors import ConfigError
from lvsal_nb.eval.tasks import load_image_source
from lvsal_nb.methods import available, decode_method

METHODS = tuple(available())
# What `lvsal eval` runs when --methods is not given (OPERA's beams x candidates forwards are opt-in).
DEFAULT_METHODS = tuple(m for m in METHODS if m != "opera")


def check_methods(methods: list[str]) -> list[str]:
    """The methods without duplicates, in order; raises ConfigError naming unknown ones and the
    choices."""
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise ConfigError(f"unknown method(s) {bad}; --methods takes a comma list of {', '.join(METHODS)}")
    return list(dict.fromkeys(methods))


def unit_seed(seed: int, item_id: str) -> int:
    """The seed of one item: the same for every method and engine, whatever order units run in."""
    return (seed * 1_000_003 + zlib.crc32(item_id.encode())) % 2**31


class Worker:
    """Holds one Session.

    Args:
        model: "toy", "tiny:llava", a checkpoint folder or a cached hub id (`lvsal_nb.load`).
        device, dtype: None for lvsal_nb.load's defaults (CUDA + bfloat16 when available).
        traces: keep each answer's trace (VCD / DoLa then also run `Session.analyze`). Default True.
        threads: torch CPU threads, set process-wide (torch.set_num_threads); None leaves torch's.
    """

    def __init__(
        self,
        model: str,
        device: str | None = None,
        dtype: str | None = None,
        traces: bool = True,
        threads: int | None = None,
    ):
        import torch

        import lvsal_nb as lv

        if threads:
            torch.set_num_threads(int(threads))
        self.session = lv.load(model, device=device, dtype=dtype)
        self.traces = traces
        self._image_key: Any = None
        self._image = None

    def describe(self) -> dict[str, Any]:
        """What this worker runs: model_id, family, device, dtype and default layers."""
        s = self.session
        return {
            "model_id": s.model_id,
            "family": s.adapter.family,
            "device": str(s.device),
            "dtype": str(s.dtype).replace("torch.", ""),
            "layers": s.adapter.default_layers(),
        }

    def _load(self, spec: dict):
        key = tuple(sorted(spec.items()))
        if key != self._image_key:  # POPE asks six questions per image in a row: load it once
            self._image, self._image_key = load_image_source(spec), key
        return self._image

    def run(self, unit: dict[str, Any]) -> dict[str, Any]:
        """Answer one unit; raises KeyboardInterrupt if decoding was interrupted (nothing partial is kept)."""
        s, method, mnt, seed = self.session, unit["method"], int(unit["max_new_tokens"]), int(unit["seed"])
        check_methods([method])
        image = self._load(unit["image"])
        prompt = unit["prompt"]  # POPE's suffix included: the toy adapter's template takes it off itself
        t0 = time.perf_counter()
        out = decode_method(
            method,
            s,
            image,
            prompt,
            max_new_tokens=mnt,
            seed=seed,
            analyze=self.traces,
            **dict(unit.get("options") or {}),
        )
        ids, trace = out.token_ids, out.trace
        seconds = time.perf_counter() - t0
        sal = [r.saliency for r in trace.records if r.saliency is not None] if trace is not None else []
        return {
            "key": unit["key"],
            "token_ids": ids,
            "n_tokens": len(ids),
            "text": s.adapter.tokenizer.decode(ids, skip_special_tokens=True).strip(),
            "saliency": sum(sal) / len(sal) if sal and not any(math.isnan(x) for x in sal) else None,
            "seconds": seconds,
            "worker": f"{socket.gethostname()}:{os.getpid()}",
            "options": out.options,
            "trace_bytes": _trace_bytes(trace) if self.traces and trace is not None else None,
        }


def _trace_bytes(trace) -> bytes:
    """The trace as a Parquet file's bytes (so a remote worker needs no shared disk)."""
    with tempfile.TemporaryDirectory() as d:
        p = trace.save(Path(d) / "t.lvsal.parquet")
        return p.read_bytes()
