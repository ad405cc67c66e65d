"""One adapter per model family; `adapter_for` picks it from the model's class."""

from __future__ import annotations

from ..errors import UnsupportedModelError
from .base import Adapter, Prepared
from .llava import LlavaAdapter
from .qwen2_vl import Qwen2VLAdapter, Qwen25VLAdapter
from .toy import ToyAdapter

ADAPTERS: dict[str, type[Adapter]] = {
    "LlavaForConditionalGeneration": LlavaAdapter,
    "Qwen2VLForConditionalGeneration": Qwen2VLAdapter,
    "Qwen2_5_VLForConditionalGeneration": Qwen25VLAdapter,
}


def adapter_for(model, processor=None, family: str | None = None) -> Adapter:
    """The adapter for `model` (by class name), or by `family` ("llava", "qwen2_vl", "qwen2_5_vl", "toy")."""
    if family is not None:
        by_family = {a.family: a for a in (*ADAPTERS.values(), ToyAdapter)}
        if family not in by_family:
            raise UnsupportedModelError(f"unknown family {family!r}; known: {sorted(by_family)}")
        return by_family[family](model, processor)
    name = type(model).__name__
    if name not in ADAPTERS:
        raise UnsupportedModelError(
            f"{name} is not supported; lvsal-nb traces {sorted(ADAPTERS)} "
            "(load the checkpoint with one of these classes, or add an adapter in lvsal_nb/models/)"
        )
    return ADAPTERS[name](model, processor)


__all__ = ["ADAPTERS", "Adapter", "Prepared", "adapter_for"]
