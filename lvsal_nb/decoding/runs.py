"""The three ways `Session.trace` decodes; each hands every finished Step to `emit` as it arrives.

- `run_step`: the own loop, the step engine scoring K candidates before each token is chosen (SGRS,
  or plain decoding with engine="step");
- `run_sequence`: the own loop without grad, the sequence engine scoring each chunk of tokens
  (the default);
- `run_generate`: transformers' `generate` (any strategy: beams ...), then the sequence engine.

`on_token(t, token_id, piece)` (optional, streaming views): called once per token, in order, as it
is chosen and before its Step is emitted: the sequence engine scores tokens in chunks, so a view
shows text first and fills saliency per chunk. (stream hook: `on_token` lines only.)

`make_loop` picks the own loop: a fixed-capacity cache (CUDA graphs on CUDA) or the growing one.
"""

from __future__ import annotations

import math
import time

import torch

from ..models import Adapter, Prepared
from ..saliency.probe import Probe
from ..saliency.sequence import SequenceEngine
from ..saliency.step import StepScores
from ..trace import Candidate, Step
from . import sampling
from .loop import StepLoop
from .sgrs import choose as sgrs_choose
from .static import StaticStepLoop


def make_loop(
    adapter: Adapter, prepared: Prepared, inputs, probe: Probe, cfg, grad: bool, k: int, static: bool
):
    """The own decoding loop: over a fixed-capacity cache if `static` (the caller checked
    `static_supported`; CUDA graphs on a CUDA device), else over a growing cache."""
    if static:
        cap = prepared.n + cfg["max_new_tokens"]
        graphs = inputs["input_ids"].device.type == "cuda"
        return StaticStepLoop(adapter, prepared, probe, inputs, grad, k=k, capacity=cap, graphs=graphs)
    return StepLoop(adapter, prepared, probe, inputs, grad=grad, k=k)


def run_step(adapter: Adapter, loop, cfg, sgrs, gen, emit, stop, on_token=None) -> None:
    """Score K candidates at every token, then choose: SGRS's policy, or plain decoding."""
    loop.prefill()
    try:
        _step_tokens(adapter, loop, cfg, sgrs, gen, emit, stop, on_token)
    finally:
        record_loop(cfg, loop)


def _step_tokens(adapter: Adapter, loop, cfg, sgrs, gen, emit, stop, on_token=None) -> None:
    det, history, eos = Detok(adapter.tokenizer), [], adapter.eos_token_ids
    for t in range(cfg["max_new_tokens"]):
        if stop is not None and stop.is_set():
            break
        logits = loop.forward()
        logp = torch.log_softmax(logits.double(), -1)
        if sgrs is not None:
            top = torch.topk(logp, sgrs.k)
            cands = top.indices.tolist()
            sc = loop.score(cands, cfg["context"])
            probs = top.values.exp().cpu().tolist()
            sal = sc.scores.detach().double().cpu().tolist()
            layer_scores = sc.layer_scores.detach().double().cpu().tolist()
            d = sgrs_choose(sgrs, probs, sal, history, gen)
            if sal[d.chosen] == sal[d.chosen]:  # not NaN
                history.append(sal[d.chosen])
            rounds = {c: r for c, r in d.tried}
            cand = [
                Candidate(
                    token_id=c,
                    token=adapter.tokenizer.decode([c]),
                    prob=probs[i],
                    saliency=_f(sal[i]),
                    layer_scores=layer_scores[i],
                    round=rounds.get(i),
                    accepted=i == d.chosen,
                )
                for i, c in enumerate(cands)
            ]
            tok = cands[d.chosen]
            piece = det.push(tok)
            if on_token is not None:  # on_token: SGRS scored the candidates to choose; tell it now
                on_token(t, tok, piece)
            step = Step(
                step=t,
                position=loop.q,
                token_id=tok,
                token=piece,
                prob=probs[d.chosen],
                logprob=float(logp[tok]),
                saliency=_f(sal[d.chosen]),
                layer_scores=layer_scores[d.chosen],
                row=_row(sc, d.chosen),
                tau=d.tau,
                decision=d.decision,
                round=d.round,
                candidates=cand,
            )
        else:
            tok, p_sample = sampling.choose_p(logits, cfg["decoding"], cfg["temperature"], cfg["top_p"], gen)
            piece = det.push(tok)
            if on_token is not None:  # on_token: chosen, before its saliency is computed
                on_token(t, tok, piece)
            alts = [i for i in torch.topk(logp, cfg["alternatives"] + 1).indices.tolist() if i != tok]
            sc = loop.score([tok] + alts[: cfg["alternatives"]], cfg["context"])
            cand_logp = logp[torch.tensor(sc.token_ids, device=logp.device)].cpu()
            step = plain_step(t, sc, cand_logp, piece, _decision(cfg["decoding"]), p_sample)
        emit(step)
        if tok in eos:
            break
        loop.push(tok)


