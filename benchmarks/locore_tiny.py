"""LocoRE's per-step cost where launches dominate: a tiny LLaVA (4 layers) on one CPU thread, where
each op's fixed cost stands in for a GPU kernel launch at batch 1.

    python benchmarks/locore_tiny.py [--T 128] [--rounds 7] [--no-write]

Plain `generate` and `generate` inside `lv.locore(model, 0.15)`, alternating, median of the rounds;
writes the section locore-tiny of RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv=None) -> int:
    from overhead import write_section
    from PIL import Image

    import lvsal_nb as lv
    from lvsal_nb.models.tiny import tiny_llava

    ap = argparse.ArgumentParser()
    ap.add_argument("--T", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    model, proc = tiny_llava(dtype=torch.float32)
    s = lv.load(model, proc, device="cpu", dtype=torch.float32)
    model.generation_config.eos_token_id = model.config.text_config.eos_token_id = None
    img = Image.fromarray((np.random.RandomState(0).rand(60, 80, 3) * 255).astype(np.uint8))
    inputs = s.adapter.to(s.adapter.prepare(img, "describe this image .").inputs, torch.float32)
    kw = dict(max_new_tokens=args.T, min_new_tokens=args.T, do_sample=False)

    def gen():
        with torch.no_grad():
            return model.generate(**inputs, **kw)

    def gen_locore():
        with torch.no_grad(), lv.locore(model, 0.15):
            return model.generate(**inputs, **kw)

    runs = {"generate": gen, "LocoRE beta=0.15 (generate)": gen_locore}
    times: dict[str, list[float]] = {k: [] for k in runs}
    for fn in runs.values():
        fn()  # warm
    for _ in range(args.rounds):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    med = {k: float(np.median(v)) for k, v in times.items()}
    ratio = med["LocoRE beta=0.15 (generate)"] / med["generate"]
    text = "\n".join(
        [
            "## LocoRE where launches dominate (benchmarks/locore_tiny.py)",
            "",
            f"Command: `python benchmarks/locore_tiny.py --T {args.T} --rounds {args.rounds}` (tiny LLaVA, "
            "4 layers, float32, one CPU thread; each op's fixed cost stands in for a GPU launch at batch 1).",
            "",
            "| method | median seconds | × generate |",
            "|---|---|---|",
            *(f"| {k} | {v:.4f} | {v / med['generate']:.3f}× |" for k, v in med.items()),
        ]
    )
    print(text)
    print(f"ratio {ratio:.3f}")
    if not args.no_write:
        write_section("locore-tiny", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
