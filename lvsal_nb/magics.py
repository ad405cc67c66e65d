"""`%load_ext lvsal_nb`, then `%lvsal ...` / `%%lvsal ...` in a notebook.

    %lvsal load toy                                   # or a checkpoint path; --device cuda
    %lvsal load session                               # or a Session held in a variable
    %lvsal trace --image photo.jpg --prompt "Describe the image." --sgrs --locore 0.15
    %%lvsal --image toy:3 --sgrs                      # the cell body is the prompt
    Describe the image.
    %lvsal view run.lvsal.parquet                     # no file: the last trace
    %lvsal tune                                       # the last image + prompt, A/B
    %lvsal marks                                      # marks of the last trace (--all: every trace)
    %lvsal save run.lvsal.parquet
    %lvsal dashboard runs/toy-chair                   # the evaluation dashboard of a run folder
    %lvsal --help; %lvsal trace --help

`--image` takes a file path, the name of a variable holding an image, or `toy:SEED` (a seeded
toy-world scene, whose objects become the ground truth of `%lvsal tune`). The loaded session, the
last image, prompt, trace and viewer live in `lvsal_nb.magics.state`. Errors print one line
(IPython's UsageError), never a traceback.
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class

from .errors import LvsalError


@dataclass
class MagicState:
    """What the magics remember between cells."""

    session: Any = None
    image: Any = None
    truth: set[str] | None = None
    prompt: str | None = None
    viewer: Any = None
    trace_: Any = None  # a trace loaded or saved without a viewer

    @property
    def last_viewer(self):
        """The viewer made last, by a magic or by `lv.view` / `TraceViewer(...)` in Python."""
        from .widgets.viewer import TraceViewer

        made = TraceViewer.last() if TraceViewer.last is not None else None
        return made if made is not None else self.viewer

    @property
    def trace(self):
        """The last trace: the last viewer's (its partial or final trace), else the last loaded."""
        v = self.last_viewer
        return v.trace if v is not None else self.trace_


state = MagicState()


