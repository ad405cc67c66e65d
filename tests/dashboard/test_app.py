import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from lvsal_nb.dashboard.app import Dashboard
from lvsal_nb.dashboard.model import RunData


@pytest.fixture
def app(run):
    return Dashboard(RunData(run, author="ana"), n_boot=100)


def test_filters_match_pandas(app):
    a = app.data.answers
    app.table.method.value = "sgrs"  # in a page a CustomJS callback filters; here apply() does
    app.table.apply()
    assert app.table.filter.indices == a.index[a["method"] == "sgrs"].tolist()
    app.table.only_bad.active = True
    app.table.apply()
    assert app.table.filter.indices == a.index[(a["method"] == "sgrs") & (a["chair_s"] == 1)].tolist()
    obj = app.data.objects()[0]
    app.table.object.value = obj
    app.table.apply()
    want = [
        i
        for i in a.index
        if a.at[i, "method"] == "sgrs" and a.at[i, "chair_s"] == 1 and obj in a.at[i, "objects"].split(", ")
    ]
    assert app.table.filter.indices == want
    assert f"{len(want)} of {len(a)}" in app.table.count.text


def test_select_opens_the_trace_and_a_flip_moves_the_roc(app):
    d = app.data
    row = int(d.answers.index[d.answers["chair_s"] == 1][0])
    app.table.source.selected.indices = [row]
    assert app.trace.key == d.answers.at[row, "key"]
    assert app.trace.strip_src.data["text"][0] == d.answer_tokens(app.trace.key)["token"].iat[0].strip()[:9]
    assert app.trace.colorbar.title.startswith("saliency, 0 – ") and "per trace" in app.trace.colorbar.title
    assert len(app.trace.matrix_src.data["image"]) == 1  # the trace file was read for this row only
    toks = d.answer_tokens(app.trace.key)
    i = int(np.flatnonzero(toks["chair_label"].to_numpy() == "hallucinated")[0])
    app.trace.strip_src.selected.indices = [i]
    assert not app.trace.buttons["flip"].disabled
    before = app.detector.curves["saliency"]["auroc"]
    app.trace.buttons["flip"]._trigger_event(
        __import__("bokeh.events", fromlist=["x"]).ButtonClick(app.trace.buttons["flip"])
    )
    assert "labelled correct (human)" in app.status.text
    after = app.detector.curves["saliency"]["auroc"]
    y = d.labels.hallucinated("combined")
    keep = y.notna().to_numpy()
    ref = roc_auc_score(y[keep].astype(bool), -d.tokens["saliency"].to_numpy()[keep])
    assert after == pytest.approx(ref) and after != before
    assert app.trace.strip_src.data["mark"][i] == "#2CA02C"  # now drawn as correct (green)


def test_export_buttons_write_files(app):
    paths = app.detector.export("labels") + app.detector.export("tokens")
    assert all(p.is_file() for p in paths)
    assert "wrote" in app.detector.export_info.text


def test_methods_tab_formats_intervals(app):
    s = app.methods.summary
    txt = app.methods.table.source.data["chair_i"][0]
    assert (
        txt == f"{100 * s['chair_i'][0]:.1f} [{100 * s['chair_i_lo'][0]:.1f}, {100 * s['chair_i_hi'][0]:.1f}]"
    )
    app.methods.a.value, app.methods.b.value = "greedy", "sgrs"
    assert "paired answers" in app.methods.diff_info.text
