"""TraceContext: the four objects every engine and decode loop of one trace reads, built once by
`Session.trace` / `Session.analyze` and passed down as one value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .models.base import Adapter, Prepared
    from .saliency.probe import Probe


@dataclass(frozen=True)
class TraceContext:
    """One trace's model side.

    Attributes:
        adapter: the model family's adapter (model, decoder, head, tokenizer).
        prepared: the prompt (spans, image grid ...); `prepared.n` positions.
        probe: the attention probe installed on the model for this trace.
        inputs: `prepared.inputs` on the model's device and dtype (input_ids [1, n] ...).
    """

    adapter: Adapter
    prepared: Prepared
    probe: Probe
    inputs: dict[str, torch.Tensor]

    @property
    def n(self) -> int:
        """Prompt positions (image included)."""
        return self.prepared.n

    @property
    def device(self) -> torch.device:
        """Where the inputs (and the model) are."""
        return self.inputs["input_ids"].device
