"""Shared by the evaluation tests: a tiny random LLaVA saved to disk (loaded by path, as users do)."""

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
