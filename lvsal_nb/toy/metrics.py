"""Toy CHAIR and POPE for the toy model on held-out scenes (the "eval" stream; training uses "train").

    python -m lvsal_nb.toy.metrics --n-scenes 200 --seed 0     # prints a Markdown table

CHAIR: greedy caption of every scene; object mentions are its shape nouns (`mentioned_objects`),
ground truth the scene's shapes. POPE: the three splits built by `pope_questions` on the same
scenes (those with >= 3 objects), answers parsed with POPE's negation rule. Also reported: the
share of hallucinated mentions that are the absent partner of a present shape.
"""

from __future__ import annotations

import argparse
import time

import torch

from lvsal_nb.errors import ConfigError
from lvsal_nb.toy.inputs import build_inputs
from lvsal_nb.toy.pope import SPLITS
from lvsal_nb.toy.scenes import (
    PARTNER,
    Scene,
    make_scene,
    mentioned_objects,
    pope_questions,
    render,
    scene_rng,
)


def eval_scenes(n_scenes: int, seed: int = 0, long_lists: bool = False) -> list[Scene]:
    """Held-out scenes 0..n-1 of the "eval" stream for `seed` (never drawn by training).

    long_lists: toy world v2's scenes (1-8 objects); False: v1's.
    """
    if n_scenes < 1:
        raise ConfigError(f"n_scenes must be >= 1, got {n_scenes}.")
    return [make_scene(scene_rng("eval", seed, i), long_lists=long_lists) for i in range(n_scenes)]


@torch.no_grad()
def greedy_answers(
    model,
    tokenizer,
    scenes: list[Scene],
    questions: list[str | None],
    max_new_tokens: int,
    batch_size: int = 64,
) -> list[str]:
    """Greedy decoded answers (special tokens dropped), one per (scene, question); None = caption.

    Prompts of one batch must have the same length (true for the toy prompts: every shape is one
    token), so no padding is needed.
    """
    out: list[str] = []
    device = next(model.parameters()).device
    for i in range(0, len(scenes), batch_size):
        encs = [
            build_inputs(tokenizer, render(s), q) for s, q in zip(scenes[i : i + batch_size], questions[i:])
        ]
        lengths = {e["input_ids"].shape[1] for e in encs}
        if len(lengths) != 1:
            raise ConfigError(f"Prompts of one batch differ in length {sorted(lengths)}; use batch_size=1.")
        ids = torch.cat([e["input_ids"] for e in encs]).to(device)
        pix = torch.cat([e["pixel_values"] for e in encs]).to(device, model.dtype)
        gen = model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=pix,
            max_new_tokens=max_new_tokens, do_sample=False,
            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        )  # fmt: skip
        out += tokenizer.batch_decode(gen[:, ids.shape[1] :], skip_special_tokens=True)
    return out


def partner_share(mentioned: list[list[str]], truth: list[set[str]]) -> float:
    """Share of hallucinated mentions that are the absent partner of a present shape (0 if none)."""
    bad = [(w, t) for m, t in zip(mentioned, truth) for w in m if w not in t]
    return sum(PARTNER[w] in t for w, t in bad) / len(bad) if bad else 0.0


def evaluate(
    model, tokenizer, n_scenes: int = 200, seed: int = 0, splits: tuple[str, ...] = SPLITS,
    max_new_tokens: int = 64,
) -> dict:  # fmt: skip
    """CHAIR on greedy captions and POPE per split, on `n_scenes` held-out scenes.

    Returns {"chair": chair_scores(...) | {"partner_share"}, "pope": {split: pope_scores(...)},
    "n_scenes", "seed", "seconds"}.
    """
    from lvsal_nb.protocol.scores import chair_scores, parse_yes_no, pope_scores

    bad = [s for s in splits if s not in SPLITS]
    if bad:
        raise ConfigError(f"Unknown POPE split(s) {bad}; use some of {SPLITS}.")
    t0 = time.perf_counter()
    was_training = model.training
    model.eval()
    scenes = eval_scenes(n_scenes, seed)
    captions = greedy_answers(model, tokenizer, scenes, [None] * len(scenes), max_new_tokens)
    mentioned = [mentioned_objects(c) for c in captions]
    truth = [set(s.object_names()) for s in scenes]
    chair = chair_scores(mentioned, truth, [len(c.split()) for c in captions])
    chair["partner_share"] = partner_share(mentioned, truth)
    pope = {}
    for split in splits:
        qs = pope_questions(scenes, split, seed)
        answers = greedy_answers(model, tokenizer, [scenes[q["scene_index"]] for q in qs],
                                 [q["question"] for q in qs], max_new_tokens=3)  # fmt: skip
        pope[split] = pope_scores([parse_yes_no(a) for a in answers], [q["label"] == "yes" for q in qs])
    model.train(was_training)
    return dict(chair=chair, pope=pope, captions=captions, n_scenes=n_scenes, seed=seed,
                seconds=round(time.perf_counter() - t0, 1))  # fmt: skip


def markdown_table(result: dict) -> str:
    """The result of `evaluate` as two Markdown tables (CHAIR, POPE), percentages."""

    def row(*cells) -> str:
        return "| " + " | ".join(cells) + " |"

    def pct(x: float) -> str:
        return f"{100 * x:.1f}"

    c = result["chair"]
    lines = [
        row(
            "CHAIR_S", "CHAIR_I", "recall", "avg len", "captions", "mentions", "hallucinated", "partner share"
        ),
        row(*["---"] * 8),
        row(
            pct(c["chair_s"]),
            pct(c["chair_i"]),
            pct(c["recall"]),
            f"{c['avg_len']:.1f}",
            str(c["n_captions"]),
            str(c["n_mentions"]),
            str(c["n_hallucinated"]),
            pct(c["partner_share"]),
        ),  # fmt: skip
        "",
        row("POPE split", "accuracy", "precision", "recall", "F1", "yes ratio", "questions"),
        row(*["---"] * 7),
    ]
    for split, p in result["pope"].items():
        keys = ("accuracy", "precision", "recall", "f1", "yes_ratio")
        lines.append(row(split, *[pct(p[k]) for k in keys], str(p["n"])))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    """Command line: evaluate the shipped toy model (or --assets DIR) and print Markdown tables."""
    p = argparse.ArgumentParser(prog="python -m lvsal_nb.toy.metrics", description=__doc__.splitlines()[0])
    p.add_argument("--n-scenes", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--assets", default=None, help="folder with a trained toy model (default: the shipped one)"
    )
    a = p.parse_args(argv)
    torch.set_num_threads(2)
    if a.assets is None:
        from lvsal_nb.toy.model import load_toy

        model, tokenizer = load_toy()
    else:
        from transformers import LlavaForConditionalGeneration, PreTrainedTokenizerFast

        tokenizer = PreTrainedTokenizerFast.from_pretrained(a.assets, local_files_only=True)
        model = LlavaForConditionalGeneration.from_pretrained(a.assets, attn_implementation="eager").eval()
    result = evaluate(model, tokenizer, n_scenes=a.n_scenes, seed=a.seed)
    print(markdown_table(result))
    print(f"\n{a.n_scenes} held-out scenes (eval stream, seed {a.seed}); {result['seconds']} s")
    return result


if __name__ == "__main__":
    main()
