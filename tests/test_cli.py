"""The `lvsal` command: demo on the shipped toy model, trace on a local checkpoint, one-line errors."""

import lvsal_nb as lv
from lvsal_nb.cli import main


def test_demo_traces_the_toy_model_and_writes_files(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--max-new-tokens", "24"]) == 0
    out = capsys.readouterr().out
    assert "step  token" in out and "mean saliency at" in out
    tr = lv.Trace.load(tmp_path / "demo.lvsal.parquet")
    assert tr.config["model_id"] == "toy" and 0 < len(tr) <= 24
    assert lv.Trace.load(tmp_path / "demo.lvsal.json").text == tr.text
    assert tr.text.strip() in out  # the printed output is the traced text
    assert (tmp_path / "demo-scene.png").exists()


def test_trace_command_on_a_local_checkpoint(tmp_path, capsys, image, model_dir):
    image.save(tmp_path / "img.png")
    out_file = tmp_path / "t.lvsal.parquet"
    rc = main(
        [
            "trace",
            "--model",
            model_dir,
            "--image",
            str(tmp_path / "img.png"),
            "--prompt",
            "describe this image .",
            "--max-new-tokens",
            "4",
            "--sgrs",
            "--k",
            "3",
            "--out",
            str(out_file),
        ]
    )
    assert rc == 0
    tr = lv.Trace.load(out_file)
    assert len(tr) == 4 and tr.config["sgrs"]["k"] == 3
    assert "trace written to" in capsys.readouterr().out


def test_errors_are_one_line(tmp_path, capsys):
    rc = main(["trace", "--model", str(tmp_path / "missing"), "--image", "x.png", "--prompt", "hi"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("lvsal: error:") and "never downloads" in err and err.count("\n") == 1


# ---- clear errors before the work, exit statuses --------------------------------------------------
def _trace_args(tmp_path, *extra, out=None):
    from lvsal_nb.toy.scenes import make_scene, render

    img = tmp_path / "scene.png"
    render(make_scene(1)).save(img)
    return ["trace", "--model", "toy", "--image", str(img), "--prompt", "Describe the image.",
            "--max-new-tokens", "2", "--out", str(out or tmp_path / "t.lvsal.parquet"), *extra]  # fmt: skip


def _no_model_load(monkeypatch):
    """Checks that must come before the model is loaded: loading fails the test."""

    def refuse(*a, **k):
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr(lv, "load", refuse)


def test_trace_out_into_a_missing_folder_is_refused_before_tracing(tmp_path, capsys, monkeypatch):
    _no_model_load(monkeypatch)
    rc = main(_trace_args(tmp_path, out=tmp_path / "missing" / "t.lvsal.parquet"))
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert err.startswith("lvsal: error: --out") and "does not exist; create it (mkdir -p" in err
    rc = main(_trace_args(tmp_path, out=tmp_path / "t.txt"))
    assert rc == 2 and "must end in .parquet or .json" in capsys.readouterr().err


def test_non_finite_locore_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    _no_model_load(monkeypatch)
    demo = ["demo", "--out", str(tmp_path), "--locore", "nan"]
    for cmd in (_trace_args(tmp_path, "--locore", "inf"), demo):
        assert main(cmd) == 2
        err = capsys.readouterr().err
        assert err.startswith("lvsal: error: --locore must be a finite number") and err.count("\n") == 1


def test_a_settings_error_during_the_trace_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    """What `lvsal trace --sgrs --k 100` gives once the settings check k against the vocabulary."""
    from lvsal_nb.errors import ConfigError

    class Session:
        def trace(self, *a, **k):
            raise ConfigError("SGRS k=100 is larger than the vocabulary (50 tokens);\npass --k 50 or less")

    monkeypatch.setattr(lv, "load", lambda *a, **k: Session())
    assert main(_trace_args(tmp_path, "--sgrs", "--k", "100")) == 2
    err = capsys.readouterr().err
    assert err == "lvsal: error: SGRS k=100 is larger than the vocabulary (50 tokens); pass --k 50 or less\n"


def test_eval_and_toy_train_errors_are_one_line(tmp_path, capsys):
    assert main(["toy-train", "--steps", "0", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lvsal: error: steps must be >= 1") and err.count("\n") == 1
    assert main(["eval", "chair", "--methods", "beam", "--out", str(tmp_path / "e")]) == 2
    assert "unknown method" in capsys.readouterr().err


def test_toy_train_exits_0_and_a_full_disk_keeps_the_old_weights(tmp_path, capsys, monkeypatch):
    import errno
    import os

    import lvsal_nb.toy.train as train

    monkeypatch.setattr(train, "BATCH_SIZE", 2)
    out = tmp_path / "w"
    assert main(["toy-train", "--steps", "1", "--seed", "1", "--out", str(out)]) == 0
    names = {"config.json", "model.safetensors", "tokenizer.json", "train.json"}
    assert names <= {p.name for p in out.iterdir()}
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def enospc(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", enospc)
    assert main(["toy-train", "--steps", "1", "--seed", "2", "--out", str(out)]) == 2
    monkeypatch.undo()
    err = capsys.readouterr().err.splitlines()[-1]  # after transformers' progress bar
    assert err.startswith("lvsal: error: no space left on device while writing") and "are untouched" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no temp folder left either
