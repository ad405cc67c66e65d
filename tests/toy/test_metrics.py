"""Toy metric code: partner share, the evaluation loop's bookkeeping, the Markdown table."""

import pytest
import torch
from transformers import LlavaForConditionalGeneration

from lvsal_nb.errors import ConfigError
from lvsal_nb.toy.metrics import eval_scenes, evaluate, markdown_table, partner_share
from lvsal_nb.toy.model import toy_config
from lvsal_nb.toy.scenes import make_scene, mentioned_objects, scene_rng
from lvsal_nb.toy.tokenizer import build_tokenizer


def test_partner_share_by_hand():
    mentioned = [["star", "moon", "circle"], ["cross", "circle"], ["ring"]]
    truth = [{"star"}, {"circle", "square"}, {"ring"}]
    # hallucinated: moon (partner star present), circle (partner cross absent), cross (partner circle present)
    assert partner_share(mentioned, truth) == pytest.approx(2 / 3)
    assert partner_share([["ring"]], [{"ring"}]) == 0.0


def test_eval_scenes_are_held_out_and_fixed():
    scenes = eval_scenes(5, seed=0)
    assert scenes == eval_scenes(5, seed=0)
    assert scenes[0] == make_scene(scene_rng("eval", 0, 0))
    assert all(s != make_scene(scene_rng("train", 0, i)) for i in range(5) for s in scenes)
    with pytest.raises(ConfigError):
        eval_scenes(0)


@pytest.fixture(scope="module")
def random_model():
    torch.manual_seed(0)
    tok = build_tokenizer()
    return LlavaForConditionalGeneration(toy_config(tok)).eval(), tok


def test_evaluate_bookkeeping_matches_an_independent_count(random_model):
    model, tok = random_model
    res = evaluate(model, tok, n_scenes=10, seed=1, splits=("adversarial",), max_new_tokens=4)
    scenes = eval_scenes(10, seed=1)
    assert len(res["captions"]) == 10 and set(res["pope"]) == {"adversarial"}
    mentions = [mentioned_objects(c) for c in res["captions"]]
    n_bad = sum(w not in s.object_names() for m, s in zip(mentions, scenes) for w in m)
    assert res["chair"]["n_mentions"] == sum(map(len, mentions))
    assert res["chair"]["n_hallucinated"] == n_bad
    eligible = sum(len(s.objects) >= 3 for s in scenes)
    assert res["pope"]["adversarial"]["n"] == 6 * eligible
    assert not model.training
    with pytest.raises(ConfigError, match="split"):
        evaluate(model, tok, n_scenes=4, splits=("hard",))


def test_markdown_table_lists_every_split():
    chair = dict(chair_s=0.5, chair_i=0.25, recall=0.75, avg_len=20.0, n_captions=4, n_mentions=8,
                 n_hallucinated=2, partner_share=0.5)  # fmt: skip
    pope = {s: dict(accuracy=0.8, precision=0.9, recall=0.7, f1=0.7875, yes_ratio=0.4, n=60)
            for s in ("random", "popular")}  # fmt: skip
    table = markdown_table({"chair": chair, "pope": pope})
    assert "| 50.0 | 25.0 | 75.0 | 20.0 | 4 | 8 | 2 | 50.0 |" in table
    assert "| popular | 80.0 | 90.0 | 70.0 | 78.8 | 40.0 | 60 |" in table
