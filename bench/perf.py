"""Process-wide speed settings that the harness applies by itself.

Why this module exists: on glibc, PyTorch's large CPU tensors are served by
``mmap`` and returned to the kernel on every free, so a tight attack or
certification loop spends a large share of its time in page faults
(measured here: a PGD step on 1,000 MNIST images took 0.64 s with glibc's
defaults and 0.29 s with the thresholds raised). ``mallopt`` at start-up
does what ``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_`` would do,
without asking the user to export anything. Channels-last memory format
gave a further 1.5x on the small CNNs (0.19 s). ``tune_batch_size`` picks
the batch size of a throughput loop (randomized smoothing's sampling).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import statistics
import sys
from typing import Callable

import torch

# glibc's mallopt parameter numbers (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# 1 GiB: large enough that the activation and noise buffers of a batch stay
# on the heap and are reused instead of being mapped and unmapped each step.
_THRESHOLD_BYTES = 1 << 30

_tuned = False


def tune_allocator() -> bool:
    """Raise glibc's mmap and trim thresholds once per process.

    Returns True when the setting was applied. A no-op (False) on non-glibc
    platforms or when the user set either ``MALLOC_*_`` variable themselves.
    """
    global _tuned
    if _tuned:
        return True
    if not sys.platform.startswith("linux"):
        return False
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, _THRESHOLD_BYTES)) and bool(
            libc.mallopt(_M_TRIM_THRESHOLD, _THRESHOLD_BYTES)
        )
    except (OSError, AttributeError):
        return False
    _tuned = ok
    return ok


def fast_layout(module_or_tensor):
    """Move a 4-d image tensor or a conv model to channels-last memory format.

    Anything that is not a 4-d tensor or a module is returned unchanged, so
    callers can apply it without checking shapes.
    """
    if isinstance(module_or_tensor, torch.nn.Module):
        return module_or_tensor.to(memory_format=torch.channels_last)
    if isinstance(module_or_tensor, torch.Tensor) and module_or_tensor.dim() == 4:
        return module_or_tensor.contiguous(memory_format=torch.channels_last)
    return module_or_tensor


def resolve_device(name: str) -> torch.device:
    """Map ``auto|cpu|cuda`` to a torch device; ``auto`` picks CUDA when present."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but no CUDA device is available; use --device cpu or auto")
    return torch.device(name)


TUNE_ROUNDS = 3  # interleaved timing rounds (a median of 3)
TUNE_MARGIN = 1.10  # how much faster a smaller batch must be than every larger one to be chosen


def tune_batch_size(measure: Callable[[int, int], tuple[float, float]], cap: int, *, step: int,
                    max_step_seconds: float) -> int:
    """The largest batch size that fits, unless half of it is clearly faster.

    ``measure(size, images)`` runs ceil(images / size) batches of ``size`` and
    returns (images per second of wall time, compute seconds per batch).
    Sizes step, 2 step, 4 step, ... grow until a batch's compute time reaches
    ``max_step_seconds`` (a large model on a CPU stops early; compute time,
    e.g. CPU time per thread, because wall time on a busy machine would stop
    a small model early too), ``cap``, or CUDA memory runs out. The largest,
    L, is the default: each forward has a fixed cost (thread wake-ups and
    barriers, about 1 ms on two idle CPU cores and tens of ms on busy ones)
    that a large batch amortises best, and a large batch degrades least when
    load arrives after tuning. L / 2 replaces it (caches, memory bandwidth)
    only when faster by ``TUNE_MARGIN`` in the median over ``TUNE_ROUNDS``
    rounds of its rate relative to L's in the same round; the two take turns,
    so load that comes and goes hits both alike. Timing single small batches
    once let a quiet moment on a busy machine choose batch 100 for
    certification, which then ran at a third of the speed of batch 1,000.
    About 25,000 images for a small CNN (about a second on two idle CPU cores).
    """
    sizes: list[int] = []
    scores: dict[int, list[float]] = {}
    try:
        size = step
        while size <= cap:
            _, seconds = measure(size, size)  # a cold first batch: errs towards stopping early
            sizes.append(size)
            if seconds > max_step_seconds:
                break
            size *= 2
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
    try:
        candidates = sizes[-2:]
        scores = {s: [] for s in candidates}
        for round_ in range(TUNE_ROUNDS if len(candidates) > 1 else 0):
            order = candidates if round_ % 2 == 0 else candidates[::-1]
            rates = {s: measure(s, candidates[-1])[0] for s in order}
            for s in candidates:
                scores[s].append(rates[s] / rates[candidates[-1]])
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
    return pick_batch({s: statistics.median(v) for s, v in scores.items() if v}, default=sizes[-1] if sizes else step)


def pick_batch(scores: dict[int, float], default: int) -> int:
    """The largest size, unless a smaller one's score beats every larger one's by ``TUNE_MARGIN``."""
    if not scores:
        return default
    best = max(scores)
    for size in sorted(scores, reverse=True):
        if all(scores[size] >= TUNE_MARGIN * scores[larger] for larger in scores if larger > size):
            best = size
    return best
