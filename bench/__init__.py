"""bench: a robustness benchmarking harness (registry -> attacks/certification -> leaderboards)."""
import os as _os

# OpenMP threads that spin-wait between parallel regions starve each other when the
# cores are shared with other work (measured here on a busy 2-core machine: one
# forward+backward of 10 MNIST images through the small CNN took 140-260 ms with
# libgomp's default active wait, 4.5 ms with passive wait; at batch 500 the two are
# equal). libgomp reads this when torch loads it, so it must be set before torch is
# imported; a value the user set wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .registry import create_defense, list_defenses, register_defense

__all__ = ["create_defense", "evaluate", "list_defenses", "register_defense"]
__version__ = "0.1.0"


def __getattr__(name: str):
    """``bench.evaluate`` loads on first use (PEP 562), so ``import bench`` stays free of torch."""
    if name == "evaluate":
        from .api import evaluate

        return evaluate
    raise AttributeError(f"module 'bench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
