"""lvsal-nb: LVLMs-Saliency, SGRS and LocoRE ("Hallucination Begins Where Saliency Drops") for Jupyter.

    import lvsal_nb as lv
    s = lv.load("toy")
    tr = s.trace(image, "Describe the image.", max_new_tokens=32)
    tr.steps; tr.matrix(); tr.save("run.lvsal.parquet")
"""

from .decoding.locore import LocoRE, locore
from .decoding.sgrs import SGRS
from .errors import (AnnotationStoreError, ConfigError, ImageError, LvsalError, TraceFileError,
                     UnsupportedModelError)
from .session import Session, load
from .trace import MIME_TYPE, Candidate, Spans, Step, Trace

__version__ = "0.1.0"

__all__ = [
    "MIME_TYPE", "AnnotationStoreError", "Candidate", "ConfigError", "ImageError", "LocoRE", "LvsalError", "SGRS",
    "Session", "Spans", "Step", "Trace", "TraceFileError", "UnsupportedModelError", "load", "locore",
    "__version__",
]
