"""The standalone dashboard (`lvsal dashboard RUN`) in a real chromium, on a 500-image x 6-method run.

The run is synthetic (tests/dashboard/synth.py: real file formats, no model), its token index is built
once by the fixture (as the first `lvsal dashboard` of a run does) and cached in the run folder. The
test filters, opens a trace, confirms and corrects a CHAIR label and sees the ROC's AUROC change,
printing the timings: open < 5 s, filter < 200 ms (measured from Python, round trip included).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from labdriver import artifacts_dir

pytestmark = pytest.mark.browser

sys.path.insert(0, str(Path(__file__).parents[1] / "dashboard"))
from synth import make_run  # noqa: E402

N_IMAGES, METHODS = 500, ("greedy", "sgrs", "locore", "sgrs+locore", "vcd", "dola")


@pytest.fixture(scope="module")
def big_run(tmp_path_factory, browser_deps):
    from lvsal_nb.dashboard.model import RunData

    t0 = time.perf_counter()
    run = make_run(tmp_path_factory.mktemp("dash") / "run", n_images=N_IMAGES, methods=METHODS, seed=1)
    t1 = time.perf_counter()
    data = RunData(run)  # builds and caches RUN/dashboard/tokens.parquet
    t2 = time.perf_counter()
    print(
        f"\n[dashboard] synthetic run {N_IMAGES}x{len(METHODS)}: written in {t1 - t0:.1f} s; "
        f"token index ({len(data.tokens)} tokens) built in {t2 - t1:.1f} s"
    )
    return run


@pytest.fixture(scope="module")
def served(big_run):
    env = {**os.environ, "LVSAL_AUTHOR": "browser-test"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lvsal_nb.cli", "dashboard", str(big_run), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    url, t0 = None, time.perf_counter()
    try:
        for line in proc.stdout:
            m = re.search(r"(http://127\.0\.0\.1:\d+/dashboard\?token=\S+)", line)
            if m:
                url = m.group(1)
                break
        assert url, "lvsal dashboard printed no URL"
        print(f"[dashboard] server up in {time.perf_counter() - t0:.1f} s: {url.split('?')[0]}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


TIMED_CHANGE = """async (el, value) => {
    const t0 = performance.now();
    if (el.type === 'checkbox') { if (el.checked !== value) el.click(); }
    else { el.value = value; el.dispatchEvent(new Event('change', {bubbles: true})); }
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    return performance.now() - t0;
}"""


def _count(page, n: int, total: int):
    from playwright.sync_api import expect

    expect(page.get_by_text(f"{n} of {total} answers", exact=True)).to_be_visible(timeout=10_000)


def _auroc(page) -> str:
    return page.locator("td.auroc[data-col='saliency']").first.inner_text()


def test_dashboard_filter_open_label_roc(page, served, big_run):
    from playwright.sync_api import expect

    from lvsal_nb.dashboard.rundir import answers_table, read_records

    expect.set_options(timeout=30_000)  # server-side steps (a tab built on first show) on a busy machine
    answers = answers_table(read_records(big_run), "chair")
    total = len(answers)
    assert total == N_IMAGES * len(METHODS)

    # -- open ---------------------------------------------------------------------------------
    t0 = time.perf_counter()
    page.goto(served)
    _count(page, total, total)
    expect(page.locator(".slick-row").first).to_be_visible()
    t_open = time.perf_counter() - t0
    # -- a wrong token is refused -----------------------------------------------------------------
    for ctx, url in (
        (page.context, served.split("?")[0] + "?token=nope"),  # cookie set, wrong token
        (page.context.browser.new_context(), served.split("?")[0]),
    ):  # no cookie, no token
        other = ctx.new_page()
        assert other.goto(url).status == 403
        other.close()

    # -- filter: method, then hallucinated only ----------------------------------------------------
    # timed in the page (change event -> table redrawn, two animation frames), then checked from Python
    n_sgrs = int((answers["method"] == "sgrs").sum())
    t_method = page.locator("select").first.evaluate(TIMED_CHANGE, "sgrs") / 1000
    _count(page, n_sgrs, total)
    n_bad = int(((answers["method"] == "sgrs") & (answers["chair_s"] == 1)).sum())
    t_bad = page.locator("input[type=checkbox]").first.evaluate(TIMED_CHANGE, True) / 1000
    _count(page, n_bad, total)
    t0 = time.perf_counter()
    page.locator("select").first.select_option("(all)")  # and once more, round trip included
    _count(page, int((answers["chair_s"] == 1).sum()), total)
    t_all = time.perf_counter() - t0

    # -- ROC before ----------------------------------------------------------------------------
    page.get_by_text("Detector", exact=True).click()
    expect(page.locator("td.auroc[data-col='saliency']").first).to_be_visible()
    before = _auroc(page)
    page.get_by_text("Answers", exact=True).click()

    # -- open a trace --------------------------------------------------------------------------
    t0 = time.perf_counter()
    page.locator(".slick-row").first.locator(".slick-cell").nth(1).click()
    expect(page.get_by_text(re.compile(r"· image \d+ · \d+ tokens"))).to_be_visible()
    t_trace = time.perf_counter() - t0

    # -- choose a hallucinated token (a tap on the strip = a selection of its glyph), confirm, correct --
    i = page.evaluate("""() => {
        const r = Bokeh.documents[0].get_model_by_name('tokens');
        const d = r.data_source.data;
            const i = (d.get ? d.get('label') : d.label).indexOf('hallucinated');
        r.data_source.selected.indices = [i];
        return i; }""")
    assert i >= 0
    expect(page.get_by_text(re.compile(rf"step {i}: .* label hallucinated \(chair\)"))).to_be_visible()
    page.get_by_role("button", name="confirm CHAIR label").click()
    expect(page.get_by_text(f"step {i} labelled hallucinated (human)")).to_be_visible()
    t0 = time.perf_counter()
    page.get_by_role("button", name="correct CHAIR label").click()
    expect(page.get_by_text(f"step {i} labelled correct (human)")).to_be_visible()
    page.get_by_text("Detector", exact=True).click()
    expect(page.locator("td.auroc[data-col='saliency']").first).not_to_have_text(before)
    t_roc = time.perf_counter() - t0
    after = _auroc(page)
    page.screenshot(path=str(artifacts_dir() / "dashboard-detector.png"))
    print(
        f"[dashboard] open {t_open:.2f} s · filter by method {1000 * t_method:.0f} ms · hallucinated only "
        f"{1000 * t_bad:.0f} ms (in page) · filter (all) {1000 * t_all:.0f} ms (from Python) · open trace {1000 * t_trace:.0f} ms · correct label -> ROC {1000 * t_roc:.0f} ms"  # noqa: E501
        f" · AUROC {before} -> {after}"
    )
    assert not [e for e in page.lvsal_errors if "favicon" not in e]
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    if load > 1.5:  # e.g. 2 cores shared by several test runs: the limits mean nothing there
        pytest.xfail(f"machine overloaded (load {load:.1f} per core): timings printed above, not asserted")
    assert t_open < 5.0
    assert t_method < 0.2 and t_bad < 0.2
