"""SGRS's alpha and LocoRE's beta on the toy world: the hallucination / coverage trade-off.

    python benchmarks/sweep_toy.py --n 200        # writes its section of benchmarks/RESULTS.md

Held-out toy scenes (exact ground truth), the captioning prompt, 48 new tokens. Each setting runs
on the same scenes with the same seed; SGRS uses its deterministic order ("greedy": most probable
remaining candidate first), so alpha = 0 reproduces plain greedy decoding exactly.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def run(session, scenes, **kw) -> dict:
    from lvsal_nb.eval.scores import chair_scores
    from lvsal_nb.toy.scenes import mentioned_objects, render

    mentioned, truth, lengths = [], [], []
    t0 = time.perf_counter()
    for sc in scenes:
        tr = session.trace(render(sc), "Describe the image.", max_new_tokens=48, seed=0, **kw)
        text = tr.text.replace("<eos>", " ")
        mentioned.append(mentioned_objects(text))
        truth.append(set(sc.object_names()))
        lengths.append(len(text.split()))
    out = chair_scores(mentioned, truth, lengths)
    out["seconds"] = time.perf_counter() - t0
    return out


def main(argv=None) -> int:
    import lvsal_nb as lv
    from lvsal_nb.toy.metrics import eval_scenes

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1, help="eval-stream seed (the methods table uses 0)")
    ap.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.3, 0.6, 0.9, 1.2])
    ap.add_argument("--betas", type=float, nargs="+", default=[0.15, 0.5, 1.0, 2.0])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: fastest, tiny model)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    session = lv.load("toy", device="cpu")
    scenes = eval_scenes(args.n, args.seed)
    rows = [("greedy", run(session, scenes))]
    for a in args.alphas:
        rows.append((f"SGRS α={a}", run(session, scenes, sgrs=lv.SGRS(alpha=a, order="greedy"))))
    for b in args.betas:
        rows.append((f"LocoRE β={b}", run(session, scenes, locore=lv.LocoRE(beta=b))))
    lines = ["| setting | CHAIR_S % | CHAIR_I % | recall % | words | seconds |", "|---|---|---|---|---|---|"]
    for name, r in rows:
        lines.append(
            f"| {name} | {100 * r['chair_s']:.1f} | {100 * r['chair_i']:.1f} | {100 * r['recall']:.1f} | "
            f"{r['avg_len']:.1f} | {r['seconds']:.0f} |"
        )
    cmd = "python benchmarks/sweep_toy.py " + " ".join(sys.argv[1:] if argv is None else argv)
    text = (
        f"## Toy world: SGRS alpha and LocoRE beta sweep\n\nCommand: `{cmd.strip()}` — {args.n} held-out "
        f"scenes (eval stream seed {args.seed}), 48 new tokens, SGRS k=5, W=5, R=3, greedy order; "
        "LocoRE w=5, all layers.\n\n" + "\n".join(lines) + "\n"
    )
    print(text)
    if not args.no_write:
        from overhead import write_section

        write_section("sweep", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
