"""`lvsal eval chair|pope`: a resumable evaluation run over methods × lengths, local or on Ray.

    lvsal eval chair --annotations instances_val2014.json --captions captions_val2014.json \\
        --images val2014/ --model llava-hf/llava-1.5-7b-hf --n 500 --seed 0 \\
        --methods greedy,sgrs,locore,sgrs+locore,vcd,dola --max-new-tokens 64,512 --out runs/chair
    lvsal eval pope --annotations instances_val2014.json --images val2014/ --model ... --out runs/pope
    lvsal eval chair --dataset toy --model toy --n 500 --out runs/toy-chair        # exact ground truth
    lvsal eval pope --dataset fixtures --per-image 1 --n 8 --model PATH --out runs/fx  # bundled photos
    lvsal eval chair ... --engine ray [--workers N] [--ray-address auto]          # see ray_engine.py

The run folder holds:
    run.json           the settings that fix the answers (a rerun with other ones is refused)
    images.json        the image ids, in order (reuse elsewhere with --image-list FILE)
    pope_<split>.jsonl POPE's questions (read back on resume)
    results.jsonl      one line per finished (item, method, max_new_tokens): output, CHAIR detail or
                       POPE correctness, mean saliency, trace path; append-only
    traces/<method>/<max_new_tokens>/<item>.lvsal.parquet   every answer's Trace (lvsal_nb.Trace.load)
    results.parquet, summary.parquet, summary.md           rewritten at the end of each run

Resuming: run the same command again (after a crash or Ctrl-C); finished units are skipped, and
the summary is computed from results.jsonl, so it equals an uninterrupted run's. Every unit has its
own seed (run seed + item id), so results do not depend on order, engine or number of workers.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from lvsal_nb.atomic import replacing, write_json, write_text
from lvsal_nb.errors import ConfigError, LvsalError
from lvsal_nb.eval.lock import run_lock
from lvsal_nb.eval.pope import SPLITS
from lvsal_nb.eval.results import ResultStore, unit_key, write_atomic
from lvsal_nb.eval.tasks import DATASETS, TASKS, Task, build_task
from lvsal_nb.eval.worker import DEFAULT_METHODS, METHODS, Worker, check_methods, unit_seed

DEFAULT_MAX_NEW_TOKENS = {"chair": [64, 512], "pope": [16]}
# run.json keys that decide the answers: a resumed run must agree on them
FIXED = (
    "task",
    "dataset",
    "model",
    "seed",
    "annotations",
    "captions",
    "images",
    "per_image",
    "dtype",
    "chair_compat",
    "pope_parser",
    "pope_suffix",
    "method_options",
)


@dataclass
class RunSpec:
    """Everything a run needs (the CLI's arguments). See `lvsal eval --help` for each field."""

    task: str
    out: str | Path
    model: str = "toy"
    dataset: str = "coco"
    images: str | None = None
    annotations: str | None = None
    captions: str | None = None
    n: int = 500
    seed: int = 0
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # method -> its keyword options
    chair_compat: str = "original"  # CHAIR's word handling: "original" or "fixed"
    pope_parser: str = "pope"  # POPE's evaluate.py rule, or "strict"
    pope_suffix: str = "pope"  # the bare question (POPE), or "vcd" (" Please answer ... one word.")
    max_new_tokens: list[int] | None = None  # default: DEFAULT_MAX_NEW_TOKENS[task]
    image_list: str | None = None
    splits: list[str] = field(default_factory=lambda: list(SPLITS))
    per_image: int = 3
    traces: bool = True
    device: str | None = None
    dtype: str | None = None
    engine: str = "local"
    workers: int | None = None
    cpus_per_worker: int = 1
    threads: int | None = None
    ray_address: str | None = None
    progress: bool = True

    def fixed(self) -> dict[str, Any]:
        """The settings a resumed run must share with the run.json already in --out (paths resolved)."""
        d = asdict(self)
        for k in ("annotations", "captions", "images"):
            d[k] = str(Path(d[k]).resolve()) if d[k] else None
        return {k: d[k] for k in FIXED}


class LocalEngine:
    """Runs units one after another in this process, on one Worker."""

    name = "local"

    def start(self, worker_kwargs: dict[str, Any]) -> dict[str, Any]:
        """Load the model in this process; returns the worker's description (model, device, layers ...)."""
        self.worker = Worker(**worker_kwargs)
        return self.worker.describe()

    def imap(self, units: Iterable[dict]) -> Iterator[dict]:
        """Run `units` in order; yields each unit's record."""
        for u in units:
            yield self.worker.run(u)

    def close(self) -> None:
        """Drop the worker (and its model)."""
        self.worker = None


def run(spec: RunSpec, on_result: Callable[[dict], Any] | None = None, engine=None) -> pd.DataFrame:
    """Run (or resume) an evaluation; returns the summary table (also written to the run folder).

    Args:
        on_result: called with each new record after it is safely on disk (progress hooks, tests).
        engine: an engine object (start / imap / close); default from spec.engine.
    """
    out = Path(spec.out)
    methods = check_methods(spec.methods)
    mnts = _lengths(spec.max_new_tokens or DEFAULT_MAX_NEW_TOKENS.get(spec.task, [64]))
    out.mkdir(parents=True, exist_ok=True)
    with run_lock(out):  # a second `lvsal eval` on this folder is refused (RunBusyError)
        return _run_locked(spec, out, methods, mnts, on_result, engine)


def _run_locked(spec: RunSpec, out: Path, methods, mnts, on_result, engine) -> pd.DataFrame:
    _check_run_file(out, spec)
    task = build_task(
        spec.task,
        spec.dataset,
        n=spec.n,
        seed=spec.seed,
        image_list=_image_list(out, spec),
        images=spec.images,
        annotations=spec.annotations,
        captions=spec.captions,
        splits=spec.splits,
        per_image=spec.per_image,
        out=out,
        chair_compat=spec.chair_compat,
        pope_parser=spec.pope_parser,
        pope_suffix=spec.pope_suffix,
    )
    bad = [m for m in spec.method_options if m not in methods]
    if bad:
        raise ConfigError(
            f"--method-option names method(s) {bad} that this run does not use ({', '.join(methods)})"
        )
    if not (out / "run.json").exists():  # only once the settings proved usable
        write_json(out / "run.json", {"fixed": spec.fixed()}, indent=1)
    write_json(out / "images.json", task.image_ids)
    items = {it.item_id: it for it in task.items}
    units = [
        {
            "key": unit_key(it.item_id, m, L),
            "item_id": it.item_id,
            "image": it.image,
            "prompt": it.prompt,
            "method": m,
            "max_new_tokens": L,
            "seed": unit_seed(spec.seed, it.item_id),
            "options": dict(spec.method_options.get(m, {})),
        }
        for L in mnts
        for m in methods
        for it in task.items
    ]
    store = ResultStore(out / "results.jsonl")
    todo = [u for u in units if u["key"] not in store]
    if todo:
        engine = engine or make_engine(spec)
        bar = _bar(len(units), len(units) - len(todo), f"{spec.task} ({engine.name})", spec.progress)
        try:
            info = engine.start(
                {
                    "model": spec.model,
                    "device": spec.device,
                    "dtype": spec.dtype,
                    "traces": spec.traces,
                    "threads": spec.threads,
                }
            )
            _update_run_file(out, info)
            by_key = {u["key"]: u for u in todo}
            for res in engine.imap(todo):
                u = by_key[res["key"]]
                rec = _record(task, items[u["item_id"]], u, res, out)
                store.append(rec)
                bar.update(1)
                if on_result is not None:
                    on_result(rec)
        finally:
            bar.close()
            engine.close()
    return write_summary(task, [store.records[u["key"]] for u in units], methods, out)


def make_engine(spec: RunSpec):
    """The engine `spec.engine` names (local or ray); raises ConfigError on settings it cannot honour."""
    if spec.engine == "local":
        if spec.workers not in (None, 1):
            raise ConfigError("--workers needs --engine ray (the local engine runs one worker)")
        return LocalEngine()
    if spec.engine == "ray":
        from lvsal_nb.eval.ray_engine import RayEngine

        return RayEngine(
            workers=spec.workers,
            cpus_per_worker=spec.cpus_per_worker,
            address=spec.ray_address,
            device=spec.device,
        )
    raise ConfigError(f"--engine must be 'local' or 'ray', got {spec.engine!r}")


def _record(task: Task, item, unit: dict, res: dict, out: Path) -> dict[str, Any]:
    """The results line of one answer; its trace file is written first (a line implies its trace)."""
    trace = None
    if res.get("trace_bytes") is not None:
        safe = item.item_id.replace(":", "_").replace("/", "_")
        rel = Path("traces") / unit["method"] / str(unit["max_new_tokens"]) / f"{safe}.lvsal.parquet"
        write_atomic(out / rel, res["trace_bytes"])
        trace = rel.as_posix()
    rec = {
        "key": unit["key"],
        "item_id": item.item_id,
        "image_id": item.image_id,
        "method": unit["method"],
        "max_new_tokens": unit["max_new_tokens"],
        "seed": unit["seed"],
        "prompt": item.prompt,
        **item.meta,
        "text": res["text"],
        "token_ids": res["token_ids"],
        "n_tokens": res["n_tokens"],
        "saliency": res["saliency"],
        "seconds": res["seconds"],
        "worker": res.get("worker"),
        "options": json.dumps(res.get("options") or {}, sort_keys=True, default=str),
        "trace": trace,
    }
    rec.update(task.judge(item, res["text"]))
    return rec


def write_summary(task: Task, records: list[dict], methods: list[str], out: Path) -> pd.DataFrame:
    """summary.parquet / summary.md / results.parquet from the records of this run's units."""
    summary = task.summarize(records, methods)
    if records:
        with replacing(out / "results.parquet") as tmp:  # atomic: a full disk keeps the old file
            pd.DataFrame(records).to_parquet(tmp, index=False)
        with replacing(out / "summary.parquet") as tmp:
            summary.to_parquet(tmp, index=False)
        write_text(out / "summary.md", markdown(task.name, summary) + "\n")
    return summary


def markdown(task: str, summary: pd.DataFrame) -> str:
    """The summary as a Markdown table (rates in %)."""

    def pct(x):
        return f"{100 * x:.1f}"

    def sal(x):
        return "-" if pd.isna(x) else f"{x:.3f}"

    if task == "chair":
        lines = [
            "| method | max new tokens | CHAIR_S | CHAIR_I | recall | avg len | captions | mean saliency |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in summary.itertuples():
            lines.append(
                f"| {r.method} | {r.max_new_tokens} | {pct(r.chair_s)} | {pct(r.chair_i)} "
                f"| {pct(r.recall)} | {r.avg_len:.1f} | {r.n_captions} | {sal(r.saliency)} |"
            )
    else:
        lines = [
            "| method | split | max new tokens | accuracy | precision | recall | F1 | yes ratio "
            "| questions |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in summary.itertuples():
            lines.append(
                f"| {r.method} | {r.split} | {r.max_new_tokens} | {pct(r.accuracy)} "
                f"| {pct(r.precision)} | {pct(r.recall)} | {pct(r.f1)} | {pct(r.yes_ratio)} "
                f"| {r.n} |"
            )
    lines += _settings_lines(task, summary)
    return "\n".join(lines)


def _settings_lines(task: str, summary: pd.DataFrame) -> list[str]:
    """Below the table: the scoring mode(s) and every method's options as they ran."""
    out = [""]
    if task == "chair" and "chair_compat" in summary:
        out.append(f"CHAIR word handling: {', '.join(dict.fromkeys(summary['chair_compat']))}")
    if task != "chair" and "pope_parser" in summary:
        out.append(
            f"POPE answer parser: {', '.join(dict.fromkeys(summary['pope_parser']))}; "
            f"question suffix: {', '.join(dict.fromkeys(summary['pope_suffix']))}"
        )
    if "options" in summary:
        for method, opts in dict(zip(summary["method"], summary["options"])).items():
            out.append(f"- {method}: {opts}")
    return out if len(out) > 1 else []


# ---- run folder ------------------------------------------------------------------------------------
def _read_run_file(path: Path) -> dict:
    """run.json as a dict with a "fixed" dict; ConfigError naming the fix when it is damaged."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as e:
        saved, why = None, f"{type(e).__name__}: {e}"
    else:
        why = "it must be a JSON object with a 'fixed' object of the run's settings"
    if not isinstance(saved, dict) or not isinstance(saved.get("fixed"), dict):
        raise ConfigError(
            f"{path} is damaged ({why}); restore it from a copy, or delete it and rerun with the run's "
            "original settings (finished answers in results.jsonl are kept), or pass a new --out"
        )
    return saved


def _check_run_file(out: Path, spec: RunSpec) -> None:
    path = out / "run.json"
    fixed = spec.fixed()
    if path.exists():
        old = _read_run_file(path)["fixed"]
        # a key the saved run does not have is a setting added since: not a difference
        diff = {k: (old.get(k), v) for k, v in fixed.items() if k in old and old.get(k) != v}
        if diff:
            raise ConfigError(
                f"{out} holds a run with other settings {diff} (saved, now); rerun with the "
                "saved settings to resume it, or pass a new --out"
            )


def _update_run_file(out: Path, info: dict) -> None:
    path = out / "run.json"
    d = _read_run_file(path)
    d["worker"] = info
    write_json(path, d, indent=1)


def _image_list(out: Path, spec: RunSpec) -> list | None:
    """--image-list FILE, else the run folder's images.json (a resumed run), else None (draw)."""
    saved = out / "images.json"
    given = _read_list(Path(spec.image_list)) if spec.image_list else None
    if saved.exists():
        ids = _read_list(saved)
        if given is not None and given != ids:
            raise ConfigError(f"--image-list differs from the images of the run in {out}; pass a new --out")
        if given is None and len(ids) != spec.n:
            raise ConfigError(
                f"the run in {out} has {len(ids)} images, not --n {spec.n}; "
                f"pass --n {len(ids)} to resume it, or a new --out"
            )
        return ids
    return given


def _read_list(path: Path) -> list:
    if not path.is_file():
        raise ConfigError(f"image list {str(path)!r} does not exist; pass the images.json of an earlier run")
    fix = (
        "restore it from a copy, or delete it (a run folder's images are drawn again from --seed; pass "
        "--image-list if the run used one), or pass a new --out"
    )
    try:
        ids = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as e:
        raise ConfigError(f"{path} is damaged ({type(e).__name__}: {e}); {fix}") from e
    if not isinstance(ids, list) or not ids:
        raise ConfigError(f"{path} must hold a non-empty JSON list of image ids; {fix}")
    bad = [x for x in ids if isinstance(x, bool) or not isinstance(x, (str, int))]
    if bad:
        raise ConfigError(
            f"{path} holds {len(bad)} entries that are not image ids (strings or integers), "
            f"e.g. {bad[0]!r}; {fix}"
        )
    return ids


def _lengths(values) -> list[int]:
    if any(not isinstance(v, int) or v < 1 for v in values) or not values:
        raise ConfigError(f"--max-new-tokens takes a comma list of integers >= 1, got {values!r}")
    return list(dict.fromkeys(values))


class _NoBar:
    def update(self, n=1):
        pass

    def close(self):
        pass


def _bar(total: int, done: int, desc: str, show: bool):
    if not show:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, desc=desc, unit="answer", dynamic_ncols=True)


# ---- command line ----------------------------------------------------------------------------------
def _csv(kind):
    def parse(text: str):
        try:
            return [kind(x.strip()) for x in text.split(",") if x.strip()]
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"expected a comma list, got {text!r}") from e

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The `lvsal eval` argument parser (chair / pope subcommands)."""
    p = argparse.ArgumentParser(
        prog="lvsal eval",
        description="CHAIR / POPE evaluation of decoding methods (resumable; local or on a Ray cluster)",
    )
    p.add_argument("task", choices=TASKS)
    p.add_argument("--out", required=True, help="run folder (rerun the same command to resume)")
    p.add_argument(
        "--model", default="toy", help="'toy', 'tiny:llava', a local checkpoint folder or a cached hub id"
    )
    p.add_argument(
        "--dataset",
        default="coco",
        choices=DATASETS,
        help="coco files, the bundled photo fixtures, or toy scenes with exact ground truth (default: coco)",
    )
    p.add_argument("--images", help="folder of the images named by the annotations' file_name (coco)")
    p.add_argument("--annotations", help="COCO instances JSON (coco)")
    p.add_argument(
        "--captions", help="COCO captions JSON: adds the objects of reference captions to CHAIR's truth"
    )
    p.add_argument(
        "--n", type=int, default=500, help="images (POPE: 6 questions per image and split); default 500"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--methods",
        type=_csv(str),
        default=list(DEFAULT_METHODS),
        help=f"comma list of {','.join(METHODS)} (default: {','.join(DEFAULT_METHODS)})",
    )
    p.add_argument(
        "--method-option",
        dest="method_options",
        action="append",
        type=_method_option,
        default=[],
        metavar="METHOD.KEY=VALUE",
        help="an option of one method, e.g. vcd.decoding=greedy, dola.final_norm=true, "
        "locore.beta=0.2 (VALUE as JSON, else a string); repeat for more",
    )
    p.add_argument(
        "--chair-compat",
        default="original",
        choices=["original", "fixed"],
        help="CHAIR word handling: the original code's, quirks included (default), or fixed",
    )
    p.add_argument(
        "--pope-parser",
        default="pope",
        choices=["pope", "strict"],
        help="POPE answer parser: POPE's evaluate.py rule (default) or negation-aware",
    )
    p.add_argument(
        "--pope-suffix",
        default="pope",
        choices=["pope", "vcd"],
        help="question suffix: none as POPE's files (default), or VCD's ' Please answer this "
        "question with one word.'",
    )
    p.add_argument(
        "--max-new-tokens",
        type=_csv(int),
        default=None,
        help="comma list (default: 64,512 for chair, 16 for pope)",
    )
    p.add_argument("--image-list", help="JSON list of image ids to use instead of drawing (an images.json)")
    p.add_argument("--splits", type=_csv(str), default=list(SPLITS), help="POPE splits (default: all three)")
    p.add_argument("--per-image", type=int, default=3, help="POPE 'yes' questions per image (default 3)")
    p.add_argument("--no-traces", dest="traces", action="store_false", help="do not keep a trace per answer")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    p.add_argument(
        "--dtype", default=None, help="float32, bfloat16, ... (default: bfloat16 on cuda, else float32)"
    )
    p.add_argument("--engine", default="local", choices=["local", "ray"])
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="ray: worker processes (default: one per GPU, "
        "else one per --cpus-per-worker CPUs of the cluster)",
    )
    p.add_argument(
        "--cpus-per-worker", type=int, default=1, help="ray: CPUs (and torch threads) per CPU worker"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads per worker (default: torch's; ray: --cpus-per-worker). "
        "1 is fastest for small models on a busy machine",
    )
    p.add_argument(
        "--ray-address",
        default=None,
        help="ray: cluster address ('auto', 'HOST:6379'); default: RAY_ADDRESS or a new local instance",
    )
    p.add_argument("--no-progress", dest="progress", action="store_false")
    return p


def _method_option(text: str) -> tuple[str, str, Any]:
    key, sep, value = text.partition("=")
    method, dot, name = key.partition(".")
    if not sep or not dot or not method or not name:
        raise argparse.ArgumentTypeError(
            f"expected METHOD.KEY=VALUE (e.g. vcd.decoding=greedy), got {text!r}"
        )
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return method, name, parsed


def main(argv: list[str] | None = None) -> int:
    """Entry point of `lvsal eval`: run (or resume) the evaluation; returns the exit status."""
    args = build_parser().parse_args(argv)
    opts: dict[str, dict[str, Any]] = {}
    for method, name, value in args.method_options:
        opts.setdefault(method, {})[name] = value
    args.method_options = opts
    spec = RunSpec(**vars(args))
    try:
        summary = run(spec)
    except LvsalError as e:
        print(f"lvsal eval: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"\nlvsal eval: interrupted; finished answers are kept in {Path(spec.out) / 'results.jsonl'}. "
            "Run the same command again to resume.",
            file=sys.stderr,
        )
        return 130
    print(markdown(spec.task, summary))
    print(f"\nresults in {spec.out} (summary.md, summary.parquet, results.jsonl, traces/)")
    return 0
