"""`lvsal eval` end to end, offline: the bundled COCO-format photo fixtures through CHAIR and POPE with a
tiny random LLaVA saved to disk and loaded by path (the numbers are meaningless, the pipeline is real),
checked against independent recomputations; resuming after an interruption; toy-world mode."""

import json
import random
from pathlib import Path

import pandas as pd
import pytest
import torch

from lvsal_nb.eval import Chair, load_fixture_image
from lvsal_nb.eval.fixtures import FIXTURE_CAPTIONS, FIXTURE_INSTANCES
from lvsal_nb.eval.pope import load_questions
from lvsal_nb.eval.pope import score as pope_score
from lvsal_nb.eval.runner import RunSpec, main, run
from lvsal_nb.eval.worker import Worker
from lvsal_nb.trace import Trace

ALL = "greedy,sgrs,locore,sgrs+locore,vcd,dola"


@pytest.fixture(scope="module")
def coco_images(tmp_path_factory):
    """The fixture photos written to a folder under their COCO file_name, as a COCO image folder is."""
    root = tmp_path_factory.mktemp("images")
    for im in json.loads(FIXTURE_INSTANCES.read_text())["images"]:
        path = root / im["file_name"]
        path.parent.mkdir(parents=True, exist_ok=True)
        load_fixture_image(im["file_name"]).save(path)
    return root


def records(out):
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_chair_on_coco_files_end_to_end(model_dir, coco_images, tmp_path, capsys):
    out = tmp_path / "chair"
    rc = main(
        [
            "chair",
            "--images",
            str(coco_images),
            "--annotations",
            str(FIXTURE_INSTANCES),
            "--captions",
            str(FIXTURE_CAPTIONS),
            "--model",
            model_dir,
            "--n",
            "4",
            "--seed",
            "3",
            "--methods",
            ALL,
            "--max-new-tokens",
            "3,6",
            "--out",
            str(out),
            "--no-progress",
            "--threads",
            "1",
        ]
    )
    assert rc == 0
    assert "| greedy | 3 |" in capsys.readouterr().out
    all_ids = [im["id"] for im in json.loads(FIXTURE_INSTANCES.read_text())["images"]]
    ids = json.loads((out / "images.json").read_text())
    assert ids == random.Random(3).sample(all_ids, 4)
    recs = records(out)
    assert len(recs) == len({r["key"] for r in recs}) == 4 * 6 * 2
    # the summary equals CHAIR computed afresh from the captions of each (method, length)
    chair = Chair.from_coco(FIXTURE_INSTANCES, FIXTURE_CAPTIONS)
    summary = pd.read_parquet(out / "summary.parquet")
    assert list(summary["method"].unique()) == ALL.split(",")
    for row in summary.itertuples():
        caps = [
            (r["image_id"], r["text"])
            for r in recs
            if r["method"] == row.method and r["max_new_tokens"] == row.max_new_tokens
        ]
        expect, _ = chair.evaluate(caps)
        assert len(caps) == 4
        for k in ("chair_s", "chair_i", "recall", "avg_len"):
            assert getattr(row, k) == pytest.approx(expect[k])
    assert "CHAIR_S" in (out / "summary.md").read_text()
    assert set(summary["chair_compat"]) == {"original"}
    assert "CHAIR word handling: original" in (out / "summary.md").read_text()
    loc = json.loads(summary[summary["method"] == "locore"]["options"].iloc[0])
    assert loc["locore"]["beta"] == 0.15  # LLaVA's beta, from the adapter
    # every answer has a trace holding exactly its tokens; greedy equals transformers' own greedy generate
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    proc = AutoProcessor.from_pretrained(model_dir)
    model = LlavaForConditionalGeneration.from_pretrained(model_dir).eval()
    files = {im["id"]: im["file_name"] for im in json.loads(FIXTURE_INSTANCES.read_text())["images"]}
    for r in recs:
        tr = Trace.load(out / r["trace"])
        assert [s.token_id for s in tr.records] == r["token_ids"]
        assert all(s.saliency is not None for s in tr.records)
        assert r["text"] == proc.tokenizer.decode(r["token_ids"], skip_special_tokens=True).strip()
        if r["method"] == "greedy" and r["max_new_tokens"] == 6:
            from PIL import Image

            chat = "USER: <image>\nPlease describe this image in detail. ASSISTANT:"  # LLaVA-1.5's template
            enc = proc(
                images=Image.open(coco_images / files[r["image_id"]]).convert("RGB"),
                text=chat,
                return_tensors="pt",
            )
            with torch.no_grad():
                seq = model.generate(**enc, max_new_tokens=6, do_sample=False)
            assert seq[0, enc["input_ids"].shape[1] :].tolist() == r["token_ids"]
        if r["method"] in ("vcd", "dola"):
            assert tr.config["decoding"] == "forced"  # decoded by the baseline, analysed afterwards


