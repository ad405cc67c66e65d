"""The JupyterLab extension's package metadata agrees with the Python package (no browser needed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PKG = json.loads((REPO / "labextension" / "package.json").read_text())


def _pyproject_version() -> str:
    m = re.search(r'(?m)^version\s*=\s*"([^"]+)"', (REPO / "pyproject.toml").read_text())
    assert m, "pyproject.toml has no static version"
    return m.group(1)


def test_version():
    assert PKG["version"] == _pyproject_version()
    lv = pytest.importorskip("lvsal_nb")
    assert PKG["version"] == lv.__version__


def test_mime_type_matches_trace():
    from lvsal_nb.trace import MIME_TYPE

    src = (REPO / "labextension" / "src" / "model.ts").read_text()
    assert f"export const MIME_TYPE = '{MIME_TYPE}';" in src


def test_wheel_ships_the_extension_under_its_npm_name():
    text = (REPO / "pyproject.toml").read_text()
    name = PKG["name"]
    assert f'"lvsal_nb/labextension" = "share/jupyter/labextensions/{name}"' in text
    assert f'"labextension/install.json" = "share/jupyter/labextensions/{name}/install.json"' in text
    assert PKG["jupyterlab"]["outputDir"] == "../lvsal_nb/labextension"
    install = json.loads((REPO / "labextension" / "install.json").read_text())
    assert install["packageName"] == "lvsal-nb"
    from lvsal_nb.labext import NPM_NAME

    assert NPM_NAME == name


def test_built_extension_is_current():
    built = REPO / "lvsal_nb" / "labextension" / "package.json"
    if not built.exists():
        pytest.skip("extension not built in this checkout; run .ci/labextension.sh")
    meta = json.loads(built.read_text())
    assert (meta["name"], meta["version"]) == (PKG["name"], PKG["version"])
    assert meta["jupyterlab"]["_build"]["mimeExtension"]  # built as a mime extension


def test_extension_palette_is_the_notebook_palette():
    """One colour language: labextension/src/colors.ts VIRIDIS is bokeh's Viridis256, value for value,
    and the notebook's lvsal_nb/palette.py SALIENCY_PALETTE (when that module is present)."""
    src = (REPO / "labextension" / "src" / "colors.ts").read_text()
    block = src[src.index("export const VIRIDIS") : src.index("];", src.index("export const VIRIDIS"))]
    ts = re.findall(r"'(#[0-9A-Fa-f]{6})'", block)
    from bokeh.palettes import Viridis256

    assert [c.upper() for c in ts] == [c.upper() for c in Viridis256]
    assert ts[0].upper() == "#440154" and len(ts) == 256
    try:
        from lvsal_nb.palette import SALIENCY_PALETTE
    except ImportError:
        pytest.skip("lvsal_nb/palette.py not in this checkout yet")
    assert [c.upper() for c in ts] == [c.upper() for c in SALIENCY_PALETTE]


def test_built_extension_ships_the_kernels_bokehjs():
    """Issue 19 item 7: the extension serves BokehJS of exactly the kernel's bokeh version (byte for
    byte the package's core bundle), under the name the renderer asks for; the loader MIME type is
    the one the kernel shows."""
    bokeh = pytest.importorskip("bokeh")
    static = REPO / "lvsal_nb" / "labextension" / "static"
    if not static.exists():
        pytest.skip("extension not built in this checkout; run .ci/labextension.sh")
    copies = sorted(p.name for p in static.glob("bokeh-*.min.js"))
    assert copies == [f"bokeh-{bokeh.__version__}.min.js"], copies
    package = Path(bokeh.__file__).parent / "server" / "static" / "js" / "bokeh.min.js"
    assert (static / copies[0]).read_bytes() == package.read_bytes()
    from lvsal_nb.widgets.bokehjs import BOKEHJS_MIME_TYPE

    src = (REPO / "labextension" / "src" / "bokehjsurl.ts").read_text()
    assert f"export const BOKEHJS_MIME_TYPE = '{BOKEHJS_MIME_TYPE}';" in src
