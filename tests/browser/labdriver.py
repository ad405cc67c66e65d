"""Drive a real JupyterLab from tests: a throwaway server and helpers for a Playwright page.

Reusable by any browser test (the fixtures `lab`, `page`, `browser` are in conftest.py), e.g. a
tutorial notebook run end to end:

    from labdriver import run_all_cells

    @pytest.mark.browser
    def test_tutorial(lab, page):
        lab.put_file("tutorial.ipynb", (REPO / "notebooks/01_tour.ipynb").read_bytes())
        lab.open(page, "tutorial.ipynb")               # waits until JupyterLab is ready
        run_all_cells(page, timeout=300)               # waits for an idle kernel, no queued cells
        assert page.locator(".jp-OutputArea-output .widget-slider").count() > 0

The server runs with `--LabApp.expose_app_in_browser`, so `window.jupyterapp` is there and any
command can be run with `lab_command(page, "notebook:run-all-cells")`. Config, settings and
workspaces live in a temporary home, never in ~/.jupyter. Playwright and Debian chromium come
from .ci/browser-deps.sh; never run `playwright install`.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
EXTENSION = "lvsal-nb-labextension"
CHROMIUM = os.environ.get("LVSAL_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}


def artifacts_dir() -> Path:
    """Where screenshots go: $LVSAL_ARTIFACTS, else <repo>/artifacts/browser (gitignored)."""
    d = Path(os.environ["LVSAL_ARTIFACTS"]) if os.environ.get("LVSAL_ARTIFACTS") else REPO / "artifacts"
    d = d / "browser"
    d.mkdir(parents=True, exist_ok=True)
    return d


def missing_browser_deps() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Python playwright is not installed (pip install playwright; never `playwright install`)"
    if not Path(CHROMIUM).exists():
        return f"chromium not found at {CHROMIUM} (apt-get install chromium, or set LVSAL_CHROMIUM)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _jupyter() -> list[str]:
    exe = Path(sys.executable).parent / "jupyter-lab"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "jupyterlab"]


@dataclass
class LabServer:
    """A running `jupyter lab` on 127.0.0.1 with a token and a temporary root dir."""

    url: str
    token: str
    root: Path
    settings: Path
    proc: subprocess.Popen
    log: Path
    _themes: dict[str, str] = field(default_factory=lambda: dict(THEMES))

    def api(self, path: str, method: str = "GET", body: Any = None) -> Any:
        req = urllib.request.Request(
            f"{self.url}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
        return json.loads(raw) if raw[:1] in (b"{", b"[") else raw.decode()

    def put_file(self, name: str, data: bytes | str) -> Path:
        """Write a file into the server's root dir and return its path."""
        p = self.root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
        return p

    def set_user_settings(self, plugin: str, values: dict[str, Any]) -> None:
        """Write user settings, read on the next page load (plugin: "@jupyterlab/<pkg>:<name>")."""
        pkg, _, name = plugin.partition(":")
        p = self.settings / pkg / f"{name}.jupyterlab-settings"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(values))

    def set_theme(self, theme: str) -> None:
        """theme: "light", "dark" or a full theme name."""
        self.set_user_settings(
            "@jupyterlab/apputils-extension:themes",
            {"theme": self._themes.get(theme, theme), "adaptive-theme": False},
        )

    def open(self, page, path: str = "", theme: str = "light", timeout: float = 60) -> None:
        """Load JupyterLab (optionally a file in the root dir) and wait until the app is ready."""
        self.set_theme(theme)
        target = f"{self.url}/lab/tree/{path}" if path else f"{self.url}/lab"
        page.goto(f"{target}?token={self.token}&reset", timeout=timeout * 1000)
        page.wait_for_function("() => !!window.jupyterapp", timeout=timeout * 1000)
        page.evaluate("() => window.jupyterapp.restored.then(() => true)")
        page.wait_for_selector("#jp-main-dock-panel", timeout=timeout * 1000)
        page.wait_for_function(
            "t => document.body.dataset.jpThemeName === t",
            arg=self._themes.get(theme, theme),
            timeout=timeout * 1000,
        )


