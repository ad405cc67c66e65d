"""The paper's finding on the toy world: is saliency lower at hallucinated object tokens?

    python benchmarks/toy_saliency.py --n 300          # writes its section of benchmarks/RESULTS.md

Greedy captions of held-out toy scenes (exact ground truth) are traced with every decoder layer
recorded. Each generated object word (a shape noun) is labelled correct (the shape is in the scene)
or hallucinated. Reported: mean saliency of correct vs hallucinated object tokens, and the AUROC /
average precision of low saliency as a hallucination detector, per layer and for the default layers
(the mean of their per-layer scores, which is exactly the Trace's score for those layers).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def collect(n: int, seed: int, max_new_tokens: int, context: str = "text") -> pd.DataFrame:
    """One row per generated object token: scene, step, shape, hallucinated, s_L<l> per layer."""
    from tqdm.auto import tqdm

    import lvsal_nb as lv
    from lvsal_nb.toy.metrics import eval_scenes
    from lvsal_nb.toy.scenes import mentioned_objects, render

    s = lv.load("toy", device="cpu")
    layers = list(range(s.adapter.num_layers))
    rows = []
    for i, scene in enumerate(tqdm(eval_scenes(n, seed), desc="tracing")):
        tr = s.trace(
            render(scene),
            "Describe the image.",
            max_new_tokens=max_new_tokens,
            layers=layers,
            context=context,
        )
        truth = set(scene.object_names())
        for st in tr.records:
            objs = mentioned_objects(st.token)
            if len(objs) != 1 or st.saliency is None:
                continue
            r = {"scene": i, "step": st.step, "shape": objs[0], "hallucinated": objs[0] not in truth}
            r.update({f"s_L{l}": v for l, v in zip(layers, st.layer_scores)})
            rows.append(r)
    df = pd.DataFrame(rows)
    df.attrs["default_layers"] = s.adapter.default_layers()
    return df


def table(df: pd.DataFrame) -> str:
    from lvsal_nb.eval.detect import detector_table

    default = df.attrs["default_layers"]
    df = df.copy()
    df["default"] = df[[f"s_L{l}" for l in default]].mean(axis=1)
    cols = ["default"] + [c for c in df.columns if c.startswith("s_L")]
    det = detector_table(df, cols, "hallucinated")
    n_h, n_c = int(df["hallucinated"].sum()), int((~df["hallucinated"]).sum())
    lines = [
        f"{len(df)} object tokens from {df['scene'].nunique()} captions: {n_c} correct, {n_h} hallucinated.",
        "",
        "| score | mean saliency, correct | mean saliency, hallucinated | AUROC (low = hallucinated) | AP |",
        "|---|---|---|---|---|",
    ]
    for c in cols:
        name = f"default layers {default}" if c == "default" else f"layer {c[3:]}"
        d = det.loc[c]
        lines.append(
            f"| {name} | {d['mean_neg']:.4f} | {d['mean_pos']:.4f} | {d['auroc']:.3f} | {d['ap']:.3f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=300, help="held-out scenes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--context", default="text", choices=["text", "outputs"])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: fastest, tiny model)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    t0, c0 = time.time(), time.process_time()
    df = collect(args.n, args.seed, args.max_new_tokens, args.context)
    body = table(df)
    cmd = "python benchmarks/toy_saliency.py " + " ".join(sys.argv[1:] if argv is None else argv)
    from toy_report import publish

    detail = (f"{time.time() - t0:.0f} s wall, {time.process_time() - c0:.0f} s CPU on a shared 2-core CPU, "
              f"{args.threads} thread(s); context J = {args.context!r}")  # fmt: skip
    publish("Toy world: saliency at correct vs hallucinated object tokens", cmd, detail, body,
            f"toy-saliency-{args.context}", not args.no_write)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
