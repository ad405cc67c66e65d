"""The prebuilt JupyterLab extension that renders traces (MIME type and `*.lvsal.json` viewer).

The wheel installs it under share/jupyter/labextensions/lvsal-nb-labextension; this module only
tells `jupyter labextension develop` where the built files are in a source checkout
(`lvsal_nb/__init__.py` re-exports `_jupyter_labextension_paths`).
"""

from __future__ import annotations

from pathlib import Path

NPM_NAME = "lvsal-nb-labextension"
BUILD_DIR = Path(__file__).parent / "labextension"  # written by .ci/labextension.sh


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": NPM_NAME}]


def is_built() -> bool:
    """Whether the extension has been built into this source tree (always true in a wheel install)."""
    return (BUILD_DIR / "static" / "style.js").exists()
