"""The executor interface and its errors (no torch, no Ray: the CLI checks names here)."""
from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any, Optional, Protocol, Sequence

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd
    import torch

EXECUTORS = ("local", "ray")
RAY_INSTALL_HINT = "pip install 'bench[ray]'"


class ExecutorUnavailable(ValueError):
    """The chosen executor cannot run here (e.g. Ray is not installed); the message says how to fix it."""


class ClusterUnavailable(RuntimeError):
    """The cluster named by --ray-address (or $RAY_ADDRESS) cannot be joined; one line, exit 1."""


class ShardFailed(RuntimeError):
    """A shard of work failed for good (after its retries); the message names it in one line."""


class Executor(Protocol):
    """Runs one attack on given points, or certifies given points at one sigma."""

    name: str
    workers: int

    def run_attack(self, planned: Any, model: Any, x: "torch.Tensor", y: "torch.Tensor", *, seed: int,
                   batch_size: int = 500, indices: Optional[Sequence[int]] = None,
                   state_dir: Optional["Path"] = None) -> Any: ...

    def certify_points(self, model: Any, x: "torch.Tensor", y: "torch.Tensor", indices: Sequence[int],
                       settings: Any, *, records_file: "Path", fingerprint: str,
                       batch_size: Optional[int] = None) -> "pd.DataFrame": ...

    def close(self) -> None: ...


def ray_installed() -> bool:
    return importlib.util.find_spec("ray") is not None


def check_executor(name: str) -> str:
    """``name`` if it can run here, else ExecutorUnavailable naming the value and the choices (one line)."""
    if name not in EXECUTORS:
        raise ExecutorUnavailable(f"unknown executor {name!r}; valid choices: {', '.join(EXECUTORS)}")
    if name == "ray" and not ray_installed():
        raise ExecutorUnavailable(f"executor 'ray' needs Ray, which is not installed; install it with: {RAY_INSTALL_HINT}")
    return name
