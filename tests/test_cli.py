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


def test_trace_command_on_a_local_checkpoint(tmp_path, capsys, image):
    from lvsal_nb.models.tiny import tiny_llava

    model, proc = tiny_llava()
    model.save_pretrained(tmp_path / "ckpt")
    proc.save_pretrained(tmp_path / "ckpt")
    image.save(tmp_path / "img.png")
    out_file = tmp_path / "t.lvsal.parquet"
    rc = main(["trace", "--model", str(tmp_path / "ckpt"), "--image", str(tmp_path / "img.png"),
               "--prompt", "describe this image .", "--max-new-tokens", "4", "--sgrs", "--k", "3",
               "--out", str(out_file)])
    assert rc == 0
    tr = lv.Trace.load(out_file)
    assert len(tr) == 4 and tr.config["sgrs"]["k"] == 3
    assert "trace written to" in capsys.readouterr().out


def test_errors_are_one_line(tmp_path, capsys):
    rc = main(["trace", "--model", str(tmp_path / "missing"), "--image", "x.png", "--prompt", "hi"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("lvsal: error:") and "never downloads" in err and err.count("\n") == 1