class _HelpShown(Exception):
    """--help was printed; nothing else to do."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting the kernel."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")

    def print_help(self, file=None):
        super().print_help(file)
        raise _HelpShown

    def exit(self, status=0, message=None):
        if message:
            raise UsageError(message.strip())
        raise _HelpShown


def _trace_options(p: argparse.ArgumentParser, prompt: bool = True) -> None:
    p.add_argument("--image", help="image file, a variable holding an image, or toy:SEED (a toy scene)")
    if prompt:
        p.add_argument("--prompt", help="the prompt (for %%%%lvsal: the cell body)")
    p.add_argument("--max-new-tokens", type=int, default=32, help="tokens to generate (default 32)")
    p.add_argument("--sgrs", action="store_true", help="decode with SGRS (K=5, alpha=0.6, W=5, R=3)")
    p.add_argument("--locore", type=float, metavar="BETA", help="apply LocoRE with this beta (e.g. 0.15)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--decoding", choices=("greedy", "sample"), default="greedy", help="default greedy")


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of `%lvsal` (subcommands load, trace, view, tune, marks, ...); its
    errors raise UsageError instead of exiting the kernel."""
    p = _Parser(
        prog="%lvsal",
        description="lvsal-nb: trace saliency while a vision-language model decodes.",
        epilog="%%lvsal [trace|tune] [options] takes the cell body as the prompt.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    s = sub.add_parser("load", help="load a model (toy, tiny:llava, a checkpoint path) or use a Session")
    s.add_argument("source", help="toy | tiny:llava | tiny:qwen2_vl | PATH | cached hub id | a variable")
    s.add_argument("--device", help="cpu, cuda, ... (default: cuda when available)")
    s.add_argument("--dtype", help="float32, bfloat16, ... (default: bfloat16 on CUDA, else float32)")
    _trace_options(sub.add_parser("trace", help="trace a generation and show it live in a viewer"))
    s = sub.add_parser("view", help="show a saved trace file (default: the last trace)")
    s.add_argument("file", nargs="?", help="a .parquet or .json trace file")
    s = sub.add_parser("tune", help="the SGRS / LocoRE tuner on an image and prompt (default: the last)")
    _trace_options(s)
    s.add_argument("--truth", help="ground-truth object names, comma separated (toy:SEED images know theirs)")
    s = sub.add_parser("marks", help="hallucination marks of the last trace as a table")
    s.add_argument("--trace", dest="trace_id", help="a trace id (default: the last trace)")
    s.add_argument("--all", action="store_true", help="marks of every trace")
    s.add_argument("--store", help="marks database file (default: the user's store)")
    s = sub.add_parser("save", help="save the last trace (.parquet or .json)")
    s.add_argument("file")
    s = sub.add_parser("dashboard", help="the evaluation dashboard of an `lvsal eval --out RUN` folder")
    s.add_argument("run")
    return p


@magics_class
class LvsalMagics(Magics):
    """The %lvsal line magic and %%lvsal cell magic."""

    @line_cell_magic
    def lvsal(self, line: str = "", cell: str | None = None):
        """%lvsal COMMAND [options] — run `%lvsal --help` for the commands."""
        try:
            args = shlex.split(line)
        except ValueError as e:
            raise UsageError(f"%lvsal: cannot split the line ({e}); check the quotes") from None
        if cell is not None:  # %%lvsal [trace|tune] [options]: the body is the prompt
            if not args or args[0] not in ("trace", "tune", "-h", "--help"):
                args = ["trace", *args]
            if "--prompt" in args:
                raise UsageError("%%lvsal: the cell body is the prompt; drop --prompt")
        try:
            ns = build_parser().parse_args(args)
        except _HelpShown:
            return None
        if ns.command is None:
            raise UsageError("%lvsal: name a command: load, trace, view, tune, marks or save (%lvsal --help)")
        if cell is not None:
            ns.prompt = cell.strip()
        try:
            return getattr(self, f"_{ns.command}")(ns)
        except LvsalError as e:
            raise UsageError(f"%lvsal {ns.command}: {e}") from None

    # ---- commands -------------------------------------------------------------------------------
    def _load(self, ns):
        from .session import Session, load

        held = self.shell.user_ns.get(ns.source) if ns.source.isidentifier() else None
        if isinstance(held, Session):  # a session loaded in Python: use it, load nothing
            state.session = held
        else:
            state.session = load(ns.source, device=ns.device, dtype=ns.dtype)
        return state.session

    def _trace(self, ns):
        from .widgets import view

        session, image, prompt = self._inputs(ns)
        state.viewer = view(session, image, prompt, **self._trace_kwargs(ns))
        return state.viewer

    def _view(self, ns):
        from .trace import Trace
        from .widgets import view

        if ns.file:
            state.viewer, state.trace_ = None, Trace.load(ns.file)
        tr = state.trace_ if ns.file else state.trace
        if tr is None:
            raise UsageError("%lvsal view: no trace yet; pass a file or run %lvsal trace first")
        state.viewer = view(tr)
        return state.viewer

    def _tune(self, ns):
        from .widgets import tune

        session, image, prompt = self._inputs(ns)
        truth = set(t.strip() for t in ns.truth.split(",") if t.strip()) if ns.truth else state.truth
        kw = self._trace_kwargs(ns)
        # --sgrs / --locore set where the sliders start; with neither, the Tuner's defaults
        given = ns.sgrs or ns.locore is not None
        return tune(
            session,
            image,
            prompt,
            truth=truth,
            max_new_tokens=kw["max_new_tokens"],
            seed=kw["seed"],
            decoding=kw["decoding"],
            sgrs=bool(ns.sgrs) if given else None,
            locore=ns.locore,
        )

    def _marks(self, ns):
        from .annotations import MarkStore
        from .fingerprint import setup_key, step_keys

        v = state.last_viewer
        store = MarkStore(ns.store) if ns.store or v is None else v.state.store
        if ns.all:
            return store.marks()
        if ns.trace_id:
            return store.marks(ns.trace_id)
        tr = state.trace
        if tr is None:
            raise UsageError("%lvsal marks: no trace yet; pass --trace ID or --all")
        # its own marks and those of earlier runs of the same generation (as the viewer shows them)
        return store.marks_for(tr.trace_id, step_keys(tr), setup_key(tr))[0]

    def _dashboard(self, ns):
        from .dashboard import dashboard

        return dashboard(ns.run)

    def _save(self, ns):
        if state.trace is None:
            raise UsageError("%lvsal save: no trace yet; run %lvsal trace first")
        path = state.trace.save(ns.file)
        print(f"saved {len(state.trace)} steps to {path}")
        return None

    # ---- helpers ------------------------------------------------------------------------------
    def _inputs(self, ns):
        if state.session is None:
            raise UsageError("%lvsal: no model loaded; run %lvsal load toy (or a checkpoint path) first")
        if ns.image is not None:
            state.image, state.truth = self._image(ns.image)
        if ns.prompt:
            state.prompt = ns.prompt
        if state.prompt is None:
            raise UsageError(
                "%lvsal: no prompt; pass --prompt TEXT (or use %%lvsal with the prompt as the body)"
            )
        return state.session, state.image, state.prompt

    def _image(self, spec: str):
        """(image, ground-truth object names or None) from toy:SEED, a variable name or a path."""
        if spec.startswith("toy:"):
            from .toy.scenes import make_scene, render

            try:
                scene = make_scene(int(spec[4:]))
            except ValueError:
                raise UsageError(
                    f"%lvsal: toy images are toy:SEED with an integer seed, not {spec!r}"
                ) from None
            return render(scene), set(scene.object_names())
        if spec.isidentifier() and spec in self.shell.user_ns:
            return self.shell.user_ns[spec], None
        from .models.base import load_image

        return load_image(spec), None  # ImageError (an LvsalError) when missing or unreadable

    @staticmethod
    def _trace_kwargs(ns) -> dict:
        from .decoding.sgrs import SGRS

        kw = {"max_new_tokens": ns.max_new_tokens, "seed": ns.seed, "decoding": ns.decoding}
        if ns.sgrs:
            kw["sgrs"] = SGRS()
        if ns.locore is not None:
            kw["locore"] = ns.locore
        return kw


def load_ipython_extension(ipython) -> None:
    """Register %lvsal / %%lvsal (called by `%load_ext lvsal_nb`)."""
    ipython.register_magics(LvsalMagics)