def test_pope_on_fixtures_end_to_end(model_dir, tmp_path):
    out = tmp_path / "pope"
    spec = RunSpec(
        task="pope",
        out=out,
        model=model_dir,
        dataset="fixtures",
        n=4,
        per_image=1,
        splits=["random", "adversarial"],
        methods=["greedy", "vcd"],
        max_new_tokens=[3],
        progress=False,
        threads=1,
    )
    summary = run(spec)
    recs = records(out)
    assert len(recs) == 2 * 4 * 2 * 2  # splits x images x (yes, no) x methods
    assert all(r["prompt"].endswith(" in the image?") for r in recs)  # POPE's bare question by default
    truth = {im: set() for im in range(1, 10)}
    inst = json.loads(FIXTURE_INSTANCES.read_text())
    names = {c["id"]: c["name"] for c in inst["categories"]}
    for a in inst["annotations"]:
        truth[a["image_id"]].add(names[a["category_id"]])
    for r in recs:
        assert (r["label"] == "yes") == (r["object"] in truth[r["image_id"]])
    for row in summary.itertuples():
        qs = load_questions(out / f"pope_{row.split}.jsonl")
        by_q = {
            r["question_id"]: r["text"] for r in recs if r["method"] == row.method and r["split"] == row.split
        }
        expect = pope_score([by_q[q["question_id"]] for q in qs], qs)
        for k in ("accuracy", "precision", "recall", "f1", "yes_ratio", "n"):
            assert getattr(row, k) == pytest.approx(expect[k])
    assert set(zip(summary["method"], summary["split"])) == {
        (m, s) for m in ("greedy", "vcd") for s in ("random", "adversarial")
    }
    # the summary records the scoring modes and every option each method ran with
    assert set(summary["pope_parser"]) == {"pope"} and set(summary["pope_suffix"]) == {"pope"}
    vcd = json.loads(summary[summary["method"] == "vcd"]["options"].iloc[0])
    assert (vcd["schedule"], vcd["noise_step"], vcd["alpha"], vcd["beta"], vcd["decoding"]) == (
        "vcd",
        500,
        1.0,
        0.1,
        "sample",
    )
    md = (out / "summary.md").read_text()
    assert "POPE answer parser: pope; question suffix: pope" in md and '- vcd: {"alpha": 1.0' in md


