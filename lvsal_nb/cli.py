"""`lvsal` command: demo, trace, toy-train, eval."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from .atomic import replacing
from .errors import ConfigError, FileWriteError, LvsalError

DEMO_SEED = 7
DEMO_PROMPT = "Describe the image."


def _bar(x: float | None, top: float, width: int = 20) -> str:
    if x is None or top <= 0:
        return " " * width
    n = max(0, min(width, round(x * width / top)))  # the trace's highest score fills the bar
    return "█" * n + "·" * (width - n)


def print_table(
    trace, truth: dict[int, str] | None = None, alpha: float = 0.6, window: int = 5, out=None
) -> None:
    """Token table: saliency with a bar, and a drop flag where it falls below alpha x the recent mean
    (the SGRS threshold). `truth` maps step -> "ok"/"HALLUCINATED" where ground truth is known."""
    out = out or sys.stdout  # looked up at call time (redirected streams, tests)
    out = out or sys.stdout  # looked up at call time (redirected streams, tests)
    print(f"{'step':>4}  {'token':<14} {'p':>6}  {'saliency':>8}  {'':20}  flag", file=out)
    hist: list[float] = []
    top = max((s.saliency for s in trace.records if s.saliency is not None), default=0.0)
    for s in trace.records:
        recent = hist[-window:]
        tau = alpha * sum(recent) / len(recent) if recent else 0.0
        flag = "drop" if s.saliency is not None and recent and s.saliency < tau else ""
        if truth and s.step in truth:
            flag = (flag + " " + truth[s.step]).strip()
        sal = "    -   " if s.saliency is None else f"{s.saliency:8.4f}"
        print(
            f"{s.step:>4}  {s.token.strip()[:14]:<14} {s.prob:6.3f}  {sal}  {_bar(s.saliency, top)}  {flag}",
            file=out,
        )
        if s.saliency is not None:
            hist.append(s.saliency)


def demo(args) -> int:
    """`lvsal demo`: trace the toy model on a bundled scene, print the table, write the trace files."""
    import lvsal_nb as lv

    from .toy.demo_table import print_demo_table, print_errors
    from .toy.scenes import render
    from .toy.worlds import DEFAULT_WORLD, get_world

    _check_beta(args.locore)
    world = getattr(args, "world", None) or DEFAULT_WORLD
    get_world(world)  # unknown world: a one-line error
    out = _make_folder(Path(args.out))
    session = lv.load("toy" if world == DEFAULT_WORLD else f"toy-{world}", device=args.device)
    scene = get_world(world).scene(args.seed)  # v2: its long scenes (1-8 objects)
    max_new = args.max_new_tokens or (96 if get_world(world).long_lists else 48)
    image = render(scene)
    with replacing(out / "demo-scene.png") as tmp:  # atomic, like every file lvsal writes
        image.save(tmp, format="PNG")
    print(
        f"{session}\nscene {args.seed}: {', '.join(scene.object_names())}  (image: {out / 'demo-scene.png'})"
    )
    tr = session.trace(
        image,
        DEMO_PROMPT,
        max_new_tokens=max_new,
        progress=True,
        sgrs=lv.SGRS() if args.sgrs else None,
        locore=args.locore,
    )
    print(f"\nprompt: {DEMO_PROMPT}\noutput: {tr.text.strip()}\n")
    labels = print_demo_table(tr, scene.object_names())
    print(
        "\nok / HALLUCINATED / ERROR: the object word's exact type (toy world ground truth).\n"
        "No drop flag: on the toy models low saliency does not mark hallucinated object words (AUROC of "
        "low saliency 0.41 on v1, 0.50 on v2)\nnor its memory errors (toy-v2's recap: AUROC 0.56, 95% "
        "interval 0.47-0.65; a drop rule fired on 26% of them and 21% of faithful copies): "
        "lvsal_nb/toy/RESULTS.md"
    )
    for label, good in (("ok", True), ("hallucinated", False)):
        vals = [tr.records[lab.index].saliency for lab in labels if lab.hallucinated != good]
        vals = [v for v in vals if v is not None]
        if vals:
            print(f"mean saliency at {label} objects: {sum(vals) / len(vals):.4f} ({len(vals)})")
    print(f"\nobject errors (world {world}):")
    print_errors(tr, labels)
    path = tr.save(out / "demo.lvsal.parquet")
    tr.save(out / "demo.lvsal.json")
    print(
        f"\ntrace written to {path} (and .json for the JupyterLab viewer); engine={tr.config['engine']}, "
        f"layers={tr.layers}\nopen it in a notebook: import lvsal_nb as lv; lv.view('{path}')"
    )
    return 0


def _check_beta(beta: float | None) -> None:
    if beta is not None and not math.isfinite(beta):
        raise ConfigError(f"--locore must be a finite number (LocoRE's beta, e.g. 0.15), got {beta}")


def _make_folder(out: Path) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FileWriteError(f"cannot create the folder {out} ({e.strerror}); choose another --out") from e
    return out


def _check_out_file(out: Path) -> None:
    """Before tracing (minutes), not after: the trace file's folder must exist and be writable."""
    if out.suffix not in (".parquet", ".json"):
        raise ConfigError(f"--out must end in .parquet or .json (e.g. trace.lvsal.parquet), got {str(out)!r}")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise ConfigError(
            f"--out {str(out)!r}: the folder {str(folder)!r} does not exist; create it "
            f"(mkdir -p {folder}) or choose another path"
        )
    if not os.access(folder, os.W_OK):
        raise ConfigError(
            f"--out {str(out)!r}: the folder {str(folder)!r} is not writable; choose another path"
        )


