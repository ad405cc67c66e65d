"""The prebuilt JupyterLab extension that renders traces (MIME type and `*.lvsal.json` viewer).

The wheel installs it under share/jupyter/labextensions/lvsal-nb-labextension; this module only
tells `jupyter labextension develop` where the built files are in a source checkout
(`lvsal_nb/__init__.py` re-exports `_jupyter_labextension_paths`).
"""

from __future__ import annotations

NPM_NAME = "lvsal-nb-labextension"


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where Jupyter finds the built extension: lvsal_nb/labextension (written by .ci/labextension.sh)."""
    return [{"src": "labextension", "dest": NPM_NAME}]
