"""Shared fixtures: tiny random models of the real architectures (float64 for exactness tests)."""

import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from lvsal_nb.models import tiny

# Tiny models: one thread is fastest and avoids oversubscribing a shared 2-core machine.
torch.set_num_threads(1)

FAMILIES = ("llava", "qwen2_vl", "qwen2_5_vl")
PROMPT = "describe this image ."


@pytest.fixture(scope="session")
def image():
    return Image.fromarray((np.random.RandomState(0).rand(60, 80, 3) * 255).astype(np.uint8))


@pytest.fixture(scope="session", params=FAMILIES)
def family(request):
    return request.param


_CACHE: dict = {}


def tiny_session(family: str, dtype=torch.float64):
    """A Session over a tiny random model; cached per (family, dtype) — tests must not mutate it."""
    import lvsal_nb as lv

    key = (family, dtype)
    if key not in _CACHE:
        model, proc = getattr(tiny, f"tiny_{family}")(dtype=dtype)
        _CACHE[key] = lv.load(model, proc, device="cpu", dtype=dtype)
    return _CACHE[key]


@pytest.fixture(scope="session")
def session(family):
    return tiny_session(family)


@pytest.fixture(scope="session")
def llava_session():
    return tiny_session("llava")


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> str:
    """A tiny random LLaVA saved to disk (model + processor), loaded by path as users do; read-only."""
    d = tmp_path_factory.mktemp("tiny-llava")
    model, proc = tiny.tiny_llava()
    model.save_pretrained(d)
    proc.save_pretrained(d)
    return str(d)


@pytest.fixture(scope="session")
def make_session():
    return tiny_session


@pytest.fixture
def sdpa_masks(monkeypatch):
    """Every attn_mask that F.scaled_dot_product_attention receives while the test runs, as SDPA
    sees it (a boolean mask converted the way SDPA converts it)."""
    seen = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def spy(*args, attn_mask=None, **kwargs):
        if attn_mask is not None and attn_mask.dtype == torch.bool:
            seen.append(torch.where(attn_mask, 0.0, -torch.inf))
        elif attn_mask is not None:
            seen.append(attn_mask)
        return sdpa(*args, attn_mask=attn_mask, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    return seen


def mem_efficient_aligned(mask: torch.Tensor) -> bool:
    """PyTorch's `aligned_tensor<8>` (aten/src/ATen/native/transformers/attention.cpp): a mask failing
    it is padded into a copy by the CUDA memory-efficient kernel in every call."""
    return mask.stride(-1) == 1 and all(s % 8 == 0 for s in mask.stride()[:-1])


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 64 KiB tmpfs, for real full-disk writes (needs root and mount permission; skipped elsewhere)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)
