"""Loading: a Session from "toy", a tiny random model of a real architecture, a local checkpoint or
cached hub id (never downloads), or a model object; and the dtype / device arguments' checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .errors import ConfigError, UnsupportedModelError
from .quiet import no_load_progress
from .session import Session


def load(
    source: Any = "toy",
    processor: Any = None,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
) -> Session:
    """A Session from "toy" (the embedded default; "toy-v1" / "toy-v2" name a toy world),
    "tiny:llava" / "tiny:qwen2_vl" / "tiny:qwen2_5_vl"
    (random weights, for trying real architectures), a local checkpoint path or cached hub id (never
    downloads), or an already built model (+ processor).

    Args:
        device: "cpu", "cuda", ... Default: CUDA when available, else CPU; for a model object, the
            device it is on.
        dtype: torch dtype or its name. Default: bfloat16 on CUDA, float32 on CPU; for a model
            object, the dtype it has.
    What load changes on a model object: only its device / dtype, and only when `device=` /
    `dtype=` asks for another one (`model.to(...)` in place: the caller's object is the Session's).
    Tracing then patches it only for the duration of each call and restores it exactly.
    """
    with no_load_progress():  # no "Loading weights" bars left in notebook outputs (quiet.py)
        return _load(source, processor, device, dtype)


def _load(source, processor, device, dtype) -> Session:
    dtype = _dtype(dtype)
    device = _device(device)
    if isinstance(source, torch.nn.Module):
        return Session(source, processor, model_id=type(source).__name__, device=device, dtype=dtype)
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = dtype or (torch.bfloat16 if device.type == "cuda" else torch.float32)
    if not isinstance(source, (str, Path)):
        raise ConfigError(
            f"load() takes 'toy', a path, a hub id or a model object, not {type(source).__name__}"
        )
    name = str(source)
    if name in ("toy", "toy-v1", "toy-v2"):  # "toy": the world named by toy.worlds.DEFAULT_WORLD
        from .models.toy import ToyAdapter
        from .toy.model import load_toy
        from .toy.worlds import DEFAULT_WORLD

        world = DEFAULT_WORLD if name == "toy" else name[len("toy-") :]
        model, tok = load_toy(device=device, dtype=dtype, world=world)
        return Session(model, tok, adapter=ToyAdapter(model, tok), model_id=name, device=device, dtype=dtype)
    if name.startswith("tiny:"):
        from .models import tiny

        fam = name.split(":", 1)[1]
        builder = getattr(tiny, f"tiny_{fam}", None)
        if builder is None:
            raise ConfigError(
                f"unknown tiny model {name!r}; use tiny:llava, tiny:qwen2_vl or tiny:qwen2_5_vl"
            )
        model, proc = builder()
        return Session(model, proc, model_id=name, device=device, dtype=dtype)
    return _load_pretrained(name, device, dtype)


DTYPES = ("float32", "bfloat16", "float16", "float64")


def _dtype(dtype) -> torch.dtype | None:
    """A torch floating dtype from a dtype or its name; None stays None."""
    if dtype is None:
        return None
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype.removeprefix("torch."), None)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ConfigError(f"unknown or non-floating dtype {dtype!r}; use one of {DTYPES}")
    return dtype


def _device(device) -> torch.device | None:
    """A torch.device that exists here; None stays None."""
    if device is None:
        return None
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ConfigError(f"unknown device {device!r} ({e}); use 'cpu', 'cuda' or 'cuda:0'") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for, but this machine has no CUDA device; use 'cpu'")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(
            f"device {device!r} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)"
        )
    return dev


def _load_pretrained(name: str, device: torch.device, dtype: torch.dtype) -> Session:
    import transformers
    from transformers import AutoConfig

    from .models import ADAPTERS

    try:
        config = AutoConfig.from_pretrained(name, local_files_only=True)
    except Exception as e:
        raise ConfigError(
            f"no local checkpoint at {name!r} ({type(e).__name__}). lvsal-nb never downloads: pass a folder "
            "with config.json and weights, a hub id already in the local cache, or 'toy'"
        ) from e
    arch = (getattr(config, "architectures", None) or [""])[0]
    if arch not in ADAPTERS:
        raise UnsupportedModelError(f"{name} is a {arch or config.model_type}; supported: {sorted(ADAPTERS)}")
    cls = getattr(transformers, arch)
    model = cls.from_pretrained(name, local_files_only=True, dtype=dtype, attn_implementation="sdpa").to(
        device
    )
    try:
        processor = transformers.AutoProcessor.from_pretrained(name, local_files_only=True)
    except Exception:  # Qwen's processor wants torchvision for video: tokenizer + Pillow image processor
        from .models.qwen2_vl import ImageOnlyProcessor

        tok = transformers.AutoTokenizer.from_pretrained(name, local_files_only=True)
        improc = transformers.AutoImageProcessor.from_pretrained(name, local_files_only=True)
        processor = ImageOnlyProcessor(tok, improc)
    return Session(model.eval(), processor, model_id=name, device=device, dtype=dtype)
