"""Getting Bokeh into a notebook without a network: BokehJS inline, figures inside ipywidgets.

jupyter_bokeh's BokehModel renders with the page's `window.Bokeh`, which `output_notebook` puts
there. We load it from the installed bokeh package (inline, core bundle only, ~1.3 MB, one copy) the
first time a viewer is shown in a kernel, so JupyterLab, Notebook 7 and VS Code need no CDN.

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
    from IPython.display import publish_display_data

    publish_display_data({"application/javascript": bokehjs_loader()})
    _loaded = True
    return True


def bokehjs_loader() -> str:
    """The JavaScript that puts inline BokehJS (core bundle only: the figures use no Bokeh widgets,
    tables, WebGL or MathJax) on the page, ~1.3 MB.

    Bokeh's own `output_notebook` publishes the same 1.3 MB twice (as application/javascript and
    as application/vnd.bokehjs_load.v0+json), which put 2.6 MB into every notebook with a viewer;
    one copy, as plain JavaScript (run by JupyterLab, Notebook 7 and VS Code), is enough."""
    from bokeh.embed.bundle import bundle_for_objs_and_resources
    from bokeh.io.notebook import _loading_js
    from bokeh.resources import Resources

    bundle = bundle_for_objs_and_resources(None, Resources(mode="inline", components=["bokeh"]))
    return _loading_js(bundle, None, 5000, register_mime=False)


def refresh_bundle(widget) -> None:
    """Re-snapshot a BokehModel's layout, so views made from now on start from the current data
    (open views re-render once)."""
    widget.update_from_model(widget._model)


def bokeh_widget(layout: LayoutDOM):
    """Wrap a Bokeh layout in jupyter_bokeh's BokehModel (an ipywidget that syncs data changes)."""
    from jupyter_bokeh import BokehModel

    return BokehModel(layout)
