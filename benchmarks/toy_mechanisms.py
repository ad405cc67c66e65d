"""Toy world v2: which hallucination mechanisms does low saliency detect, and what do the methods fix?

    python benchmarks/toy_mechanisms.py saliency --n 500   # signals per error type (toy-v2-saliency)
    python benchmarks/toy_mechanisms.py methods --n 500    # error counts per method (toy-v2-methods)
    python benchmarks/toy_mechanisms.py methods --n 500 --shard 0/2 --raw a.json --no-write  # + 1/2: b.json
    python benchmarks/toy_mechanisms.py merge a.json b.json          # the shards' sums -> toy-v2-methods
    # a shard stopped after K scenes (its --raw says n: K): ... --shard 0/2 --skip K --raw a2.json

`saliency`: first the copy check (teacher-forced recap accuracy on true captions,
`lvsal_nb.toy.copycheck`), then greedy captions of held-out scenes ("eval" stream) traced with the
model's default layers; every generated shape noun is labelled by `lvsal_nb.toy.labels` and its
signals read by `lvsal_nb.toy.signals`. For each error type: count, mean and 95% interval (mean ±
1.96 standard errors) of every signal, and AUROC / AP of LOW signal as a detector of that type
against the correct words of the same part (list errors vs correct list reads, recap errors vs
faithful recap copies). AUROC > 0.5: the type has the lower signal.

`methods`: greedy, SGRS (α sweep, order "greedy" so α = 0 is greedy), LocoRE (β sweep),
SGRS+LocoRE, VCD, DoLa on the same scenes: CHAIR_I over all shape nouns, over the list part,
recall of the list part, and the count of every error type.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
PROMPT = "Describe the image."


def collect(session, scenes, max_new_tokens: int) -> pd.DataFrame:
    """One row per generated shape noun of each scene's greedy caption (see lvsal_nb.toy.signals)."""
    from tqdm.auto import tqdm

    from lvsal_nb.toy.labels import recap_omissions
    from lvsal_nb.toy.scenes import render
    from lvsal_nb.toy.signals import object_rows, trace_words

    rows, omitted = [], 0
    for i, sc in enumerate(tqdm(scenes, desc="tracing")):
        tr = session.trace(render(sc), PROMPT, max_new_tokens=max_new_tokens)
        rows += [{"scene": i} | r for r in object_rows(tr, sc.object_names())]
        omitted += len(recap_omissions(trace_words(tr)))
    df = pd.DataFrame(rows)
    df.attrs["recap_omitted"] = omitted  # listed shapes the recap never named (no word, no row)
    return df


