"""Session: a model + processor + adapter + device, and the one entry point `trace`.

s = lvsal_nb.load("toy")
tr = s.trace(image, "Describe the image.", max_new_tokens=32)               # sequence engine
tr = s.trace(image, "Describe the image.", sgrs=lvsal_nb.SGRS())            # step engine
tr = s.analyze(image, "Describe the image.", "there is a red circle .")     # post-hoc
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any

import torch

from .decoding import runs, sampling
from .decoding.locore import LocoRE
from .decoding.sgrs import SGRS
from .decoding.static import static_supported
from .errors import ConfigError
from .models import Adapter, Prepared, adapter_for
from .saliency.model_lock import holding
from .saliency.probe import Probe, attached
from .saliency.sequence import SequenceEngine
from .trace import CONTEXTS, Step, Trace

ENGINES = ("auto", "sequence", "step")
MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed's range
StepCallback = Callable[[Step], Any]
TokenCallback = Callable[[int, int, str], Any]  # on_token(step, token_id, piece): text before saliency


def _locked(method):
    """One trace / analysis at a time per model object (not per Session: two Sessions may share a
    model): the probe, the caches and the model's patched state are shared. A second caller waits up
    to model_lock.WAIT_S seconds, then gets ModelBusyError."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with holding(self.model, f"Session.{method.__name__}"):
            return method(self, *args, **kwargs)

    return wrapper


