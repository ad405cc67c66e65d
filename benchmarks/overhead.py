"""Overhead of tracing vs plain generation, side by side in one run (CPU by default).

    python benchmarks/overhead.py                     # T = 32 128 256, writes benchmarks/RESULTS.md section
    python benchmarks/overhead.py --T 32 --no-write   # quick look
    python benchmarks/overhead.py --T 256 --rounds 3  # medians of 3 interleaved rounds (noisy hosts)
    python benchmarks/overhead.py --T 64 --compare /tmp/old   # before/after: each run paired with the
                                                      # same run of another checkout's lvsal_nb

Each (method, T) runs in a fresh subprocess on the same random ~134M-parameter LLaVA-architecture
model (Llama text 12x768, vocab 32000, 576 image tokens as in LLaVA-1.5), so its peak RSS above the
loaded model is its own. Ratios are to plain transformers `generate` (greedy, KV cache) measured in
the same run. The naive reference (full recompute + autograd on all parameters, per step) is timed on
8 evenly spaced steps and integrated over all T steps (linear interpolation): it is O(T^2), and
running every step would take hours on this CPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

METHODS = {
    "generate": "plain transformers generate (greedy, KV cache)",
    "trace": "generate + sequence engine (lv trace default, K=1)",
    "step_k1": "step engine, K=1 (engine='step')",
    "step_k5": "step engine, K=5 (4 alternatives)",
    "sgrs": "SGRS k=5 (step engine, batched backward)",
    "locore": "LocoRE beta=0.15 around plain generate",
    "naive": "naive reference, per step (8 sampled steps, integrated)",
    "inseq": "inseq 'saliency' on the language model (text-only, same lengths)",
}


def build(threads: int):
    import numpy as np
    from PIL import Image

    import lvsal_nb as lv
    from lvsal_nb.models.tiny import tiny_llava

    torch.set_num_threads(threads)
    model, proc = tiny_llava(
        seed=0,
        layers=12,
        hidden=768,
        heads=12,
        kv_heads=12,
        inter=2048,
        vocab=32000,
        image_size=336,
        patch=14,
        vision_hidden=64,
    )
    model.generation_config.eos_token_id = None  # every run generates exactly T tokens
    model.config.text_config.eos_token_id = None
    proc.tokenizer.eos_token = None
    session = lv.load(model, proc, device="cpu", dtype=torch.float32)
    image = Image.fromarray((np.random.RandomState(0).rand(336, 336, 3) * 255).astype(np.uint8))
    return session, image


def run_one(method: str, T: int, threads: int) -> dict:
    import lvsal_nb as lv

    session, image = build(threads)
    prompt = "describe this image in detail ."
    prepared = session.adapter.prepare(image, prompt)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with torch.no_grad():  # warm-up: allocator, threads
        session.model.generate(**prepared.inputs, max_new_tokens=2, do_sample=False)
    t0 = time.perf_counter()
    n = T
    if method == "generate":
        with torch.no_grad():
            out = session.model.generate(
                **prepared.inputs, max_new_tokens=T, min_new_tokens=T, do_sample=False
            )
        n = out.shape[1] - prepared.n
    elif method == "locore":
        with torch.no_grad(), lv.locore(session.model, 0.15):
            out = session.model.generate(
                **prepared.inputs, max_new_tokens=T, min_new_tokens=T, do_sample=False
            )
        n = out.shape[1] - prepared.n
    elif method in ("trace", "step_k1", "step_k5", "sgrs"):
        kw = {
            "trace": {},
            "step_k1": {"engine": "step"},
            "step_k5": {"engine": "step", "alternatives": 4},
            "sgrs": {"sgrs": lv.SGRS(k=5)},
        }[method]
        tr = session.trace(image, prompt, max_new_tokens=T, chunk=None, **kw)
        n = len(tr)
    elif method == "naive":
        n = T
        t0 = _naive(session, image, prompt, prepared, T)
    elif method == "inseq":
        t0 = _inseq(session, prepared, T)
    secs = time.perf_counter() - t0 if method not in ("naive", "inseq") else t0
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss) / 1024  # MiB (ru_maxrss is KiB)
    return {"method": method, "T": T, "tokens": int(n), "seconds": secs, "peak_mib": peak}


def _naive(session, image, prompt, prepared, T) -> float:
    """Time the naive reference at 8 steps, integrate over all T steps (returns seconds)."""
    import numpy as np

    from lvsal_nb.saliency.reference import reference_step

    with torch.no_grad():
        out = session.model.generate(**prepared.inputs, max_new_tokens=T, min_new_tokens=T, do_sample=False)
    ids = out[0, prepared.n :].tolist()
    layers = session.adapter.default_layers()
    xs = sorted(set(np.linspace(0, T - 1, 8).round().astype(int).tolist()))
    ys = []
    for t in xs:
        t0 = time.perf_counter()
        reference_step(session.adapter, prepared, ids, t, [ids[t]], layers)
        ys.append(time.perf_counter() - t0)
    return float(np.interp(np.arange(T), xs, ys).sum())


def _inseq(session, prepared, T) -> float:
    """inseq's gradient saliency of T generated tokens on the text model (inseq cannot feed images)."""
    import inseq
    from transformers import LlamaForCausalLM

    lm = LlamaForCausalLM(session.model.config.text_config)
    lm.model.load_state_dict(session.model.model.language_model.state_dict())
    lm.lm_head.load_state_dict(session.model.lm_head.state_dict())
    lm.eval()
    tok = session.adapter.tokenizer
    ids = prepared.input_ids.clone()
    ids[ids == session.model.config.image_token_id] = 10  # same length, plain text tokens
    text = tok.decode(ids[0].tolist())
    with torch.no_grad():
        gen = lm.generate(ids, max_new_tokens=T, min_new_tokens=T, do_sample=False)
    target = tok.decode(gen[0].tolist())
    model = inseq.load_model(lm, "saliency", tokenizer=tok)
    t0 = time.perf_counter()
    model.attribute(text, target, show_progress=False)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--T", type=int, nargs="+", default=[32, 128, 256])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--section", default="overhead", help="RESULTS.md section to (re)write")
    ap.add_argument(
        "--rounds", type=int, default=1, help="run every method this many times, round-robin; report medians"
    )
    ap.add_argument(
        "--compare",
        metavar="ROOT",
        help="another checkout (its benchmarks/overhead.py and lvsal_nb): each run is followed by the same "
        "run there, so both see the same load; prints its table and the ratios too",
    )
    ap.add_argument("--one", nargs=2, metavar=("METHOD", "T"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one[0], int(args.one[1]), args.threads)))
        return 0
    args.methods = list(dict.fromkeys(args.methods))
    rows, other = [], []
    scripts = [(Path(__file__).resolve(), rows, "")]
    if args.compare:
        scripts.append((Path(args.compare).resolve() / "benchmarks" / "overhead.py", other, " (compare)"))
    for T in args.T:
        for m in [m for _ in range(args.rounds) for m in args.methods]:  # round-robin: drift hits all
            for script, out, tag in scripts:
                out.append(_run(script, m, T, args.threads, tag))
    table = render(rows, args)
    if args.compare:
        table += f"\nThe same runs, each right after the one above, of `{args.compare}`:\n\n" + render(
            other, args
        )
        table += "\nOverhead here relative to there (1.00 = the same):\n\n" + _ratios(rows, other, args)
    print(table)
    if not args.no_write:
        title = f"## CPU overhead (benchmarks/overhead.py, section {args.section})"
        write_section(args.section, title + "\n\n" + table)
    return 0


