"""The ways `Session.trace` decodes; each hands every finished Step to `emit` as it arrives.

One decode loop (`decode`) owns prefill, forward, push, the stop event, EOS and Ctrl-C; a policy
chooses each token and turns it into Steps:
- `StepPolicy`: the step engine scores K candidates at every token; SGRS's rule (or plain greedy /
  sampling) chooses;
- `SequencePolicy`: plain greedy / sampling without grad; every `chunk` tokens the sequence engine
  scores them (the default).
The caller builds the policy and hands it to `decode`.
`run_generate` is the other way: transformers' `generate` (any strategy: beams ...), then the
sequence engine. `on_token(t, token_id, piece)` (optional, streaming views) is told each token
once, in order, as it is chosen and before its Step: the sequence engine scores per chunk, so a
view shows text first and fills saliency per chunk. `make_loop` picks the own loop: a
fixed-capacity cache (CUDA graphs on CUDA) or the growing one.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import torch

from ..context import TraceContext
from ..saliency.sequence import SequenceEngine
from ..saliency.step import StepScores
from ..settings import RunRecord, TraceSettings
from ..trace import Candidate, Step
from . import sampling
from .loop import StepLoop
from .sgrs import choose as sgrs_choose
from .static import StaticStepLoop

Emit = Callable[[Step], None]
OnToken = Callable[[int, int, str], object] | None  # on_token(step, token_id, piece)


def make_loop(ctx: TraceContext, settings: TraceSettings, grad: bool, k: int, static: bool):
    """The own decoding loop: over a fixed-capacity cache if `static` (the caller checked
    `static_supported`; CUDA graphs on a CUDA device), else over a growing cache.

    Args:
        grad: forwards with grad (the step engine scores K candidates per step).
        k: candidates per step the loop must be able to score.
    Returns:
        A StaticStepLoop or a StepLoop, not yet prefilled.
    """
    if static:
        cap = ctx.n + settings.max_new_tokens
        graphs = ctx.device.type == "cuda"
        return StaticStepLoop(ctx, grad, k=k, capacity=cap, graphs=graphs)
    return StepLoop(ctx, grad=grad, k=k)


class Policy(Protocol):
    """What `decode` asks of a policy, per step t (0-based)."""

    def choose(self, t: int, logits: Any) -> int:
        """The next token, from what the loop's forward returned (logits [vocab] that predict it)."""
        ...

    def chosen(self, t: int, token_id: int) -> None:
        """Token `token_id` was chosen at step t (before EOS is checked and before it is fed)."""
        ...

    def start(self, loop) -> None:
        """The loop is prefilled (its prompt cache is ready)."""
        ...

    def finish(self) -> None:
        """Decoding ended (normally, by EOS, the stop event or Ctrl-C): deliver what is left."""
        ...


def decode(
    ctx: TraceContext,
    loop,
    max_new_tokens: int,
    policy: Policy,
    record: RunRecord,
    stop: threading.Event | None,
) -> None:
    """The one decode loop (traces and the VCD/DoLa baselines): prefill, then per step t: forward →
    policy.choose → policy.chosen → EOS? → push, for up to `max_new_tokens` steps; `stop` (an
    Event) ends it before the next forward. On a normal end and on Ctrl-C the policy's `finish`
    delivers what is left (then the KeyboardInterrupt goes on); other errors deliver nothing more.
    Once prefilled, `record` gets the loop's kind and capture time, whatever happens.

    `loop` needs prefill(), forward() (whatever the policy's `choose` reads: logits [vocab] for the
    trace policies) and push(token_id), plus `kind` and `capture_s` for the record."""
    eos = ctx.adapter.eos_token_ids
    loop.prefill()
    policy.start(loop)
    try:
        for t in range(max_new_tokens):
            if stop is not None and stop.is_set():
                break
            logits = loop.forward()
            tok = policy.choose(t, logits)
            policy.chosen(t, tok)  # the one place where "a token was chosen" is known
            if tok in eos:
                break
            loop.push(tok)
    except KeyboardInterrupt:
        policy.finish()  # an interrupt still delivers what was generated
        raise
    else:
        policy.finish()
    finally:  # (after a failed graph capture the loop fell back: record what ran)
        record.record_loop(loop)


