"""Shared machinery of the contrastive-decoding baselines (VCD in `vcd.py`, DoLa in `dola.py`).

transformers 5 moved DoLa (and never shipped VCD) out of the library, so both run on the project's
own KV-cache loop (`decoding.loop.StepLoop`): one token per forward, no full-prefix recompute.
Each baseline returns a `Generated` (token ids, text, optionally the contrasted scores per step);
`Session.analyze(image, prompt, generated.token_ids)` then gives its saliency like any other output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..context import TraceContext
from ..errors import ConfigError
from ..saliency.probe import Probe
from . import sampling
from .loop import StepLoop


@dataclass
class Generated:
    """A baseline's output for one (image, prompt).

    Attributes:
        token_ids: generated ids, the EOS token included when one was produced (as `Session.trace`).
        text: the decoded output, special tokens dropped.
        scores: per step, the contrasted scores [vocab] the token was chosen from (float64 on a
            float64 model, else float32; -inf outside the plausible set); only with return_scores=True.
        info: per step, what the method decided (DoLa: the premature layer).
        config: the method's settings and the decoding (for records).
    """

    token_ids: list[int]
    text: str
    scores: list[torch.Tensor] | None = None
    info: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)


class Stream(StepLoop):
    """A StepLoop over one prompt whose forward returns the whole model output (hidden states ...).

    Runs without grad and without the saliency probe: baselines only need logits.
    """

    def __init__(self, session, prepared, inputs: dict[str, torch.Tensor], **forward_kw):
        super().__init__(TraceContext(session.adapter, prepared, Probe(), inputs), grad=False)
        self.forward_kw = forward_kw

    def output(self):
        """Forward the pending token at q; the output's logits [1, 1, vocab] predict position q+1."""
        kw = self.adapter.step_inputs(self.pending, self.q + 1)
        with torch.no_grad():
            return self.adapter.model(
                **kw,
                **{self.adapter.cache_kw: self.cache},
                use_cache=True,
                logits_to_keep=1,
                **self.forward_kw,
            )


def work_dtype(logits: torch.Tensor) -> torch.Tensor:
    """Contrasts in float64 on a float64 model (exactness tests), else float32 (as DoLa's code)."""
    return logits.double() if logits.dtype == torch.float64 else logits.float()


def plausible(logits: torch.Tensor, beta: float) -> torch.Tensor:
    """Adaptive plausibility constraint: True where p ≥ β · max p (of softmax(logits) [vocab]).

    Computed on logits as `logit ≥ log β + max logit`, which is the same set (VCD's code, version 2).
    """
    return logits >= logits.max(-1, keepdim=True).values + torch.log(torch.tensor(beta, dtype=logits.dtype))


def repetition_penalty(scores: torch.Tensor, seen: list[int], penalty: float) -> torch.Tensor:
    """transformers' RepetitionPenaltyLogitsProcessor (CTRL): every id in `seen` (prompt and outputs)
    has its score divided by `penalty` when positive, multiplied when negative. scores: [vocab]."""
    if penalty == 1.0 or not seen:
        return scores
    idx = torch.tensor(sorted(set(seen)), device=scores.device)
    s = scores[idx]
    out = scores.clone()
    out[idx] = torch.where(s < 0, s * penalty, s / penalty)
    return out


def check_decoding(max_new_tokens: int, decoding: str, temperature: float, top_p: float) -> None:
    """Raise ConfigError unless max_new_tokens is an int >= 1 and the sampling settings are valid."""
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens must be an integer >= 1, got {max_new_tokens!r}")
    sampling.check_sampling(decoding, temperature, top_p)


Contrast = Callable[[list[Any], list[int]], tuple[torch.Tensor, dict]]


def decode(
    session,
    streams: list[Stream],
    contrast: Contrast,
    *,
    max_new_tokens: int,
    decoding: str,
    temperature: float,
    top_p: float,
    seed: int,
    return_scores: bool,
    config: dict[str, Any],
) -> Generated:
    """The shared step loop: prefill every stream, then per step forward each stream's pending token,
    let `contrast(outputs, seen_ids)` turn the outputs into scores [vocab] (+ info), choose the token
    (greedy, or seeded sampling from softmax(scores / temperature) with top-p), feed it to every stream.

    `seen_ids` = prompt ids + tokens generated so far (what a repetition penalty looks at).
    """
    for s in streams:
        s.prefill()
    gen = torch.Generator(device="cpu").manual_seed(seed)
    eos = session.adapter.eos_token_ids
    seen = streams[0].inputs["input_ids"][0].tolist()
    out: list[int] = []
    scores_out: list[torch.Tensor] = []
    info: list[dict[str, Any]] = []
    for _ in range(max_new_tokens):
        scores, meta = contrast([s.output() for s in streams], seen)
        tok = sampling.choose(scores, decoding, temperature, top_p, gen)
        out.append(tok)
        seen.append(tok)
        info.append(meta)
        if return_scores:
            scores_out.append(scores.detach().cpu())
        if tok in eos:
            break
        for s in streams:
            s.push(tok)
    text = session.adapter.tokenizer.decode(out, skip_special_tokens=True)
    cfg = {
        **config,
        "decoding": decoding,
        "temperature": temperature,
        "top_p": top_p,
        "seed": seed,
        "max_new_tokens": max_new_tokens,
    }
    return Generated(
        token_ids=out, text=text, scores=scores_out if return_scores else None, info=info, config=cfg
    )
