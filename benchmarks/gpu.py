"""One prepared GPU run (< 5 minutes on one H100-class GPU): correctness + overhead ratios.

    python benchmarks/gpu.py --out results_dir

1. Exactness on the GPU: a tiny float64 LLaVA on CUDA, both engines vs the naive reference.
2. Overhead: random weights with LLaVA-1.5-7B's language-model shape (Llama 32x4096, 32 heads,
   MLP 11008, vocab 32000), 576 image tokens + text = 640-token prompt, 256 new tokens, bf16:
   plain `generate`, generate + sequence engine (the default trace), step engine K=5, SGRS k=5,
   LocoRE around plain generate; wall time (CUDA-synchronised) and peak GPU memory of each, side by
   side in one process, ratios to plain generate.
Every path is warmed at 8 tokens first; plain generate runs first and again last (drift check).
Writes gpu.json, gpu.md and profile.txt (the sequence engine's `analyze` and 16 SGRS tokens under
torch.profiler) into --out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def exactness(device: str) -> dict:
    from PIL import Image

    import lvsal_nb as lv
    from lvsal_nb.models.tiny import tiny_llava
    from lvsal_nb.saliency.reference import reference_step

    model, proc = tiny_llava(dtype=torch.float64)
    s = lv.load(model, proc, device=device, dtype=torch.float64)
    img = Image.fromarray((np.random.RandomState(0).rand(60, 80, 3) * 255).astype(np.uint8))
    prompt = "describe this image ."
    worst = 0.0
    for engine in ("sequence", "step"):
        tr = s.trace(img, prompt, max_new_tokens=6, layers=[1, 2], engine=engine, alternatives=2)
        prepared = s.adapter.prepare(img, prompt)
        prepared.inputs = s.adapter.to(prepared.inputs, torch.float64)
        ids = [r.token_id for r in tr.records]
        for t in range(len(ids)):
            cands = [c.token_id for c in tr.records[t].candidates]
            ref = reference_step(s.adapter, prepared, ids, t, cands, [1, 2])
            worst = max(
                worst, max(abs(a - c.saliency) for a, c in zip(ref["scores"], tr.records[t].candidates))
            )
    return {"max_abs_err_vs_reference_float64": worst}


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
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    t0 = time.perf_counter()
    out = fn()
    torch.cuda.synchronize()
    return out, time.perf_counter() - t0, (torch.cuda.max_memory_allocated() - base) / 2**30


def profile_engines(s, img, prompt, trace, out_dir: Path) -> None:
    """Where each engine's time goes, for the next optimisation: the sequence engine's `analyze` of
    the traced output, and 16 SGRS tokens on the step engine, under torch.profiler (top ops by
    device and by host time) -> profile.txt."""
    import lvsal_nb as lv

    ids = [r.token_id for r in trace.records]
    runs = {
        f"analyze({len(ids)} tokens, chunk=None), includes its own prefill": lambda: s.analyze(
            img, prompt, ids, chunk=None
        ),
        "SGRS k=5, 16 tokens (step engine), includes its prefill": lambda: s.trace(
            img, prompt, max_new_tokens=16, sgrs=lv.SGRS(k=5)
        ),
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

    def gen():
        with torch.no_grad():
            return s.model.generate(**inputs, max_new_tokens=T, min_new_tokens=T, do_sample=False)

    def gen_locore():
        with torch.no_grad(), lv.locore(s.model, 0.15):
            return s.model.generate(**inputs, max_new_tokens=T, min_new_tokens=T, do_sample=False)

    runs = {
        "generate": gen,
        "LocoRE beta=0.15 (generate)": gen_locore,
        "step engine K=5": lambda: s.trace(img, prompt, max_new_tokens=T, engine="step", alternatives=4),
        "SGRS k=5": lambda: s.trace(img, prompt, max_new_tokens=T, sgrs=lv.SGRS(k=5)),
        "trace (generate + sequence engine)": lambda: s.trace(img, prompt, max_new_tokens=T, chunk=None),
        "generate (again: drift check)": gen,
    }
    runs = {k: v for k, v in runs.items() if not any(x in k for x in skip)}
    # Warm every path at a small length first (kernels, cuBLAS plans, allocator): run 1 and 2 timed
    # the sequence engine cold, and whatever ran after it looked slow (RESULTS.md).
    warm = {
        "generate": lambda: s.model.generate(**inputs, max_new_tokens=8, do_sample=False),
        "step": lambda: s.trace(img, prompt, max_new_tokens=8, engine="step", alternatives=4),
        "sgrs": lambda: s.trace(img, prompt, max_new_tokens=8, sgrs=lv.SGRS(k=5)),
        "trace": lambda: s.trace(img, prompt, max_new_tokens=8, chunk=None),
    }
    with torch.no_grad():
        for fn in warm.values():
            fn()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu (dry run)"
    res = {"prompt_tokens": prepared.n, "new_tokens": T, "gpu": gpu}
    outs = {}
    for name, fn in runs.items():
        out, secs, mem = timed(fn)
        outs[name] = out
        tokens = len(out) if isinstance(out, lv.Trace) else int(out.shape[1] - prepared.n)
        res[name] = {"seconds": secs, "peak_extra_gib": mem, "tokens": tokens}
        if isinstance(out, lv.Trace):  # where the time went: the engine's own analysis share
            res[name]["analysis_s"] = out.config["timing"]["analysis_s"]
        print(
            f"{name:40s} {secs:7.2f} s  +{mem:5.1f} GiB  {tokens} tokens  {res[name].get('analysis_s', '')}",
            flush=True,
        )
    if out_dir is not None and "trace (generate + sequence engine)" in outs:
        profile_engines(s, img, prompt, outs["trace (generate + sequence engine)"], out_dir)
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="gpu-results")
    ap.add_argument("--T", type=int, default=256)
    ap.add_argument("--dry-run", action="store_true", help="tiny shapes on the CPU: checks the script runs")
    ap.add_argument("--skip", nargs="*", default=[], help="skip methods whose name contains one of these")
    args = ap.parse_args(argv)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    if dev == "cpu" and not args.dry_run:
        print("no CUDA device: this benchmark needs one GPU (or pass --dry-run)")
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = {"exactness": exactness(dev)}
    print(res, flush=True)
    res["overhead"] = overhead(dev, args.T, args.dry_run, tuple(args.skip), out)
    (out / "gpu.json").write_text(json.dumps(res, indent=2))
    o = res["overhead"]
    base = o["generate"]["seconds"]
    lines = [
        f"GPU: {o['gpu']}; prompt {o['prompt_tokens']} tokens, {o['new_tokens']} new tokens, bf16, random "
        "weights with LLaVA-1.5-7B's language-model shape. Command: `python benchmarks/gpu.py`",
        "",
        "| method | tokens | seconds | × generate | of which saliency analysis | peak extra GPU memory |",
        "|---|---|---|---|---|---|",
    ]
    for k, v in o.items():
        if isinstance(v, dict):
            ana = f"{v['analysis_s']:.2f} s" if "analysis_s" in v else "-"
            lines.append(
                f"| {k} | {v['tokens']} | {v['seconds']:.2f} | {v['seconds'] / base:.2f}× | {ana} | "
                f"{v['peak_extra_gib']:.2f} GiB |"
            )
    lines += [
        "",
        f"Exactness on CUDA (tiny LLaVA, float64, both engines vs naive reference): max abs error "
        f"{res['exactness']['max_abs_err_vs_reference_float64']:.2e}.",
    ]
    if "sequence_vs_step_same_tokens" in o:
        lines.append(
            f"Sequence vs step engine in bf16: same tokens {o['sequence_vs_step_same_tokens']}, "
            f"median relative saliency difference {o['sequence_vs_step_median_rel_diff_bf16']}."
        )
    (out / "gpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
