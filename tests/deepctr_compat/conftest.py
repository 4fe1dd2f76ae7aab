"""DeepCTR-Torch's multi-task tests write their checkpoints and saved models to the working directory: run each
in its own temporary directory, with one torch thread (the machine is shared)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