def run_sequence(
    adapter: Adapter, loop, prepared: Prepared, probe: Probe, inputs, cfg, gen, emit, stop, on_token=None
) -> None:
    """Decode without grad on the own loop; every `chunk` tokens the sequence engine scores them."""
    loop.prefill()
    eng = SequenceEngine(
        adapter,
        prepared,
        probe,
        inputs,
        cfg["context"],
        cfg["alternatives"],
        cfg["chunk"],
        prefilled=loop.prompt_cache(),
    )
    eos, out, p_sample = adapter.eos_token_ids, [], []
    flush = cfg["chunk"] or cfg["max_new_tokens"]
    told = 0  # on_token: tokens of `out` told so far (each once, even around a Ctrl-C)

    def tell():  # on_token
        nonlocal told
        while on_token is not None and told < len(out):
            piece = Detok.piece(adapter.tokenizer, out, told)
            told += 1  # (before the call: a callback that raises is not called again for this token)
            on_token(told - 1, out[told - 1], piece)

    def drain():
        # Steps come in order; after a Ctrl-C one may come again (the engine re-delivers a step
        # whose delivery was interrupted; `emit` drops what it already has). Nothing here keeps
        # state across steps, so a repeat is built exactly as the first time.
        t0 = time.perf_counter()
        for sc, logp in eng.feed(out):
            t = sc.q - (prepared.n - 1)  # step t reads row q = n - 1 + t
            piece = Detok.piece(adapter.tokenizer, out, t)
            emit(plain_step(t, sc, logp, piece, _decision(cfg["decoding"]), p_sample[t]))
        cfg["timing"]["analysis_s"] += time.perf_counter() - t0

    try:
        for _ in range(cfg["max_new_tokens"]):
            if stop is not None and stop.is_set():
                break
            logits = loop.forward()
            tok, p = sampling.choose_p(logits, cfg["decoding"], cfg["temperature"], cfg["top_p"], gen)
            p_sample.append(p)  # (before `out`: every token in `out` has its probability)
            out.append(tok)
            tell()  # on_token
            if tok in eos:
                break
            loop.push(tok)
            if len(out) % flush == 0:
                drain()
    except KeyboardInterrupt:
        tell()  # on_token: the tokens drain() scores, if the interrupt came before they were told
        drain()  # an interrupt still scores what was generated
        raise
    else:
        drain()
    finally:  # (other errors, e.g. out of memory, score nothing more)
        record_loop(cfg, loop)


