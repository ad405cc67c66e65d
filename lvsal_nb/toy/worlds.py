"""The toy worlds side by side: "v1" (the original captions) and "v2" (list + recap captions).

A world fixes the caption template the model is trained on, the tokenizer's word list and the
folder of the shipped weights. v1's scenes, images, POPE questions and model are unchanged; v2
draws longer scenes from the same generator (1-8 objects, `make_scene(..., long_lists=True)`) so a
recap word's source lies up to ~45 tokens back, and its model is trained from scratch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lvsal_nb.errors import ConfigError

_HERE = Path(__file__).resolve().parent
# The world `lvsal_nb.load("toy")` loads ("toy-v1" / "toy-v2" name one explicitly). Switching it to
# "v2" changes every "toy" result: recorded outputs, the demo, notebooks (see RESULTS.md).
DEFAULT_WORLD = "v1"


@dataclass(frozen=True)
class World:
    """name; caption(scene) -> str; extra_words: appended to v1's vocabulary; asset_dir: weights;
    long_lists: its scenes hold 1-8 objects (`make_scene(..., long_lists=True)`), not v1's 1-6."""

    name: str
    caption: Callable
    extra_words: tuple[str, ...]
    asset_dir: Path
    long_lists: bool = False

    def scene(self, seed_or_rng):
        """This world's scene for an int seed or a numpy Generator (`lvsal_nb.toy.scenes.make_scene`)."""
        from lvsal_nb.toy.scenes import make_scene

        return make_scene(seed_or_rng, long_lists=self.long_lists)


def get_world(name: str) -> World:
    """The world called `name` ("v1" or "v2"); ConfigError for anything else."""
    from lvsal_nb.toy.recap import NEW_WORDS, recap_caption
    from lvsal_nb.toy.scenes import caption

    worlds = {
        "v1": World("v1", caption, (), _HERE / "assets"),
        "v2": World("v2", recap_caption, NEW_WORDS, _HERE / "assets_v2", long_lists=True),
    }
    if name not in worlds:
        raise ConfigError(f"Unknown toy world {name!r}; use one of {sorted(worlds)}.")
    return worlds[name]


def world_tokenizer(name: str):
    """A fresh tokenizer for world `name`: v1's words, then the world's extra words (v1 ids unchanged)."""
    from lvsal_nb.toy.tokenizer import build_tokenizer

    return build_tokenizer(extra_words=get_world(name).extra_words)
