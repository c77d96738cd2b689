"""Calibration: how long each piece of a run takes here, measured on a few points and extrapolated.

An attack's time on a batch is not proportional to its points: an
iterative attack pays a fixed cost per step (kernel launches, EOT loops,
library bookkeeping) however many points are still active, so timing a few
points and multiplying overestimates a large batch many times over (on this
2-core machine 10 points of EOT-PGD cost 9 s and 40 points 10 s). So the
calibration times the attack on ``c`` points *and counts the rows* that
flow through each model (forward rows, and rows that are back-propagated)
with a hook on the model's first layer; a batch of ``B`` points is then
estimated as the measured time plus ``(B / c - 1)`` times the marginal cost
of those rows, the marginal cost per row being measured on the model itself
(forward and forward+backward at two batch sizes). Certification is timed
on a point or two at the run's sample size.
"""
from __future__ import annotations

import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

import torch
from torch import nn

from ..perf import fast_layout


@dataclass
class RowCount:
    """Rows through one model's first layer: all forwards, and those whose gradient was taken."""

    forward: int = 0
    backward: int = 0


@dataclass(frozen=True)
class RowCost:
    """Marginal seconds per row of one model: forward, and the extra of a backward."""

    forward: float
    backward: float


@dataclass
class Timing:
    """One calibrated piece of work: its time on ``points`` points and the rows it pushed per model."""

    points: int
    seconds: float
    rows: dict[int, RowCount] = field(default_factory=dict)  # id(model) -> rows

    def estimate(self, batch: int, costs: dict[int, RowCost]) -> float:
        """Seconds for one batch of ``batch`` points: the measured time plus the extra rows' marginal cost."""
        if self.points <= 0:
            return 0.0
        scale = batch / self.points - 1.0
        extra = sum(r.forward * costs[m].forward + r.backward * costs[m].backward
                    for m, r in self.rows.items() if m in costs)
        return max(0.0, self.seconds + scale * extra) if scale > 0 else self.seconds * batch / self.points


def _first_layer(model: nn.Module) -> nn.Module:
    """The first module with its own parameters: every forward of this model passes through it."""
    for module in model.modules():
        if any(True for _ in module.parameters(recurse=False)):
            return module
    return model


@contextmanager
def counting(models: list[nn.Module]) -> Iterator[dict[int, RowCount]]:
    """Count the rows through each model's first layer (forward) and back through it (backward)."""
    counts = {id(m): RowCount() for m in models}
    with ExitStack() as stack:
        for model in models:
            count = counts[id(model)]

            def hook(module: nn.Module, inputs: Any, output: Any, count: RowCount = count) -> None:
                if not isinstance(output, torch.Tensor) or output.dim() == 0:
                    return
                rows = int(output.shape[0])
                count.forward += rows
                if output.requires_grad:
                    output.register_hook(lambda grad, rows=rows, count=count: setattr(count, "backward", count.backward + rows))

            stack.callback(_first_layer(model).register_forward_hook(hook).remove)
        yield counts


def time_work(work: Callable[[], Any], models: list[nn.Module], points: int) -> Timing:
    """Run ``work`` once, timing it and counting its rows through ``models``."""
    with counting(models) as counts:
        start = time.perf_counter()
        work()
        seconds = time.perf_counter() - start
    return Timing(points, seconds, counts)


def _best_of(repeats: int, fn: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def row_cost(model: nn.Module, x: torch.Tensor, sizes: tuple[int, int] = (32, 256), repeats: int = 3) -> RowCost:
    """Marginal seconds per first-layer row: the slope between two batch sizes, forward and forward+backward.

    Per first-layer row, so a model that runs its network several times per
    forward (squeezers, EOT inside the forward) is priced consistently with
    the rows the calibration counts.
    """
    device = next(model.parameters()).device
    small, large = (fast_layout(x[:s].to(device)) for s in sizes)

    def forward(batch: torch.Tensor) -> None:
        with torch.no_grad():
            model(batch)

    surface = getattr(model, "differentiable_forward", model)  # what gradient attacks differentiate

    def backward(batch: torch.Tensor) -> None:
        surface(batch.clone().requires_grad_(True)).sum().backward()

    costs = []
    for fn in (forward, backward):
        with counting([model]) as counts:
            fn(small)
            rows_small = counts[id(model)].forward
            fn(large)
            rows_large = counts[id(model)].forward - rows_small
        slope = (_best_of(repeats, lambda: fn(large)) - _best_of(repeats, lambda: fn(small))) / max(1, rows_large - rows_small)
        costs.append(max(0.0, slope))
    return RowCost(forward=costs[0], backward=max(0.0, costs[1] - costs[0]))


def spread(positions: list[int], count: int) -> list[int]:
    """``count`` of ``positions`` spread evenly (test sets may be sorted by class)."""
    if count >= len(positions):
        return list(positions)
    return [positions[i * len(positions) // count] for i in range(count)]


def batch_seconds(timing: Timing, points: int, batch_size: int, costs: dict[int, RowCost]) -> list[float]:
    """Estimated seconds of each batch of an attack on ``points`` points (batches as the loop forms them)."""
    sizes = [min(batch_size, points - lo) for lo in range(0, points, batch_size)]
    return [timing.estimate(size, costs) for size in sizes]


def wall_seconds(batches: list[float], workers: int, overhead: float = 0.0) -> float:
    """Wall time of independent batches on ``workers`` (longest first onto the least loaded worker)."""
    loads = [0.0] * max(1, workers)
    for seconds in sorted(batches, reverse=True):
        k = loads.index(min(loads))
        loads[k] += seconds + overhead
    return max(loads) if batches else 0.0


def models_of(model: nn.Module, attack: Optional[Any] = None) -> list[nn.Module]:
    """The model and, for a transfer attack, its source model: whatever the attack runs."""
    models = [model]
    source = getattr(attack, "source", None)
    if isinstance(source, nn.Module):
        models.append(source)
    return models
