"""Tuner: rerun one image + prompt with other SGRS / LocoRE settings and compare two runs (A/B).

    t = lv.tune(session, image, "Describe the image.", truth=scene)   # truth: a toy Scene or names
    t.k.value, t.beta.value = 3, 0.3       # or move the sliders
    t.run("A", wait=True); t.run("B", wait=True)
    t.differences()                        # steps whose tokens differ, per run
    t.scores("B")                          # CHAIR of run B against the truth

Every run uses the same seed, so two runs differ only by the settings. Runs go through LiveTrace
(a worker thread): the notebook stays usable and the progress bar moves while decoding.
"""

from __future__ import annotations

import html

import ipywidgets as W
from bokeh.models import ColumnDataSource

from ..decoding.locore import LocoRE
from ..decoding.sgrs import SGRS
from ..errors import ConfigError, LvsalError
from ..trace import Trace
from .bokehjs import bokeh_widget, load_bokehjs, refresh_bundle
from .columns import score
from .comparison import chair, run_panel, token_differences
from .curves import compare_curve, fit_ranges
from .live import LiveTrace
from .offline import OfflineDisplay, offline_bundle

SLOTS = ("A", "B")
# What each one-letter slider does (PAPER.md), shown on hover.
TOOLTIPS = {
    "K": "SGRS: candidates drawn per step (top-K by probability)",
    "α": "SGRS: threshold factor; a candidate is rejected when its saliency < α × the mean of the last W",
    "W": "SGRS: window, how many previous tokens' saliency the threshold averages",
    "R": "SGRS: draws per step; when all R are rejected the most salient of the K is taken (R ≤ K)",
    "β": "LocoRE: attention to the last w_s outputs is multiplied by 1 + β (0 = off)",
    "w_s": "LocoRE: window, how many recent output tokens get the 1 + β reinforcement",
}


def is_toy(session, truth) -> bool:
    """Whether CHAIR uses the toy world's shape words: a toy Scene as truth, or the toy model."""
    return hasattr(truth, "object_names") or getattr(session, "model_id", None) == "toy"


def _truth_set(truth) -> set[str] | None:
    if truth is None:
        return None
    if hasattr(truth, "object_names"):  # a toy Scene
        return set(truth.object_names())
    if isinstance(truth, str):
        raise ConfigError(
            f"truth must be a set of object names such as {{{truth!r}}} or a Scene, not a string"
        )
    return {str(t) for t in truth}


