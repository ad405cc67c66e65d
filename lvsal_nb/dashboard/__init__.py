"""The evaluation dashboard over a run folder of `lvsal eval chair|pope ... --out RUN`.

    import lvsal_nb as lv
    lv.dashboard("runs/toy-chair")              # notebook: table, methods, detector + TraceViewer
    %lvsal dashboard runs/toy-chair             # the same, as a magic
    $ lvsal dashboard runs/toy-chair            # standalone page on 127.0.0.1 with a token URL

Files (one idea each): rundir.py reads the run, tokens.py the cached per-token index, mentions.py the
CHAIR token labels, labels.py chair + human labels, stats.py bootstrap intervals, curves.py ROC/PR,
model.py RunData, *_view.py the Bokeh views, app.py the page, server.py the standalone server,
notebook.py the notebook widget.
"""

from __future__ import annotations

from pathlib import Path

from .model import RunData
from .rundir import RunFolderError

__all__ = ["RunData", "RunFolderError", "dashboard"]


def dashboard(run: str | Path | RunData, *, store=None, author: str | None = None, n_boot: int = 1000):
    """The dashboard widget of a run (ipywidgets; display it in a notebook).

    Args:
        run: the run folder (or a RunData already read).
        store: MarkStore for the human labels. Default: the run's own, RUN/dashboard/marks.sqlite3.
        author: name saved with labels. Default: $LVSAL_AUTHOR or the login name.
        n_boot: bootstrap resamples of the intervals. Default: 1000.
    """
    from .notebook import DashboardWidget

    data = run if isinstance(run, RunData) else RunData(run, store=store, author=author)
    return DashboardWidget(data, n_boot=n_boot)
