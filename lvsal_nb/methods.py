"""The decoding methods, by name, behind one call (the registry of eval, the CLI and the Tuner).

    import lvsal_nb as lv
    from lvsal_nb.methods import available, run_method
    available()   # ['greedy', 'sgrs', 'locore', 'sgrs+locore', 'vcd', 'dola', 'opera']
    tr = run_method("vcd", session, image, prompt, max_new_tokens=64, seed=0, alpha=0.5)
    tr.config["method"], tr.config["method_options"]   # 'vcd', every option as it ran

Every method returns a `Trace` with the saliency of its tokens: greedy / sgrs / locore /
sgrs+locore record it while decoding (`Session.trace`); vcd / dola / opera decode first, then
`Session.analyze` scores their tokens under the plain model (the sequence engine).

Options (keyword arguments after the common ones) per method:
    greedy        none
    sgrs          the fields of `lv.SGRS` (k, alpha, window, rounds, order)
    locore        the fields of `lv.LocoRE` (beta: default the model family's, see `locore_beta`)
    sgrs+locore   sgrs=<dict or lv.SGRS>, locore=<dict, beta or lv.LocoRE>
    vcd           the fields of `VCD` (alpha, beta, noise_step, schedule) + decoding, temperature, top_p
    dola          the fields of `DoLa` (layers, relative_top, repetition_penalty, final_norm) + decoding,
                  temperature, top_p
    opera         the fields of `OPERA` (num_beams, scale_factor, threshold, num_attn_candidates,
                  penalty_weights, window_size)
An unknown name or option raises `ConfigError` listing the valid ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

__all__ = ["Method", "MethodOutput", "available", "decode_method", "locore_beta", "run_method"]


@dataclass
class MethodOutput:
    """What one method produced: its token ids, its Trace (None when not analysed) and its options."""

    token_ids: list[int]
    trace: Any
    options: dict[str, Any]


@dataclass(frozen=True)
class Method:
    """One registered method: `run(session, image, prompt, max_new_tokens, seed, analyze, options)`."""

    name: str
    doc: str
    run: Callable[..., MethodOutput]


_REGISTRY: dict[str, Method] = {}


def register(name: str, doc: str):
    """Decorator: register `fn(session, image, prompt, **options) -> Trace` as method `name`
    (`doc`: one line for listings and the unknown-method error)."""

    def deco(fn):
        _REGISTRY[name] = Method(name, doc, fn)
        return fn

    return deco


def available() -> list[str]:
    """The registered method names, in the order of the eval tables."""
    return list(_REGISTRY)


def locore_beta(session) -> float:
    """LocoRE's default β for the session's model family — the one source of it: the adapter's
    `locore_beta` (0.15 LLaVA-1.5 and the toy model, 0.20 Qwen2-VL / Qwen2.5-VL; PAPER.md)."""
    return float(session.adapter.locore_beta)


def _get(name: str) -> Method:
    if name not in _REGISTRY:
        raise ConfigError(f"unknown method {name!r}; choose one of {', '.join(_REGISTRY)}.")
    return _REGISTRY[name]


def decode_method(
    name: str,
    session,
    image,
    prompt: str,
    *,
    max_new_tokens: int = 64,
    seed: int = 0,
    analyze: bool = True,
    **options,
) -> MethodOutput:
    """Run one method. `analyze=False` skips the saliency pass of vcd / dola / opera (trace None)."""
    return _get(name).run(session, image, prompt, max_new_tokens, seed, analyze, options)


def run_method(name: str, session, image, prompt: str, *, max_new_tokens: int = 64, seed: int = 0, **options):
    """Run method `name` on (image, prompt); returns its Trace, with `config["method"]` and
    `config["method_options"]` (every option as it ran, defaults included)."""
    return decode_method(
        name, session, image, prompt, max_new_tokens=max_new_tokens, seed=seed, analyze=True, **options
    ).trace


# ---- helpers ------------------------------------------------------------------------------------
def _settings(cls, options: dict, method: str, extra: tuple[str, ...] = ()):
    """Split `options` into a `cls(...)` and the `extra` keywords; unknown keys raise, listing the valid."""
    fields = [f.name for f in dataclasses.fields(cls)]
    bad = [k for k in options if k not in fields and k not in extra]
    if bad:
        raise ConfigError(
            f"method {method!r} has no option(s) {bad}; its options are {', '.join(fields + list(extra))}."
        )
    cfg = cls(**{k: v for k, v in options.items() if k in fields})
    return cfg, {k: options[k] for k in extra if k in options}


def _as(cls, value, what: str, method: str):
    if isinstance(value, cls):
        return value
    if isinstance(value, dict):
        return _settings(cls, value, f"{method}: {what}")[0]
    raise ConfigError(
        f"method {method!r}: {what} must be a dict of options or an lvsal_nb.{cls.__name__}(...)."
    )


def _own_loop(session, image, prompt, mnt, seed, name, sgrs, locore, options) -> MethodOutput:
    trace = session.trace(image, prompt, max_new_tokens=mnt, sgrs=sgrs, locore=locore, seed=seed)
    if trace.interrupted:
        raise KeyboardInterrupt
    trace.config["method"] = name
    trace.config["method_options"] = options
    return MethodOutput([r.token_id for r in trace.records], trace, options)


def _baseline(session, image, prompt, analyze, name, generated, options) -> MethodOutput:
    trace = None
    if analyze:
        trace = session.analyze(image, prompt, generated.token_ids)
        trace.config["method"] = name
        trace.config["method_options"] = options
    return MethodOutput(list(generated.token_ids), trace, options)


# ---- the methods ---------------------------------------------------------------------------------
@register("greedy", "plain greedy decoding")
def _greedy(session, image, prompt, mnt, seed, analyze, options):
    if options:
        raise ConfigError(f"method 'greedy' takes no options, got {sorted(options)}.")
    return _own_loop(session, image, prompt, mnt, seed, "greedy", None, None, {})


@register("sgrs", "SGRS with the paper's defaults (k 5, alpha 0.6, window 5, 3 rounds)")
def _sgrs(session, image, prompt, mnt, seed, analyze, options):
    from .decoding.sgrs import SGRS

    sgrs, _ = _settings(SGRS, options, "sgrs")
    return _own_loop(session, image, prompt, mnt, seed, "sgrs", sgrs, None, {"sgrs": sgrs.to_dict()})


def _locore_cfg(session, value, method: str):
    from .decoding.locore import LocoRE

    if value is None:
        return LocoRE(beta=locore_beta(session))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return LocoRE(beta=float(value))
    if isinstance(value, dict):
        return _settings(LocoRE, {"beta": locore_beta(session), **value}, f"{method}: locore")[0]
    return _as(LocoRE, value, "locore", method)


@register("locore", "greedy + LocoRE with the model family's beta (0.15 LLaVA, 0.20 Qwen2-VL)")
def _locore(session, image, prompt, mnt, seed, analyze, options):
    loc = _locore_cfg(session, dict(options), "locore")
    return _own_loop(session, image, prompt, mnt, seed, "locore", None, loc, {"locore": loc.to_dict()})


@register("sgrs+locore", "SGRS and LocoRE together")
def _sgrs_locore(session, image, prompt, mnt, seed, analyze, options):
    from .decoding.sgrs import SGRS

    bad = [k for k in options if k not in ("sgrs", "locore")]
    if bad:
        raise ConfigError(f"method 'sgrs+locore' has no option(s) {bad}; its options are sgrs, locore.")
    sgrs = _as(SGRS, options.get("sgrs", {}), "sgrs", "sgrs+locore")
    loc = _locore_cfg(session, options.get("locore"), "sgrs+locore")
    opts = {"sgrs": sgrs.to_dict(), "locore": loc.to_dict()}
    return _own_loop(session, image, prompt, mnt, seed, "sgrs+locore", sgrs, loc, opts)


_DECODING = ("decoding", "temperature", "top_p")


@register("vcd", "VCD as published (VCD's released code: its noise schedule, step 500, sampling)")
def _vcd(session, image, prompt, mnt, seed, analyze, options):
    from .decoding.vcd import VCD, vcd_generate

    cfg, dec = _settings(VCD, options, "vcd", _DECODING)
    g = vcd_generate(session, image, prompt, cfg, max_new_tokens=mnt, seed=seed, **dec)
    return _baseline(session, image, prompt, analyze, "vcd", g, _options(g.config))


@register("dola", "DoLa (transformers' port of the reference code: 'low' bucket, penalty 1.2)")
def _dola(session, image, prompt, mnt, seed, analyze, options):
    from .decoding.dola import DoLa, dola_generate

    cfg, dec = _settings(DoLa, options, "dola", _DECODING)
    g = dola_generate(session, image, prompt, cfg, max_new_tokens=mnt, seed=seed, **dec)
    return _baseline(session, image, prompt, analyze, "dola", g, _options(g.config))


@register("opera", "OPERA (over-trust penalty + retrospection; its released defaults: 5 beams)")
def _opera(session, image, prompt, mnt, seed, analyze, options):
    from .decoding.opera import OPERA, opera_generate

    cfg, _ = _settings(OPERA, options, "opera")
    g = opera_generate(session, image, prompt, cfg, max_new_tokens=mnt)  # deterministic: no seed
    return _baseline(session, image, prompt, analyze, "opera", g, _options(g.config))


def _options(config: dict) -> dict:
    """A baseline's recorded settings, without the common keys the eval records elsewhere."""
    return {k: v for k, v in config.items() if k not in ("method", "max_new_tokens")}
