"""Session: a model + processor + adapter + device, and the one entry point `trace`.

s = lvsal_nb.load("toy")
tr = s.trace(image, "Describe the image.", max_new_tokens=32)               # sequence engine
tr = s.trace(image, "Describe the image.", sgrs=lvsal_nb.SGRS())            # step engine
tr = s.analyze(image, "Describe the image.", "there is a red circle .")     # post-hoc
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .decoding import sampling
from .decoding.locore import LocoRE
from .decoding.loop import StepLoop
from .decoding.sgrs import SGRS
from .decoding.sgrs import choose as sgrs_choose
from .decoding.static import StaticStepLoop, static_supported
from .errors import ConfigError, UnsupportedModelError
from .models import Adapter, Prepared, adapter_for
from .saliency.probe import Probe, attached
from .saliency.sequence import SequenceEngine
from .saliency.step import StepScores
from .trace import CONTEXTS, Candidate, Step, Trace

ENGINES = ("auto", "sequence", "step")
StepCallback = Callable[[Step], Any]


def _locked(method):
    """One trace at a time per model: the probe and the caches are shared state."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


class Session:
    """A loaded model ready to trace. Build with `lvsal_nb.load(...)`.

    `static_steps`: the own decoding loop's kind. None (default): on CUDA a fixed-capacity cache
    whose steps replay as CUDA graphs, elsewhere the growing cache; False: always the growing cache
    (e.g. to debug without graphs); True: the fixed-capacity cache everywhere (eager off CUDA). Same
    numbers either way; a Trace's config["step_loop"] says which ran.
    """

    def __init__(
        self,
        model,
        processor,
        adapter: Adapter | None = None,
        model_id: str = "model",
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
    ):
        self.model = model
        self.processor = processor
        self.adapter = adapter or adapter_for(model, processor)
        self.model_id = model_id
        self._lock = threading.RLock()  # one trace at a time per model: the probe and caches are shared
        self.static_steps: bool | None = None
        p = next(model.parameters())
        self.device = torch.device(device) if device is not None else p.device
        self.dtype = dtype or p.dtype
        if p.device != self.device or p.dtype != self.dtype:
            self.model.to(device=self.device, dtype=self.dtype)

    def __repr__(self) -> str:
        return (
            f"<Session {self.model_id} ({self.adapter.family}, {self.adapter.num_layers} layers, "
            f"default layers {self.adapter.default_layers()}) on {self.device}/{str(self.dtype)[6:]}>"
        )

    # ---- public -------------------------------------------------------------------------------
    @_locked
    def trace(
        self,
        image,
        prompt: str,
        *,
        max_new_tokens: int = 64,
        decoding: str = "greedy",
        temperature: float = 1.0,
        top_p: float = 1.0,
        sgrs: SGRS | None = None,
        locore: LocoRE | float | None = None,
        layers=None,
        context: str = "text",
        seed: int = 0,
        engine: str = "auto",
        chunk: int | None = 16,
        alternatives: int = 0,
        on_step: StepCallback | None = None,
        stop: threading.Event | None = None,
        progress: bool = False,
        trace_id: str | None = None,
        **generate_kwargs,
    ) -> Trace:
        """Generate up to `max_new_tokens` tokens and record the saliency of every step.

        Args:
            decoding: "greedy" or "sample" (temperature, top_p; seeded by `seed`). Other `generate`
                keywords (num_beams=3 ...) run transformers' `generate`, then the sequence engine.
            sgrs: SGRS settings; implies the step engine (it must score candidates before choosing).
            locore: LocoRE settings or a beta; applied in the same forward the saliency is read from.
            layers: decoder layers to read (default: PAPER.md's scaled [6, 7, 8]).
            context: "text" (J = text after the image up to q) or "outputs" (generated tokens only).
            engine: "auto" (step for SGRS, else sequence), "sequence" or "step".
            chunk: sequence-engine positions per pass; also how often a stream is flushed.
            alternatives: extra top-probability candidates scored per step (plain decoding).
            on_step: called with each finished Step as it arrives (streaming viewers).
            stop: a threading.Event; when set, decoding stops and the partial Trace is returned.
            trace_id: the id of the Trace (default: a new random one), e.g. to keep marks attached.
        Returns:
            Trace. Ctrl-C also returns the partial Trace, with `interrupted=True`.
        """
        cfg = self._check(
            max_new_tokens=max_new_tokens,
            decoding=decoding,
            temperature=temperature,
            top_p=top_p,
            sgrs=sgrs,
            locore=locore,
            layers=layers,
            context=context,
            engine=engine,
            alternatives=alternatives,
            generate_kwargs=generate_kwargs,
        )
        prepared = self.adapter.prepare(image, prompt)
        inputs = self.adapter.to(prepared.inputs, self.dtype)
        probe = self._probe(cfg, prepared)
        gen = torch.Generator(device="cpu").manual_seed(seed)
        steps: list[Step] = []
        interrupted = False
        cfg.update(
            seed=seed, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, chunk=chunk
        )
        bar = _progress(max_new_tokens, progress)
        t_start = time.perf_counter()
        cfg["timing"] = {"analysis_s": 0.0}

        def emit(step: Step):
            steps.append(step)
            bar.update(1)
            if on_step is not None:
                on_step(step)

        with attached(self.model, self.adapter.language_model, self.adapter.text_config, probe):
            try:
                if cfg["engine"] == "step":
                    self._run_step(prepared, inputs, probe, cfg, sgrs, gen, emit, stop)
                elif generate_kwargs:
                    self._run_generate(prepared, inputs, probe, cfg, generate_kwargs, emit)
                else:
                    self._run_sequence(prepared, inputs, probe, cfg, gen, emit, stop)
            except KeyboardInterrupt:
                interrupted = True
            finally:
                bar.close()
        interrupted = interrupted or bool(stop is not None and stop.is_set())
        cfg["timing"]["total_s"] = time.perf_counter() - t_start
        return self._build(prepared, steps, cfg, prompt, interrupted, trace_id)

    @_locked
    def analyze(
        self,
        image,
        prompt: str,
        output: str | list[int],
        *,
        layers=None,
        context: str = "text",
        locore: LocoRE | float | None = None,
        chunk: int | None = None,
        alternatives: int = 0,
    ) -> Trace:
        """Saliency of a given output (text or token ids), e.g. captions from a benchmark file."""
        if isinstance(output, str):
            ids = self.adapter.tokenizer(output, add_special_tokens=False)["input_ids"]
        else:
            ids = [int(i) for i in output]
        if not ids:
            raise ConfigError("the output to analyze is empty; pass generated text or token ids")
        cfg = self._check(
            max_new_tokens=len(ids),
            decoding="greedy",
            temperature=1.0,
            top_p=1.0,
            sgrs=None,
            locore=locore,
            layers=layers,
            context=context,
            engine="sequence",
            alternatives=alternatives,
            generate_kwargs={},
        )
        cfg.update(decoding="forced", chunk=chunk)
        prepared = self.adapter.prepare(image, prompt)
        inputs = self.adapter.to(prepared.inputs, self.dtype)
        probe = self._probe(cfg, prepared)
        steps: list[Step] = []
        with attached(self.model, self.adapter.language_model, self.adapter.text_config, probe):
            eng = SequenceEngine(self.adapter, prepared, probe, inputs, context, alternatives, chunk)
            det = _Detok(self.adapter.tokenizer)
            for sc, logp in eng.feed(ids):
                steps.append(_plain_step(len(steps), sc, logp, det.push(sc.token_ids[0]), "forced"))
        return self._build(prepared, steps, cfg, prompt, False)

    # ---- engines ------------------------------------------------------------------------------
    def _run_step(self, prepared, inputs, probe, cfg, sgrs, gen, emit, stop):
        k = sgrs.k if sgrs is not None else cfg["alternatives"] + 1
        loop = self._loop(prepared, inputs, probe, cfg, grad=True, k=k)
        loop.prefill()
        try:
            self._step_tokens(loop, cfg, sgrs, gen, emit, stop)
        finally:
            _record_loop(cfg, loop)

    def _loop(self, prepared, inputs, probe, cfg, grad: bool, k: int = 1):
        """The own decoding loop: over a fixed-capacity cache with CUDA graphs on CUDA (static_steps)."""
        static = self.static_steps if self.static_steps is not None else self.device.type == "cuda"
        if static and static_supported(self.adapter):
            cap = prepared.n + cfg["max_new_tokens"]
            graphs = self.device.type == "cuda"
            return StaticStepLoop(
                self.adapter, prepared, probe, inputs, grad, k=k, capacity=cap, graphs=graphs
            )
        return StepLoop(self.adapter, prepared, probe, inputs, grad=grad, k=k)

    def _step_tokens(self, loop, cfg, sgrs, gen, emit, stop):
        det, history, eos = _Detok(self.adapter.tokenizer), [], self.adapter.eos_token_ids
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
                        token=self._piece(c),
                        prob=probs[i],
                        saliency=_f(sal[i]),
                        layer_scores=layer_scores[i],
                        round=rounds.get(i),
                        accepted=i == d.chosen,
                    )
                    for i, c in enumerate(cands)
                ]
                tok = cands[d.chosen]
                step = Step(
                    step=t,
                    position=loop.q,
                    token_id=tok,
                    token=det.push(tok),
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
                tok = sampling.choose(logits, cfg["decoding"], cfg["temperature"], cfg["top_p"], gen)
                alts = [i for i in torch.topk(logp, cfg["alternatives"] + 1).indices.tolist() if i != tok]
                sc = loop.score([tok] + alts[: cfg["alternatives"]], cfg["context"])
                cand_logp = logp[torch.tensor(sc.token_ids, device=logp.device)].cpu()
                step = _plain_step(t, sc, cand_logp, det.push(tok), _decision(cfg["decoding"]))
            emit(step)
            if tok in eos:
                break
            loop.push(tok)

    def _run_sequence(self, prepared, inputs, probe, cfg, gen, emit, stop):
        loop = self._loop(prepared, inputs, probe, cfg, grad=False)
        loop.prefill()
        eng = SequenceEngine(
            self.adapter,
            prepared,
            probe,
            inputs,
            cfg["context"],
            cfg["alternatives"],
            cfg["chunk"],
            prefilled=loop.prompt_cache(),
        )
        det, eos, out = _Detok(self.adapter.tokenizer), self.adapter.eos_token_ids, []
        flush = cfg["chunk"] or cfg["max_new_tokens"]

        def drain():
            t0 = time.perf_counter()
            for sc, logp in eng.feed(out):
                emit(
                    _plain_step(
                        len(out_steps), sc, logp, det.push(sc.token_ids[0]), _decision(cfg["decoding"])
                    )
                )
                out_steps.append(sc.q)
            cfg["timing"]["analysis_s"] += time.perf_counter() - t0

        out_steps: list[int] = []
        try:
            for _ in range(cfg["max_new_tokens"]):
                if stop is not None and stop.is_set():
                    break
                logits = loop.forward()
                tok = sampling.choose(logits, cfg["decoding"], cfg["temperature"], cfg["top_p"], gen)
                out.append(tok)
                if tok in eos:
                    break
                loop.push(tok)
                if len(out) % flush == 0:
                    drain()
        finally:
            drain()  # an interrupt still scores what was generated
            _record_loop(cfg, loop)

    def _run_generate(self, prepared, inputs, probe, cfg, generate_kwargs, emit):
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
            torch.manual_seed(cfg["seed"])
        with torch.no_grad():
            seq = self.model.generate(**inputs, **kw)
        out = seq[0, prepared.n :].tolist()
        pad = getattr(self.model.generation_config, "pad_token_id", None)
        eos = self.adapter.eos_token_ids
        clean = []
        for t in out:
            if t == pad and t not in eos:
                break
            clean.append(t)
            if t in eos:
                break
        eng = SequenceEngine(
            self.adapter, prepared, probe, inputs, cfg["context"], cfg["alternatives"], cfg["chunk"]
        )
        det = _Detok(self.adapter.tokenizer)
        for i, (sc, logp) in enumerate(eng.feed(clean)):
            emit(_plain_step(i, sc, logp, det.push(sc.token_ids[0]), "generated"))

    # ---- helpers ------------------------------------------------------------------------------
    def _check(
        self,
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
        generate_kwargs,
    ) -> dict[str, Any]:
        if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be an integer >= 1, got {max_new_tokens!r}")
        sampling.check_sampling(decoding, temperature, top_p)
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
        if isinstance(locore, (int, float)) and not isinstance(locore, bool):
            locore = LocoRE(beta=float(locore))
        if locore is not None and not isinstance(locore, LocoRE):
            raise ConfigError("locore must be an lvsal_nb.LocoRE(...), a beta, or None")
        lay = self.adapter.check_layers(layers)
        if locore is not None and locore.layers is not None:
            self.adapter.check_layers(locore.layers)
        return {
            "layers": list(lay),
            "context": context,
            "decoding": decoding,
            "engine": "step" if engine == "step" or (engine == "auto" and sgrs is not None) else "sequence",
            "sgrs": sgrs.to_dict() if sgrs else None,
            "locore": locore.to_dict() if locore else None,
            "_locore": locore,
            "alternatives": alternatives,
            "chunk": None,
            "generate": {k: v for k, v in generate_kwargs.items() if isinstance(v, (int, float, str, bool))},
            "model_id": self.model_id,
            "family": self.adapter.family,
            "device": str(self.device),
            "dtype": str(self.dtype).replace("torch.", ""),
            "max_new_tokens": max_new_tokens,
        }

    def _probe(self, cfg: dict, prepared: Prepared) -> Probe:
        lc: LocoRE | None = cfg.pop("_locore")
        return Probe(
            layers=tuple(cfg["layers"]),
            bias_fn=lc.bias_fn(prepared.n) if lc else None,
            bias_layers=frozenset(lc.layers) if lc and lc.layers is not None else None,
        )

    def _piece(self, token_id: int) -> str:
        return self.adapter.tokenizer.decode([token_id])

    def _build(
        self,
        prepared: Prepared,
        steps: list[Step],
        cfg: dict,
        prompt: str,
        interrupted: bool,
        trace_id: str | None = None,
    ) -> Trace:
        prompt_ids = prepared.input_ids[0].tolist()
        out_ids = [s.token_id for s in steps]
        tokens = self.adapter.context_tokens(prompt_ids + out_ids, prepared.spans.image)
        cfg["special_token_ids"] = sorted(set(getattr(self.adapter.tokenizer, "all_special_ids", [])))
        n = prepared.n
        spans = type(prepared.spans)(
            system=prepared.spans.system,
            image=prepared.spans.image,
            prompt=prepared.spans.prompt,
            output=(n, n + len(out_ids)),
        )
        return Trace(
            records=steps,
            token_ids=prompt_ids + out_ids,
            tokens=tokens,
            spans=spans,
            config=cfg,
            prompt=prompt,
            image_digest=prepared.image_digest,
            image_grid=prepared.image_grid,
            image_png=prepared.image_png,
            interrupted=interrupted,
            **({"trace_id": trace_id} if trace_id else {}),
        )


def _f(x: float) -> float | None:
    return None if x != x else float(x)


def _record_loop(cfg: dict, loop) -> None:
    """Which own loop ran (after the run: a failed graph capture falls back) and its capture time."""
    cfg["step_loop"] = loop.kind
    cfg["timing"]["capture_s"] = loop.capture_s


def _row(sc: StepScores, i: int):
    return sc.rows[i].detach().cpu().float().numpy()


def _decision(decoding: str) -> str:
    return {"greedy": "greedy", "sample": "sampled"}.get(decoding, decoding)


def _plain_step(t: int, sc: StepScores, cand_logp: torch.Tensor, piece: str, decision: str) -> Step:
    """A Step from K scored candidates (the first is the emitted token); cand_logp [K] their
    log-probabilities."""
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
    )