class StepPolicy:
    """The step engine's policy: with SGRS, score the top-K candidates, then SGRS's rule chooses
    (PAPER.md, Algorithm 1); else greedy / sampling chooses, then the token and `alternatives`
    more are scored. Each Step is emitted as soon as its token is chosen."""

    def __init__(
        self,
        ctx: TraceContext,
        loop,
        settings: TraceSettings,
        gen: torch.Generator,
        emit: Emit,
        on_token: OnToken = None,
    ):
        self.ctx, self.loop, self.settings, self.gen, self.emit = ctx, loop, settings, gen, emit
        self.on_token = on_token
        self.det = Detok(ctx.adapter.tokenizer)
        self.history: list[float] = []  # SGRS: saliency of the accepted tokens
        self._step: Step | None = None  # SGRS: the chosen token's Step, built in `choose`
        self._logp = torch.empty(0)  # [vocab] float64 log-probabilities of the step (temperature 1)
        self._p_sample: float | None = None  # plain: the token's probability under sampling

    def choose(self, t: int, logits: torch.Tensor) -> int:
        """SGRS: score the top-K and apply the rule; plain: greedy / seeded sampling."""
        st = self.settings
        self._logp = logp = torch.log_softmax(logits.double(), -1)
        if st.sgrs is None:
            tok, self._p_sample = sampling.choose_p(logits, st.decoding, st.temperature, st.top_p, self.gen)
            return tok
        sgrs, loop = st.sgrs, self.loop
        top = torch.topk(logp, sgrs.k)
        cands = top.indices.tolist()
        sc = loop.score(cands, st.context)
        probs = top.values.exp().cpu().tolist()
        sal = sc.scores.detach().double().cpu().tolist()
        layer_scores = sc.layer_scores.detach().double().cpu().tolist()
        d = sgrs_choose(sgrs, probs, sal, self.history, self.gen)
        if sal[d.chosen] == sal[d.chosen]:  # not NaN
            self.history.append(sal[d.chosen])
        rounds = {c: r for c, r in d.tried}
        tok = cands[d.chosen]
        self._step = Step(
            step=t,
            position=loop.q,
            token_id=tok,
            token="",  # its piece: in `chosen`
            prob=probs[d.chosen],
            logprob=float(logp[tok]),
            saliency=_f(sal[d.chosen]),
            layer_scores=layer_scores[d.chosen],
            row=_row(sc, d.chosen),
            tau=d.tau,
            decision=d.decision,
            round=d.round,
            candidates=[
                Candidate(
                    token_id=c,
                    token=self.ctx.adapter.tokenizer.decode([c]),
                    prob=probs[i],
                    saliency=_f(sal[i]),
                    layer_scores=layer_scores[i],
                    round=rounds.get(i),
                    accepted=i == d.chosen,
                )
                for i, c in enumerate(cands)
            ],
        )
        return tok

    def chosen(self, t: int, token_id: int) -> None:
        """Emit step t: SGRS's (already scored), or score the plain token and its alternatives."""
        st, logp = self.settings, self._logp
        piece = self.det.push(token_id)
        if self.on_token is not None:  # SGRS scored its candidates to choose; plain: before scoring
            self.on_token(t, token_id, piece)
        if self._step is not None:
            step, self._step = self._step, None
            step.token = piece
            self.emit(step)
            return
        alts = [i for i in torch.topk(logp, st.alternatives + 1).indices.tolist() if i != token_id]
        sc = self.loop.score([token_id] + alts[: st.alternatives], st.context)
        cand_logp = logp[torch.tensor(sc.token_ids, device=logp.device)].cpu()
        self.emit(plain_step(t, sc, cand_logp, piece, _decision(st.decoding), self._p_sample))

    def start(self, loop) -> None:
        """Nothing to set up: the loop scores."""

    def finish(self) -> None:
        """Nothing waits: every Step was emitted when its token was chosen."""


