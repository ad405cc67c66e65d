"""Getting Bokeh into a notebook without a network: BokehJS inline, figures inside ipywidgets.

jupyter_bokeh's BokehModel renders with the page's `window.Bokeh`, which `output_notebook` puts
there. We load it from the installed bokeh package (inline, core bundle only, ~1.3 MB) the first
time a viewer is shown in a kernel, so JupyterLab, Notebook 7 and VS Code need no CDN.

A BokehModel's browser view builds its document from the `render_bundle` snapshot taken when the
widget was made, then applies the patches it receives; patches sent while no view exists are
lost. So a widget shown after its data changed (or shown again) must re-snapshot first:
`refresh_bundle`.
"""

from __future__ import annotations

from bokeh.models import LayoutDOM

_loaded = False


def in_kernel() -> bool:
    """True inside a Jupyter kernel (not plain Python or a terminal IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


def load_bokehjs(force: bool = False) -> bool:
    """Display inline BokehJS once per kernel (again with force=True, e.g. after reloading the
    page). Returns whether it was displayed now."""
    global _loaded
    if (_loaded and not force) or not in_kernel():
        return False
    from bokeh.io import output_notebook
    from bokeh.resources import Resources

    # Only the core bundle: the figures use no Bokeh widgets, tables, WebGL or MathJax.
    output_notebook(resources=Resources(mode="inline", components=["bokeh"]), hide_banner=True)
    _loaded = True
    return True


def refresh_bundle(widget) -> None:
    """Re-snapshot a BokehModel's layout, so views made from now on start from the current data
    (open views re-render once)."""
    widget.update_from_model(widget._model)


def bokeh_widget(layout: LayoutDOM):
    """Wrap a Bokeh layout in jupyter_bokeh's BokehModel (an ipywidget that syncs data changes)."""
    from jupyter_bokeh import BokehModel

    return BokehModel(layout)
