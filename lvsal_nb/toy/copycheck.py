"""Did the toy-v2 model learn to copy? Teacher-forced accuracy of its object words.

The model is fed the TRUE v2 caption (`recap.recap_caption`) after the captioning prompt, and at
each shape noun its argmax next-token prediction is compared with the truth: in the list part
(reading the image: which shape comes next is free, so only the named ones can be checked against
the scene) and in the recap (copying: the recap's k-th word is the list's k-th shape). High recap
accuracy with correct lists means the recap is a memory task the model solves; recap errors in
free generation then come from memory failures, not from a model that never learned to copy.
"""

from __future__ import annotations

import torch

from lvsal_nb.toy.inputs import build_inputs
from lvsal_nb.toy.recap import recap_caption, split_words
from lvsal_nb.toy.scenes import Scene, render

DISTANCE_BIN = 10  # tokens: recap accuracy is reported per 10-token band of distance to the source


@torch.no_grad()
def teacher_forced(model, tokenizer, scenes: list[Scene]) -> dict:
    """Accuracy of argmax predictions at the true caption's shape nouns.

    Returns {"list_acc", "list_n", "list_in_scene" (list predictions naming some present shape),
    "recap_acc", "recap_n", "recap_by_index": {k: (correct, n)}, "recap_by_length": {number of
    listed objects: (correct, n)}, "recap_by_distance": {d: (correct, n)}}; accuracies are fractions
    in 0..1. d: tokens from the recap word back to its source in the list (one token per word),
    floored to a multiple of `DISTANCE_BIN`.
    """
    stats = {"list": [0, 0], "list_in": [0, 0], "recap": [0, 0]}
    by_index: dict[int, list[int]] = {}
    by_length: dict[int, list[int]] = {}
    by_distance: dict[int, list[int]] = {}
    for scene in scenes:
        inp = build_inputs(tokenizer, render(scene), None)
        prompt = inp["input_ids"][0].tolist()
        words = recap_caption(scene).split()
        target = tokenizer(" ".join(words), add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prompt + target])
        logits = model(
            input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=inp["pixel_values"]
        ).logits
        pred = logits[0, len(prompt) - 1 : -1].argmax(-1).tolist()  # pred[i]: guess for word i
        listed, recap = split_words(words)
        present = set(scene.object_names())
        for i, w in listed:
            guess = tokenizer.convert_ids_to_tokens(pred[i])
            stats["list"][0] += guess == w
            stats["list"][1] += 1
            stats["list_in"][0] += guess in present
            stats["list_in"][1] += 1
        for k, (i, w) in enumerate(recap):
            ok = tokenizer.convert_ids_to_tokens(pred[i]) == w
            stats["recap"][0] += ok
            stats["recap"][1] += 1
            d = (i - listed[k][0]) // DISTANCE_BIN * DISTANCE_BIN
            for table, key in ((by_index, k), (by_length, len(listed)), (by_distance, d)):
                c = table.setdefault(key, [0, 0])
                c[0] += ok
                c[1] += 1
    return {
        "list_acc": stats["list"][0] / max(1, stats["list"][1]),
        "list_n": stats["list"][1],
        "list_in_scene": stats["list_in"][0] / max(1, stats["list_in"][1]),
        "recap_acc": stats["recap"][0] / max(1, stats["recap"][1]),
        "recap_n": stats["recap"][1],
        "recap_by_index": {k: tuple(v) for k, v in sorted(by_index.items())},
        "recap_by_length": {k: tuple(v) for k, v in sorted(by_length.items())},
        "recap_by_distance": {k: tuple(v) for k, v in sorted(by_distance.items())},
    }