def test_resume_after_interruption_redoes_nothing(model_dir, tmp_path, interrupt):
    base = dict(
        task="chair",
        model=model_dir,
        dataset="fixtures",
        n=3,
        methods=["greedy", "sgrs", "dola"],
        max_new_tokens=[3, 5],
        progress=False,
        threads=1,
    )
    whole = run(RunSpec(out=tmp_path / "whole", **base))
    out = tmp_path / "cut"
    cut = interrupt(4)
    with pytest.raises(cut.Stop):
        run(RunSpec(out=out, **base), on_result=cut)
    seen = cut.seen
    first = records(out)
    assert [r["key"] for r in first] == seen
    with (out / "results.jsonl").open("a") as f:
        f.write('{"key": "img:1|greedy|3", "text": "a torn li')  # a crash in the middle of a write
    again = []
    resumed = run(RunSpec(out=out, **base), on_result=lambda rec: again.append(rec["key"]))
    assert len(again) == 3 * 3 * 2 - 4 and not set(again) & set(seen)
    final = records(out)
    assert len(final) == len({r["key"] for r in final}) == 18
    assert final[:4] == first  # the finished lines were kept as they were
    cols = [c for c in whole.columns if c != "seconds"]
    pd.testing.assert_frame_equal(resumed[cols], whole[cols])
    ref = {r["key"]: r for r in records(tmp_path / "whole")}
    for r in final:
        assert r["token_ids"] == ref[r["key"]]["token_ids"] and r["text"] == ref[r["key"]]["text"]