def eventually(fn, what: str, timeout: float = 30) -> Any:
    """Poll fn() every 0.25 s until it returns a truthy value (returned); an exception counts as not
    yet (a view being re-rendered). Fails the test after `timeout` s, with the last value seen."""
    deadline, last = time.monotonic() + timeout, None
    while True:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 (a view being re-rendered: try again)
            last = e
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(0.25)


def lab_command(page, command: str, args: dict | None = None, timeout: float = 30) -> Any:
    """Run a JupyterLab command by id (e.g. "notebook:run-all-cells") and return its result."""
    return page.evaluate(
        "([c, a]) => window.jupyterapp.commands.execute(c, a)"
        ".then(r => (r === undefined ? null : String(r)))",
        [command, args or {}],
    )


def run_all_cells(page, timeout: float = 120) -> None:
    """Run every cell of the current notebook and wait until the kernel is idle and no cell is queued."""
    page.wait_for_function(
        "() => { const w = window.jupyterapp.shell.currentWidget;"
        " return w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel"
        " && w.sessionContext.session.kernel.connectionStatus === 'connected'; }",
        timeout=timeout * 1000,
    )
    lab_command(page, "notebook:run-all-cells")
    page.wait_for_function(
        "() => { const w = window.jupyterapp.shell.currentWidget;"
        " const k = w.sessionContext.session.kernel;"
        " const busy = [...w.node.querySelectorAll('.jp-InputArea-prompt')]"
        "   .some(p => p.textContent.includes('*'));"
        " return k.status === 'idle' && !busy; }",
        timeout=timeout * 1000,
        polling=500,
    )