def trace_cmd(args) -> int:
    """`lvsal trace`: load --model, trace --image/--prompt (or run --method), print the table and
    write --out; returns the exit status."""
    import lvsal_nb as lv

    from .methods import available, run_method

    _check_beta(args.locore)
    _check_out_file(Path(args.out))
    if args.method is not None and args.method not in available():  # before minutes of loading
        raise ConfigError(f"unknown method {args.method!r}; choose one of {', '.join(available())}.")
    session = lv.load(args.model, device=args.device, dtype=args.dtype)
    if args.method is not None:  # the registry: the same call as `lvsal eval` makes
        opts = {"k": args.k} if args.method == "sgrs" else {}
        if args.locore is not None and args.method in ("locore", "sgrs+locore"):
            opts["beta" if args.method == "locore" else "locore"] = args.locore
        tr = run_method(
            args.method,
            session,
            args.image,
            args.prompt,
            max_new_tokens=args.max_new_tokens,
            seed=args.seed,
            **opts,
        )
    else:
        tr = session.trace(
            args.image,
            args.prompt,
            max_new_tokens=args.max_new_tokens,
            progress=True,
            sgrs=lv.SGRS(k=args.k) if args.sgrs else None,
            locore=args.locore,
            layers=args.layers,
            seed=args.seed,
            decoding=args.decoding,
        )
    print(f"output: {tr.text.strip()}\n")
    print_table(tr)
    print(f"\ntrace written to {tr.save(args.out)}")
    return 0


def dashboard_cmd(args) -> int:
    """`lvsal dashboard RUN`: serve the run folder's dashboard until interrupted; returns the exit status."""
    from .dashboard.server import serve

    return serve(args.run, address=args.address, port=args.port, show=args.show)


def toy_train(argv: list[str]) -> int:
    """`lvsal toy-train ...`: train the toy model (its own argument parser); exit status 0 on success."""
    from .toy.train import main as train_main

    train_main(argv)  # returns the run's info dict, not an exit status
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The `lvsal` argument parser (demo, trace, dashboard; toy-train and eval parse their own)."""
    p = argparse.ArgumentParser(
        prog="lvsal", description="LVLMs-Saliency, SGRS and LocoRE for vision-language models"
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="trace the embedded toy model on a bundled scene (no download)")
    d.add_argument("--seed", type=int, default=DEMO_SEED, help="which toy scene")
    d.add_argument("--max-new-tokens", type=int, default=None, help="default 48 (v1), 96 (v2's long recaps)")
    d.add_argument("--sgrs", action="store_true", help="decode with SGRS (default settings)")
    d.add_argument("--locore", type=float, default=None, metavar="BETA", help="apply LocoRE with this beta")
    d.add_argument("--device", default=None)
    d.add_argument("--out", default="lvsal-demo", help="folder for the image and the trace files")
    d.add_argument(
        "--world",
        default=None,
        choices=["v1", "v2"],
        help="toy world (default: plain 'toy'; v2: list + recap captions)",
    )
    t = sub.add_parser("trace", help="trace a local checkpoint on an image")
    t.add_argument("--model", required=True, help="'toy', a local checkpoint folder, or a cached hub id")
    t.add_argument("--image", required=True)
    t.add_argument("--prompt", required=True)
    t.add_argument("--max-new-tokens", type=int, default=64)
    t.add_argument("--decoding", default="greedy", choices=["greedy", "sample"])
    t.add_argument("--sgrs", action="store_true")
    t.add_argument("--k", type=int, default=5, help="SGRS candidates")
    t.add_argument("--locore", type=float, default=None, metavar="BETA")
    t.add_argument(
        "--method",
        default=None,
        metavar="NAME",
        help="decode with a registered method (greedy, sgrs, locore, sgrs+locore, vcd, dola; "
        "LocoRE's beta defaults to the model family's); --k and --locore set its options",
    )
    t.add_argument("--layers", type=int, nargs="+", default=None)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default=None)
    t.add_argument("--dtype", default=None, help="float32, bfloat16, ...")
    t.add_argument("--out", default="trace.lvsal.parquet")
    sub.add_parser("toy-train", help="train the toy model (lvsal toy-train --help)", add_help=False)
    sub.add_parser("eval", help="CHAIR / POPE evaluation (lvsal eval --help)", add_help=False)
    b = sub.add_parser("dashboard", help="serve the evaluation dashboard of a run folder (URL with a token)")
    b.add_argument("run", help="the --out folder of `lvsal eval chair|pope`")
    b.add_argument("--address", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1 only)")
    b.add_argument("--port", type=int, default=5008, help="default 5008; 0 picks a free one")
    b.add_argument("--show", action="store_true", help="open the page in a browser")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `lvsal` command: the exit status (2 with a one-line message on a usage error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "toy-train":
            return toy_train(argv[1:])
        if argv and argv[0] == "eval":
            from .eval.runner import main as eval_main

            return eval_main(argv[1:]) or 0
        args = build_parser().parse_args(argv)
        return {"demo": demo, "trace": trace_cmd, "dashboard": dashboard_cmd}[args.cmd](args)
    except LvsalError as e:  # a usage error: one line, exit status 2 (as argparse), no traceback
        print(f"lvsal: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
