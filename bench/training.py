"""One seeded, deterministic training loop (Adam, mini-batches, progress bar) for every defense.

Determinism: the same config and seed give bit-identical weights on the same
machine, torch build, device and thread count. Seeding alone is not enough:

- every defense seeds the global generator *before* building its network
  (the weight init draws from it; an unseeded init made each process's
  first training differ), and ``train`` seeds it again before the first batch;
- ``deterministic_training`` turns off oneMKL's dynamic thread count (Intel's
  documented condition for run-to-run reproducibility), asks PyTorch for
  deterministic kernels (warning where an op has none) and, on CUDA, sets
  cuDNN to deterministic and cuBLAS to a fixed workspace (PyTorch's
  "Reproducibility" notes; untested here: no GPU).

CPU reductions (conv weight gradients in oneDNN, GEMMs in oneMKL) split work
by thread, so a different ``torch.get_num_threads()`` gives different bits.
"""
from __future__ import annotations

import contextlib
import os
import time
from typing import Callable, Iterator, Optional

import torch
import torch.utils.deterministic
from torch import nn

from .config import TrainConfig
from .perf import fast_layout
from .progress import progress

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]

# cuBLAS reads this when a process creates its first handle, so it is set at import (PyTorch's
# reproducibility notes: ":4096:8" or ":16:8"); a value the user set wins.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global generators and return a CPU generator for shuffling."""
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


@contextlib.contextmanager
def deterministic_training() -> Iterator[None]:
    """Deterministic kernels for the duration of a training; the previous settings are restored after.

    ``torch.set_num_threads`` with the current count is how PyTorch turns
    oneMKL's dynamic threading off (it calls ``mkl_set_dynamic(false)``); the
    count itself is unchanged. ``warn_only``: an op without a deterministic
    kernel (none in the built-in defenses) warns instead of stopping a plugin's
    training. PyTorch would also fill every new tensor with NaN in this mode;
    that only exposes kernels that read memory they never wrote, and cost 3-6%
    of a training step here, so it is left off.
    """
    fill = torch.utils.deterministic
    previous = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        fill.fill_uninitialized_memory,
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    torch.set_num_threads(torch.get_num_threads())
    torch.use_deterministic_algorithms(True, warn_only=True)
    fill.fill_uninitialized_memory = False
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        fill.fill_uninitialized_memory = previous[2]
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = previous[3], previous[4]


def train(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    desc: str = "train",
    transform: Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = None,
) -> float:
    """Train ``model`` in place with Adam; return the seconds it took.

    ``transform(x, y)``, when given, replaces each batch before the loss (for
    example with adversarial or noisy examples). Tensors are used on the
    device they already live on.
    """
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(f"epochs, batch_size and lr must be positive, got {epochs}, {batch_size}, {lr}")
    generator = seed_everything(seed)
    model = fast_layout(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    start = time.perf_counter()
    n = len(x)
    steps = (n + batch_size - 1) // batch_size
    with deterministic_training(), progress(total=epochs * steps, desc=desc, unit="batch") as bar:
        for epoch in range(epochs):
            order = torch.randperm(n, generator=generator).to(x.device)
            model.train()
            for i in range(steps):
                idx = order[i * batch_size : (i + 1) * batch_size]
                xb, yb = fast_layout(x[idx]), y[idx]
                if transform is not None:
                    model.eval()
                    xb = transform(xb, yb)
                    model.train()
                loss = loss_fn(model, xb, yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
    model.eval()
    return time.perf_counter() - start


def train_from_config(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn,
    config: TrainConfig,
    *,
    desc: str,
    transform: Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = None,
    epochs: Optional[int] = None,
    seed_offset: int = 0,
) -> float:
    """``train`` with the budget a defense's ``TrainConfig`` holds: the call every built-in defense makes.

    ``epochs`` overrides the config's (e.g. a teacher's own budget);
    ``seed_offset`` gives a second network of one defense its own seed.
    """
    return train(
        model,
        x,
        y,
        loss_fn,
        epochs=config.epochs if epochs is None else epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        seed=config.seed + seed_offset,
        desc=desc,
        transform=transform,
    )


@torch.inference_mode()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Deployed predictions (argmax of the forward), batched, on the model's device."""
    model.eval()
    device = next((p.device for p in model.parameters()), x.device)
    out = [model(fast_layout(x[i : i + batch_size].to(device))).argmax(1).cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    return float((predict(model, x, batch_size) == y.cpu()).float().mean()) if len(x) else float("nan")