def _run(script: Path, m: str, T: int, threads: int, tag: str) -> dict:
    """One (method, T) in a fresh subprocess of `script`."""
    cmd = [sys.executable, str(script), "--one", m, str(T), "--threads", str(threads)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        err = (res.stderr.strip().splitlines() or ["?"])[-1]
        print(f"{m:>9} T={T:<4} FAILED{tag}: {err}", flush=True)
        return {"method": m, "T": T, "error": err}
    r = json.loads(res.stdout.strip().splitlines()[-1])
    print(f"{m:>9} T={T:<4} {r['seconds']:8.2f} s  peak +{r['peak_mib']:7.0f} MiB{tag}", flush=True)
    return r


def _ratios(rows, other, args) -> str:
    """Per method and T: (this ×generate) / (compare ×generate); 1.00 = the same overhead."""

    def rel(rs):
        med = _median_rows(rs)
        base = {r["T"]: r["seconds"] for r in med if r["method"] == "generate" and "seconds" in r}
        return {
            (r["method"], r["T"]): r["seconds"] / base[r["T"]]
            for r in med
            if "seconds" in r and r["T"] in base
        }

    a, b = rel(rows), rel(other)
    lines = ["| method | " + " | ".join(f"T={T}: ×generate here / there" for T in args.T) + " |"]
    lines.append("|---|" + "---|" * len(args.T))
    for m in args.methods:
        cells = [
            f"{a[m, T]:.2f} / {b[m, T]:.2f} = {a[m, T] / b[m, T]:.3f}" if (m, T) in a and (m, T) in b else "-"
            for T in args.T
        ]
        lines.append(f"| {METHODS[m]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _median_rows(rows):
    """One row per (method, T): the median seconds over rounds, the largest peak."""
    import statistics

    out = []
    for key in dict.fromkeys((r["method"], r["T"]) for r in rows):
        ok = [r for r in rows if (r["method"], r["T"]) == key and "seconds" in r]
        if not ok:
            out.append(next(r for r in rows if (r["method"], r["T"]) == key))
            continue
        secs = statistics.median(r["seconds"] for r in ok)
        peak = max(r["peak_mib"] for r in ok)
        out.append({"method": key[0], "T": key[1], "seconds": secs, "peak_mib": peak})
    return out


def render(rows, args) -> str:
    rows = _median_rows(rows)
    base = {r["T"]: r["seconds"] for r in rows if r["method"] == "generate" and "seconds" in r}
    lines = [
        "| method | " + " | ".join(f"T={T} s (×generate)" for T in args.T) + " | peak RSS T=max |",
        "|---|" + "---|" * len(args.T) + "---|",
    ]
    for m in args.methods:
        cells = []
        for T in args.T:
            r = next((r for r in rows if r["method"] == m and r["T"] == T), None)
            if r is None or "seconds" not in r:
                cells.append("failed: " + (r or {}).get("error", "-")[:60])
            else:
                cells.append(
                    f"{r['seconds']:.2f} ({r['seconds'] / base[T]:.2f}×)"
                    if T in base
                    else f"{r['seconds']:.2f}"
                )
        last = next((r for r in rows if r["method"] == m and r["T"] == args.T[-1] and "peak_mib" in r), None)
        cells.append(f"+{last['peak_mib']:.0f} MiB" if last else "-")
        lines.append(f"| {METHODS[m]} | " + " | ".join(cells) + " |")
    cmd = "python benchmarks/overhead.py " + " ".join(sys.argv[1:])
    head = (
        f"Machine: {platform.processor() or platform.machine()}, {args.threads} threads, "
        f"torch {torch.__version__}, {time.strftime('%Y-%m-%d')}. Command: `{cmd.strip()}`"
        + (f". Median of {args.rounds} round-robin rounds." if args.rounds > 1 else "")
    )
    return head + "\n\n" + "\n".join(lines) + "\n"


def write_section(name: str, text: str) -> None:
    """Replace the `<!-- name:start -->...<!-- name:end -->` section of RESULTS.md (append if absent)."""
    path = HERE / "RESULTS.md"
    a_mark, b_mark = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    doc = path.read_text() if path.exists() else "# Benchmark results\n"
    if a_mark not in doc:
        doc = doc.rstrip("\n") + f"\n\n{a_mark}\n{b_mark}\n"
    a, b = doc.index(a_mark) + len(a_mark), doc.index(b_mark)
    path.write_text(doc[:a] + "\n" + text.strip("\n") + "\n" + doc[b:])


if __name__ == "__main__":
    sys.exit(main())
