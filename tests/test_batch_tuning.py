"""bench.perf.tune_batch_size on synthetic throughput curves (no timing: the rate functions are exact)."""
from __future__ import annotations

import pytest

from bench.perf import TUNE_MARGIN, TUNE_ROUNDS, pick_batch, tune_batch_size


class Curve:
    """seconds(batch) = overhead + per_image * batch * slowdown(batch); records what the tuner ran."""

    def __init__(self, overhead: float, per_image: float, slowdown=lambda size: 1.0) -> None:
        self.overhead, self.per_image, self.slowdown = overhead, per_image, slowdown
        self.calls: list[tuple[int, int]] = []

    def seconds(self, size: int) -> float:
        return self.overhead + self.per_image * size * self.slowdown(size)

    def __call__(self, size: int, images: int) -> tuple[float, float]:
        self.calls.append((size, images))
        return size / self.seconds(size), self.seconds(size)


def test_per_batch_overhead_makes_the_largest_batch_win():
    curve = Curve(overhead=0.1, per_image=3e-5)  # a busy machine: 100 ms per forward
    assert tune_batch_size(curve, 3200, step=100, max_step_seconds=1.0) == 3200


def test_smaller_batch_wins_only_when_clearly_faster():
    # 3200 runs at 20% of its ideal speed per image more than 1600 (memory bandwidth): 1600 is chosen.
    slow_top = Curve(0.001, 3e-5, lambda size: 1.25 if size == 3200 else 1.0)
    assert tune_batch_size(slow_top, 3200, step=100, max_step_seconds=1.0) == 1600
    # Within the margin the larger batch stays.
    near = Curve(0.001, 3e-5, lambda size: 1.05 if size == 3200 else 1.0)
    assert tune_batch_size(near, 3200, step=100, max_step_seconds=1.0) == 3200


def test_growth_stops_at_the_step_budget_and_the_cap():
    big_model = Curve(0.0, 2e-3)  # 0.2 s per 100 images: 800 takes 1.6 s, growth stops there
    assert tune_batch_size(big_model, 12800, step=100, max_step_seconds=1.0) == 800
    assert tune_batch_size(Curve(0.0, 1e-6), 400, step=100, max_step_seconds=1.0) == 400


def test_the_two_largest_sizes_are_timed_in_rounds_over_the_largest_batch():
    curve = Curve(0.001, 3e-5)
    tune_batch_size(curve, 3200, step=100, max_step_seconds=1.0)
    growth, rounds = curve.calls[:6], curve.calls[6:]
    assert growth == [(s, s) for s in (100, 200, 400, 800, 1600, 3200)]
    assert sorted(rounds) == sorted([(1600, 3200), (3200, 3200)] * TUNE_ROUNDS)  # 1600 runs two batches per timing


def test_a_size_beyond_memory_is_never_chosen():
    import torch

    class OutOfMemoryAbove(Curve):
        def __call__(self, size, images):
            if size > 800:
                raise torch.cuda.OutOfMemoryError("synthetic")
            return super().__call__(size, images)

    assert tune_batch_size(OutOfMemoryAbove(0.001, 3e-5), 12800, step=100, max_step_seconds=1.0) == 800


@pytest.mark.parametrize("scores, expected", [
    ({800: 1.0, 1600: 1.0, 3200: 1.0}, 3200),
    ({1600: TUNE_MARGIN * 1.01, 3200: 1.0}, 1600),
    ({1600: TUNE_MARGIN * 0.99, 3200: 1.0}, 3200),
    ({800: 1.15, 1600: 1.10, 3200: 1.0}, 1600),  # 800 does not beat 1600 by the margin
    ({}, 100),
])
def test_pick_batch(scores, expected):
    assert pick_batch(scores, default=100) == expected
