"""`lvsal trace --method NAME`: the CLI runs the methods registry (the same call as `lvsal eval`)."""

import lvsal_nb as lv
from lvsal_nb.cli import main


def test_trace_command_runs_registered_methods(tmp_path, capsys, image, model_dir):
    image.save(tmp_path / "img.png")
    base = [
        "trace",
        "--model",
        model_dir,
        "--image",
        str(tmp_path / "img.png"),
        "--prompt",
        "describe this image .",
        "--max-new-tokens",
        "2",
    ]
    assert main([*base, "--method", "locore", "--out", str(tmp_path / "l.lvsal.parquet")]) == 0
    tr = lv.Trace.load(tmp_path / "l.lvsal.parquet")
    assert (
        tr.config["method"] == "locore" and tr.config["locore"]["beta"] == 0.15
    )  # LLaVA's, from the adapter
    assert main([*base, "--method", "vcd", "--out", str(tmp_path / "v.lvsal.parquet")]) == 0
    tr = lv.Trace.load(tmp_path / "v.lvsal.parquet")
    assert tr.config["method"] == "vcd" and tr.config["method_options"]["schedule"] == "vcd"
    capsys.readouterr()
    assert main([*base, "--method", "beam"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("lvsal: error: unknown method 'beam'; choose one of greedy, sgrs")
        and err.count("\n") == 1
    )