class _Detok:
    """Incremental decoding to text pieces that carry their own spacing (O(1) per token: a window
    of recent tokens is enough for byte-level and sentencepiece merges)."""

    WINDOW = 6

    def __init__(self, tokenizer):
        self.tok, self.ids = tokenizer, []

    def push(self, token_id: int) -> str:
        ctx = self.ids[-self.WINDOW :]
        self.ids.append(token_id)
        before = self.tok.decode(ctx, skip_special_tokens=False) if ctx else ""
        after = self.tok.decode(ctx + [token_id], skip_special_tokens=False)
        return after[len(before) :] if after.startswith(before) else self.tok.decode([token_id])


class _NoBar:
    def update(self, n=1):
        pass

    def close(self):
        pass


def _progress(total: int, show: bool):
    if not show:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="tracing", unit="tok")


# ---- loading -------------------------------------------------------------------------------------
def load(
    source: Any = "toy",
    processor: Any = None,
    *,
    device: str | None = None,
    dtype: torch.dtype | str | None = None,
) -> Session:
    """A Session from "toy" (the embedded default), "tiny:llava" / "tiny:qwen2_vl" / "tiny:qwen2_5_vl"
    (random weights, for trying real architectures), a local checkpoint path or cached hub id (never
    downloads), or an already built model (+ processor).

    Args:
        device: "cpu", "cuda", ... Default: CUDA when available, else CPU.
        dtype: torch dtype or its name. Default: bfloat16 on CUDA, float32 on CPU.
    """
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(dtype, str):
        if not hasattr(torch, dtype):
            raise ConfigError(f"unknown dtype {dtype!r}; use 'float32', 'bfloat16', 'float16' or 'float64'")
        dtype = getattr(torch, dtype)
    dtype = dtype or (torch.bfloat16 if str(device).startswith("cuda") else torch.float32)
    if isinstance(source, torch.nn.Module):
        return Session(source, processor, model_id=type(source).__name__, device=device, dtype=dtype)
    if not isinstance(source, (str, Path)):
        raise ConfigError(
            f"load() takes 'toy', a path, a hub id or a model object, not {type(source).__name__}"
        )
    name = str(source)
    if name == "toy":
        from .models.toy import ToyAdapter
        from .toy.model import load_toy

        model, tok = load_toy(device=device, dtype=dtype)
        return Session(model, tok, adapter=ToyAdapter(model, tok), model_id="toy", device=device, dtype=dtype)
    if name.startswith("tiny:"):
        from .models import tiny

        fam = name.split(":", 1)[1]
        builder = getattr(tiny, f"tiny_{fam}", None)
        if builder is None:
            raise ConfigError(
                f"unknown tiny model {name!r}; use tiny:llava, tiny:qwen2_vl or tiny:qwen2_5_vl"
            )
        model, proc = builder()
        return Session(model, proc, model_id=name, device=device, dtype=dtype)
    return _load_pretrained(name, device, dtype)


