"""Train the toy LLaVA on the toy world, on the CPU, deterministically for a seed.

    python -m lvsal_nb.toy.train --seed 0 --steps 1800    # or `lvsal toy-train`: the shipped weights
    lvsal toy-train --world v2 --text-layers 4 --threads 1 --seed 0 --steps 1200 \
        --captions-per-qa 3 --recap-weight 4 --out lvsal_nb/toy/assets_v2    # toy-v2's shipped weights

v1: about 9 minutes on an idle 2-core CPU; toy-v2 (from scratch, 4 text layers): about 12 minutes on
one idle core (see RESULTS.md).

Recipe: AdamW (lr 1e-3, betas 0.9/0.98, weight decay 0.01), linear warm-up then cosine decay to
10%, gradient clipping at 1.0, batch 16, caption and yes/no batches alternating. The loss is the
mean over sequences of each sequence's mean token loss, so a one-word answer weighs as much as a
whole caption. Same seed, same machine, same thread count -> bit-identical weights.

Two knobs for toy world v2 (defaults leave v1's recipe exactly as it was): `captions_per_qa`
caption batches per yes/no batch (1: alternating), and `recap_weight`, the loss weight of the
tokens after the recap marker "so" (1: plain mean), so the copy is a larger part of the loss.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import LlavaForConditionalGeneration

from lvsal_nb.atomic import dumps, replacing_folder_files
from lvsal_nb.errors import ConfigError
from lvsal_nb.toy.data import IGNORE, make_batch
from lvsal_nb.toy.model import ASSET_DIR, toy_config
from lvsal_nb.toy.scenes import scene_rng
from lvsal_nb.toy.worlds import get_world, world_tokenizer

DEFAULT_STEPS = 1800
SAFETY_MINUTES = 14.0  # the default run stops here even on a slow machine
BATCH_SIZE = 16
LR, WARMUP, MIN_LR_FRACTION = 1e-3, 60, 0.1
THREADS = 2


def sequence_loss(
    logits: torch.Tensor, labels: torch.Tensor, marker: int | None = None, weight: float = 1.0
) -> torch.Tensor:
    """Mean over sequences of the (weighted) mean next-token loss on labelled positions.

    logits [B, T, V], labels [B, T] (IGNORE where unlabelled) -> scalar. marker, weight: labelled
    tokens AFTER the first `marker` token of a row (v2's recap after "so") weigh `weight`, every
    other labelled token 1; each row's loss is its weighted mean, rows weigh the same.
    """
    logits, labels = logits[:, :-1].float(), labels[:, 1:]
    tok = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE, reduction="none")  # [B, T-1]
    mask = (labels != IGNORE).float()
    if marker is not None and weight != 1.0:
        after = (torch.cumsum((labels == marker).long(), 1) > 0) & (labels != marker)
        mask = mask * torch.where(after, weight, 1.0)
    return ((tok * mask).sum(1) / mask.sum(1).clamp(min=1)).mean()


def batch_kind(step: int, captions_per_qa: int = 1) -> str:
    """ "caption" or "qa" for optimizer step `step` (0-based): captions_per_qa captions, then one qa.

    captions_per_qa=1 alternates caption, qa, caption, ... (v1's schedule).
    """
    return "qa" if step % (captions_per_qa + 1) == captions_per_qa else "caption"


def _lr_factor(progress: float) -> float:
    """Cosine from 1 to MIN_LR_FRACTION over progress in [0, 1]."""
    progress = min(max(progress, 0.0), 1.0)
    return MIN_LR_FRACTION + (1 - MIN_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * progress))


def train(
    seed: int = 0,
    steps: int | None = None,
    minutes: float | None = None,
    out_dir: str | Path = ASSET_DIR,
    log: Callable[[str], None] | None = print,
    world: str = "v1",
    init: str | Path | None = None,
    threads: int = THREADS,
    lr: float = LR,
    captions_per_qa: int = 1,
    recap_weight: float = 1.0,
    dims: dict | None = None,
    command: str | None = None,
) -> dict:
    """Train from scratch on the CPU; save config.json, model.safetensors and tokenizer files to out_dir.

    steps given: a step-based schedule (bit-deterministic); `minutes` then only caps wall time.
    steps None, minutes given: the schedule follows elapsed time (not bit-deterministic).
    Both None: DEFAULT_STEPS steps, capped at SAFETY_MINUTES.
    Returns {"seed", "steps", "seconds", "cpu_seconds", "final_loss", "stopped_early", "out_dir"};
    cpu_seconds / THREADS is about the wall time on an otherwise idle machine.
    dims: overrides of `lvsal_nb.toy.model.DIMS` (toy-v2: {"text_layers": 4}); not with init.
    command: the command line, recorded in train.json.
    """
    return fit(seed, steps, minutes, out_dir, log, world=world, init=init, threads=threads, lr=lr,
               captions_per_qa=captions_per_qa, recap_weight=recap_weight, dims=dims,
               command=command)[1]  # fmt: skip


@contextmanager
def _cpu_determinism(n_threads: int = THREADS):
    """n_threads (2) and deterministic kernels while training; the caller's settings come back after."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(n_threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def fit(
    seed: int = 0,
    steps: int | None = None,
    minutes: float | None = None,
    out_dir: str | Path | None = ASSET_DIR,
    log: Callable[[str], None] | None = print,
    *,
    device: str = "cpu",
    batch_size: int | None = None,
    lr: float = LR,
    dims: dict | None = None,
    world: str = "v1",
    init: str | Path | None = None,
    threads: int = THREADS,
    captions_per_qa: int = 1,
    recap_weight: float = 1.0,
    command: str | None = None,
) -> tuple[LlavaForConditionalGeneration, dict]:
    """`train` with knobs for experiments (device, batch size, lr, model dims); out_dir None: no save.

    world: "v1" (the original captions) or "v2" (list + recap captions, `lvsal_nb.toy.recap`).
    init: a saved toy model folder to start from instead of random weights (v2 starts from the
        shipped v1 model: its image reading is learned already; the world's extra words get new
        embedding rows, drawn from `seed`). threads: torch threads (same count, same weights).
    captions_per_qa: caption batches per yes/no batch (int >= 1; 1 alternates, as v1 does).
    recap_weight: loss weight (> 0) of the tokens after the recap marker "so" (v2 only; 1: plain).
    command: the command line that ran this, recorded in train.json (None: not recorded).

    Returns (model in eval mode, info dict).
    """
    if steps is not None and steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps}.")
    if minutes is not None and minutes <= 0:
        raise ConfigError(f"minutes must be > 0, got {minutes}.")
    log = log or (lambda _msg: None)
    batch_size = batch_size or BATCH_SIZE  # read at call time: tests shrink it
    time_based = steps is None and minutes is not None
    total = steps if steps is not None else DEFAULT_STEPS
    if minutes is not None:
        budget_s = 60.0 * minutes
    else:
        budget_s = math.inf if steps is not None else 60.0 * SAFETY_MINUTES
    if time_based:
        total = 10**9  # run until the time is up
    get_world(world)  # unknown world: ConfigError before any work
    if init is not None and not (Path(init) / "model.safetensors").exists():
        raise ConfigError(f"--init {init}: no model.safetensors there; pass a saved toy model folder "
                          "(e.g. lvsal_nb/toy/assets, the shipped v1 model).")  # fmt: skip
    if not (isinstance(threads, int) and threads >= 1):
        raise ConfigError(f"threads must be an int >= 1, got {threads!r}.")
    if not (isinstance(captions_per_qa, int) and captions_per_qa >= 1):
        raise ConfigError(f"captions_per_qa must be an int >= 1 (1: alternate), got {captions_per_qa!r}.")
    if not (isinstance(recap_weight, (int, float)) and math.isfinite(recap_weight) and recap_weight > 0):
        raise ConfigError(
            f"recap_weight must be a finite number > 0 (1: no extra weight), got {recap_weight!r}."
        )
    if dims and init is not None:
        raise ConfigError("Model dimensions (e.g. --text-layers) apply to a model trained from scratch; "
                          "drop --init, or drop the dimensions to keep the --init model's.")  # fmt: skip
    for k, v in (dims or {}).items():
        if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
            raise ConfigError(f"Model dimension {k} must be an int >= 1, got {v!r}.")
    if recap_weight != 1.0 and not get_world(world).extra_words:
        raise ConfigError(f"recap_weight needs a world with a recap marker (v2); world {world!r} has none.")

    with _cpu_determinism(threads) if device == "cpu" else nullcontext():
        model, info = _run(seed, total, budget_s, time_based, log, device, batch_size, lr, dims, world, init,
                           captions_per_qa, recap_weight)  # fmt: skip
    if out_dir is not None:
        out = Path(out_dir)
        meta = info | {"out_dir": str(out), "batch_size": batch_size, "lr": lr, "device": device,
                       "torch": torch.__version__}  # fmt: skip
        if world != "v1" or init is not None or threads != THREADS:  # v1's train.json keeps its old keys
            meta.update(world=world, init=None if init is None else str(init), threads=threads)
        if captions_per_qa != 1 or recap_weight != 1.0:
            meta.update(captions_per_qa=captions_per_qa, recap_weight=recap_weight)
        if dims:
            meta.update(dims=dict(dims))
        if command is not None:
            meta.update(command=command)
        # written beside, then moved in file by file: a full disk leaves the previous weights whole
        with replacing_folder_files(out) as tmp:
            model.save_pretrained(tmp)
            world_tokenizer(world).save_pretrained(tmp)
            (tmp / "train.json").write_text(dumps(meta, indent=1) + "\n")
        log(f"saved to {out} after {info['steps']} steps, {info['seconds']:.0f} s, loss {info['final_loss']}")
    return model, info | {"out_dir": None if out_dir is None else str(out_dir)}


