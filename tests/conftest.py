"""Shared fixtures: the embedded data once per session, small trained models, an isolated BENCH_HOME."""
from __future__ import annotations

import os

os.environ.setdefault("BENCH_PROGRESS", "0")

import bench  # noqa: E402,F401  (first: bench sets its OpenMP wait policy before torch loads)
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def mnist5k():
    from bench.data import load_dataset

    return load_dataset("mnist5k")


@pytest.fixture(scope="session")
def plain_model(mnist5k):
    """The default `plain` CNN trained on all 4,000 training digits (a few seconds)."""
    from bench.registry import create_defense

    model = create_defense("plain", epochs=3).fit(mnist5k)
    return model.eval()


@pytest.fixture()
def bench_home(tmp_path, monkeypatch):
    """An empty BENCH_HOME so nothing a test writes lands in the repository."""
    monkeypatch.setenv("BENCH_HOME", str(tmp_path))
    return tmp_path