class Session:
    """A loaded model ready to trace. Build with `lvsal_nb.load(...)`.

    `static_steps`: the own decoding loop's kind. None (default): on CUDA a fixed-capacity cache
    whose steps replay as CUDA graphs, elsewhere the growing cache; False: always the growing cache
    (e.g. to debug without graphs); True: the fixed-capacity cache everywhere (eager off CUDA). Same
    numbers either way; a Trace's config["step_loop"] says which ran.

    `keep_graphs` (default True): keep the fixed-capacity loop (its cache buffers and CUDA graphs,
    about the model's KV cache plus one step's activations of GPU memory) after a trace, and reuse it
    for the next trace that would capture the same graphs: same prompt length, max_new_tokens, K,
    layers, LocoRE settings and weights, e.g. the Tuner's reruns of one image and prompt with other
    SGRS thresholds. Saves the capture (0.15-0.5 s per trace on a 7B model). At most one loop per
    kind (the step engine's, the sequence engine's) is kept; `release_graphs()` frees them, and so
    does a trace that runs out of GPU memory before its first step (it then starts again once).
    Only the fixed-capacity loop is kept, so with the defaults this matters on CUDA only.
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
        self.static_steps: bool | None = None
        self.keep_graphs = True
        self._kept: dict[bool, tuple] = {}  # grad -> (key, loop): one kept loop per kind
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
        on_token: TokenCallback | None = None,
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
            on_token: called as `on_token(step, token_id, piece)` once per generated token, in order,
                as soon as it is chosen and before its Step (with saliency) reaches `on_step`; the
                sequence engine scores per `chunk`, so text can be shown ahead of saliency. With
                generate keywords all tokens are told after `generate`. Exceptions propagate.
        Returns:
            Trace. Ctrl-C also returns the partial Trace, with `interrupted=True`.
        """
        _check_prompt(prompt)
        _check_seed(seed)
        _check_chunk(chunk)
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
        self._check_length(prepared, max_new_tokens)
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
            if step.step < len(steps):  # delivered again after a Ctrl-C: already here
                return
            if step.step != len(steps):
                raise RuntimeError(f"step {step.step} arrived after {len(steps)} steps")  # a bug
            steps.append(step)
            bar.update(1)
            if on_step is not None:
                on_step(step)

        def run():
            gen.manual_seed(seed)  # (again, if a first attempt ran out of memory)
            cfg["timing"]["analysis_s"] = 0.0
            if cfg["engine"] == "step":
                k = sgrs.k if sgrs is not None else cfg["alternatives"] + 1
                loop = self._loop(prepared, inputs, probe, cfg, grad=True, k=k)
                runs.run_step(self.adapter, loop, cfg, sgrs, gen, emit, stop, on_token)
            elif generate_kwargs:
                runs.run_generate(self.adapter, prepared, probe, inputs, cfg, generate_kwargs, emit, on_token)
            else:
                loop = self._loop(prepared, inputs, probe, cfg, grad=False, k=1)
                runs.run_sequence(self.adapter, loop, prepared, probe, inputs, cfg, gen, emit, stop, on_token)

        with attached(self.model, self.adapter.language_model, self.adapter.text_config, probe):
            try:
                self._freeing_graphs_on_oom(run, started=lambda: bool(steps))
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
        """Saliency of a given output (text or token ids), e.g. captions from a benchmark file.

        Text is tokenized with the model's tokenizer; text with words the tokenizer can only map to
        its unknown token (`<unk>`) is refused with those words named (their saliency would be the
        unknown token's, not the word's); token ids are taken as they are.
        """
        _check_prompt(prompt)
        _check_chunk(chunk)
        if isinstance(output, str):
            ids = self.adapter.tokenizer(output, add_special_tokens=False)["input_ids"]
            _check_known_words(self.adapter.tokenizer, output, ids)
        elif isinstance(output, (bytes, dict)) or not hasattr(output, "__iter__"):
            raise ConfigError(
                f"output must be generated text (str) or a list of token ids, not {type(output).__name__}"
            )
        else:
            ids = [int(i) for i in output]
        if not ids:
            raise ConfigError("the output to analyze is empty; pass generated text or token ids")
        vocab = self._vocab_size()
        bad = [i for i in ids if not 0 <= i < vocab]
        if bad:
            raise ConfigError(
                f"token ids {bad[:5]} are outside this model's vocabulary (0..{vocab - 1}); pass ids from "
                "its own tokenizer, or the text"
            )
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
        self._check_length(prepared, len(ids))
        inputs = self.adapter.to(prepared.inputs, self.dtype)
        probe = self._probe(cfg, prepared)
        steps: list[Step] = []
        with attached(self.model, self.adapter.language_model, self.adapter.text_config, probe):

            def run():
                eng = SequenceEngine(self.adapter, prepared, probe, inputs, context, alternatives, chunk)
                det = runs.Detok(self.adapter.tokenizer)
                for sc, logp in eng.feed(ids):
                    steps.append(runs.plain_step(len(steps), sc, logp, det.push(sc.token_ids[0]), "forced"))

            self._freeing_graphs_on_oom(run, started=lambda: bool(steps))
        return self._build(prepared, steps, cfg, prompt, False)

    # ---- helpers ------------------------------------------------------------------------------
    def release_graphs(self) -> None:
        """Drop the loops kept by `keep_graphs` (their buffers and CUDA graphs)."""
        self._kept = {}
        if self.device.type == "cuda":
            torch.cuda.empty_cache()  # hand the freed blocks back, for other processes and nvidia-smi

    def _loop(self, prepared, inputs, probe, cfg, grad: bool, k: int):
        static = self.static_steps if self.static_steps is not None else self.device.type == "cuda"
        static = static and static_supported(self.adapter)
        if not (self.keep_graphs and static):
            self._kept = {}
            return runs.make_loop(self.adapter, prepared, inputs, probe, cfg, grad, k, static)
        key = self._graph_key(prepared, probe, cfg, k)
        kept = self._kept.pop(grad, None)
        if kept is not None and kept[0] == key:
            loop = kept[1]
            loop.rebind(prepared, inputs, probe)
        else:
            del kept  # its buffers go before the new loop allocates its own
            loop = runs.make_loop(self.adapter, prepared, inputs, probe, cfg, grad, k, static)
        self._kept[grad] = (key, loop)
        return loop

    def _freeing_graphs_on_oom(self, run: Callable[[], None], started: Callable[[], bool]) -> None:
        """run(); if the GPU runs out of memory while `keep_graphs` loops hold some, free them, and if
        no step has reached the caller yet, run once more (from the start: same seed, same steps)."""
        for attempt in range(2):
            try:
                return run()
            except torch.OutOfMemoryError:
                if not self._kept:
                    raise
                if attempt or started():  # steps already reached the caller: theirs to rerun
                    self.release_graphs()
                    raise
            # here, not in the except block: the failed attempt's frames (and tensors) are gone
            self.release_graphs()

    def _graph_key(self, prepared: Prepared, probe: Probe, cfg: dict, k: int) -> tuple:
        """Everything a captured step bakes in: shapes (prompt length, capacity, K), the probe's
        layers, LocoRE's settings and where its bonus starts, and the weights' addresses."""
        weights = tuple(p.data_ptr() for p in self.model.parameters())
        return (
            prepared.n,
            cfg["max_new_tokens"],
            k,
            probe.layers,
            probe.bias_layers,
            repr(cfg["locore"]),
            str(self.dtype),
            str(self.device),
            weights,
        )

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
        if locore is not None:
            locore = locore.for_adapter(self.adapter)  # beta=None: the family's (one source: the adapter)
        vocab = self._vocab_size()
        if alternatives + 1 > vocab:
            raise ConfigError(
                f"alternatives={alternatives} asks for {alternatives + 1} candidates per step, but this "
                f"model's vocabulary has {vocab} tokens; use alternatives <= {vocab - 1}"
            )
        if sgrs is not None and sgrs.k > vocab:
            raise ConfigError(
                f"SGRS k={sgrs.k} is larger than this model's vocabulary ({vocab} tokens); use k <= {vocab}"
            )
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

    def _vocab_size(self) -> int:
        head = self.adapter.head
        return int(head.weight.shape[0] if head is not None else self.adapter.text_config.vocab_size)

    def _check_length(self, prepared: Prepared, new_tokens: int) -> None:
        """Prompt + new tokens must fit the model's positions (beyond them rotary positions are
        extrapolated and learned ones do not exist: numbers without meaning)."""
        limit = getattr(self.adapter.text_config, "max_position_embeddings", None)
        if isinstance(limit, int) and prepared.n + new_tokens > limit:
            room = limit - prepared.n
            raise ConfigError(
                f"the prompt takes {prepared.n} positions (image included) and {new_tokens} more were "
                f"asked for, but this model has {limit} positions; "
                + (
                    f"lower max_new_tokens (or the output) to <= {room}"
                    if room >= 1
                    else "shorten the prompt (or use a smaller image)"
                )
            )

    def _probe(self, cfg: dict, prepared: Prepared) -> Probe:
        lc: LocoRE | None = cfg.pop("_locore")
        return Probe(
            layers=tuple(cfg["layers"]),
            bias_fn=lc.bias_fn(prepared.n) if lc else None,
            bias_layers=frozenset(lc.layers) if lc and lc.layers is not None else None,
        )

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


def _check_prompt(prompt) -> None:
    if not isinstance(prompt, str):
        raise ConfigError(
            f"the prompt must be a string, not {type(prompt).__name__}; pass e.g. 'Describe the image.'"
        )


def _check_seed(seed) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed must be an integer in 0..2**63-1, got {seed!r}")


def _check_chunk(chunk) -> None:
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
        raise ConfigError(
            f"chunk must be an integer >= 1 (positions per sequence-engine pass) or None (all at once), "
            f"got {chunk!r}"
        )


def _check_known_words(tokenizer, text: str, ids: list[int]) -> None:
    """Refuse text whose words the tokenizer maps to its unknown token, naming them."""
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is None or unk not in ids:
        return
    words = [w for w in text.split() if unk in tokenizer(w, add_special_tokens=False)["input_ids"]]
    raise ConfigError(
        f"the tokenizer does not know {sorted(set(words)) or 'some characters'} in the output to analyze "
        f"(they become {tokenizer.unk_token!r}); rephrase them with known words, or pass token ids"
    )


# `lvsal_nb.session.load` stays importable; loading lives in loading.py (it imports Session)
from .loading import load  # noqa: E402, F401
