"""Widget-test fixtures: an isolated marks store per test and small SGRS traces of the tiny LLaVA."""

import json

import pytest
import torch

import lvsal_nb as lv
from lvsal_nb.annotations import MarkStore

PROMPT = "describe this image ."


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Two CPU threads on two shared, busy cores made each tiny trace ~80x slower (OpenMP waits for
    a starved worker); the tiny models gain nothing from a second thread."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    """Never touch the user's marks: the default store lives in the test's temp dir."""
    monkeypatch.setenv("LVSAL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LVSAL_AUTHOR", "tester")
    return tmp_path / "data"


@pytest.fixture
def store(tmp_path):
    return MarkStore(tmp_path / "marks.sqlite3")


@pytest.fixture(scope="session")
def sgrs_trace(llava_session, image):
    """10 steps with SGRS at alpha=1: the saliency falls, so most steps reject candidates."""
    return llava_session.trace(image, PROMPT, max_new_tokens=10, sgrs=lv.SGRS(alpha=1.0), seed=0)


def _bundle_data(widget, source) -> dict:
    """The columns of `source` in the BokehModel's render bundle (what a new browser view shows)."""
    docs = json.loads(widget.render_bundle) if isinstance(widget.render_bundle, str) else widget.render_bundle
    for doc in docs["docs_json"].values():
        stack = list(doc["roots"])
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if node.get("id") == source.id and "attributes" in node:
                    return {k: v for k, v in node["attributes"]["data"]["entries"]}
                stack.extend(node.values())
            elif isinstance(node, (list, tuple)):  # CustomJS args are (name, model) tuples
                stack.extend(node)
    raise AssertionError("source not in the bundle")


@pytest.fixture
def bundle_data():
    """bundle_data(widget, source): the source's columns in a BokehModel's render bundle."""
    return _bundle_data
