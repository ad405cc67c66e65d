"""A short training run works, saves a loadable model, and is bit-deterministic for a seed."""

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import LlavaForConditionalGeneration, PreTrainedTokenizerFast

import lvsal_nb.toy.train as toy_train
from lvsal_nb.errors import ConfigError
from lvsal_nb.toy.data import IGNORE, make_batch
from lvsal_nb.toy.scenes import scene_rng
from lvsal_nb.toy.tokenizer import build_tokenizer


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr(toy_train, "BATCH_SIZE", 4)  # keep the test fast; the recipe is unchanged


def test_two_runs_same_seed_identical_weights(tmp_path, small_batches):
    a = toy_train.train(seed=3, steps=2, out_dir=tmp_path / "a", log=None)
    b = toy_train.train(seed=3, steps=2, out_dir=tmp_path / "b", log=None)
    toy_train.train(seed=4, steps=2, out_dir=tmp_path / "c", log=None)
    wa, wb, wc = (load_file(tmp_path / d / "model.safetensors") for d in "abc")
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    assert a["steps"] == b["steps"] == 2 and a["final_loss"] == b["final_loss"]
    assert not a["stopped_early"]
    meta = json.loads((tmp_path / "a" / "train.json").read_text())
    assert meta["seed"] == 3 and meta["steps"] == 2


def test_global_torch_settings_come_back(tmp_path, small_batches):
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    toy_train.train(seed=0, steps=1, out_dir=None, log=None)
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == deterministic


def test_saved_run_loads_offline_and_generates(tmp_path, small_batches):
    toy_train.main(["--seed", "0", "--steps", "1", "--out", str(tmp_path)])
    tok = PreTrainedTokenizerFast.from_pretrained(tmp_path, local_files_only=True)
    model = LlavaForConditionalGeneration.from_pretrained(tmp_path, local_files_only=True).eval()
    from lvsal_nb.toy.model import build_inputs
    from lvsal_nb.toy.scenes import make_scene, render

    enc = build_inputs(tok, render(make_scene(0)))
    enc.pop("spans")
    out = model.generate(**enc, max_new_tokens=3, do_sample=False)
    assert out.shape == (1, enc["input_ids"].shape[1] + 3) or out[0, -1] == tok.eos_token_id


def test_batches_label_only_the_answer():
    tok = build_tokenizer()
    for kind in ("caption", "qa"):
        b = make_batch(tok, scene_rng("train", 0, 0), 3, kind)
        ids, labels = b["input_ids"], b["labels"]
        assert ids.shape == labels.shape == b["attention_mask"].shape and b["pixel_values"].shape == (
            3,
            3,
            64,
            64,
        )
        for row, lab in zip(ids.tolist(), labels.tolist()):
            answer = [t for t, y in zip(row, lab) if y != IGNORE]
            assert answer[-1] == tok.eos_token_id
            text = tok.decode(answer[:-1])
            assert text in ("yes", "no") if kind == "qa" else text.startswith("there is a ")
            first = next(i for i, y in enumerate(lab) if y != IGNORE)
            assert tok.decode(row[first - 2 : first]) == "assistant :"


def test_sequence_loss_weighs_each_sequence_equally():
    logits = torch.zeros(2, 4, 3)
    logits[0, :, 1] = 10.0  # row 0 predicts token 1 everywhere: right on its one labelled token
    labels = torch.tensor([[IGNORE, 1, IGNORE, IGNORE], [IGNORE, 0, 0, 0]])
    row1 = torch.log(torch.tensor(3.0))  # uniform logits
    row0 = -torch.log_softmax(torch.tensor([0.0, 10.0, 0.0]), 0)[1]
    assert torch.allclose(toy_train.sequence_loss(logits, labels), (row0 + row1) / 2)


def test_bad_arguments():
    with pytest.raises(ConfigError, match="steps"):
        toy_train.train(steps=0, out_dir=None)
    with pytest.raises(ConfigError, match="minutes"):
        toy_train.train(minutes=-1, out_dir=None)