def run_generate(
    adapter: Adapter, prepared: Prepared, probe: Probe, inputs, cfg, generate_kwargs, emit, on_token=None
) -> None:
    """transformers' `generate` with the caller's keywords, then the sequence engine over its output."""
    probe.mode = "off"
    probe.new_forward()
    kw = {
        "max_new_tokens": cfg["max_new_tokens"],
        "do_sample": cfg["decoding"] == "sample",
        **generate_kwargs,
    }
    if kw["do_sample"]:
        kw.setdefault("temperature", cfg["temperature"])
        kw.setdefault("top_p", cfg["top_p"])
    adapter.new_sequence()
    # generate samples from the global RNG: seed it for this call only, then give the caller's back
    with torch.random.fork_rng(devices=_cuda_devices(inputs)), torch.no_grad():
        if kw["do_sample"]:
            torch.manual_seed(cfg["seed"])
        seq = adapter.model.generate(**inputs, **kw)
    out = seq[0, prepared.n :].tolist()
    pad = getattr(adapter.model.generation_config, "pad_token_id", None)
    eos = adapter.eos_token_ids
    clean = []
    for t in out:
        if t == pad and t not in eos:
            break
        clean.append(t)
        if t in eos:
            break
    for t in range(len(clean)) if on_token is not None else ():  # on_token: all at once, after generate
        on_token(t, clean[t], Detok.piece(adapter.tokenizer, clean, t))
    eng = SequenceEngine(adapter, prepared, probe, inputs, cfg["context"], cfg["alternatives"], cfg["chunk"])
    det = Detok(adapter.tokenizer)
    for i, (sc, logp) in enumerate(eng.feed(clean)):
        emit(plain_step(i, sc, logp, det.push(sc.token_ids[0]), "generated"))


def _cuda_devices(inputs) -> list:
    dev = inputs["input_ids"].device
    return [dev] if dev.type == "cuda" else []


def _f(x: float) -> float | None:
    return None if x != x else float(x)


def record_loop(cfg: dict, loop) -> None:
    """Which own loop ran (after the run: a failed graph capture falls back) and its capture time."""
    cfg["step_loop"] = loop.kind
    cfg["timing"]["capture_s"] = loop.capture_s


def _row(sc: StepScores, i: int):
    return sc.rows[i].detach().cpu().float().numpy()


def _decision(decoding: str) -> str:
    return {"greedy": "greedy", "sample": "sampled"}.get(decoding, decoding)


def plain_step(
    t: int,
    sc: StepScores,
    cand_logp: torch.Tensor,
    piece: str,
    decision: str,
    p_sample: float | None = None,
) -> Step:
    """A Step from K scored candidates (the first is the emitted token); cand_logp [K] their
    log-probabilities under the model (temperature 1); p_sample the emitted token's probability
    under the sampling distribution (temperature, top-p), None when nothing was sampled."""
    lp = cand_logp.double().tolist()
    scores = sc.scores.detach().double().cpu().tolist()
    layer_scores = sc.layer_scores.detach().double().cpu().tolist()
    cands = [
        Candidate(
            token_id=c,
            token="",
            prob=math.exp(lp[i]),
            saliency=_f(scores[i]),
            layer_scores=layer_scores[i],
            accepted=i == 0,
        )
        for i, c in enumerate(sc.token_ids)
    ]
    return Step(
        step=t,
        position=sc.q,
        token_id=sc.token_ids[0],
        token=piece,
        prob=math.exp(lp[0]),
        logprob=lp[0],
        saliency=_f(scores[0]),
        layer_scores=layer_scores[0],
        row=_row(sc, 0),
        decision=decision,
        candidates=cands,
        sample_prob=p_sample,
        sample_logprob=None if p_sample is None else (math.log(p_sample) if p_sample > 0 else -math.inf),
    )


class Detok:
    """Incremental decoding to text pieces that carry their own spacing (O(1) per token: a window
    of recent tokens is enough for byte-level and sentencepiece merges)."""

    WINDOW = 6

    def __init__(self, tokenizer):
        self.tok, self.ids = tokenizer, []

    @classmethod
    def piece(cls, tokenizer, ids: list[int], t: int) -> str:
        """The text piece of ids[t] with the same window `push` uses, without state."""
        ctx = ids[max(0, t - cls.WINDOW) : t]
        before = tokenizer.decode(ctx, skip_special_tokens=False) if ctx else ""
        after = tokenizer.decode(ctx + [ids[t]], skip_special_tokens=False)
        return after[len(before) :] if after.startswith(before) else tokenizer.decode([ids[t]])

    def push(self, token_id: int) -> str:
        self.ids.append(token_id)
        return self.piece(self.tok, self.ids, len(self.ids) - 1)
