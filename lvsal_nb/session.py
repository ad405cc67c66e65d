"""Session: a model + processor + adapter + device, and the one entry point `trace`.

s = lvsal_nb.load("toy")
tr = s.trace(image, "Describe the image.", max_new_tokens=32)               # sequence engine
tr = s.trace(image, "Describe the image.", sgrs=lvsal_nb.SGRS())            # step engine
tr = s.analyze(image, "Describe the image.", "there is a red circle .")     # post-hoc
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import torch

from .call_checks import check_length, check_prompt, output_ids, vocab_size
from .context import TraceContext
from .decoding import runs
from .decoding.locore import LocoRE
from .decoding.sgrs import SGRS
from .decoding.static import static_supported
from .kept_loops import KeptLoops
from .models import Adapter, Prepared, adapter_for
from .saliency.model_lock import holding
from .saliency.probe import Probe, attached
from .settings import RunRecord, TraceSettings, check_chunk
from .trace import Step, Trace

StepCallback = Callable[[Step], Any]
TokenCallback = Callable[[int, int, str], Any]  # on_token(step, token_id, piece): text before saliency


def _locked(method):
    """One trace / analysis at a time per model object (not per Session: two Sessions may share a
    model): the probe, the caches and the model's patched state are shared. A second caller waits up
    to model_lock.WAIT_S seconds, then gets ModelBusyError. `holding` takes the lock so that a Ctrl-C
    can never leave it taken (model_lock.py)."""

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
        p = next(model.parameters())
        self.device = torch.device(device) if device is not None else p.device
        self.dtype = dtype or p.dtype
        if p.device != self.device or p.dtype != self.dtype:
            self.model.to(device=self.device, dtype=self.dtype)
        self._graphs = KeptLoops(self.device, self.dtype)  # what `keep_graphs` keeps

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
        check_prompt(prompt)
        st = self._settings(
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
            chunk=chunk,
            seed=seed,
            generate_kwargs=generate_kwargs,
        )
        ctx = self._context(st, image, prompt)
        gen = torch.Generator(device="cpu").manual_seed(seed)
        steps: list[Step] = []
        bar = _progress(max_new_tokens, progress)
        record = RunRecord()

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
            record.restart()
            # the own loop unless generate's keywords were given; the engines differ only in the policy
            policy: runs.Policy
            if st.engine == "step":  # K candidates scored at every token (SGRS or plain)
                loop = self._loop(ctx, st, grad=True, k=st.k)
                policy = runs.StepPolicy(ctx, loop, st, gen, emit, on_token)
            elif st.generate_kwargs:
                runs.run_generate(ctx, st, emit, on_token)
                return
            else:  # without grad; the sequence engine scores every `chunk` tokens
                loop = self._loop(ctx, st, grad=False, k=1)
                policy = runs.SequencePolicy(ctx, st, record, gen, emit, on_token)
            runs.decode(ctx, loop, st.max_new_tokens, policy, record, stop)

        with attached(self.model, self.adapter.language_model, self.adapter.text_config, ctx.probe):
            try:
                self._graphs.run(run, started=lambda: bool(steps))
            except KeyboardInterrupt:
                record.interrupted = True
            finally:
                bar.close()
        record.interrupted = record.interrupted or bool(stop is not None and stop.is_set())
        record.finish()
        return self._build(ctx.prepared, steps, st, record, prompt, trace_id)

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
        check_prompt(prompt)
        check_chunk(chunk)
        ids = output_ids(self.adapter, output)
        st = self._settings(
            max_new_tokens=len(ids),
            decoding="forced",
            temperature=1.0,
            top_p=1.0,
            sgrs=None,
            locore=locore,
            layers=layers,
            context=context,
            engine="sequence",
            alternatives=alternatives,
            chunk=chunk,
            seed=None,
            generate_kwargs={},
        )
        ctx = self._context(st, image, prompt)
        steps: list[Step] = []

        with attached(self.model, self.adapter.language_model, self.adapter.text_config, ctx.probe):
            self._graphs.run(lambda: runs.run_forced(ctx, st, ids, steps.append), started=lambda: bool(steps))
        return self._build(ctx.prepared, steps, st, None, prompt)

    # ---- helpers ------------------------------------------------------------------------------
    def release_graphs(self) -> None:
        """Drop the loops kept by `keep_graphs` (their buffers and CUDA graphs)."""
        self._graphs.release()

    def _loop(self, ctx: TraceContext, st: TraceSettings, grad: bool, k: int):
        static = self.static_steps if self.static_steps is not None else self.device.type == "cuda"
        static = static and static_supported(self.adapter)
        return self._graphs.loop(ctx, st, grad, k, static, keep=self.keep_graphs)

    def _settings(self, **kw) -> TraceSettings:
        return TraceSettings.checked(self.adapter, vocab_size(self.adapter), **kw)

    def _context(self, st: TraceSettings, image, prompt: str) -> TraceContext:
        """The prompt prepared and checked against the model's positions, and the probe: one value."""
        prepared = self.adapter.prepare(image, prompt)
        check_length(self.adapter, prepared, st.max_new_tokens)
        inputs = self.adapter.to(prepared.inputs, self.dtype)
        lc = st.locore
        probe = Probe(
            layers=st.layers,
            bias_fn=lc.bias_fn(prepared.n) if lc else None,
            bias_layers=frozenset(lc.layers) if lc and lc.layers is not None else None,
        )
        return TraceContext(self.adapter, prepared, probe, inputs)

    def _build(
        self,
        prepared: Prepared,
        steps: list[Step],
        st: TraceSettings,
        record: RunRecord | None,
        prompt: str,
        trace_id: str | None = None,
    ) -> Trace:
        """The Trace: its config is the settings, then what was measured (None: an analysis)."""
        cfg = st.config(
            {
                "model_id": self.model_id,
                "family": self.adapter.family,
                "device": str(self.device),
                "dtype": str(self.dtype).replace("torch.", ""),
            }
        )
        if record is not None:
            cfg.update(record.config())
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
            interrupted=record is not None and record.interrupted,
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


# `lvsal_nb.session.load` stays importable; loading lives in loading.py (it imports Session)
from .loading import load  # noqa: E402, F401
