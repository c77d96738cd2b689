"""Picking the sampling batch size by timing the model itself (once per architecture and process).

Split from ``smoothing`` so that file keeps to the sampling and Cohen et
al.'s algorithms; results never depend on the batch size (noise is drawn in
fixed blocks), only the speed does. The choice itself (the largest batch
that fits unless half of it is clearly faster, in interleaved rounds) is
``bench.perf.tune_batch_size``; this module measures a SmoothedClassifier.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable

import torch

from ..perf import tune_batch_size as choose_batch_size

_CPU_MAX_BATCH = 3200  # 6400 ran at half the speed of 3200 here (memory, not caches, by then)
_CUDA_MAX_BATCH = 12800
_TUNE_STEP_SECONDS = 1.0  # stop growing the batch once one batch's compute takes longer than this


def tune_batch_size(smoothed: Any, point: torch.Tensor, block: int) -> int:
    """The largest batch size that fits, unless a smaller one is clearly faster on this model."""
    cap = _CUDA_MAX_BATCH if smoothed.device.type == "cuda" else _CPU_MAX_BATCH
    try:
        with torch.inference_mode():
            return choose_batch_size(rate_meter(smoothed, point, block), cap, step=block,
                                     max_step_seconds=_TUNE_STEP_SECONDS)
    finally:
        smoothed._buffer = None  # the next call allocates exactly what it needs


def rate_meter(smoothed: Any, point: torch.Tensor, block: int) -> Callable[[int, int], tuple[float, float]]:
    """``measure(size, images)``: (images per second, compute seconds per batch) of noisy forwards.

    Compute seconds: the process's CPU time per thread on a CPU (what a
    batch costs on idle cores, whatever the load), wall time on CUDA.
    """
    gen = torch.Generator(device=smoothed.device)
    gen.manual_seed(0)
    cuda = smoothed.device.type == "cuda"
    shape = tuple(point.shape[1:])

    def measure(size: int, images: int) -> tuple[float, float]:
        steps = max(1, math.ceil(images / size))
        buf = smoothed._buffer_for(shape, size)
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(steps):
            smoothed._classify(smoothed._noisy_batch(point, [(0, block)] * (size // block), [gen], buf))
        if cuda:
            torch.cuda.synchronize(smoothed.device)
        wall = max(time.perf_counter() - start, 1e-9)
        compute = wall if cuda else (time.process_time() - cpu) / max(1, torch.get_num_threads())
        return steps * size / wall, compute / steps

    return measure