def _run(seed, total, budget_s, time_based, log, device, batch_size, lr, dims, world="v1", init=None,
         captions_per_qa=1, recap_weight=1.0):  # fmt: skip
    """The optimisation loop; returns (model in eval mode, info without out_dir)."""
    torch.manual_seed(seed)  # the model's initial weights
    tokenizer = world_tokenizer(world)
    caption_fn, scene_fn = get_world(world).caption, get_world(world).scene
    extra = get_world(world).extra_words
    marker = tokenizer.convert_tokens_to_ids(extra[0]) if extra else None  # v2: "so" opens the recap
    if init is None:
        model = LlavaForConditionalGeneration(toy_config(tokenizer, **(dims or {})))
    else:
        model = LlavaForConditionalGeneration.from_pretrained(
            init, attn_implementation="eager", local_files_only=True, dtype=torch.float32
        )
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)  # new rows: from the seed
    model = model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.01)
    rng = scene_rng("train", seed, 0)  # one fixed stream: the data order is the same every run

    t0, c0, losses, step, stopped_early = time.perf_counter(), time.process_time(), [], 0, False
    while step < total:
        elapsed = time.perf_counter() - t0
        if elapsed > budget_s:
            stopped_early = not time_based
            if stopped_early:
                log(f"time cap reached after {step} of {total} steps: weights are not the full schedule's")
            break
        progress = elapsed / budget_s if time_based else step / total
        for g in opt.param_groups:
            g["lr"] = lr * min(1.0, (step + 1) / WARMUP) * _lr_factor(progress)
        batch = make_batch(
            tokenizer, rng, batch_size, batch_kind(step, captions_per_qa), caption_fn, scene_fn
        )
        batch = {k: v.to(device) for k, v in batch.items()}
        labels = batch.pop("labels")
        loss = sequence_loss(model(**batch).logits, labels, marker, recap_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        step += 1
        if step % 50 == 0 or step == total:
            recent = losses[-50:]
            log(f"step {step}  loss {sum(recent) / len(recent):.4f}  {time.perf_counter() - t0:.0f} s")

    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    final = sum(losses[-20:]) / max(1, len(losses[-20:]))
    info = dict(seed=seed, steps=step, seconds=round(seconds, 1), cpu_seconds=round(cpu_seconds, 1),
                final_loss=round(final, 4), stopped_early=stopped_early)  # fmt: skip
    return model.eval(), info


def main(argv: list[str] | None = None) -> dict:
    """Command line: --seed, --steps, --minutes, --world, --out (default: the world's shipped assets)."""
    p = argparse.ArgumentParser(
        prog="lvsal toy-train", description="Train the embedded toy LLaVA on the CPU."
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help=f"optimizer steps (default {DEFAULT_STEPS})")
    p.add_argument("--minutes", type=float, default=None, help="wall-clock budget in minutes")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: the world's assets)")
    p.add_argument("--world", default="v1", choices=["v1", "v2"], help="toy world (v2: list + recap)")
    p.add_argument("--init", type=Path, default=None, help="start from this saved toy model folder")
    p.add_argument("--threads", type=int, default=THREADS, help=f"torch threads (default {THREADS})")
    p.add_argument("--lr", type=float, default=LR, help=f"peak learning rate (default {LR})")
    p.add_argument(
        "--captions-per-qa", type=int, default=1, help="caption batches per yes/no batch (default 1)"
    )
    p.add_argument(
        "--recap-weight", type=float, default=1.0, help="loss weight of v2's recap tokens (default 1)"
    )
    p.add_argument("--text-layers", type=int, default=None, help="text model layers (default 8)")
    a = p.parse_args(argv)
    dims = None if a.text_layers is None else {"text_layers": a.text_layers}
    command = "lvsal toy-train " + " ".join(sys.argv[1:] if argv is None else argv)
    out = a.out if a.out is not None else get_world(a.world).asset_dir
    return train(
        seed=a.seed, steps=a.steps, minutes=a.minutes, out_dir=out, log=lambda m: print(m, flush=True),
        world=a.world, init=a.init, threads=a.threads, lr=a.lr, captions_per_qa=a.captions_per_qa,
        recap_weight=a.recap_weight, dims=dims, command=command.strip(),
    )  # fmt: skip


if __name__ == "__main__":
    main()
