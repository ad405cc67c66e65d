"""DoLa — Decoding by Contrasting Layers (Chuang et al. 2023), for the language model of an LVLM.

Per step, with hidden_j the last position's hidden state after j decoder layers (j = 0: the
embeddings; hidden_N is the final layer, already normalised by the model):

    early-exit logits  ℓ_j = lm_head(hidden_j)                       j < N  (raw hidden state)
    premature layer    m   = the given layer (static), or among the candidates the one whose
                             distribution is farthest from the final layer's (dynamic, by the
                             reference code's Jensen-Shannon estimate, below)
    keep               = {v : p_N(v) ≥ 0.1 · max p_N}                adaptive plausibility
    scores             = log p_N − log p_m on keep, −inf elsewhere   (then the repetition penalty)

then greedy (default) or seeded sampling from softmax(scores). Defaults follow transformers 4.x's
`_dola_decoding` (the maintained port of github.com/voidism/DoLa): candidate buckets "low" =
every second layer of [start, N/2), "high" = every second layer of [N/2, N) (for N > 40 layers:
[start, 20) and [N − 20, N)); start = 0 for untied embeddings, 2 for tied ones (an early exit from
the tied embeddings is the identity); relative_top = 0.1; repetition penalty 1.2 (DoLa's advice;
1.0 turns it off). The divergence of the dynamic choice is the reference code's, computed with
`F.kl_div(log p, m).mean(-1)`: ½ · mean_v [KL-terms of m against p_N and against p_j], m = ½(p_N + p_j)
— the argmax over candidates, what matters, is the code's. The early exit applies the LM head to
the raw hidden state, as the original code (its modified LlamaForCausalLM takes
`outputs.hidden_states[j]`, un-normalised for j < N) and transformers' `_dola_decoding`
(`lm_head(outputs.hidden_states[j][:, -1, :])`) do. `DoLa(final_norm=True)` is a named option that
applies the decoder's final norm first (the paper's φ(h_j) read literally; this project's default
before it followed the reference code).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .baselines import Generated, Stream, check_decoding, decode, repetition_penalty, work_dtype

BUCKETS = ("low", "high")


@dataclass(frozen=True)
class DoLa:
    """DoLa settings. layers: "low", "high", or a list of candidate premature layers (one layer =
    static DoLa); relative_top: plausibility cut-off α in (0, 1]; repetition_penalty ≥ 1 (1 = off);
    final_norm: apply the final norm to early exits (Default: False, the reference code's raw head)."""

    layers: str | tuple[int, ...] = "low"
    relative_top: float = 0.1
    repetition_penalty: float = 1.2
    final_norm: bool = False

    def __post_init__(self):
        if isinstance(self.layers, str):
            if self.layers not in BUCKETS:
                raise ConfigError(
                    f"DoLa layers must be 'low', 'high' or a list of layer indices, got {self.layers!r}"
                )
        else:
            object.__setattr__(self, "layers", tuple(int(l) for l in self.layers))
            if not self.layers:
                raise ConfigError("DoLa layers is empty; pass 'low', 'high' or at least one layer index")
        if not isinstance(self.final_norm, bool):
            raise ConfigError(f"DoLa final_norm must be True or False, got {self.final_norm!r}")
        if not 0 < self.relative_top <= 1:
            raise ConfigError(f"DoLa relative_top must be in (0, 1], got {self.relative_top!r}")
        if not self.repetition_penalty >= 1:
            raise ConfigError(
                f"DoLa repetition_penalty must be >= 1 (1 turns it off), got {self.repetition_penalty!r}"
            )

    def to_dict(self) -> dict:
        """The settings as a JSON-ready dict (layers as a list or the bucket name)."""
        d = asdict(self)
        d["layers"] = self.layers if isinstance(self.layers, str) else list(self.layers)
        return d


def candidate_layers(spec: str | tuple[int, ...], n_layers: int, tied_embeddings: bool) -> list[int]:
    """The candidate premature layers j (hidden_j = after j decoder layers) for a model of n_layers."""
    if not isinstance(spec, str):
        bad = [l for l in spec if not 0 <= l < n_layers]
        if bad:
            raise ConfigError(
                f"DoLa layers {bad} out of range: premature layers are 0..{n_layers - 1} "
                f"(0 = the embeddings, {n_layers} would be the final layer itself)"
            )
        return sorted(set(spec))
    start = 0 if not tied_embeddings else 2 if n_layers > 2 else 1 if n_layers == 2 else 0
    if spec == "low":
        if start == n_layers // 2:
            return [start]
        return list(range(start, n_layers // 2, 2)) if n_layers <= 40 else list(range(start, 20, 2))
    if n_layers <= 40:
        return list(range(n_layers // 2, n_layers, 2))
    return list(range(n_layers - 20, n_layers, 2))


def divergences(final: torch.Tensor, premature: torch.Tensor) -> torch.Tensor:
    """The reference code's JS estimate per candidate: final [vocab] logits, premature [L, vocab] -> [L]."""
    m = 0.5 * (F.softmax(final, -1)[None] + F.softmax(premature, -1))
    kl1 = F.kl_div(F.log_softmax(final, -1)[None].expand_as(m), m, reduction="none").mean(-1)
    kl2 = F.kl_div(F.log_softmax(premature, -1), m, reduction="none").mean(-1)
    return 0.5 * (kl1 + kl2)


def contrast(final: torch.Tensor, premature: torch.Tensor, relative_top: float) -> torch.Tensor:
    """log p_N − log p_m [vocab] where p_N ≥ relative_top · max p_N, −inf elsewhere."""
    lf, lp = F.log_softmax(final, -1), F.log_softmax(premature, -1)
    keep = lf >= lf.max() + math.log(relative_top)
    return (lf - lp).masked_fill(~keep, float("-inf"))


def dola_generate(
    session,
    image,
    prompt: str,
    cfg: DoLa | None = None,
    *,
    max_new_tokens: int = 64,
    decoding: str = "greedy",
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int = 0,
    return_scores: bool = False,
) -> Generated:
    """Decode one (image, prompt) with DoLa. `Generated.info[t]["premature_layer"]` is step t's choice.

    Args:
        session: an `lvsal_nb.Session`.
        cfg: DoLa settings (default `DoLa()`: the "low" bucket, relative_top 0.1, repetition penalty 1.2,
            LM head on the raw early-exit hidden state).
        decoding: "greedy" (default) or "sample" (temperature, top_p), seeded by `seed`.
        return_scores: keep the contrasted scores [vocab] (after the penalty) of every step.
    """
    cfg = cfg or DoLa()
    if not isinstance(cfg, DoLa):
        raise ConfigError("cfg must be an lvsal_nb.decoding.dola.DoLa(...) or None")
    check_decoding(max_new_tokens, decoding, temperature, top_p)
    adapter = session.adapter
    tied = bool(
        getattr(adapter.text_config, "tie_word_embeddings", False)
        or getattr(adapter.model.config, "tie_word_embeddings", False)
    )
    cands = candidate_layers(cfg.layers, adapter.num_layers, tied)
    norm = getattr(adapter.language_model, "norm", None) if cfg.final_norm else torch.nn.Identity()
    head = adapter.head
    if norm is None or head is None:
        raise ConfigError(
            f"DoLa needs the LM head (and with final_norm=True the decoder's final norm); "
            f"{type(adapter.model).__name__} exposes no output embeddings / `language_model.norm`"
        )
    prepared = adapter.prepare(image, prompt)
    inputs = adapter.to(prepared.inputs, session.dtype)
    stream = Stream(session, prepared, inputs, output_hidden_states=True)

    def step(outs, seen):
        out = outs[0]
        final = work_dtype(out.logits[0, -1])
        with torch.no_grad():
            early = torch.stack([work_dtype(head(norm(out.hidden_states[j][0, -1]))) for j in cands])
        k = 0 if len(cands) == 1 else int(torch.argmax(divergences(final, early)))
        scores = contrast(final, early[k], cfg.relative_top)
        return repetition_penalty(scores, seen, cfg.repetition_penalty), {"premature_layer": cands[k]}

    return decode(
        session,
        [stream],
        step,
        max_new_tokens=max_new_tokens,
        decoding=decoding,
        temperature=temperature,
        top_p=top_p,
        seed=seed,
        return_scores=return_scores,
        config={"method": "dola", **cfg.to_dict(), "candidates": cands},
    )