def memory_errors_by_distance(df: pd.DataFrame, bin_tokens: int = 10) -> str:
    """Markdown: per band of distance to the word a faithful recap copies, the recap words and the
    share that are memory errors (recap_order + recap_never_listed + recap repeat)."""
    rec = df[(df["part"] == "recap") & df["dist"].notna()]
    head = "| distance (tokens) | recap words | recap_order | recap_never_listed | repeat | memory error % |"
    lines = [head, "|---|---|---|---|---|---|"]
    for lo, sub in rec.groupby((rec["dist"] // bin_tokens * bin_tokens).astype(int)):
        o, nl, r = (int((sub["type"] == t).sum()) for t in ("recap_order", "recap_never_listed", "repeat"))
        rate = 100 * (o + nl + r) / len(sub)
        lines.append(f"| {lo}-{lo + bin_tokens - 1} | {len(sub)} | {o} | {nl} | {r} | {rate:.1f} |")
    return "\n".join(lines)


def _ci(x: pd.Series) -> str:
    x = x.dropna()
    if len(x) == 0:
        return "-"
    if len(x) == 1:
        return f"{x.mean():.3f}"
    h = 1.96 * x.std(ddof=1) / math.sqrt(len(x))
    return f"{x.mean():.3f} ± {h:.3f}"


def auroc_interval(pos, neg, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% bootstrap interval (2.5th, 97.5th percentile) of the AUROC of LOW score: positives `pos`
    and negatives `neg` (1-D arrays) resampled separately with replacement, `n_boot` times."""
    import numpy as np

    from lvsal_nb.eval.detect import auroc

    if len(pos) < 2 or len(neg) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(len(pos), bool), np.zeros(len(neg), bool)]
    stats = [
        auroc(-np.r_[rng.choice(pos, len(pos)), rng.choice(neg, len(neg))], labels) for _ in range(n_boot)
    ]
    return float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5))


def saliency_tables(df: pd.DataFrame) -> str:
    """Markdown: per type means with 95% intervals; per error type AUROC / AP of each low signal."""
    from lvsal_nb.eval.detect import detector_table
    from lvsal_nb.toy.labels import LIST_TYPES, MEMORY_TYPES, RECAP_TYPES
    from lvsal_nb.toy.signals import SIGNALS

    order = [("list", t) for t in LIST_TYPES] + [("recap", t) for t in RECAP_TYPES]
    head = "| part | type | n | " + " | ".join(SIGNALS) + " | demo drop flag rate |"
    lines = ["Mean and 95% interval per type:", "", head, "|" + "---|" * (head.count("|") - 1)]
    for part, t in order:
        sub = df[(df["part"] == part) & (df["type"] == t)]
        if len(sub):
            lines.append(f"| {part} | {t} | {len(sub)} | " + " | ".join(_ci(sub[s]) for s in SIGNALS)
                         + f" | {_ci(sub['drop'].astype(float))} |")  # fmt: skip
    head = ("| part | type vs correct | n_type / n_correct | " + " | ".join(SIGNALS)
            + " | s_J AUROC 95% interval |")  # fmt: skip
    lines += ["", "AUROC / AP of LOW signal, each error type against the correct words of its part "
              "(AP's chance level is the type's share, n_type / (n_type + n_correct); the interval: "
              "stratified bootstrap, 1000 resamples; 'memory' pools the recap's memory errors "
              "recap_order + recap_never_listed + repeat):", "", head,
              "|" + "---|" * (head.count("|") - 1)]  # fmt: skip
    rows = [(p, (t,)) for p, t in order] + [("recap", MEMORY_TYPES)]
    for part, types in rows:
        good = "correct" if part == "list" else "recap_correct"
        if good in types:
            continue
        name = types[0] if len(types) == 1 else "memory"
        pos = df[(df["part"] == part) & df["type"].isin(types)]
        neg = df[(df["part"] == part) & (df["type"] == good)]
        if len(pos) < 2 or len(neg) < 2:
            if len(pos):
                dashes = " | ".join("-" for _ in SIGNALS)
                lines.append(f"| {part} | {name} | {len(pos)} / {len(neg)} | {dashes} | - |")
            continue
        sub = pd.concat([pos, neg]).assign(pos=lambda d, types=types: d["type"].isin(types))
        cols = [s for s in SIGNALS if sub[s].notna().sum() and sub.loc[sub["pos"], s].notna().any()
                and sub.loc[~sub["pos"], s].notna().any()]  # fmt: skip
        det = detector_table(sub, cols, "pos") if cols else None
        cells = [f"{det.loc[s, 'auroc']:.2f} / {det.loc[s, 'ap']:.2f}" if s in cols else "-" for s in SIGNALS]
        lo, hi = auroc_interval(pos["s_J"].dropna().to_numpy(), neg["s_J"].dropna().to_numpy())
        lines.append(f"| {part} | {name} | {len(pos)} / {len(neg)} | " + " | ".join(cells)
                     + f" | {lo:.2f}-{hi:.2f} |")  # fmt: skip
    hall = df.assign(pos=df["hallucinated"])
    det = detector_table(hall, ["s_J", "s_image", "img_share", "prob"], "pos")
    lines += [
        "",
        "All hallucinated shape nouns (CHAIR's sense, list and recap) against all others: AUROC "
        + ", ".join(f"{s} {det.loc[s, 'auroc']:.2f}" for s in det.index)
        + f" ({int(hall['pos'].sum())} of {len(hall)}).",
    ]
    return "\n".join(lines)


def copy_check(session, scenes) -> str:
    """Markdown: teacher-forced recap accuracy overall, per recap turn, list length and distance."""
    from lvsal_nb.toy.copycheck import DISTANCE_BIN, teacher_forced

    r = teacher_forced(session.model, session.adapter.tokenizer, scenes)

    def cells(table: dict) -> str:
        return ", ".join(f"{k}: {c}/{n} ({100 * c / n:.0f}%)" for k, (c, n) in table.items())

    return (
        f"Copy check (teacher-forced, true captions of {len(scenes)} scenes): recap words predicted "
        f"correctly {100 * r['recap_acc']:.1f}% of {r['recap_n']}; list words naming a present "
        f"shape {100 * r['list_in_scene']:.1f}% of {r['list_n']} (the exact next list word "
        f"{100 * r['list_acc']:.1f}%: the list order is random, so that one is not learnable).\n\n"
        f"- per recap turn k: {cells(r['recap_by_index'])}\n"
        f"- per list length (objects listed): {cells(r['recap_by_length'])}\n"
        f"- per distance to the source (tokens, bins of {DISTANCE_BIN}): {cells(r['recap_by_distance'])}"
    )


def methods(session, scenes, alphas, betas, max_new_tokens: int, on_scene=None):
    """[(name, raw)] for every setting; raw: a dict of summed counts (`methods_table` turns them
    into rates, so shards of the scenes add up): n_scenes, n_obj, n_hal, n_list, n_hal_list,
    covered (present shapes the list named), n_truth, n_words, seconds, and a count per error type.
    on_scene(done, rows): called after each scene with the rows so far (a checkpoint)."""
    import lvsal_nb as lv
    from lvsal_nb.decoding.dola import dola_generate
    from lvsal_nb.decoding.vcd import vcd_generate
    from lvsal_nb.toy.labels import label_words, recap_omissions
    from lvsal_nb.toy.scenes import render

    tok = session.adapter.tokenizer
    settings = [("greedy", {})] + [
        (f"SGRS α={a}", {"sgrs": lv.SGRS(alpha=a, order="greedy")}) for a in alphas
    ]
    settings += [(f"LocoRE β={b}", {"locore": lv.LocoRE(beta=b)}) for b in betas]
    settings += [("SGRS+LocoRE (α=0.6, β=0.15)", {"sgrs": lv.SGRS(order="greedy"), "locore": lv.LocoRE(beta=0.15)}),  # noqa: E501
                 ("VCD", "vcd"), ("DoLa", "dola")]  # fmt: skip
    raws: dict[str, Counter] = {name: Counter() for name, _ in settings}
    for done, sc in enumerate(scenes, 1):  # scene by scene: a stopped run keeps whole scenes
        img = render(sc)
        for name, kw in settings:
            t0, raw = time.perf_counter(), raws[name]
            if isinstance(kw, str):
                fn = vcd_generate if kw == "vcd" else dola_generate
                ids = fn(session, img, PROMPT, max_new_tokens=max_new_tokens).token_ids
            else:
                ids = [
                    r.token_id
                    for r in session.trace(img, PROMPT, max_new_tokens=max_new_tokens, **kw).records
                ]
            words = [w.lower() for w in tok.convert_ids_to_tokens(ids)]
            labels = label_words(words, sc.object_names())
            raw.update(
                "recap_repeat" if lab.part == "recap" and lab.type == "repeat" else lab.type for lab in labels
            )
            raw["recap_omitted"] += len(recap_omissions(words))
            lst = [lab for lab in labels if lab.part == "list"]
            raw.update(n_scenes=1, n_obj=len(labels), n_hal=sum(lab.hallucinated for lab in labels),
                       n_list=len(lst), n_hal_list=sum(lab.hallucinated for lab in lst),
                       covered=len({lab.shape for lab in lst} & set(sc.object_names())),
                       n_truth=len(sc.object_names()),
                       n_words=sum(w not in tok.all_special_tokens for w in words))  # fmt: skip
            raw["seconds"] += time.perf_counter() - t0
        if on_scene is not None:
            on_scene(done, [(name, dict(raws[name])) for name, _ in settings])
    return [(name, dict(raws[name])) for name, _ in settings]


def merge_raw(parts: list[list]) -> list:
    """Shards' `methods` results [(name, raw)] summed per setting (same settings, same order)."""
    merged: dict[str, Counter] = {}
    for part in parts:
        for name, raw in part:
            merged.setdefault(name, Counter()).update(raw)
    return [(name, dict(c)) for name, c in merged.items()]


# error columns of the methods table: list repeats ("repeat") and recap repeats apart
TABLE_TYPES = (
    "misread",
    "partner",
    "cascade",
    "repeat",
    "overrun",
    "recap_order",
    "recap_never_listed",
    "recap_repeat",
)
MEMORY_COLUMNS = ("recap_order", "recap_never_listed", "recap_repeat", "recap_omitted")


def methods_table(rows) -> str:
    """Markdown: per setting CHAIR_I (all shape nouns, list part), list recall, words per caption,
    the count of each type (recap repeats apart from list repeats), recap omissions, and memory
    errors (recap_order + recap_never_listed + recap_repeat + omitted); rows: `methods` / `merge_raw`."""
    head = (
        "| setting | CHAIR_I % (all) | CHAIR_I % (list) | recall % | words | correct | recap_correct | "
        + " | ".join(TABLE_TYPES)
        + " | recap omitted | memory errors | seconds |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, r in rows:
        c = Counter(r)

        def pct(a: str, b: str, c: Counter = c) -> float:
            return 100 * c[a] / max(1, c[b])

        memory = sum(c[t] for t in MEMORY_COLUMNS)
        lines.append(f"| {name} | {pct('n_hal', 'n_obj'):.1f} | {pct('n_hal_list', 'n_list'):.1f} "
                     f"| {pct('covered', 'n_truth'):.1f} | {c['n_words'] / max(1, c['n_scenes']):.1f} "
                     f"| {c['correct']} | {c['recap_correct']} | "
                     + " | ".join(str(c[t]) for t in TABLE_TYPES)
                     + f" | {c['recap_omitted']} | {memory} | {c['seconds']:.0f} |")  # fmt: skip
    return "\n".join(lines)


def parse_shard(text: str) -> tuple[int, int]:
    """ "i/n" -> (i, n) with 0 <= i < n: this run takes scenes i, i + n, i + 2n, ..."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard wants i/n such as 0/2, got {text!r}") from None
    if not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"--shard i/n needs 0 <= i < n (shards 0/2 and 1/2), got {text!r}")
    return i, n


def _long_lists(model: str) -> bool:
    """Whether the model's world draws long scenes ("toy-v2": yes; "toy", "toy-v1": no)."""
    from lvsal_nb.toy.worlds import get_world

    return model.startswith("toy-") and get_world(model.removeprefix("toy-")).long_lists


def shard_scenes(scenes: list, shard: tuple[int, int] | None, skip: int = 0) -> list:
    """Shard i/n's scenes (i, i+n, ...), less its first `skip` (done by a stopped run of the shard)."""
    if shard:
        i, n = shard
        scenes = scenes[i::n]
    return scenes[skip:]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", choices=["saliency", "methods", "merge"])
    ap.add_argument("--n", type=int, default=500, help="held-out scenes (eval stream)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default="toy-v2")
    ap.add_argument("--max-new-tokens", type=int, default=96, help="v2's 8-object captions need ~65")
    ap.add_argument("--alphas", type=float, nargs="+", default=[0.3, 0.6, 0.9])
    ap.add_argument("--betas", type=float, nargs="+", default=[0.15, 0.5, 1.0])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: fastest, tiny model)")
    ap.add_argument("--csv", default=None, help="also write the per-word rows (saliency) here")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--shard", type=parse_shard, default=None, help="methods: i/n runs scenes i, i+n, ...")
    ap.add_argument("--raw", default=None, help="methods: write the summed counts as JSON here")
    ap.add_argument(
        "--skip",
        type=int,
        default=0,
        help="methods: leave out the shard's first SKIP scenes (a stopped shard's --raw has them)",
    )
    ap.add_argument("jsons", nargs="*", help="merge: the shards' --raw files")
    args = ap.parse_args(argv)
    cmd = "python benchmarks/toy_mechanisms.py " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.part == "merge":
        import json

        parts = [json.loads(Path(p).read_text()) for p in args.jsons]
        body = methods_table(merge_raw([p["rows"] for p in parts]))
        n = sum(p["n"] for p in parts)
        cmds = "; ".join(p["command"] for p in parts)
        detail = (f"{parts[0]['model']}, {n} held-out scenes in {len(parts)} shards ({cmds}); "
                  f"{sum(p['wall'] for p in parts):.0f} s wall summed over shards, "
                  f"{sum(p['cpu'] for p in parts):.0f} s CPU")  # fmt: skip
        from toy_report import publish

        title = "Toy world v2: methods per hallucination mechanism (benchmarks/toy_mechanisms.py)"
        publish(title, cmd, detail, body, "toy-v2-methods", not args.no_write)
        return 0
    import torch

    import lvsal_nb as lv
    from lvsal_nb.toy.metrics import eval_scenes

    torch.set_num_threads(args.threads)
    session = lv.load(args.model, device="cpu")
    scenes = eval_scenes(args.n, args.seed, long_lists=_long_lists(args.model))
    scenes = shard_scenes(scenes, args.shard, args.skip)
    t0, c0 = time.perf_counter(), time.process_time()
    if args.part == "saliency":
        head = copy_check(session, scenes[: min(200, len(scenes))])
        df = collect(session, scenes, args.max_new_tokens)
        if args.csv:
            df.to_csv(args.csv, index=False)
        body = (f"{head}\n\n{len(df)} shape nouns in {df['scene'].nunique()} greedy captions; "
                f"recap omissions (listed shapes the recap never names): {df.attrs['recap_omitted']}.\n\n"
                f"Greedy recap words by distance to the word a faithful copy copies:\n\n"
                f"{memory_errors_by_distance(df)}\n\n{saliency_tables(df)}")  # fmt: skip
        title = "Toy world v2: saliency per hallucination mechanism (benchmarks/toy_mechanisms.py)"
    else:

        def checkpoint(done: int, rows: list) -> None:
            if args.raw:  # rewritten after every scene: a run stopped early keeps its whole scenes
                import json

                Path(args.raw).write_text(json.dumps({
                    "model": args.model, "n": done, "command": cmd.strip(), "rows": rows,
                    "wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}))  # fmt: skip

        rows = methods(session, scenes, args.alphas, args.betas, args.max_new_tokens, checkpoint)
        body = methods_table(rows)
        title = "Toy world v2: methods per hallucination mechanism (benchmarks/toy_mechanisms.py)"
    from toy_report import publish

    detail = (f"{args.model}, {args.n} held-out scenes, eval stream seed {args.seed}; "
              f"{time.perf_counter() - t0:.0f} s wall, {time.process_time() - c0:.0f} s CPU on a shared "
              f"2-core CPU, {args.threads} thread(s)")  # fmt: skip
    publish(title, cmd, detail, body, f"toy-v2-{args.part}", not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
