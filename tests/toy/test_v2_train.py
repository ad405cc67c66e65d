"""Toy world v2 training: fine-tuning from v1 is bit-identical for a seed, and bad options are refused."""

import json

import pytest
import torch
from safetensors.torch import load_file

import lvsal_nb.toy.train as toy_train
from lvsal_nb.errors import ConfigError
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
