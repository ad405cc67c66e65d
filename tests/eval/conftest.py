"""Shared by the evaluation tests: a tiny random LLaVA saved to disk (loaded by path, as users do),
and a run cut short after n results."""

import pytest
import torch

from lvsal_nb.models import tiny


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny-llava")
    model, proc = tiny.tiny_llava()
    model.save_pretrained(d)
    proc.save_pretrained(d)
    return str(d)


@pytest.fixture(scope="module", autouse=True)
def restore_threads():
    n = torch.get_num_threads()  # runs with threads=1 change a process-wide setting
    yield
    torch.set_num_threads(n)


class Interrupt:
    """An on_result callback that raises `Interrupt.Stop` at the n-th result: a run cut short.
    `seen` holds the keys of the results it was called with."""

    class Stop(Exception):
        pass

    def __init__(self, n: int):
        self.n, self.seen = n, []

    def __call__(self, rec: dict) -> None:
        self.seen.append(rec["key"])
        if len(self.seen) == self.n:
            raise self.Stop


@pytest.fixture
def interrupt():
    return Interrupt