def test_interrupted_trace_is_not_recorded(model_dir, tmp_path, monkeypatch, capsys):
    w = Worker(model_dir, threads=1)
    real = w.session.trace

    def interrupted(*a, **k):
        tr = real(*a, **k)
        tr.interrupted = True  # what Session.trace returns after Ctrl-C
        return tr

    monkeypatch.setattr(w.session, "trace", interrupted)
    unit = {
        "key": "img:1|greedy|2",
        "item_id": "img:1",
        "image": {"kind": "fixture", "name": "astronaut"},
        "prompt": "Please describe this image in detail.",
        "method": "greedy",
        "max_new_tokens": 2,
        "seed": 0,
    }
    with pytest.raises(KeyboardInterrupt):
        w.run(unit)

    import lvsal_nb.eval.runner as runner

    def ctrl_c(spec, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run", ctrl_c)
    assert main(["chair", "--dataset", "fixtures", "--out", str(tmp_path / "x")]) == 130
    assert "Run the same command again to resume" in capsys.readouterr().err


def test_image_list_reuse_and_mismatched_rerun(model_dir, tmp_path, capsys):
    a = tmp_path / "a"
    common = [
        "chair",
        "--dataset",
        "fixtures",
        "--model",
        model_dir,
        "--methods",
        "greedy",
        "--max-new-tokens",
        "3",
        "--no-progress",
        "--threads",
        "1",
    ]
    assert main([*common, "--n", "3", "--seed", "5", "--out", str(a)]) == 0
    b = tmp_path / "b"
    assert main([*common, "--image-list", str(a / "images.json"), "--seed", "5", "--out", str(b)]) == 0
    assert json.loads((b / "images.json").read_text()) == json.loads((a / "images.json").read_text())
    assert [r["token_ids"] for r in records(b)] == [r["token_ids"] for r in records(a)]
    capsys.readouterr()
    assert main([*common, "--n", "3", "--seed", "6", "--out", str(a)]) == 2
    assert "other settings" in capsys.readouterr().err
    assert main([*common, "--n", "4", "--seed", "5", "--out", str(a)]) == 2
    assert "pass --n 3" in capsys.readouterr().err


def test_toy_dataset_mode_has_exact_ground_truth(model_dir, tmp_path):
    from lvsal_nb.toy.scenes import make_scene, scene_rng

    chair = run(
        RunSpec(
            task="chair",
            out=tmp_path / "tc",
            model=model_dir,
            dataset="toy",
            n=3,
            methods=["greedy"],
            max_new_tokens=[2],
            progress=False,
            threads=1,
        )
    )
    assert chair["n_captions"].tolist() == [3]
    for r in records(tmp_path / "tc"):
        assert r["gt_objects"] == sorted(make_scene(scene_rng("eval", 0, r["image_id"])).object_names())
    run(
        RunSpec(
            task="pope",
            out=tmp_path / "tp",
            model=model_dir,
            dataset="toy",
            n=12,
            methods=["greedy"],
            splits=["popular"],
            max_new_tokens=[2],
            progress=False,
            threads=1,
        )
    )
    recs = records(tmp_path / "tp")
    assert recs and len(recs) % 6 == 0
    for r in recs:
        scene = make_scene(scene_rng("eval", 0, r["image_id"]))
        assert (r["label"] == "yes") == (r["object"] in scene.object_names())
        assert len(scene.object_names()) >= 3  # POPE asks only about scenes with >= 3 objects


def test_errors(model_dir, tmp_path, capsys):
    def chair_one(out: str, *args: str) -> int:  # CHAIR on one image of the fixtures, the tiny model
        argv = ["chair", "--dataset", "fixtures", "--n", "1", *args, "--model", model_dir]
        return main([*argv, "--out", str(tmp_path / out)])

    assert main(["chair", "--methods", "greedy,beam", "--out", str(tmp_path / "e1")]) == 2
    assert "unknown method" in capsys.readouterr().err
    assert chair_one("e5", "--methods", "greedy", "--method-option", "vcd.alpha=2") == 2
    assert "does not use (greedy)" in capsys.readouterr().err
    assert chair_one("e6", "--methods", "vcd", "--method-option", "vcd.strength=2", "--no-progress") == 2
    assert (
        "method 'vcd' has no option(s) ['strength']; its options are alpha, beta" in capsys.readouterr().err
    )
    assert main(["chair", "--model", model_dir, "--out", str(tmp_path / "e2")]) == 2
    assert "--annotations" in capsys.readouterr().err
    assert not (tmp_path / "e2" / "run.json").exists()  # a failed start fixes no settings
    assert main(["chair", "--dataset", "fixtures", "--n", "20", "--out", str(tmp_path / "e3")]) == 2
    assert "pass --n 9" in capsys.readouterr().err
    assert (
        main(
            [
                "pope",
                "--dataset",
                "fixtures",
                "--workers",
                "2",
                "--n",
                "2",
                "--per-image",
                "1",
                "--model",
                model_dir,
                "--out",
                str(tmp_path / "e4"),
            ]
        )
        == 2
    )
    assert "--engine ray" in capsys.readouterr().err


TOY_ASSETS = Path(__file__).resolve().parents[2] / "lvsal_nb" / "toy" / "assets" / "model.safetensors"


@pytest.mark.skipif(not TOY_ASSETS.exists(), reason="the trained toy model is not built (lvsal toy-train)")
@pytest.mark.slow
def test_toy_model_greedy_equals_the_toy_worlds_own_metrics(tmp_path):
    """Greedy CHAIR and POPE through the runner equal lvsal_nb.toy.metrics (batched transformers generate)."""
    from lvsal_nb.toy.metrics import evaluate
    from lvsal_nb.toy.model import load_toy

    model, tok = load_toy()
    ref = evaluate(model, tok, n_scenes=16, seed=1)
    base = dict(
        model="toy",
        dataset="toy",
        n=16,
        seed=1,
        methods=["greedy"],
        device="cpu",
        dtype="float32",
        progress=False,
        threads=1,
        traces=False,
    )
    chair = run(RunSpec(task="chair", out=tmp_path / "c", max_new_tokens=[64], **base)).iloc[0]
    for k in ("chair_s", "chair_i", "recall", "avg_len", "n_mentions", "n_hallucinated"):
        assert chair[k] == pytest.approx(ref["chair"][k]), k
    assert [r["text"] for r in records(tmp_path / "c")] == ref["captions"]
    pope = run(RunSpec(task="pope", out=tmp_path / "p", max_new_tokens=[3], **base))
    for row in pope.itertuples():
        for k in ("accuracy", "precision", "recall", "f1", "yes_ratio", "n"):
            assert getattr(row, k) == pytest.approx(ref["pope"][row.split][k]), (row.split, k)
