"""`lvsal demo`: the exact type of every object word, and no drop flag where saliency does not mark errors."""

import re

import pytest

from lvsal_nb.cli import main
from lvsal_nb.toy.model import ASSET_DIR
from lvsal_nb.toy.scenes import PARTNER
from lvsal_nb.toy.worlds import get_world

ROW = re.compile(r"^\s*(\d+)  (\S+)\s+[\d.]+\s+[\d.]+\s+\S+\s*(.*)$")


def _rows(out: str) -> list[tuple[str, str]]:
    return [(m.group(2), m.group(3)) for m in map(ROW.match, out.splitlines()) if m]


def _check_table(out: str):
    rows = _rows(out)
    assert rows, out
    for word, flag in rows:
        if word in PARTNER:  # every object word carries its type
            assert re.search(r"(ok|HALLUCINATED|ERROR): \w+", flag), (word, flag)
        else:  # function words: no flag at all
            assert flag == "", (word, flag)
    return rows


def test_demo_v1_types_and_flags(tmp_path, capsys):
    assert main(["demo", "--world", "v1", "--out", str(tmp_path), "--max-new-tokens", "40"]) == 0
    out = capsys.readouterr().out
    rows = _check_table(out)
    # scene 7 (star, heart, moon, diamond): the recorded v1 caption invents "square", then its
    # partner "triangle": a misread and a cascade (rules in lvsal_nb.toy.labels)
    assert ("square", "HALLUCINATED: misread") in rows and ("triangle", "HALLUCINATED: cascade") in rows
    assert "object errors (world v1)" in out and "copies a hallucination" in out


def test_demo_unknown_world_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--out", str(tmp_path), "--world", "v7"])
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.skipif(
    not (get_world("v2").asset_dir / "model.safetensors").exists(), reason="v2 weights not built"
)
def test_demo_v2_prints_recap_types(tmp_path, capsys):
    assert ASSET_DIR != get_world("v2").asset_dir
    args = ["demo", "--world", "v2", "--seed", "48", "--out", str(tmp_path)]  # default 96 tokens for v2
    assert main(args) == 0
    out = capsys.readouterr().out
    rows = _check_table(out)
    assert "<Session toy-v2" in out and "object errors (world v2)" in out
    # v2 draws its long scene for seed 48 (5 objects): heart, circle, cross, diamond, triangle
    assert "scene 48: heart, circle, cross, diamond, triangle" in out
    # the shipped v2 weights (labels by the rules in lvsal_nb.toy.labels): list circle, cross,
    # triangle, heart (all present); recap circle, cross, triangle, then "square" where the list's
    # fourth word was "heart": a shape the list never named and the scene lacks, a memory-driven
    # hallucination
    objects = [(w, f) for w, f in rows if w in PARTNER]
    list_part = ["circle", "cross", "triangle", "heart"]
    assert objects == [(w, "ok: correct") for w in list_part] + [
        (w, "ok: recap_correct") for w in list_part[:3]
    ] + [("square", "HALLUCINATED: recap_never_listed")]
    from lvsal_nb.toy.demo_table import EXPLAIN

    errs = [ln for ln in out.splitlines() if re.match(r"step +\d+ ", ln)]
    assert len(errs) == 1 and " recap_never_listed " in errs[0] and EXPLAIN["recap_never_listed"] in errs[0]


@pytest.mark.skipif(
    not (get_world("v2").asset_dir / "model.safetensors").exists(), reason="v2 weights not built"
)
def test_demo_flags_no_drops(tmp_path, capsys):
    """On v2 low saliency does not clearly separate memory errors (AUROC 0.56, interval 0.47-0.65)
    and the object-word drop rule fired on 26% of memory errors and 21% of faithful recap copies
    (lvsal_nb/toy/RESULTS.md): the demo prints no drop flag and says why."""
    assert main(["demo", "--world", "v2", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = _check_table(out)
    assert not any("drop" in flag for _, flag in rows)
    assert "No drop flag: on the toy models low saliency does not mark hallucinated object words" in out
    assert "nor its memory errors" in out
