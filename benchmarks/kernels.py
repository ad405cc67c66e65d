"""The CPU matmul behind the step engine's K-candidate backward: torch's (MKL) vs const.py's (oneDNN).

    python benchmarks/kernels.py            # writes benchmarks/RESULTS.md section kernels
    python benchmarks/kernels.py --no-write

g @ W for the weights of the ~134M LLaVA-architecture model of overhead.py (hidden 768, MLP 2048),
with K = 1, 2, 5, 8 rows of g: one backward through a linear layer for K candidates. Distinct weights
(~380 MB of each shape) so they stream from DRAM as in decoding. Best of 5 passes; the forward's
1-row F.linear over the same weights (what plain generation runs) is the unit.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def best_ms(fn, items, reps: int = 5) -> float:
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - t)
    return best * 1e3


def onednn(g: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(g, w.t(), None, "none", [None], "")


def main(argv=None) -> int:
    from lvsal_nb.saliency.const import const_mm, use_onednn

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not use_onednn:
        print("this torch has no oneDNN linear: const_mm is torch.matmul here")
    gen = torch.Generator().manual_seed(0)
    lines = [
        "| weight [out, in] | rows K | forward F.linear, 1 row | g @ W (torch, MKL) | oneDNN | const_mm |",
        "|---|---|---|---|---|---|",
    ]
    for out, inp in ((2048, 768), (768, 768), (768, 2048)):  # gate/up, q/k/v/o, down
        ws = [torch.randn(out, inp, generator=gen) for _ in range(60 * 2048 * 768 // (out * inp))]
        x = torch.randn(1, inp, generator=gen)
        unit = best_ms(lambda w, x=x: F.linear(x, w), ws)
        for k in (1, 2, 5, 8):
            g = torch.randn(k, out, generator=gen)
            cells = [
                best_ms(lambda w, g=g: g @ w, ws),
                best_ms(lambda w, g=g: onednn(g, w), ws),
                best_ms(lambda w, g=g: const_mm(g, w), ws),
            ]
            lines.append(
                f"| [{out}, {inp}] | {k} | {unit:.1f} ms | "
                + " | ".join(f"{c:.1f} ms ({c / unit:.2f}×)" for c in cells)
                + " |"
            )
    cmd = "python benchmarks/kernels.py " + " ".join(sys.argv[1:] if argv is None else argv)
    text = (
        f"Machine: {platform.processor() or platform.machine()}, {args.threads} thread(s), torch "
        f"{torch.__version__}, {time.strftime('%Y-%m-%d')}. Command: `{cmd.strip()}`. ~380 MB of "
        "weights per shape, best of 5.\n\n" + "\n".join(lines) + "\n"
    )
    print(text)
    if not args.no_write:
        from overhead import write_section

        title = "## CPU kernels of the K-candidate backward (benchmarks/kernels.py)"
        write_section("kernels", title + "\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
