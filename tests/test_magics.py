"""%lvsal / %%lvsal through IPython's InteractiveShell: commands, help, one-line errors."""

import pytest
import torch
from IPython.core.error import UsageError
from IPython.testing.globalipapp import start_ipython

from lvsal_nb import magics
from lvsal_nb.annotations import MarkStore
from lvsal_nb.widgets import TraceViewer, Tuner


@pytest.fixture(scope="module")
def ip():
    shell = start_ipython()
    shell.run_line_magic("load_ext", "lvsal_nb")
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # see tests/widgets/conftest.py: tiny models, busy shared cores
    yield shell
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def fresh_state(tmp_path, monkeypatch, llava_session):
    monkeypatch.setenv("LVSAL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LVSAL_AUTHOR", "tester")
    monkeypatch.setattr(magics, "state", magics.MagicState())
    monkeypatch.setattr(TraceViewer, "last", None)
    return llava_session


def test_help_lists_commands_and_options(ip, capsys):
    assert ip.run_line_magic("lvsal", "--help") is None
    out = capsys.readouterr().out
    for cmd in ("load", "trace", "view", "tune", "marks", "save"):
        assert cmd in out
    ip.run_line_magic("lvsal", "trace --help")
    out = capsys.readouterr().out
    assert "--max-new-tokens" in out and "--locore BETA" in out and "toy:SEED" in out


@pytest.mark.parametrize(
    "line, match",
    [
        ("", "name a command"),
        ("frobnicate", "invalid choice"),
        ("trace --image toy:1 --prompt hi", "no model loaded"),
        ("trace --bogus", "unrecognized arguments"),
        ("view", "no trace yet"),
        ("marks", "no trace yet"),
        ("load tiny:nothing", "unknown tiny model"),
        ("trace --prompt 'unclosed", "quotes"),
    ],
)
def test_errors_are_usage_errors(ip, line, match):
    with pytest.raises(UsageError, match=match):
        ip.run_line_magic("lvsal", line)


def test_an_error_in_a_cell_prints_one_line_no_traceback(ip, capsys):
    ip.run_cell("%lvsal trace --image toy:1 --prompt 'describe'")
    cap = capsys.readouterr()
    text = (cap.out + cap.err).strip()
    assert "Traceback" not in text and len(text.splitlines()) == 1
    assert "no model loaded" in text


def test_load_trace_marks_save_view(ip, tmp_path, image, fresh_state):
    session = ip.run_line_magic("lvsal", "load tiny:llava --device cpu")
    assert magics.state.session is session and "tiny:llava" in repr(session)
    ip.user_ns["sess"] = fresh_state  # the cached float64 session: faster, same model family
    assert ip.run_line_magic("lvsal", "load sess") is fresh_state and magics.state.session is fresh_state
    ip.user_ns["img"] = image
    v = ip.run_line_magic(
        "lvsal", "trace --image img --prompt 'describe this image .' --max-new-tokens 5 --sgrs"
    )
    assert isinstance(v, TraceViewer)
    tr = v.wait(timeout=60)
    assert len(tr) == 5 and tr.config["sgrs"]["k"] == 5 and magics.state.trace is tr
    v.state.mark("hallucinated", step=1)
    marks = ip.run_line_magic("lvsal", "marks")
    assert list(marks.step) == [1] and set(marks.trace_id) == {tr.trace_id}
    assert MarkStore(tmp_path / "marks.sqlite3").marks().shape[0] == 1
    ip.run_line_magic("lvsal", f"save {tmp_path / 'run.lvsal.parquet'}")
    v2 = ip.run_line_magic("lvsal", f"view {tmp_path / 'run.lvsal.parquet'}")
    assert v2.trace.trace_id == tr.trace_id and 1 in v2.state.marks  # reopened with its marks
    assert ip.run_line_magic("lvsal", "marks --all").shape[0] == 1


def test_cell_magic_takes_the_body_as_prompt(ip, fresh_state):
    magics.state.session = fresh_state
    v = ip.run_cell_magic("lvsal", "--image toy:2 --max-new-tokens 4 --locore 0.2", "describe this image .\n")
    tr = v.wait(timeout=60)
    assert tr.prompt == "describe this image ." and tr.config["locore"]["beta"] == 0.2 and len(tr) == 4
    from lvsal_nb.toy.scenes import make_scene

    assert magics.state.truth == set(make_scene(2).object_names())
    with pytest.raises(UsageError, match="drop --prompt"):
        ip.run_cell_magic("lvsal", "--prompt x", "body")
    with pytest.raises(UsageError, match="beta"):
        ip.run_cell_magic("lvsal", "--locore -1", "describe this image .")


def test_tune_uses_the_last_image_prompt_and_toy_truth(ip, fresh_state):
    magics.state.session = fresh_state
    ip.run_line_magic(
        "lvsal", "trace --image toy:5 --prompt 'describe this image .' --max-new-tokens 3"
    ).wait(60)
    t = ip.run_line_magic("lvsal", "tune --max-new-tokens 3")
    assert isinstance(t, Tuner) and t.prompt == "describe this image ." and t.truth == magics.state.truth
    t2 = ip.run_cell_magic("lvsal", "tune --truth star,moon", "describe it")
    assert t2.truth == {"star", "moon"} and t2.prompt == "describe it"


def test_missing_image_file_is_one_line(ip, fresh_state, tmp_path):
    magics.state.session = fresh_state
    with pytest.raises(UsageError, match=r"%lvsal trace: .*nope\.png"):
        ip.run_line_magic("lvsal", f"trace --image {tmp_path / 'nope.png'} --prompt hi")


def test_tune_flags_set_the_sliders(ip, fresh_state):
    """Issue 17: `%lvsal tune --sgrs --locore 0.3` accepted both flags and ignored them."""
    magics.state.session = fresh_state
    t = ip.run_cell_magic("lvsal", "tune --sgrs --locore 0.3 --max-new-tokens 3", "describe this image .")
    kw = t.settings()
    assert kw["sgrs"] is not None and kw["locore"] is not None and kw["locore"].beta == pytest.approx(0.3)
    t = ip.run_cell_magic("lvsal", "tune --locore 0.25 --max-new-tokens 3", "describe this image .")
    assert t.settings()["sgrs"] is None and t.settings()["locore"].beta == pytest.approx(0.25)
    with pytest.raises(UsageError, match="beta"):
        ip.run_cell_magic("lvsal", "tune --locore -1", "describe this image .")


def test_marks_of_a_viewer_made_with_lv_view(ip, fresh_state, image):
    """Issue 19: `%lvsal marks` only knew viewers made by `%lvsal trace`."""
    import lvsal_nb as lv

    tr = fresh_state.trace(image, "describe this image .", max_new_tokens=4)
    v = lv.view(tr)
    v.state.mark("unsure", step=2)
    marks = ip.run_line_magic("lvsal", "marks")
    assert list(zip(marks.step, marks.label)) == [(2, "unsure")] and set(marks.trace_id) == {tr.trace_id}
    # a rerun of the same generation (new trace id): its marks table shows the earlier mark
    again = fresh_state.trace(image, "describe this image .", max_new_tokens=4)
    assert again.trace_id != tr.trace_id
    lv.view(again)
    assert list(ip.run_line_magic("lvsal", "marks").step) == [2]
