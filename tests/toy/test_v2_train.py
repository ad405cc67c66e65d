"""Toy world v2 training: fine-tuning from v1 is bit-identical for a seed, and bad options are refused."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file

import lvsal_nb.toy.train as toy_train
from lvsal_nb.errors import ConfigError
from lvsal_nb.toy.data import IGNORE
from lvsal_nb.toy.model import ASSET_DIR


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr(toy_train, "BATCH_SIZE", 2)


def test_v2_from_v1_same_seed_identical_weights(tmp_path, small_batches):
    kw = dict(steps=2, log=None, world="v2", init=ASSET_DIR, threads=1)
    a = toy_train.train(seed=5, out_dir=tmp_path / "a", **kw)
    toy_train.train(seed=5, out_dir=tmp_path / "b", **kw)
    toy_train.train(seed=6, out_dir=tmp_path / "c", **kw)
    wa, wb, wc = (load_file(tmp_path / d / "model.safetensors") for d in "abc")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    v1 = load_file(ASSET_DIR / "model.safetensors")
    emb = [k for k in wa if k.endswith("embed_tokens.weight")][0]
    assert wa[emb].shape[0] == v1[emb].shape[0] + 1  # one new word, "so"
    meta = json.loads((tmp_path / "a" / "train.json").read_text())
    assert meta["world"] == "v2" and meta["threads"] == 1 and meta["init"] == str(ASSET_DIR)
    assert a["steps"] == 2
    tok = json.loads((tmp_path / "a" / "tokenizer.json").read_text())
    assert tok["model"]["vocab"]["so"] == 50


def test_v1_train_json_keeps_its_keys(tmp_path, small_batches):
    toy_train.train(seed=0, steps=1, out_dir=tmp_path, log=None)
    assert "world" not in json.loads((tmp_path / "train.json").read_text())


def test_bad_init_world_and_threads(tmp_path):
    with pytest.raises(ConfigError, match="no model.safetensors there"):
        toy_train.train(steps=1, out_dir=None, log=None, world="v2", init=tmp_path)
    with pytest.raises(ConfigError, match="Unknown toy world 'v9'"):
        toy_train.train(steps=1, out_dir=None, log=None, world="v9")
    with pytest.raises(ConfigError, match="threads must be an int >= 1"):
        toy_train.train(steps=1, out_dir=None, log=None, threads=0)


def test_recap_weight_by_hand():
    """After the marker tokens weigh w: row loss = (others sum + w * sum after) / (n_others + w * n_after)."""
    logits = torch.zeros(1, 5, 4)  # uniform: every labelled token costs log 4
    logits[0, 2, 3] = 5.0  # the token after the marker (label at position 3) is predicted well
    labels = torch.tensor([[IGNORE, 1, 2, 3, 0]])  # 2 = marker; 3 and 0 come after it
    lu = math.log(4.0)
    good = -torch.log_softmax(torch.tensor([0.0, 0.0, 0.0, 5.0]), 0)[3].item()
    # positions: 1 (other, uniform), 2 = marker (other, uniform), 3 (after, good), 4 (after, uniform)
    want = (lu + lu + 3.0 * (good + lu)) / (2 + 3.0 * 2)
    got = toy_train.sequence_loss(logits, labels, marker=2, weight=3.0).item()
    assert got == pytest.approx(want, rel=1e-6)
    plain = toy_train.sequence_loss(logits, labels)
    assert torch.equal(plain, toy_train.sequence_loss(logits, labels, marker=2, weight=1.0))
    assert plain.item() == pytest.approx((3 * lu + good) / 4, rel=1e-6)
    # a row without the marker: plain mean
    no_marker = torch.tensor([[IGNORE, 1, 1, 3, 0]])
    assert toy_train.sequence_loss(logits, no_marker, 2, 3.0).item() == pytest.approx(
        (3 * lu + good) / 4, rel=1e-6
    )


def test_batch_schedule():
    assert [toy_train.batch_kind(s) for s in range(4)] == ["caption", "qa", "caption", "qa"]  # v1's
    got = [toy_train.batch_kind(s, 3) for s in range(8)]
    assert got == ["caption"] * 3 + ["qa"] + ["caption"] * 3 + ["qa"]


def test_bad_schedule_and_weight():
    with pytest.raises(ConfigError, match="captions_per_qa must be an int >= 1"):
        toy_train.train(steps=1, out_dir=None, log=None, world="v2", captions_per_qa=0)
    with pytest.raises(ConfigError, match="recap_weight must be a finite number > 0"):
        toy_train.train(steps=1, out_dir=None, log=None, world="v2", recap_weight=float("nan"))
    with pytest.raises(ConfigError, match="recap_weight must be a finite number > 0"):
        toy_train.train(steps=1, out_dir=None, log=None, world="v2", recap_weight=-1.0)
    with pytest.raises(ConfigError, match="recap_weight needs a world with a recap marker"):
        toy_train.train(steps=1, out_dir=None, log=None, world="v1", recap_weight=4.0)


def test_v2_recipe_knobs_are_recorded_and_deterministic(tmp_path, small_batches):
    kw = dict(steps=2, log=None, world="v2", init=ASSET_DIR, threads=1, captions_per_qa=3, recap_weight=4.0)
    toy_train.train(seed=1, out_dir=tmp_path / "a", **kw)
    toy_train.train(seed=1, out_dir=tmp_path / "b", **kw)
    toy_train.train(seed=1, out_dir=tmp_path / "c", **(kw | {"recap_weight": 1.0}))
    wa, wb, wc = (load_file(tmp_path / d / "model.safetensors") for d in "abc")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)  # the weight changes the gradient
    meta = json.loads((tmp_path / "a" / "train.json").read_text())
    assert meta["captions_per_qa"] == 3 and meta["recap_weight"] == 4.0
    assert json.loads((tmp_path / "c" / "train.json").read_text())["captions_per_qa"] == 3


def test_v2_from_scratch_small_text_model_is_bit_identical_and_recorded(tmp_path, small_batches):
    """toy-v2's shipped recipe (from scratch, 4 text layers, long scenes), pinned on 2 steps."""
    kw = dict(steps=2, log=None, world="v2", threads=1, captions_per_qa=3, recap_weight=4.0,
              dims={"text_layers": 4}, command="lvsal toy-train --world v2 --text-layers 4")  # fmt: skip
    toy_train.train(seed=2, out_dir=tmp_path / "a", **kw)
    toy_train.train(seed=2, out_dir=tmp_path / "b", **kw)
    toy_train.train(seed=3, out_dir=tmp_path / "c", **kw)
    wa, wb, wc = (load_file(tmp_path / d / "model.safetensors") for d in "abc")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    layers = {
        int(k.split("layers.")[1].split(".")[0]) for k in wa if "language_model" in k and "layers." in k
    }
    assert layers == {0, 1, 2, 3}
    meta = json.loads((tmp_path / "a" / "train.json").read_text())
    assert meta["dims"] == {"text_layers": 4} and meta["init"] is None and meta["world"] == "v2"
    assert meta["command"] == "lvsal toy-train --world v2 --text-layers 4"
    assert meta["cpu_seconds"] > 0 and meta["seconds"] > 0
    cfg = json.loads((tmp_path / "a" / "config.json").read_text())
    assert cfg["text_config"]["num_hidden_layers"] == 4


