"""Write tests/browser/fixtures/demo.lvsal.json: a synthetic but self-consistent SGRS trace.

Run `python tests/browser/make_fixture.py` after a Trace schema change. The numbers are made up
(no model), but they follow the method: rows are head-mean saliency over keys 0..q, ℓ2-normalised
per layer; S is the mean over layers and over the text context J (after the image, up to q);
τ = α · mean(S of the last W accepted tokens); SGRS draws up to R candidates and falls back to
the most salient one. Two tokens (" bicycle", " dog") are "hallucinated": their rows barely look
at the image or the prompt, so their saliency drops.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from lvsal_nb.trace import Candidate, Spans, Step, Trace

OUT = Path(__file__).parent / "fixtures" / "demo.lvsal.json"
LAYERS = [6, 7, 8]
GRID = (8, 8)
ALPHA, WINDOW, ROUNDS = 0.6, 5, 3

SYSTEM = ["<s>", "<|system|>", "You are a helpful assistant.", "</s>", "\n"]
PROMPT = ["<|user|>", "\n", "Describe", " the", " image", ".", "</s>", "\n", "<|assistant|>"]
OUTPUT = [
    " The",
    " image",
    " shows",
    " a",
    " cat",
    " sitting",
    " on",
    " a",
    " wooden",
    " bench",
    " next",
    " to",
    " a",
    " red",
    " bicycle",
    " and",
    " a",
    " dog",
    ".",
    "</s>",
]
HALLUCINATED = {" bicycle", " dog"}
OBJECTS = {" cat": (3.0, 3.5), " bench": (6.0, 4.0), " wooden": (6.0, 4.0), " image": (3.5, 3.5)}
# Alternatives offered at each step (the chosen token is added); rejected draws come first.
ALTERNATIVES = {
    " cat": [" kitten", " dog"],
    " bench": [" chair", " table"],
    " bicycle": [" car", " bike"],
    " dog": [" cat", " bird"],
    " wooden": [" green", " park"],
}
FILLERS = [
    " the",
    " a",
    " is",
    " with",
    " in",
    " of",
    " small",
    " large",
    " brown",
    " white",
    " near",
    " and",
    ",",
    " sitting",
    " lying",
    " grass",
    " outside",
    " photo",
]


def thumbnail() -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (128, 128))
    d = ImageDraw.Draw(img)
    for y in range(128):  # sky to grass
        c = (135 - y // 3, 190 - y // 4, 235 - y) if y < 70 else (70, 140 - (y - 70) // 2, 60)
        d.line([(0, y), (127, y)], fill=c)
    d.rectangle([20, 92, 108, 100], fill=(120, 80, 40))  # bench
    d.rectangle([28, 100, 34, 118], fill=(100, 65, 30))
    d.rectangle([94, 100, 100, 118], fill=(100, 65, 30))
    d.ellipse([40, 56, 84, 92], fill=(230, 140, 60))  # cat body
    d.ellipse([46, 40, 70, 62], fill=(235, 150, 70))  # head
    d.polygon([(48, 46), (52, 32), (58, 44)], fill=(235, 150, 70))
    d.polygon([(60, 44), (66, 32), (70, 46)], fill=(235, 150, 70))
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def build(seed: int = 0) -> Trace:
    rng = np.random.default_rng(seed)
    tokens = SYSTEM + ["<image>"] * (GRID[0] * GRID[1]) + PROMPT + OUTPUT
    s0, i0 = 0, len(SYSTEM)
    i1 = i0 + GRID[0] * GRID[1]
    p1 = i1 + len(PROMPT)
    spans = Spans(system=(s0, i0), image=(i0, i1), prompt=(i1, p1), output=(p1, p1 + len(OUTPUT)))
    yy, xx = np.mgrid[0 : GRID[0], 0 : GRID[1]]

    records: list[Step] = []
    history: list[float] = []
    for t, tok in enumerate(OUTPUT):
        q = p1 - 1 + t
        halluc = tok in HALLUCINATED
        cy, cx = OBJECTS.get(tok, (3.5 + rng.normal(0, 1), 3.5 + rng.normal(0, 1)))
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (1.2 if tok in OBJECTS else 2.5) ** 2))
        rows = []
        for li in range(len(LAYERS)):
            r = np.zeros(q + 1)
            r[s0:i0] = 0.02 + 0.6 * (np.arange(i0) == 0)  # attention sink on <s>
            r[i0:i1] = (0.03 if halluc else 0.15) * blob.ravel() * (1 + 0.3 * li)
            ctx = np.arange(i1, q + 1)
            recency = np.exp(-(q - ctx) / (2.0 if halluc else 6.0))
            r[i1 : q + 1] = (0.05 if halluc else 0.25) * (0.3 + recency) + rng.uniform(0, 0.02, len(ctx))
            r[i1 + 2 : i1 + 5] += 0.0 if halluc else 0.15  # "Describe the image"
            r = np.abs(r + rng.normal(0, 0.003, q + 1))
            rows.append(r / max(np.linalg.norm(r), 1e-9))
        row = np.asarray(rows, dtype=np.float32)
        layer_scores = [float(x) for x in row[:, i1 : q + 1].mean(1)]
        sal = float(np.mean(layer_scores))
        tau = ALPHA * float(np.mean(history[-WINDOW:])) if history else 0.0

        # SGRS over the top K=5: rejected draws (S < τ) come first; a hallucinated token is emitted
        # only by the fallback (all R draws rejected, argmax S over the K candidates).
        fallback = halluc
        alts = ALTERNATIVES.get(tok, [])
        fillers = [w for w in FILLERS if w != tok and w not in alts]
        names = (alts + [tok] + list(rng.choice(fillers, 5, replace=False)))[:5]
        probs = np.sort(rng.dirichlet(np.ones(5) * 2))[::-1]
        drawn = alts + ([tok] if not fallback else [n for n in names if n not in alts and n != tok])
        drawn = drawn[: len(alts) + 1] if not fallback else drawn[:ROUNDS]
        cands: list[Candidate] = []
        for k, name in enumerate(names):
            if name == tok:
                s = sal
            elif fallback:
                s = sal * rng.uniform(0.5, 0.95)
            elif name in drawn:
                s = tau * rng.uniform(0.4, 0.9)
            else:
                s = sal * rng.uniform(0.7, 1.3)
            rnd = drawn.index(name) if name in drawn else None
            cands.append(
                Candidate(
                    token_id=1000 + 17 * t + k,
                    token=name,
                    prob=float(probs[k]),
                    saliency=float(s),
                    round=rnd,
                    accepted=(name == tok),
                )
            )
        chosen = next(c for c in cands if c.accepted)
        decision = "fallback" if fallback else "accepted"
        assert fallback or sal >= tau, (tok, sal, tau)
        history.append(sal)
        records.append(
            Step(
                step=t,
                position=q,
                token_id=chosen.token_id,
                token=tok,
                prob=chosen.prob,
                logprob=float(np.log(chosen.prob)),
                saliency=sal,
                layer_scores=layer_scores,
                row=row,
                tau=tau,
                decision=decision,
                round=chosen.round,
                candidates=cands,
            )
        )

    config = {
        "layers": LAYERS,
        "context": "text",
        "engine": "step",
        "decoding": "sgrs",
        "sgrs": {"k": 5, "alpha": ALPHA, "window": WINDOW, "rounds": ROUNDS},
        "locore": None,
        "model_id": "synthetic-fixture",
        "seed": seed,
        "dtype": "float32",
        "device": "cpu",
    }
    return Trace(
        records=records,
        token_ids=list(range(len(tokens))),
        tokens=tokens,
        spans=spans,
        config=config,
        prompt="Describe the image.",
        image_digest=None,
        image_grid=GRID,
        image_png=thumbnail(),
        trace_id="fixture0demo",
        created="2025-01-01T00:00:00+00:00",
    )


# The analyst's marks carried by the saved file (MarkStore.latest rows): the two hallucinated tokens.
MARKS = [
    {"step": 14, "label": "hallucinated", "note": "no bicycle in the image"},
    {"step": 17, "label": "unsure", "note": ""},
]


def payload(tr: Trace | None = None, digits: int | None = None) -> dict:
    """The fixture's JSON (what `Trace.save` writes), with MARKS instead of the user's store."""
    return (tr or build()).to_json(digits=digits, marks=MARKS)


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tr = build()
    OUT.write_text(json.dumps(payload(tr)))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes): {tr!r}")


def synthetic(
    n_steps: int, grid: tuple[int, int], prompt_len: int = 24, n_layers: int = 2, seed: int = 0
) -> dict:
    """A larger random but well-formed payload (Trace.to_json, 5 digits) for timing and size tests:
    image span of grid[0]*grid[1] patches, `prompt_len` prompt tokens, `n_steps` greedy steps whose
    rows cover keys 0..q over `n_layers` layers, one mark."""
    rng = np.random.default_rng(seed)
    n_img = grid[0] * grid[1]
    p1 = 1 + n_img + prompt_len
    tokens = (
        ["<s>"]
        + ["<image>"] * n_img
        + [f" p{i}" for i in range(prompt_len)]
        + [f" w{t}" for t in range(n_steps)]
    )
    spans = Spans(system=(0, 1), image=(1, 1 + n_img), prompt=(1 + n_img, p1), output=(p1, p1 + n_steps))
    records = []
    for t in range(n_steps):
        q = p1 - 1 + t
        row = rng.gamma(1.0, 1.0, (n_layers, q + 1)).astype(np.float32)
        row /= np.linalg.norm(row, axis=1, keepdims=True)
        sal = float(row[:, 1 + n_img : q + 1].mean())
        cands = [
            Candidate(
                token_id=100 + k,
                token="",
                prob=float(p),
                saliency=float(sal * rng.uniform(0.5, 1.5)),
                accepted=k == 0,
            )
            for k, p in enumerate(np.sort(rng.dirichlet(np.ones(3)))[::-1])
        ]
        records.append(
            Step(
                step=t,
                position=q,
                token_id=100,
                token=tokens[q + 1],
                prob=cands[0].prob,
                logprob=float(np.log(cands[0].prob)),
                saliency=sal,
                layer_scores=[float(x) for x in row[:, 1 + n_img : q + 1].mean(1)],
                row=row,
                tau=None,
                decision="greedy",
                round=None,
                candidates=cands,
            )
        )
    tr = Trace(
        records=records,
        token_ids=list(range(len(tokens))),
        tokens=tokens,
        spans=spans,
        config={"engine": "step", "decoding": "greedy", "layers": list(range(n_layers))},
        prompt="synthetic",
        image_grid=grid,
        trace_id=f"synthetic{seed}",
        created="2025-01-01T00:00:00+00:00",
    )
    return tr.to_json(digits=5, marks=[{"step": n_steps // 2, "label": "hallucinated", "note": ""}])
