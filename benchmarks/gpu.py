"""One prepared GPU run (< 5 minutes on one H100-class GPU): correctness + overhead ratios.

    python benchmarks/gpu.py --out results_dir [--no-cudnn-sdpa] [--skip NAME ...]
    python benchmarks/gpu.py --report results_dir/gpu.json     # gpu.md's tables again

--no-cudnn-sdpa: torch 2.11 on Hopper builds a cuDNN attention plan for every new key length, which
made the first eager 256-token `generate` of a process 3-4x slower than later ones (RESULTS.md).

1. Exactness on the GPU: a tiny float64 LLaVA on CUDA, the sequence engine, the step engine and
   SGRS+LocoRE, each with the static loop (CUDA graphs) and the dynamic one, vs the naive reference.
2. Overhead: random weights with LLaVA-1.5-7B's language-model shape (Llama 32x4096, 32 heads,
   MLP 11008, vocab 32000), 576 image tokens + text = 650-token prompt, 256 new tokens, bf16:
   plain `generate` (three times, spread out), LocoRE around it (twice), our own graphed greedy loop
   without saliency, the default trace (own loop + sequence engine), SGRS k=5 and the step engine
   K=5 (CUDA graphs, the default on CUDA), then the trace and SGRS on the dynamic loop (no graphs);
   wall time (CUDA-synchronised) and peak GPU memory of each, side by side in one process, ratios to
   the median plain generate.
Every path is warmed at 8 tokens first; plain generate runs first and again later (drift check).
Also counted (profiler, 16 tokens, unless --skip LocoRE): device kernels and copies per decode step
of plain generate and of LocoRE around it, the number that times on a noisy GPU only suggest.
Writes gpu.json, gpu.md and profile.txt (the sequence engine's `analyze`, 16 SGRS tokens and 16
LocoRE tokens under torch.profiler) into --out; gpu.partial.json after each method.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def exactness(device: str) -> dict:
    """A tiny float64 LLaVA on the device: each engine variant vs the naive reference (max abs error
    of every candidate's saliency), and which loop ran: static (CUDA graphs on CUDA) or dynamic
    (the growing-cache loop, no graphs)."""
    from PIL import Image

    import lvsal_nb as lv
    from lvsal_nb.models.tiny import tiny_llava
    from lvsal_nb.saliency.reference import reference_step

    model, proc = tiny_llava(dtype=torch.float64)
    s = lv.load(model, proc, device=device, dtype=torch.float64)
    img = Image.fromarray((np.random.RandomState(0).rand(60, 80, 3) * 255).astype(np.uint8))
    prompt = "describe this image ."
    out, tokens = {}, {}
    variants = {  # static_steps True: CUDA graphs on CUDA (the default there), eagerly on a CPU
        "sequence": ("sequence", None, True),
        "sequence, dynamic loop": ("sequence", None, False),
        "step": ("step", None, True),
        "step, dynamic loop": ("step", None, False),
        "sgrs+locore": ("step", lv.SGRS(k=4, alpha=0.9, order="greedy"), True),
        "sgrs+locore, dynamic loop": ("step", lv.SGRS(k=4, alpha=0.9, order="greedy"), False),
    }

    def worst_error(image, tr, lc) -> float:
        prepared = s.adapter.prepare(image, prompt)
        prepared.inputs = s.adapter.to(prepared.inputs, torch.float64)
        ids = [r.token_id for r in tr.records]
        worst = 0.0
        for t in range(len(ids)):
            cands = [c.token_id for c in tr.records[t].candidates]
            ref = reference_step(s.adapter, prepared, ids, t, cands, [1, 2], locore=lc)
            worst = max(
                worst, max(abs(a - c.saliency) for a, c in zip(ref["scores"], tr.records[t].candidates))
            )
        return worst

    for name, (engine, sgrs, static) in variants.items():
        s.static_steps = static
        lc = lv.LocoRE(beta=0.3) if sgrs is not None else None
        kw = dict(max_new_tokens=6, layers=[1, 2], engine=engine, alternatives=2, sgrs=sgrs, locore=lc)
        tr = s.trace(img, prompt, **kw)
        ids = [r.token_id for r in tr.records]
        out[name] = {"max_abs_err": worst_error(img, tr, lc), "loop": tr.config["step_loop"], "tokens": ids}
        tokens[name] = ids
        if static and engine == "step":  # graphs kept from this trace replay another image's trace
            s.keep_graphs = True
            s.trace(img, prompt, **kw)
            img2 = Image.fromarray((np.random.RandomState(1).rand(60, 80, 3) * 255).astype(np.uint8))
            tr2 = s.trace(img2, prompt, **kw)
            out[f"{name}, kept graphs, other image"] = {
                "max_abs_err": worst_error(img2, tr2, lc),
                "loop": tr2.config["step_loop"],
                "capture_s": tr2.config["timing"]["capture_s"],
            }
            s.keep_graphs = False
            s.release_graphs()
    s.static_steps = None
    for name in variants:
        if not name.endswith("dynamic loop"):
            out[name]["same_tokens_as_dynamic_loop"] = tokens[name] == tokens[f"{name}, dynamic loop"]
    return out


def build_7b(device: str, dry: bool = False):
    from PIL import Image
    from transformers import CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration

    import lvsal_nb as lv
    from lvsal_nb.models.tiny import llama_text_config, tiny_llava

    _, proc = tiny_llava(vocab=32000, image_size=336, patch=14)  # its tokenizer + processor
    tok = proc.tokenizer
    h, inter, n, heads = (64, 128, 4, 4) if dry else (4096, 11008, 32, 32)
    text = llama_text_config(len(tok), hidden=h, layers=n, heads=heads, kv_heads=heads, inter=inter)
    vision = CLIPVisionConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=336,
        patch_size=14,
    )
    cfg = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    torch.manual_seed(0)
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    with torch.device(device):
        model = LlavaForConditionalGeneration(cfg).eval()
    torch.set_default_dtype(prev)
    model.generation_config.eos_token_id = None
    model.config.text_config.eos_token_id = None
    tok.eos_token = None
    s = lv.load(model, proc, device=device, dtype=torch.bfloat16)
    img = Image.fromarray((np.random.RandomState(0).rand(336, 336, 3) * 255).astype(np.uint8))
    words = " ".join(["describe this image in detail ."] * 12)  # ~60 text tokens: 576 + text = ~640
    return s, img, words


def timed(fn):
    if not torch.cuda.is_available():  # --dry-run on a CPU
        t0 = time.perf_counter()
        return fn(), time.perf_counter() - t0, 0.0
    gc.collect()  # each method starts from the same allocator and heap state
    torch.cuda.empty_cache()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    t0 = time.perf_counter()
    out = fn()
    torch.cuda.synchronize()
    return out, time.perf_counter() - t0, (torch.cuda.max_memory_allocated() - base) / 2**30


def profile_engines(s, img, prompt, trace, out_dir: Path, locore16) -> None:
    """Where each engine's time goes, for the next optimisation: the sequence engine's `analyze` of
    the traced output, 16 SGRS tokens on the step engine and 16 tokens of LocoRE around `generate`,
    under torch.profiler (top ops by device and by host time) -> profile.txt."""
    import lvsal_nb as lv

    ids = [r.token_id for r in trace.records]
    runs = {
        f"analyze({len(ids)} tokens, chunk=None), includes its own prefill": lambda: s.analyze(
            img, prompt, ids, chunk=None
        ),
        "SGRS k=5, 16 tokens (step engine), includes its prefill": lambda: s.trace(
            img, prompt, max_new_tokens=16, sgrs=lv.SGRS(k=5)
        ),
        "LocoRE beta=0.15 around generate, 16 tokens": locore16,
    }
    text = []
    for name, fn in runs.items():
        table, secs = _profiled(fn)
        text.append(f"== {name}: {secs:.3f} s\n")
        if torch.cuda.is_available():
            text.append(table.table(sort_by="cuda_time_total", row_limit=20))
        text.append(table.table(sort_by="self_cpu_time_total", row_limit=20))
        print(f"{name}: {secs:.3f} s", flush=True)
    (out_dir / "profile.txt").write_text("\n".join(text))


def launches_per_token(runs: dict, n: int) -> dict:
    """Device work items (kernels, memcpys, memsets) each run issues, per decode step: noise-free,
    where times are not. On a CPU (--dry-run) the count is of top-level aten ops instead."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    cuda = torch.cuda.is_available()
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    out = {}
    for name, fn in runs.items():
        fn()  # warm: first-call work (plans, allocations) is not a per-step cost
        with profile(activities=acts) as prof:
            fn()
            if cuda:
                torch.cuda.synchronize()
        if cuda:
            count = sum(e.device_type == DeviceType.CUDA for e in prof.events())
        else:
            count = sum(e.cpu_parent is None and e.name.startswith("aten::") for e in prof.events())
        out[name] = count / (n - 1)  # the prefill is the same in every run; n - 1 decode steps
    return out


def _profiled(fn):
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with profile(activities=acts) as prof:
        _, secs, _ = timed(fn)
    return prof.key_averages(), secs


def overhead(
    device: str, T: int, dry: bool = False, skip: tuple[str, ...] = (), out_dir: Path | None = None
) -> dict:
    import lvsal_nb as lv

    s, img, prompt = build_7b(device, dry)
    prepared = s.adapter.prepare(img, prompt)
    inputs = s.adapter.to(prepared.inputs, torch.bfloat16)

    def gen(n=T):
        with torch.no_grad():
            return s.model.generate(**inputs, max_new_tokens=n, min_new_tokens=n, do_sample=False)

    def gen_locore(n=T):
        with torch.no_grad(), lv.locore(s.model, 0.15):
            return s.model.generate(**inputs, max_new_tokens=n, min_new_tokens=n, do_sample=False)

    def gen_locore16():
        return gen_locore(16)

    def loop(static, fn):  # static_steps for one run: None = default (CUDA graphs on CUDA)
        def run():
            s.static_steps = static
            try:
                return fn()
            finally:
                s.static_steps = None

        return run

    def own_loop():  # the fairest plain baseline: greedy decoding on the own static loop, no saliency
        from lvsal_nb.context import TraceContext
        from lvsal_nb.decoding.static import StaticStepLoop
        from lvsal_nb.saliency.probe import Probe, attached

        probe = Probe(layers=tuple(s.adapter.default_layers()))
        with attached(s.model, s.adapter.language_model, s.adapter.text_config, probe):
            cap, graphs = prepared.n + T, torch.cuda.is_available()
            ctx = TraceContext(s.adapter, prepared, probe, inputs)
            loop = StaticStepLoop(ctx, False, 1, cap, graphs)
            loop.prefill()
            out = []
            for _ in range(T):
                out.append(int(loop.forward().argmax()))  # one host sync per token, as generate
                loop.push(out[-1])
        return out

    def kept(fn):  # times a trace that replays graphs kept from an identical untimed one (primes)
        def run():
            try:
                return fn()
            finally:
                s.keep_graphs = False
                s.release_graphs()

        return run

    def prime(fn):
        def run():
            s.keep_graphs = True
            fn()

        return run

    step5 = lambda: s.trace(img, prompt, max_new_tokens=T, engine="step", alternatives=4)  # noqa: E731
    sgrs5 = lambda: s.trace(img, prompt, max_new_tokens=T, sgrs=lv.SGRS(k=5))  # noqa: E731
    seq = lambda: s.trace(img, prompt, max_new_tokens=T, chunk=None)  # noqa: E731
    runs = {
        "generate": gen,
        "own loop, no saliency (CUDA graphs)": own_loop,
        "trace (generate + sequence engine)": seq,
        "SGRS k=5": sgrs5,
        "step engine K=5": step5,
        "generate (again: drift check)": gen,
        "LocoRE beta=0.15 (generate)": gen_locore,
        "own loop, no saliency (again)": own_loop,
        "generate (third time)": gen,
        "LocoRE beta=0.15 (generate), again": gen_locore,
        "trace, dynamic loop (no CUDA graphs)": loop(False, seq),
        "SGRS k=5, dynamic loop (no CUDA graphs)": loop(False, sgrs5),
        "SGRS k=5, graphs kept from the trace before": kept(sgrs5),
    }
    if dry:  # on a CPU the default is the dynamic loop: run the static one eagerly as well
        runs["SGRS k=5, static loop (eager)"] = loop(True, sgrs5)
    runs = {k: v for k, v in runs.items() if not any(x in k for x in skip)}
    # Warm every path at a small length first (kernels, cuBLAS plans, allocator): run 1 and 2 timed
    # the sequence engine cold, and whatever ran after it looked slow (RESULTS.md).
    warm = {
        "generate": lambda: s.model.generate(**inputs, max_new_tokens=8, do_sample=False),
        "step": lambda: s.trace(img, prompt, max_new_tokens=8, engine="step", alternatives=4),
        "sgrs": lambda: s.trace(img, prompt, max_new_tokens=8, sgrs=lv.SGRS(k=5)),
        "trace": lambda: s.trace(img, prompt, max_new_tokens=8, chunk=None),
        "sgrs, dynamic": loop(False, lambda: s.trace(img, prompt, max_new_tokens=8, sgrs=lv.SGRS(k=5))),
    }
    failed, counts = {}, None
    if not any("LocoRE" in x for x in skip):  # what LocoRE adds per step, as a count
        try:
            counts = launches_per_token(
                {"generate": lambda: gen(16), "LocoRE beta=0.15 (generate)": gen_locore16}, 16
            )
        except Exception:
            failed["launch counts"] = traceback.format_exc()
    with torch.no_grad():
        for name, fn in warm.items():
            try:
                fn()
            except Exception:  # one broken path must not cost the other numbers of a lent GPU's run
                failed[name] = traceback.format_exc()
                print(f"warm-up {name} failed:\n{failed[name]}", flush=True)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu (dry run)"
    res = {"prompt_tokens": prepared.n, "new_tokens": T, "gpu": gpu}
    if counts is not None:
        res["launches_per_token"] = counts
    outs = {}
    if failed:
        res["failed"] = failed
    primes = {"SGRS k=5, graphs kept from the trace before": prime(sgrs5)}
    for name, fn in runs.items():
        try:
            if name in primes:
                primes[name]()
            out, secs, mem = timed(fn)
        except Exception:
            res.setdefault("failed", {})[name] = traceback.format_exc()
            print(f"{name} failed:\n{res['failed'][name]}", flush=True)
            continue
        outs[name] = out
        tokens = len(out) if isinstance(out, (lv.Trace, list)) else int(out.shape[1] - prepared.n)
        res[name] = {"seconds": secs, "peak_extra_gib": mem, "tokens": tokens}
        if isinstance(out, lv.Trace):  # where the time went: analysis share, graph capture, which loop
            timing = out.config["timing"]
            res[name].update(
                analysis_s=timing["analysis_s"],
                capture_s=timing.get("capture_s", 0.0),
                loop=out.config["step_loop"],
            )
        print(f"{name:44s} {secs:7.2f} s  +{mem:5.1f} GiB  {tokens} tokens  {res[name]}", flush=True)
        if out_dir is not None:  # partial results survive a run cut short
            (out_dir / "gpu.partial.json").write_text(json.dumps(res, indent=2))
    if out_dir is not None and "trace (generate + sequence engine)" in outs:
        profile_engines(s, img, prompt, outs["trace (generate + sequence engine)"], out_dir, gen_locore16)
    seq = outs.get("trace (generate + sequence engine)")
    step = outs.get("step engine K=5", outs.get("SGRS k=5"))
    if seq is None or step is None:  # --skip left nothing to compare
        return res
    n = min(len(seq), len(step))
    same = sum(a.token_id == b.token_id for a, b in zip(seq.records[:n], step.records[:n]))
    diffs = [
        abs(a.saliency - b.saliency) / max(abs(b.saliency), 1e-9)
        for a, b in zip(seq.records[:n], step.records[:n])
        if a.token_id == b.token_id
    ]
    res["sequence_vs_step_same_tokens"] = f"{same}/{n}"
    res["sequence_vs_step_median_rel_diff_bf16"] = float(np.median(diffs)) if diffs else None
    return res


def report(res: dict) -> list[str]:
    """gpu.md's lines from gpu.json's content. Ratios are to the median of the `generate` samples
    (first, again, third) and of the own graphed loop's samples, timed in the same process."""
    o = res["overhead"]
    timed_ = {k: v for k, v in o.items() if isinstance(v, dict) and "seconds" in v}
    gen = float(np.median([v["seconds"] for k, v in timed_.items() if k.startswith("generate")]))
    own_s = [v["seconds"] for k, v in timed_.items() if k.startswith("own loop")]
    own = float(np.median(own_s)) if own_s else None
    cudnn = "on" if res.get("cudnn_sdpa", True) else "off (--no-cudnn-sdpa)"
    lines = [
        f"GPU: {o['gpu']}; prompt {o['prompt_tokens']} tokens, {o['new_tokens']} new tokens, bf16, random "
        f"weights with LLaVA-1.5-7B's language-model shape; SDPA's cuDNN backend {cudnn}. "
        f"× generate: to the median of the generate rows ({gen:.2f} s)"
        + (f"; × own loop: to the median of the own-loop rows ({own:.2f} s)." if own else "."),
        "",
        "| method | own loop | tokens | seconds | × generate | × own loop | saliency analysis "
        "| graph capture | peak extra GPU memory |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for k, v in timed_.items():
        ana = f"{v['analysis_s']:.2f} s" if "analysis_s" in v else "-"
        cap = f"{v['capture_s']:.2f} s" if v.get("capture_s") else "-"
        rel = f"{v['seconds'] / own:.2f}×" if own else "-"
        lines.append(
            f"| {k} | {v.get('loop', '-')} | {v['tokens']} | {v['seconds']:.2f} | "
            f"{v['seconds'] / gen:.2f}× | {rel} | {ana} | {cap} | {v['peak_extra_gib']:.2f} GiB |"
        )
    loc = [v["seconds"] for k, v in timed_.items() if k.startswith("LocoRE")]
    if loc:
        lines += [
            "",
            f"LocoRE around generate: median of its {len(loc)} sample(s) {np.median(loc):.2f} s = "
            f"{np.median(loc) / gen:.3f}× the median generate (issue 8's target: ≤ 1.03×).",
        ]
    lines += ["", "Exactness on the device (tiny LLaVA, float64, 6 tokens, vs the naive reference):", ""]
    if "exactness_failed" in res:
        lines.append(f"FAILED:\n```\n{res['exactness_failed']}```")
    if "failed" in o:
        lines += ["", "Failed methods: " + ", ".join(o["failed"])]
    for k, v in res["exactness"].items():
        same = v.get("same_tokens_as_dynamic_loop")
        lines.append(
            f"- {k}: loop {v['loop']}, max abs error {v['max_abs_err']:.2e}"
            + ("" if same is None else f", same tokens as the dynamic loop: {same}")
            + (f", graph capture {v['capture_s']:.2f} s" if "capture_s" in v else "")
        )
    if "launches_per_token" in o:
        what = "device work items (kernels, copies)" if "cpu" not in o["gpu"] else "top-level aten ops"
        lines.append(
            f"{what.capitalize()} per decode step (16 tokens, profiled): "
            + ", ".join(f"{k} {v:.1f}" for k, v in o["launches_per_token"].items())
            + "."
        )
    if "sequence_vs_step_same_tokens" in o:
        lines.append(
            f"Sequence vs step engine in bf16: same tokens {o['sequence_vs_step_same_tokens']}, "
            f"median relative saliency difference {o['sequence_vs_step_median_rel_diff_bf16']}."
        )
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="gpu-results")
    ap.add_argument("--T", type=int, default=256)
    ap.add_argument("--dry-run", action="store_true", help="tiny shapes on the CPU: checks the script runs")
    ap.add_argument("--skip", nargs="*", default=[], help="skip methods whose name contains one of these")
    ap.add_argument(
        "--no-cudnn-sdpa",
        action="store_true",
        help="SDPA without its cuDNN backend (plans built per new shape)",
    )
    ap.add_argument("--report", metavar="GPU_JSON", help="only rewrite gpu.md (stdout) from a saved gpu.json")
    args = ap.parse_args(argv)
    if args.report:
        print("\n".join(report(json.loads(Path(args.report).read_text()))))
        return 0
    if args.no_cudnn_sdpa:
        torch.backends.cuda.enable_cudnn_sdp(False)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    if dev == "cpu" and not args.dry_run:
        print("no CUDA device: this benchmark needs one GPU (or pass --dry-run)")
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        res = {"exactness": exactness(dev)}
    except Exception:
        res = {"exactness": {}, "exactness_failed": traceback.format_exc()}
    print(json.dumps(res, indent=1), flush=True)
    res["overhead"] = overhead(dev, args.T, args.dry_run, tuple(args.skip), out)
    res["cudnn_sdpa"] = not args.no_cudnn_sdpa
    (out / "gpu.json").write_text(json.dumps(res, indent=2))
    lines = report(res)
    (out / "gpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
