"""lvsal-nb: LVLMs-Saliency, SGRS and LocoRE ("Hallucination Begins Where Saliency Drops") for Jupyter.

import lvsal_nb as lv
s = lv.load("toy")
tr = s.trace(image, "Describe the image.", max_new_tokens=32)
tr.table; tr.matrix(); tr.save("run.lvsal.parquet")
"""

from .dashboard import dashboard  # the function, on purpose shadowing the subpackage's name
from .decoding.locore import LocoRE, locore
from .decoding.sgrs import SGRS
from .errors import (
    AnnotationStoreError,
    ConfigError,
    ImageError,
    LvsalError,
    ModelBusyError,
    TraceFileError,
    UnsupportedModelError,
)
from .labext import _jupyter_labextension_paths  # noqa: F401  (jupyter labextension develop)
from .session import Session, load
from .trace import MIME_TYPE, Candidate, Spans, Step, Trace

__version__ = "0.1.0"


def view(*args, **kwargs):
    """The TraceViewer widget for a Trace, a trace file, or a live trace (lvsal_nb.widgets)."""
    from .widgets import view as _view

    return _view(*args, **kwargs)


def tune(*args, **kwargs):
    """The live SGRS / LocoRE tuner: side-by-side reruns with the same seed (lvsal_nb.widgets)."""
    from .widgets import tune as _tune

    return _tune(*args, **kwargs)


def load_ipython_extension(ipython):
    """`%load_ext lvsal_nb` registers the %lvsal / %%lvsal magics."""
    from .magics import load_ipython_extension as _load

    _load(ipython)


__all__ = [
    "MIME_TYPE",
    "AnnotationStoreError",
    "Candidate",
    "ConfigError",
    "ImageError",
    "LocoRE",
    "LvsalError",
    "ModelBusyError",
    "SGRS",
    "Session",
    "Spans",
    "Step",
    "Trace",
    "TraceFileError",
    "UnsupportedModelError",
    "dashboard",
    "load",
    "load_ipython_extension",
    "locore",
    "tune",
    "view",
    "__version__",
]
