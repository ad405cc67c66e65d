"""Getting Bokeh into a notebook without a network and without putting it in the .ipynb.

jupyter_bokeh's BokehModel renders with the page's `window.Bokeh`. The first time a viewer is
shown in a kernel, `load_bokehjs` shows one output (display id X) with two entries:
`application/vnd.lvsal.bokehjs.v1+json` {version}, which the lvsal lab extension renders by loading
its own copy of that BokehJS version (static/bokeh-<version>.min.js, copied from this bokeh package
when the extension is built), and `application/javascript`, which frontends without the extension
(VS Code, classic Notebook, nbclient/nbconvert) run. That JavaScript is first the inline core
bundle (~1.3 MB) and is at once replaced, through `update_display(X)`, by a tiny stub (version check,
~0.4 KB): whatever ran it has BokehJS, and what is saved in the notebook is the stub. So the kernel
need not know which frontend it talks to (no comm round trip, which a running cell could not wait
for): with the extension, the 1.3 MB goes over the wire once per kernel but is never run nor saved;
without it, it runs once and is not saved either. A notebook then grows by ~1 KB per kernel start
instead of 1.3 MB (issue 19 item 7). After a page reload the lab extension loads BokehJS again from
the saved output; elsewhere `load_bokehjs(force=True)` does.

A BokehModel's browser view builds its document from the `render_bundle` snapshot taken when the
widget was made, then applies the patches it receives; patches sent while no view exists are
lost. So a widget shown after its data changed (or shown again) must re-snapshot first:
`refresh_bundle`.
"""

from __future__ import annotations

import json
import uuid

import bokeh
from bokeh.models import LayoutDOM

_loaded = False
BOKEHJS_MIME_TYPE = "application/vnd.lvsal.bokehjs.v1+json"  # labextension/src/bokehjs.ts


def in_kernel() -> bool:
    """True inside a Jupyter kernel (not plain Python or a terminal IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


def load_bokehjs(force: bool = False) -> bool:
    """Put BokehJS on the page once per kernel (again with force=True, e.g. after reloading the page
    outside JupyterLab); see the module docstring. Returns whether it was displayed now."""
    global _loaded
    if (_loaded and not force) or not in_kernel():
        return False
    from IPython.display import display, update_display

    did = uuid.uuid4().hex
    display(loader_bundle(inline=True), raw=True, display_id=did)  # run by frontends without the extension
    update_display(loader_bundle(inline=False), raw=True, display_id=did)  # ... and saved instead
    _loaded = True
    return True


def loader_bundle(inline: bool) -> dict:
    """The MIME bundle of the loader output: the extension's entry ({version}) and JavaScript, the
    inline BokehJS bundle (inline=True, ~1.3 MB) or the stub that replaces it (~0.4 KB)."""
    version = bokeh.__version__
    js = bokehjs_loader() if inline else _STUB.replace("VERSION", json.dumps(version))
    return {BOKEHJS_MIME_TYPE: {"version": version}, "application/javascript": js}


# What a saved notebook keeps: BokehJS is there already (the inline bundle ran, or the lab extension
# loaded it), or, after a page reload outside JupyterLab, a hint in the browser console.
_STUB = """(function () {
  var v = VERSION;
  if (typeof window.Bokeh === "undefined" || window.Bokeh.version !== v) {
    console.warn("lvsal-nb: BokehJS " + v + " is not loaded on this page; notebook viewers need it: "
      + "run lvsal_nb.load_bokehjs(force=True) in the kernel");
  }
})();"""


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