class SequencePolicy:
    """Plain greedy / seeded sampling without grad; the sequence engine scores the tokens every
    `chunk` tokens (and at the end, also after Ctrl-C) and emits their Steps in order."""

    def __init__(
        self,
        ctx: TraceContext,
        settings: TraceSettings,
        record: RunRecord,
        gen: torch.Generator,
        emit: Emit,
        on_token: OnToken = None,
    ):
        self.ctx, self.settings, self.record, self.gen, self.emit = ctx, settings, record, gen, emit
        self.on_token = on_token
        self.told = 0  # tokens of `out` told to on_token so far (each once, even around a Ctrl-C)
        self.out: list[int] = []  # generated token ids
        self.p_sample: list[float | None] = []  # each one's probability under sampling
        self.flush = settings.chunk or settings.max_new_tokens
        self.eng: SequenceEngine | None = None

    def start(self, loop) -> None:
        """After the loop's prefill: the engine starts from a copy of the prompt's cache."""
        st = self.settings
        self.eng = SequenceEngine(
            self.ctx, st.context, st.alternatives, st.chunk, prefilled=loop.prompt_cache()
        )

    def choose(self, t: int, logits: torch.Tensor) -> int:
        """Greedy / seeded sampling (its probability is kept for the Step)."""
        st = self.settings
        tok, p = sampling.choose_p(logits, st.decoding, st.temperature, st.top_p, self.gen)
        self.p_sample.append(p)  # (before `out`: every token in `out` has its probability)
        return tok

    def chosen(self, t: int, token_id: int) -> None:
        """Keep the token; score and emit a chunk once `chunk` tokens wait."""
        self.out.append(token_id)
        self.tell()
        if len(self.out) % self.flush == 0:
            self.finish()

    def tell(self) -> None:
        """Tell on_token every token of `out` not told yet, in order."""
        on_token = self.on_token
        while on_token is not None and self.told < len(self.out):
            t = self.told
            piece = Detok.piece(self.ctx.adapter.tokenizer, self.out, t)
            self.told += 1  # (after the piece, before the call: a callback that raises is not re-called)
            on_token(t, self.out[t], piece)

    def finish(self) -> None:
        """Tell the tokens not told yet (after a Ctrl-C in `chosen`), score every token not scored
        yet and emit its Step.

        Steps come in order; after a Ctrl-C one may come again (the engine re-delivers a step whose
        delivery was interrupted; `emit` drops what it already has). Nothing here keeps state across
        steps, so a repeat is built exactly as the first time."""
        st, tokenizer, n, eng = self.settings, self.ctx.adapter.tokenizer, self.ctx.n, self.eng
        if eng is None:  # (not started: the prefill did not finish)
            return
        self.tell()
        t0 = time.perf_counter()
        for sc, logp in eng.feed(self.out):
            t = sc.q - (n - 1)  # step t reads row q = n - 1 + t
            piece = Detok.piece(tokenizer, self.out, t)
            self.emit(plain_step(t, sc, logp, piece, _decision(st.decoding), self.p_sample[t]))
        self.record.analysis_s += time.perf_counter() - t0


def run_generate(ctx: TraceContext, settings: TraceSettings, emit: Emit, on_token: OnToken = None) -> None:
    """transformers' `generate` with the caller's keywords, then the sequence engine over its output."""
    adapter, st = ctx.adapter, settings
    kw = {
        "max_new_tokens": st.max_new_tokens,
        "do_sample": st.decoding == "sample",
        **st.generate_kwargs,
    }
    if kw["do_sample"]:
        kw.setdefault("temperature", st.temperature)
        kw.setdefault("top_p", st.top_p)
    adapter.new_sequence()
    # generate samples from the global RNG: seed it for this call only, then give the caller's back
    with (
        ctx.probe.forward("off"),
        torch.random.fork_rng(devices=_cuda_devices(ctx.inputs)),
        torch.no_grad(),
    ):
        if kw["do_sample"]:
            torch.manual_seed(st.seed)
        seq = adapter.model.generate(**ctx.inputs, **kw)
    out = seq[0, ctx.n :].tolist()
    pad = getattr(adapter.model.generation_config, "pad_token_id", None)
    eos = adapter.eos_token_ids
    clean = []
    for t in out:
        if t == pad and t not in eos:
            break
        clean.append(t)
        if t in eos:
            break
    if on_token is not None:  # all at once, after generate
        for t in range(len(clean)):
            on_token(t, clean[t], Detok.piece(adapter.tokenizer, clean, t))
    eng = SequenceEngine(ctx, st.context, st.alternatives, st.chunk)
    det = Detok(adapter.tokenizer)
    for i, (sc, logp) in enumerate(eng.feed(clean)):
        emit(plain_step(i, sc, logp, det.push(sc.token_ids[0]), "generated"))


def run_forced(ctx: TraceContext, settings: TraceSettings, output_ids: list[int], emit: Emit) -> None:
    """The sequence engine over given output token ids (`Session.analyze`): one Step per token."""
    st = settings
    eng = SequenceEngine(ctx, st.context, st.alternatives, st.chunk)
    det = Detok(ctx.adapter.tokenizer)
    for i, (sc, logp) in enumerate(eng.feed(output_ids)):
        emit(plain_step(i, sc, logp, det.push(sc.token_ids[0]), "forced"))


def _cuda_devices(inputs) -> list:
    dev = inputs["input_ids"].device
    return [dev] if dev.type == "cuda" else []


def _f(x: float) -> float | None:
    return None if x != x else float(x)


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
        """Append a token; returns its text piece (with its own leading space, if any)."""
        self.ids.append(token_id)
        return self.piece(self.tok, self.ids, len(self.ids) - 1)
