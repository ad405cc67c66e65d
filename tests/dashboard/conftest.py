import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: make synth importable
from synth import make_run  # noqa: E402


@pytest.fixture
def run(tmp_path):
    """A small synthetic CHAIR run (12 images x greedy, sgrs) in the real file format."""
    return make_run(tmp_path / "run", n_images=12, methods=("greedy", "sgrs"), seed=3)
