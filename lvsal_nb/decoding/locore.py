"""LocoRE — local coherence reinforcement (PAPER.md, our documented resolution).

Rows: every query q in the generated span. Keys: generated positions j with q − w < j ≤ q (j < q with
exclude_self). How: add log(1 + β) to those pre-softmax scores — "multiply by γ = 1 + β and
renormalise the row" — in every head of the chosen layers (default all). The bias is built once per
forward and shared by all layers (probe.Probe.bias_for).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass, replace

import torch

from ..errors import ConfigError
from ..saliency.probe import mask_zeros
from .sampling import is_number


@dataclass(frozen=True)
class LocoRE:
    """LocoRE settings. `beta`: the bonus γ = 1 + β on recent outputs; None (default) takes the model
    family's value from its adapter (`Adapter.locore_beta`: 0.15 LLaVA-1.5 and the toy model, 0.20
    Qwen2-VL / Qwen2.5-VL, as the paper reports), resolved by `for_adapter` when a trace or
    `lv.locore` starts. `window`: w_s, how many recent outputs get it. `layers`: decoder layers that
    apply it (None: all). `exclude_self`: leave the query's own key out."""

    beta: float | None = None
    window: int = 5
    layers: tuple[int, ...] | None = None
    exclude_self: bool = False

    def __post_init__(self):
        if self.beta is not None and (not is_number(self.beta) or not 0 <= self.beta < math.inf):
            raise ConfigError(
                f"LocoRE beta must be >= 0 and finite (the paper uses 0.1-0.3), got {self.beta!r}"
            )
        if not _is_int(self.window) or self.window < 1:
            raise ConfigError(f"LocoRE window must be an integer >= 1, got {self.window!r}")
        if self.layers is not None:
            if isinstance(self.layers, str) or not hasattr(self.layers, "__iter__"):
                raise ConfigError(
                    f"LocoRE layers must be a list of layer indices or None, got {self.layers!r}"
                )
            if not all(_is_int(l) for l in self.layers):
                raise ConfigError(f"LocoRE layers must be integer layer indices, got {self.layers!r}")
            object.__setattr__(self, "layers", tuple(int(l) for l in self.layers))

    def to_dict(self) -> dict:
        """The settings as a plain dict (the Trace's config["locore"])."""
        return asdict(self)

    def for_adapter(self, adapter) -> LocoRE:
        """These settings with beta resolved: the family's default (`adapter.locore_beta`) if unset."""
        return self if self.beta is not None else replace(self, beta=float(adapter.locore_beta))

    def mask(self, q_pos: torch.Tensor, kv_len: int, output_start: int) -> torch.Tensor:
        """Boolean [q, kv]: which (row, key) pairs get the bonus."""
        j = torch.arange(kv_len, device=q_pos.device)[None, :]
        q = q_pos[:, None]
        upper = j < q if self.exclude_self else j <= q
        return (q >= output_start) & (j >= output_start) & (j > q - self.window) & upper

    def row_bias(self, q: int, kv_len: int, start: int, device, dtype, bonus: float) -> torch.Tensor:
        """`mask` of the single row q (a host int) times the bonus: [1, kv], aligned for SDPA."""
        out = mask_zeros((1, kv_len), dtype, device)
        hi = q - 1 if self.exclude_self else q
        lo = max(start, q - self.window + 1)
        if q >= start and lo <= hi:
            out[:, lo : hi + 1] = bonus
        return out

    def bias_fn(self, output_start: int | None = None):
        """A probe bias function. With output_start=None the generated span is taken to start where
        a fresh prefill ends (for wrapping a plain `model.generate`)."""
        if self.beta is None:
            raise ConfigError("LocoRE beta is unset: resolve it with .for_adapter(adapter) first")
        state = {"start": output_start}
        bonus = math.log1p(self.beta)

        def fn(q_pos: torch.Tensor | range, kv_len: int, device, dtype):
            if output_start is None and kv_len == len(q_pos):  # (no device read: no host sync)
                state["start"] = kv_len  # a new prefill: outputs begin after it
            start = state["start"]
            if start is None or self.beta == 0 or kv_len - 1 < start:  # no generated row yet (no sync)
                return None
            if isinstance(q_pos, range):  # positions known on the host
                if len(q_pos) == 1:  # a decode step: one slice of one row (2 ops instead of ~14)
                    return self.row_bias(q_pos[0], kv_len, start, device, dtype, bonus)
                q_pos = torch.arange(q_pos.start, q_pos.stop, device=device)
            return self.mask(q_pos, kv_len, start).to(dtype) * bonus

        return fn


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


@contextlib.contextmanager
def locore(model, cfg: LocoRE | float | None = None, processor=None):
    """Apply LocoRE around any plain `model.generate(...)` call; the model is restored on exit.
    `cfg`: LocoRE settings or a beta; None: the model family's beta (LocoRE()).

    with lv.locore(model, LocoRE(beta=0.15)):
        out = model.generate(**inputs, max_new_tokens=64)
    """
    from ..models import adapter_for
    from ..saliency.probe import Probe, attached

    if cfg is None:
        cfg = LocoRE()
    if not isinstance(cfg, LocoRE):
        if not is_number(cfg):
            raise ConfigError(f"locore() takes an lvsal_nb.LocoRE(...) or a beta, not {cfg!r}")
        cfg = LocoRE(beta=float(cfg))
    adapter = adapter_for(model, processor)
    cfg = cfg.for_adapter(adapter)
    if cfg.layers is not None:
        adapter.check_layers(cfg.layers)
    probe = Probe(bias_fn=cfg.bias_fn(None), bias_layers=frozenset(cfg.layers) if cfg.layers else None)
    with attached(model, adapter.language_model, adapter.text_config, probe, "lv.locore"):
        yield probe
