"""Shared by the evaluation tests: a run cut short after n results (the tiny LLaVA on disk,
`model_dir`, is in tests/conftest.py)."""

import pytest
import torch


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