class Tuner(OfflineDisplay, W.VBox):
    """Sliders for SGRS (K, α, W, R) and LocoRE (β, w_s, layers), Run into slot A or B, and the
    two runs side by side: tokens that differ highlighted, CHAIR of each when `truth` is known.

    Args:
        session, image, prompt: what every run traces.
        truth: ground-truth object names (a set) or a toy Scene; enables CHAIR. Default: None.
        max_new_tokens, seed, decoding, layers, context: fixed Session.trace settings of every run.
        sgrs: the sliders' starting SGRS: an SGRS (its values), True (the defaults), False (off).
            Default: None, SGRS on with the paper's defaults.
        locore: the sliders' starting LocoRE: a LocoRE, a beta (float), or None / False (off).
    """

    def __init__(
        self,
        session,
        image,
        prompt: str,
        *,
        truth=None,
        max_new_tokens: int = 32,
        seed: int = 0,
        decoding: str = "greedy",
        layers=None,
        context: str = "text",
        sgrs=None,
        locore=None,
    ):
        self.session, self.image, self.prompt, self.truth = session, image, prompt, _truth_set(truth)
        self.toy = is_toy(session, truth)  # toy shape words for CHAIR; else COCO synonyms (eval.chair)
        self.fixed = dict(
            max_new_tokens=max_new_tokens, seed=seed, decoding=decoding, layers=layers, context=context
        )
        self.runs: dict[str, Trace] = {}
        self._last_slot: str | None = None  # the slot of the run that finished last
        self.settings_of: dict[str, dict] = {}
        self.live: LiveTrace | None = None
        self.error: BaseException | None = None
        sl = {"style": {"description_width": "40px"}, "layout": W.Layout(width="230px")}
        self.use_sgrs = W.Checkbox(value=True, description="SGRS", indent=False)
        self.k = W.IntSlider(5, min=1, max=10, description="K", tooltip=TOOLTIPS["K"], **sl)
        self.alpha = W.FloatSlider(
            0.6, min=0.0, max=1.5, step=0.05, description="α", tooltip=TOOLTIPS["α"], **sl
        )
        self.window = W.IntSlider(5, min=1, max=16, description="W", tooltip=TOOLTIPS["W"], **sl)
        self.rounds = W.IntSlider(3, min=1, max=5, description="R", tooltip=TOOLTIPS["R"], **sl)
        self.use_locore = W.Checkbox(value=False, description="LocoRE", indent=False)
        self.beta = W.FloatSlider(
            0.15, min=0.0, max=1.0, step=0.01, description="β", tooltip=TOOLTIPS["β"], **sl
        )
        self.w_s = W.IntSlider(5, min=1, max=16, description="w_s", tooltip=TOOLTIPS["w_s"], **sl)
        self.locore_layers = W.SelectMultiple(
            options=list(range(session.adapter.num_layers)),
            rows=4,
            description="layers",
            tooltip="LocoRE layers (none = all)",
            **sl,
        )
        self.k.observe(lambda ch: setattr(self.rounds, "max", ch["new"]), "value")  # R <= K
        self._start_from(sgrs, locore)
        self.slot = W.ToggleButtons(
            options=SLOTS,
            value="A",
            tooltips=["run into slot A", "run into slot B"],
            style={"button_width": "36px"},
            layout=W.Layout(width="90px"),
        )
        self.run_button = W.Button(description="▶ run", button_style="primary", layout=W.Layout(width="80px"))
        self.stop_button = W.Button(description="■ stop", layout=W.Layout(width="80px"), disabled=True)
        self.progress = W.IntProgress(min=0, max=max_new_tokens, layout=W.Layout(width="200px"))
        self.status = W.HTML()
        self.panels = {s: W.HTML(layout=W.Layout(width="50%", padding="0 8px")) for s in SLOTS}
        self.sources = {s: ColumnDataSource({"step": [], "saliency": []}, name=f"curve_{s}") for s in SLOTS}
        self.figure = compare_curve(self.sources["A"], self.sources["B"])
        self.bokeh = bokeh_widget(self.figure)
        self.run_button.on_click(lambda _b: self._run_clicked())
        self.stop_button.on_click(lambda _b: self.live and self.live.stop())
        wrap = W.Layout(flex_flow="row wrap", align_items="center")  # narrow windows: wrap, never cut off
        controls = W.HBox(
            [
                W.VBox([self.use_sgrs, self.k, self.alpha, self.window, self.rounds]),
                W.VBox([self.use_locore, self.beta, self.w_s, self.locore_layers]),
            ],
            layout=wrap,
        )
        bar = W.HBox([self.slot, self.run_button, self.stop_button, self.progress, self.status], layout=wrap)
        for p in self.panels.values():
            p.layout = W.Layout(flex="1 1 360px", padding="0 8px")
        self.bokeh.layout.width = "100%"
        runs = W.HBox([self.panels["A"], self.panels["B"]], layout=wrap)
        super().__init__([controls, bar, runs, self.bokeh], layout=W.Layout(width="100%"))
        self._render()

    def _start_from(self, sgrs, locore) -> None:
        """Set the sliders from the `sgrs` / `locore` arguments (see the class docstring)."""
        if sgrs is not None:
            if not isinstance(sgrs, (bool, SGRS)):
                raise ConfigError(
                    f"sgrs must be an lvsal_nb.SGRS, True, False or None, not {type(sgrs).__name__}"
                )
            self.use_sgrs.value = bool(sgrs)
            if isinstance(sgrs, SGRS):
                self.k.value, self.alpha.value, self.window.value = sgrs.k, sgrs.alpha, sgrs.window
                self.rounds.value = sgrs.rounds
        if locore is not None and locore is not False:
            if isinstance(locore, (int, float)) and not isinstance(locore, bool):
                locore = LocoRE(beta=float(locore))  # validates beta
            if not isinstance(locore, LocoRE):
                raise ConfigError(
                    f"locore must be an lvsal_nb.LocoRE, a beta or None, not {type(locore).__name__}"
                )
            self.use_locore.value, self.beta.value, self.w_s.value = True, locore.beta, locore.window
            if locore.layers:
                self.locore_layers.value = tuple(locore.layers)

    def _repr_mimebundle_(self, **kwargs):
        """The widget view plus, for the last run, the trace payload and static HTML (offline.py),
        with both runs' panels on top of the HTML."""
        load_bokehjs()
        refresh_bundle(self.bokeh)  # runs that finished before display are in the snapshot
        return self._full_bundle(**kwargs)

    def _offline(self) -> dict:
        last = self.runs.get(self._last_slot) if self._last_slot else None
        panels = "".join(f"<div style='margin-bottom:6px'>{self.panels[s].value}</div>" for s in SLOTS)
        title = f"lvsal Tuner, run {self._last_slot}" if last else "lvsal Tuner"
        return offline_bundle(last, {}, title=title, html_extra=panels)

    # ---- runs ---------------------------------------------------------------------------------
    def settings(self) -> dict:
        """The Session.trace keywords of a run with the current slider values."""
        sgrs = loco = None
        if self.use_sgrs.value:
            sgrs = SGRS(
                k=self.k.value,
                alpha=self.alpha.value,
                window=self.window.value,
                rounds=min(self.rounds.value, self.k.value),
            )
        if self.use_locore.value:
            loco = LocoRE(
                beta=self.beta.value, window=self.w_s.value, layers=tuple(self.locore_layers.value) or None
            )
        return {**self.fixed, "sgrs": sgrs, "locore": loco}

    def run(self, slot: str | None = None, wait: bool = False) -> Trace | None:
        """Trace with the current settings into `slot` (default: the selected one) in a worker
        thread; with wait=True block and return the Trace (re-raising a decoding error)."""
        slot = slot or self.slot.value
        if slot not in SLOTS:
            raise ConfigError(f"slot must be one of {SLOTS}, got {slot!r}")
        if self.live is not None and self.live.running:
            raise ConfigError("a run is in progress; wait for it or press stop")
        kw = self.settings()
        self.progress.value, self.error = 0, None
        self.live = LiveTrace(
            self.session,
            self.image,
            self.prompt,
            interval=0.2,
            on_update=lambda tr: setattr(self.progress, "value", len(tr.records)),
            on_done=lambda tr, err: self._done(slot, kw, tr, err),
            **kw,
        )
        self.run_button.disabled, self.stop_button.disabled = True, False
        self.status.value = f"<i>running {slot}…</i>"
        self.live.start()
        return self.live.wait() if wait else None

    def _run_clicked(self) -> None:
        try:
            self.run()
        except LvsalError as e:
            self.status.value = f"<span style='color:#d62728'>{html.escape(str(e))}</span>"

    def _done(self, slot: str, kw: dict, tr: Trace | None, err: BaseException | None) -> None:
        self.run_button.disabled, self.stop_button.disabled = False, True
        if err is not None:
            self.error = err
            msg = html.escape(f"{type(err).__name__}: {err}")
            self.status.value = f"<span style='color:#d62728'>{msg}</span>"
            return
        self.runs[slot], self.settings_of[slot] = tr, kw
        self._last_slot = slot
        self.progress.value = len(tr.records)
        self.status.value = f"{slot}: {len(tr.records)} tokens" + (" (stopped)" if tr.interrupted else "")
        self.slot.value = SLOTS[1 - SLOTS.index(slot)]  # the next run goes into the other slot
        self._render()
        refresh_bundle(self.bokeh)
        self.refresh_offline()  # a saved notebook shows the runs, not "no run yet"

    # ---- comparison ---------------------------------------------------------------------------
    def differences(self) -> dict[str, set[int]]:
        """Steps of each run whose tokens differ from the other run (comparison.token_differences)."""
        if any(s not in self.runs for s in SLOTS):
            return {s: set() for s in SLOTS}
        da, db = token_differences(self.runs["A"], self.runs["B"])
        return {"A": da, "B": db}

    def scores(self, slot: str) -> dict | None:
        """CHAIR of a run against `truth`, with its mentioned and hallucinated objects (None
        without truth or run)."""
        tr = self.runs.get(slot)
        return None if tr is None or self.truth is None else chair(tr, self.truth, toy=self.toy)

    def _render(self) -> None:
        diff = self.differences()
        for slot in SLOTS:
            tr = self.runs.get(slot)
            self.panels[slot].value = run_panel(
                slot, tr, self.settings_of.get(slot, {}), diff[slot], self.scores(slot), toy=self.toy
            )
            recs = tr.records if tr else []
            self.sources[slot].data = {
                "step": [s.step for s in recs],
                "saliency": [score(s, tr.layers, None) for s in recs],
            }
        both = [self.sources[s].data for s in SLOTS]  # one range holding both runs (A's alone cut B off)
        steps, values = [x for d in both for x in d["step"]], [v for d in both for v in d["saliency"]]
        fit_ranges(self.figure, steps, values)
