"""The methods table on the toy world: greedy, LocoRE, SGRS, SGRS+LocoRE, VCD, DoLa on held-out toy scenes.

    python benchmarks/methods_toy.py                      # 500 scenes; writes its RESULTS.md section
    python benchmarks/methods_toy.py --n 100 --no-write   # a quicker look
    python benchmarks/methods_toy.py --engine ray --workers 4

Two resumable `lvsal eval` runs on the embedded toy model (`lvsal_nb.load("toy")`) with exact ground
truth: CHAIR on the captions of scenes 0..n-1 of the "eval" stream (max_new_tokens 64, longer than
any toy caption; traces kept, so the mean saliency of each method's tokens is reported), and POPE's
three splits on the same scenes, or on the first --pope-n of them (those with >= 3 objects, 6
questions each per split; max_new_tokens 4, no traces). Method settings are the runner's: SGRS
official defaults (K=5, α=0.6, W=5, R=3, seeded sampling order), LocoRE β=0.15 (w=5, all layers),
VCD α=1, β=0.1, noise step 500 (linear schedule), DoLa "low" bucket of the 8-layer model ([0, 2]),
relative top 0.1, repetition penalty 1.2.
Rerunning the same command resumes (the run folders are under --out).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

METHODS = ["greedy", "locore", "sgrs", "sgrs+locore", "vcd", "dola"]
LABELS = {
    "greedy": "greedy",
    "locore": "LocoRE",
    "sgrs": "SGRS",
    "sgrs+locore": "SGRS+LocoRE",
    "vcd": "VCD",
    "dola": "DoLa",
}
NOTES = """Reading the POPE columns: a toy answer is one token ("yes" / "no") before EOS. LocoRE only
reweights attention to earlier *generated* tokens, and the first one has none, so LocoRE cannot
change a one-token answer: the LocoRE rows equal greedy and SGRS+LocoRE equals SGRS there by
construction. SGRS's threshold is 0 while its history is empty, so its first token is accepted at
the first draw from the renormalised top-5 (seeded): on POPE it samples the answer. VCD and DoLa
decode greedily; all saliency means are of the caption tokens (context "text", the model's default
layers [2, 3, 4])."""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=500, help="toy scenes (default 500)")
    p.add_argument(
        "--pope-n",
        type=int,
        default=None,
        help="POPE on the first this many scenes only (default: --n); ~18 questions per scene",
    )
    p.add_argument("--model", default="toy", help="default: the embedded toy model (another path: dry runs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--out", default="/tmp/lvsal-methods-toy", help="run folders (resumable)")
    p.add_argument("--engine", default="local", choices=["local", "ray"])
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1)")
    p.add_argument("--no-write", action="store_true", help="print the table, leave RESULTS.md alone")
    args = p.parse_args(argv)

    from lvsal_nb.eval.runner import RunSpec, run

    methods = [m for m in args.methods.split(",") if m]
    common = dict(
        model=args.model,
        dataset="toy",
        n=args.n,
        seed=args.seed,
        methods=methods,
        engine=args.engine,
        workers=args.workers,
        threads=args.threads,
        device="cpu",
        dtype="float32",
    )
    chair = run(RunSpec(task="chair", out=Path(args.out) / f"chair-{args.n}", max_new_tokens=[64], **common))
    pope_n = args.pope_n or args.n
    pope = run(
        RunSpec(
            task="pope",
            out=Path(args.out) / f"pope-{pope_n}",
            max_new_tokens=[4],
            traces=False,
            **{**common, "n": pope_n},
        )
    )
    table = render(chair, pope, methods, args, argv if argv is not None else sys.argv[1:])
    print(table)
    if not args.no_write:
        from overhead import write_section

        write_section("methods", table)
    return 0


def render(chair, pope, methods, args, argv) -> str:
    """The Markdown section: one row per method, CHAIR and POPE F1 per split (rates in %). Times are
    summed over answers (each answer's own seconds), so a resumed run reports the whole run's."""
    chair_s = float((chair["seconds"] * chair["n_captions"]).sum())
    pope_s = float((pope["seconds"] * pope["n"]).sum())
    splits = list(dict.fromkeys(pope["split"]))
    n_q = {s: int(pope[(pope["split"] == s)]["n"].iloc[0]) for s in splits}
    head = (
        "| method | CHAIR_S ↓ | CHAIR_I ↓ | recall ↑ | avg len | "
        + " | ".join(f"POPE F1 {s} ↑" for s in splits)
        + " | POPE acc (mean) | yes ratio (mean) | mean saliency |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for m in methods:
        c = chair[chair["method"] == m].iloc[0]
        pm = pope[pope["method"] == m]
        f1 = [100 * float(pm[pm["split"] == s]["f1"].iloc[0]) for s in splits]
        sal = "-" if c["saliency"] != c["saliency"] else f"{c['saliency']:.3f}"
        lines.append(
            f"| {LABELS.get(m, m)} | {100 * c['chair_s']:.1f} | {100 * c['chair_i']:.1f} "
            f"| {100 * c['recall']:.1f} | {c['avg_len']:.1f} | "
            + " | ".join(f"{x:.1f}" for x in f1)
            + f" | {100 * pm['accuracy'].mean():.1f} | {100 * pm['yes_ratio'].mean():.1f} | {sal} |"
        )
    cmd = "python benchmarks/methods_toy.py " + " ".join(argv)
    pope_n = args.pope_n or args.n
    info = (
        f"CHAIR on {args.n} held-out toy scenes (eval stream, seed {args.seed}), POPE on the first "
        f"{pope_n} of them; POPE questions per split: "
        + ", ".join(f"{s} {n_q[s]}" for s in splits)
        + f". Model time summed over answers: CHAIR {chair_s / 60:.1f} min, POPE {pope_s / 60:.1f} min, "
        f"on a shared 2-core {platform.machine()} CPU "
        f"({args.engine} engine, {args.threads} thread(s) per worker), torch {torch.__version__}, "
        f"{time.strftime('%Y-%m-%d')}. Command: `{cmd.strip()}`"
    )
    return "\n".join(
        ["## Methods on the toy world (benchmarks/methods_toy.py)", "", info, "", *lines, "", NOTES, ""]
    )


if __name__ == "__main__":
    sys.exit(main())
