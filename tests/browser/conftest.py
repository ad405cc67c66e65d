"""Fixtures of the real-browser tests; the reusable driver (server, page helpers) is labdriver.py."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: make labdriver importable
from labdriver import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    EXTENSION,
    FIXTURES,
    LabServer,
    artifacts_dir,
    installed_extensions,
    missing_browser_deps,
    start_lab,
    stop_lab,
)


@pytest.fixture(scope="session")
def browser_deps() -> None:
    """Skip the browser tests without their dependencies, except under CI=true where that fails."""
    why = missing_browser_deps()
    if why is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests must run under CI=true but {why}; run .ci/browser-deps.sh")
    pytest.skip(f"browser tests skipped: {why}; run .ci/browser-deps.sh")


@pytest.fixture(scope="session")
def lab(browser_deps, tmp_path_factory) -> LabServer:
    """A JupyterLab server for the session, with lvsal-nb's extension checked to be installed."""
    root = tmp_path_factory.mktemp("lab-root")
    home = tmp_path_factory.mktemp("lab-home")
    server = start_lab(root, home)
    try:
        names = installed_extensions(server)
        if EXTENSION not in names:
            pytest.fail(
                f"{EXTENSION} is not installed in this Jupyter (found {names}); "
                "run .ci/labextension.sh, then pip install -e . (or install the wheel)"
            )
        yield server
    finally:
        stop_lab(server)


@pytest.fixture(scope="module")
def module_lab(browser_deps, tmp_path_factory, request) -> Iterator[LabServer]:
    """A JupyterLab of the test module's own (not the session's `lab`): its kernels keep marks under a
    tmp $LVSAL_DATA_DIR (`server.data_dir`) and sign them as the module's AUTHOR where it sets one."""
    tmp = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    root, home, data = tmp / "root", tmp / "home", tmp / "data"
    for d in (root, home, data):
        d.mkdir()
    author = getattr(request.module, "AUTHOR", None)
    with pytest.MonkeyPatch.context() as mp:  # the server (and so its kernels) copies this env
        mp.setenv("LVSAL_DATA_DIR", str(data))
        if author is not None:
            mp.setenv("LVSAL_AUTHOR", author)
        server = start_lab(root, home)
    server.data_dir = data
    try:
        yield server
    finally:
        stop_lab(server)


@pytest.fixture(scope="session")
def browser(browser_deps):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, request):
    """A fresh page (1400x900); console errors are kept on `page.lvsal_errors`; screenshot on failure."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, device_scale_factor=1)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.lvsal_errors = errors
    yield pg
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        pg.screenshot(path=str(artifacts_dir() / f"FAILED-{request.node.name}.png"))
    ctx.close()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture(scope="session")
def demo_trace() -> dict:
    """The fixture trace payload (Trace.to_json()); regenerate with tests/browser/make_fixture.py."""
    return json.loads((FIXTURES / "demo.lvsal.json").read_text())
