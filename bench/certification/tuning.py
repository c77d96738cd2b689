"""Picking the sampling batch size by timing the model itself (once per architecture and process).

Split from ``smoothing`` so that file keeps to the sampling and Cohen et
al.'s algorithms; results never depend on the batch size (noise is drawn in
fixed blocks), only the speed does.
"""
from __future__ import annotations

import time
from typing import Any

import torch

_CPU_MAX_BATCH = 3200  # 6400 ran at half the speed of 3200 here (memory, not caches, by then)
_CUDA_MAX_BATCH = 12800
_TUNE_STEP_SECONDS = 1.0  # stop growing the batch once one step takes longer than this


def tune_batch_size(smoothed: Any, point: torch.Tensor, block: int) -> int:
    """The fastest batch size of ``block`` (100), 200, 400, ... rows, measured on a SmoothedClassifier's model.

    Larger batches amortise the fixed cost of a forward (kernel launches,
    thread wake-ups: about 1 ms on two idle CPU cores, over 100 ms on busy
    ones) until caches or memory push back. Sizes grow until one step
    takes ``_TUNE_STEP_SECONDS`` (a large model on a CPU stops early), the
    cap, or the memory limit. Three passes time every size and each keeps
    its fastest time, so a first-touch allocation or a busy spell of a
    neighbour process does not decide; within 3% the larger size wins.
    About a second for a small CNN on two CPU cores, once per
    architecture and process.
    """
    cap = _CUDA_MAX_BATCH if smoothed.device.type == "cuda" else _CPU_MAX_BATCH
    gen = torch.Generator(device=smoothed.device)
    gen.manual_seed(0)
    sync = torch.cuda.synchronize if smoothed.device.type == "cuda" else (lambda: None)
    shape = tuple(point.shape[1:])

    def seconds(size: int) -> float:
        buf = smoothed._buffer_for(shape, size)
        start = time.perf_counter()
        smoothed._classify(smoothed._noisy_batch(point, [(0, block)] * (size // block), [gen], buf))
        sync()
        return time.perf_counter() - start

    best: dict[int, float] = {}
    with torch.inference_mode():
        try:
            size = block
            while size <= cap:  # first pass: which sizes are worth timing
                best[size] = seconds(size)
                if best[size] > _TUNE_STEP_SECONDS:
                    break
                size *= 2
            for _ in range(2):  # two more passes, round-robin so that a busy spell hits every size alike
                for size in best:
                    best[size] = min(best[size], seconds(size))
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
        finally:
            smoothed._buffer = None  # the next call allocates exactly what it needs
    if not best:
        return block
    rate = {size: size / max(t, 1e-9) for size, t in best.items()}
    fastest = max(rate.values())
    return max(size for size in rate if rate[size] >= 0.97 * fastest)
