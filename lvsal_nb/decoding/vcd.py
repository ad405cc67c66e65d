"""VCD — Visual Contrastive Decoding (Leng et al. 2023, "Mitigating Object Hallucinations in Large
Vision-Language Models through Visual Contrastive Decoding").

Per step, with ℓ the logits for the image and ℓ' those for a noised copy of it (two KV caches, one
per image, advanced with the same tokens):

    keep     = {v : p(v) ≥ β · max p}                     adaptive plausibility, on the ORIGINAL p
    ℓ_cd     = (1 + α) · ℓ − α · ℓ'    on keep, −inf elsewhere

then seeded sampling from softmax(ℓ_cd) (the default, as VCD's released code: do_sample=True,
temperature 1, top_p 1, top_k None) or greedy (a named option). Defaults α = 1, β = 0.1, noise step
500 of 1000 — the settings of VCD's `experiments/eval/object_hallucination_vqa_llava.py`.

The noise is the forward diffusion q(x_t | x_0) = N(√ᾱ_t · x_0, (1 − ᾱ_t) I), ᾱ_t = Π_{s≤t} (1 − β_s),
applied elementwise to the processor's (normalised) pixel tensor, as VCD's code does; the draw is
seeded. Schedules: "vcd" (the default: the released code's `vcd_utils/vcd_add_noise.py`,
β = sigmoid(torch.linspace(−6, 6, 1000)) · (5e-3 − 1e-5) + 1e-5 in float32 as there; √ᾱ_500 ≈ 0.863)
or "linear" (a named option: DDPM, β from 1e-4 to 0.02 over 1000 steps; a much stronger noise at the
same step, √ᾱ_500 ≈ 0.279 — this project's default before it followed VCD's code).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from ..errors import ConfigError, ImageError
from .baselines import Generated, Stream, check_decoding, decode, plausible, work_dtype

SCHEDULES = ("linear", "vcd")
DIFFUSION_STEPS = 1000


@dataclass(frozen=True)
class VCD:
    """VCD settings (defaults = VCD's released code: cd_alpha 1, cd_beta 0.1, noise_step 500, its schedule).

    alpha: contrast strength α ≥ 0; beta: plausibility cut-off β in (0, 1]; noise_step: diffusion
    step t in 0..999; schedule: "vcd" (default) or "linear" (see the module doc)."""

    alpha: float = 1.0
    beta: float = 0.1
    noise_step: int = 500
    schedule: str = "vcd"

    def __post_init__(self):
        if not self.alpha >= 0:
            raise ConfigError(f"VCD alpha must be >= 0, got {self.alpha!r}")
        if not 0 < self.beta <= 1:
            raise ConfigError(f"VCD beta must be in (0, 1], got {self.beta!r}")
        if not isinstance(self.noise_step, int) or not 0 <= self.noise_step < DIFFUSION_STEPS:
            raise ConfigError(
                f"VCD noise_step must be an integer in 0..{DIFFUSION_STEPS - 1}, got {self.noise_step!r}"
            )
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"VCD schedule must be one of {SCHEDULES}, got {self.schedule!r}")

    def to_dict(self) -> dict:
        """The settings as a JSON-ready dict (recorded in the Trace's config)."""
        return asdict(self)


def alpha_bar(step: int, schedule: str = "vcd") -> float:
    """ᾱ_t = Π_{s=0..t} (1 − β_s) of the schedule ("vcd": float32, as VCD's code; "linear": float64)."""
    if schedule == "linear":
        betas = torch.linspace(1e-4, 0.02, DIFFUSION_STEPS, dtype=torch.float64)
    elif schedule == "vcd":
        # VCD's add_diffusion_noise, literally: float32 linspace, sigmoid, cumprod.
        betas = torch.sigmoid(torch.linspace(-6, 6, DIFFUSION_STEPS)) * (0.5e-2 - 1e-5) + 1e-5
    else:
        raise ConfigError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    return float(torch.cumprod(1 - betas, 0)[step])


def diffusion_noise(pixels: torch.Tensor, step: int, schedule: str = "vcd", seed: int = 0) -> torch.Tensor:
    """x_t = √ᾱ_t · x_0 + √(1 − ᾱ_t) · ε, ε ~ N(0, I) drawn on the CPU from `seed` (any shape, same dtype)."""
    a = alpha_bar(step, schedule)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    eps = torch.randn(pixels.shape, generator=gen, dtype=torch.float64)
    noised = a**0.5 * pixels.detach().double().cpu() + (1 - a) ** 0.5 * eps
    return noised.to(device=pixels.device, dtype=pixels.dtype)


def contrast(logits: torch.Tensor, logits_noised: torch.Tensor, cfg: VCD) -> torch.Tensor:
    """ℓ_cd [vocab]: (1 + α)ℓ − αℓ' where p ≥ β·max p, −inf elsewhere."""
    l, ln = work_dtype(logits), work_dtype(logits_noised)
    cd = (1 + cfg.alpha) * l - cfg.alpha * ln
    return cd.masked_fill(~plausible(l, cfg.beta), float("-inf"))


def vcd_generate(
    session,
    image,
    prompt: str,
    cfg: VCD | None = None,
    *,
    max_new_tokens: int = 64,
    decoding: str = "sample",
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int = 0,
    return_scores: bool = False,
) -> Generated:
    """Decode one (image, prompt) with VCD, as VCD's released code by default.

    Args:
        session: an `lvsal_nb.Session` (its adapter builds the inputs, chat template included).
        cfg: VCD settings (default `VCD()`: α=1, β=0.1, step 500, VCD's own noise schedule).
        decoding: "sample" (default, as VCD's code: multinomial from softmax(ℓ_cd / temperature) with
            top_p; temperature 1 and top_p 1 there, no top-k) or "greedy" (a named option); seeded by
            `seed`, which also seeds the image noise.
        return_scores: keep ℓ_cd [vocab] of every step in `Generated.scores`.
    """
    cfg = cfg or VCD()
    if not isinstance(cfg, VCD):
        raise ConfigError("cfg must be an lvsal_nb.decoding.vcd.VCD(...) or None")
    check_decoding(max_new_tokens, decoding, temperature, top_p)
    prepared = session.adapter.prepare(image, prompt)
    inputs = session.adapter.to(prepared.inputs, session.dtype)
    if inputs.get("pixel_values") is None:
        raise ImageError("VCD contrasts the image with a noised copy of it: pass an image")
    pixels = diffusion_noise(inputs["pixel_values"], cfg.noise_step, cfg.schedule, seed)
    noised = dict(inputs, pixel_values=pixels)
    streams = [Stream(session, prepared, inputs), Stream(session, prepared, noised)]

    def step(outs, seen):
        return contrast(outs[0].logits[0, -1], outs[1].logits[0, -1], cfg), {}

    return decode(
        session,
        streams,
        step,
        max_new_tokens=max_new_tokens,
        decoding=decoding,
        temperature=temperature,
        top_p=top_p,
        seed=seed,
        return_scores=return_scores,
        config={"method": "vcd", **cfg.to_dict()},
    )
