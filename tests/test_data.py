"""Datasets: the embedded split, and the torchvision path on IDX files the test writes."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.data import DatasetError, DatasetUnavailableError, load_dataset, stratified_split, threat_model


def test_mnist5k_split_is_stratified_deterministic_and_scaled(mnist5k):
    again = load_dataset("mnist5k")
    assert torch.equal(mnist5k.x_test, again.x_test) and torch.equal(mnist5k.y_train, again.y_train)
    assert mnist5k.x_train.shape == (4000, 1, 28, 28) and mnist5k.x_test.shape == (1000, 1, 28, 28)
    assert mnist5k.x_train.dtype == torch.float32
    assert float(mnist5k.x_train.min()) == 0.0 and float(mnist5k.x_train.max()) == 1.0
    assert torch.bincount(mnist5k.y_test).tolist() == [100] * 10
    assert torch.bincount(mnist5k.y_train).tolist() == [400] * 10
    # The first 100 test points (what `--n-test 100` evaluates) cover every class.
    assert len(torch.unique(mnist5k.y_test[:100])) == 10
    assert mnist5k.threat.linf == 0.3 and mnist5k.threat.l2 == 2.0


def test_stratified_split_depends_only_on_seed():
    y = np.repeat(np.arange(3), 10)
    a = stratified_split(y, 2, seed=7)
    b = stratified_split(y, 2, seed=7)
    c = stratified_split(y, 2, seed=8)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not np.array_equal(a[1], c[1])
    assert set(a[0]).isdisjoint(a[1]) and len(a[0]) + len(a[1]) == 30


def test_threat_models():
    assert threat_model("cifar10").linf == pytest.approx(8 / 255) and threat_model("cifar10").l2 == 0.5
    assert threat_model("fashion-mnist").linf == 0.3
    with pytest.raises(DatasetError, match="unknown dataset 'imagenet'; valid choices: mnist5k"):
        load_dataset("imagenet")


def _write_idx(path: Path, array: np.ndarray) -> None:
    """IDX: zero bytes, type 0x08 (ubyte), number of dims, big-endian sizes, then data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_torchvision_loader_reads_idx_files(tmp_path, name, folder):
    rng = np.random.RandomState(0)
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    train_images = rng.randint(0, 256, size=(12, 28, 28))
    test_images = rng.randint(0, 256, size=(5, 28, 28))
    _write_idx(raw / "train-images-idx3-ubyte", train_images)
    _write_idx(raw / "train-labels-idx1-ubyte", np.arange(12) % 10)
    _write_idx(raw / "t10k-images-idx3-ubyte", test_images)
    _write_idx(raw / "t10k-labels-idx1-ubyte", np.arange(5))
    data = load_dataset(name, tmp_path)
    assert data.x_train.shape == (12, 1, 28, 28) and data.x_test.shape == (5, 1, 28, 28)
    assert torch.allclose(data.x_train[3, 0], torch.from_numpy(train_images[3] / 255.0).float())
    assert data.y_test.tolist() == [0, 1, 2, 3, 4]
    assert data.num_classes == 10 and data.threat.linf == 0.3


def test_missing_files_and_no_network_give_one_clear_line(tmp_path, monkeypatch):
    import torchvision

    def no_network(self, *args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", no_network)
    with pytest.raises(DatasetUnavailableError) as info:
        load_dataset("mnist", tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path / "MNIST" / "raw") in message and "train-images-idx3-ubyte" in message
    assert "--dataset mnist5k" in message