def _load_pretrained(name: str, device: str, dtype: torch.dtype) -> Session:
    import transformers
    from transformers import AutoConfig

    from .models import ADAPTERS

    try:
        config = AutoConfig.from_pretrained(name, local_files_only=True)
    except Exception as e:
        raise ConfigError(
            f"no local checkpoint at {name!r} ({type(e).__name__}). lvsal-nb never downloads: pass a folder "
            "with config.json and weights, a hub id already in the local cache, or 'toy'"
        ) from e
    arch = (getattr(config, "architectures", None) or [""])[0]
    if arch not in ADAPTERS:
        raise UnsupportedModelError(f"{name} is a {arch or config.model_type}; supported: {sorted(ADAPTERS)}")
    cls = getattr(transformers, arch)
    model = cls.from_pretrained(name, local_files_only=True, dtype=dtype, attn_implementation="sdpa").to(
        device
    )
    try:
        processor = transformers.AutoProcessor.from_pretrained(name, local_files_only=True)
    except Exception:  # Qwen's processor wants torchvision for video: tokenizer + Pillow image processor
        from .models.tiny import TinyProcessor

        tok = transformers.AutoTokenizer.from_pretrained(name, local_files_only=True)
        improc = transformers.AutoImageProcessor.from_pretrained(name, local_files_only=True)
        processor = TinyProcessor(tok, improc)
    return Session(model.eval(), processor, model_id=name, device=device, dtype=dtype)