def notebook_with_outputs(cells: list[tuple[str, list[dict]]]) -> str:
    """An unexecuted-looking .ipynb (nbformat 4) whose code cells carry the given outputs."""
    return json.dumps(
        {
            "cells": [
                {"cell_type": "code", "execution_count": None, "metadata": {}, "source": src, "outputs": outs}
                for src, outs in cells
            ],
            "metadata": {
                "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                "language_info": {"name": "python"},
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


def start_lab(root: Path, home: Path, timeout: float = 90) -> LabServer:
    """Start `jupyter lab` with isolated config/settings/workspaces under `home`; wait until it answers."""
    port, token = _free_port(), secrets.token_hex(16)
    settings, log = home / "settings", home / "lab.log"
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        IPYTHONDIR=str(home / "ipython"),
        PYTHONUNBUFFERED="1",
    )
    cmd = (
        _jupyter()
        + [
            "--no-browser",
            f"--port={port}",
            "--ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--ServerApp.port_retries=0",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.extension_manager=readonly",
        ]
        + (["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])
    )
    fh = log.open("wb")
    proc = subprocess.Popen(
        cmd, cwd=root, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
    )  # own process group: stop_lab kills kernels too
    server = LabServer(
        url=f"http://127.0.0.1:{port}", token=token, root=root, settings=settings, proc=proc, log=log
    )
    server.set_user_settings(
        "@jupyterlab/apputils-extension:notification", {"fetchNews": "false", "checkForUpdates": False}
    )
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            server.api("/api/status")
            break
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            if time.monotonic() > deadline:
                stop_lab(server)
                tail = log.read_text()[-3000:]
                raise RuntimeError(f"jupyter lab did not answer in {timeout}s:\n{tail}") from e
            time.sleep(0.5)
    return server


def stop_lab(server: LabServer) -> None:
    """Stop the server and everything it started (kernels), by its own process group."""
    if server.proc.poll() is None:
        try:
            os.killpg(server.proc.pid, signal.SIGTERM)
            server.proc.wait(15)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            try:
                os.killpg(server.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            server.proc.wait(5)


def installed_extensions(server: LabServer) -> list[str]:
    """Names of the prebuilt (federated) extensions the server hands to the browser."""
    html = server.api("/lab")
    start = html.index('id="jupyter-config-data"')
    body = html[html.index(">", start) + 1 : html.index("</script>", start)]
    return [e["name"] for e in json.loads(body).get("federated_extensions", [])]


def _wait_kernel_idle(page, timeout: float) -> None:
    page.wait_for_function(
        "() => { const w = window.jupyterapp.shell.currentWidget;"
        " const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;"
        " const busy = w && [...w.node.querySelectorAll('.jp-InputArea-prompt')]"
        "   .some(p => p.textContent.includes('*'));"
        " return k && k.connectionStatus === 'connected' && k.status === 'idle' && !busy; }",
        timeout=timeout * 1000,
        polling=500,
    )


def run_cell(page, index: int, timeout: float = 120) -> None:
    """Run one cell (0-based index) of the current notebook; wait until the kernel is idle again."""
    _wait_kernel_idle(page, timeout)
    page.evaluate(
        "i => { const nb = window.jupyterapp.shell.currentWidget.content;"
        " nb.activeCellIndex = i; nb.deselectAll();"
        " return window.jupyterapp.commands.execute('notebook:run-cell').then(() => true); }",
        index,
    )
    _wait_kernel_idle(page, timeout)


def restart_kernel(page, timeout: float = 60) -> None:
    """Restart the current notebook's kernel as a user does (`kernelmenu:restart`, then "Restart" in
    the confirmation dialog); wait until the new kernel is connected and idle. Outputs stay."""
    page.evaluate(
        "() => { window.__labdriverRestarted = false;"
        " window.jupyterapp.commands.execute('kernelmenu:restart')"
        "   .finally(() => { window.__labdriverRestarted = true; }); return true; }"
    )
    page.locator(".jp-Dialog .jp-mod-accept").click(timeout=timeout * 1000)
    page.wait_for_function("() => window.__labdriverRestarted === true", timeout=timeout * 1000)
    _wait_kernel_idle(page, timeout)


# The connected root view of the Bokeh document rendered in one notebook cell's output (the last
# one, if the cell shows several); `Bokeh.index` holds every root view on the page.
_BOKEH_ROOT_JS = """
const bokehRoot = (cellIndex) => {
  const nb = window.jupyterapp.shell.currentWidget.content;
  const cell = nb.widgets[cellIndex].node;
  if (!window.Bokeh || !window.Bokeh.index) return null;
  const roots = window.Bokeh.index.roots.filter(
    v => v.el && v.el.isConnected && cell.contains(v.el) && v.model.type !== 'Notifications');
  return roots.length ? roots[roots.length - 1] : null;
};
"""


def bokeh_sources(page, cell_index: int, names: list[str]) -> dict[str, dict[str, list]] | None:
    """The columns of the named ColumnDataSources of the Bokeh document shown in a cell's output, as
    BokehJS has them in the browser (after every patch it applied); None while nothing is rendered."""
    return page.evaluate(
        "([ci, names]) => {" + _BOKEH_ROOT_JS + " const root = bokehRoot(ci); if (!root) return null;"
        " const out = {};"
        " for (const n of names) {"
        "   const s = root.model.document.get_model_by_name(n); if (!s) return null;"
        "   const d = s.data instanceof Map ? Object.fromEntries(s.data) : s.data;"
        "   out[n] = Object.fromEntries(Object.entries(d).map(([k, v]) => [k, Array.from(v)]));"
        " }"
        " return out; }",
        [cell_index, names],
    )


def bokeh_point(page, cell_index: int, title: str, x: float, y: float) -> dict[str, float] | None:
    """Viewport coordinates {x, y} of data point (x, y) in the Bokeh figure (in a cell's output)
    whose title starts with `title`, scrolled into view first; for page.mouse.click."""
    return page.evaluate(
        "([ci, title, x, y]) => {" + _BOKEH_ROOT_JS + " const root = bokehRoot(ci); if (!root) return null;"
        " const pv = root.owner.query_one(v => v.frame && v.model.title && v.model.title.text"
        "   && String(v.model.title.text).startsWith(title));"
        " if (!pv) return null;"
        " pv.el.scrollIntoView({block: 'center'});"
        " const r = pv.canvas_view.el.getBoundingClientRect();"
        " return {x: r.left + pv.frame.x_scale.compute(x), y: r.top + pv.frame.y_scale.compute(y)}; }",
        [cell_index, title, x, y],
    )