def test_v2_batches_draw_long_scenes():
    import numpy as np

    from lvsal_nb.toy.data import make_batch
    from lvsal_nb.toy.recap import recap_caption
    from lvsal_nb.toy.scenes import make_scene
    from lvsal_nb.toy.worlds import get_world, world_tokenizer

    tok, v2 = world_tokenizer("v2"), get_world("v2")
    batch = make_batch(tok, np.random.default_rng(4), 3, "caption", v2.caption, v2.scene)
    rng = np.random.default_rng(4)
    want = [recap_caption(make_scene(rng, long_lists=True)) for _ in range(3)]  # same draws, by hand
    for row, lab, text in zip(batch["input_ids"], batch["labels"], want):
        ids = [int(t) for t, lb in zip(row, lab) if lb != IGNORE][:-1]  # drop the end token
        assert tok.decode(ids) == text


def test_dims_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="apply to a model trained from scratch"):
        toy_train.train(steps=1, out_dir=None, log=None, world="v2", init=ASSET_DIR, dims={"text_layers": 4})
    with pytest.raises(ConfigError, match="text_layers must be an int >= 1"):
        toy_train.train(steps=1, out_dir=None, log=None, world="v2", dims={"text_layers": 0})
    with pytest.raises(ConfigError, match="Unknown toy model dimension"):
        toy_train.train(steps=1, out_dir=None, log=None, world="v2", dims={"txt_layers": 2})


def test_command_line_records_the_command(tmp_path, small_batches):
    info = toy_train.main(["--world", "v2", "--steps", "1", "--threads", "1", "--text-layers", "2",
                           "--out", str(tmp_path)])  # fmt: skip
    meta = json.loads((tmp_path / "train.json").read_text())
    assert info["steps"] == 1 and meta["dims"] == {"text_layers": 2}
    assert (
        meta["command"]
        == f"lvsal toy-train --world v2 --steps 1 --threads 1 --text-layers 2 --out {tmp_path}"
    )
