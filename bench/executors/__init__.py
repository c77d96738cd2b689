"""Executors: where the battery's attacks and the certification's points run.

An executor runs one planned attack on the points it is given, or certifies
a list of points at one sigma, and returns exactly what the local loops
return: ``run_attack(planned, model, x, y, *, seed, batch_size, indices,
state_dir) -> AttackOutcome`` and ``certify_points(model, x, y, indices,
settings, *, records_file, fingerprint, batch_size) -> DataFrame``. Which
attacks run, on which points, is decided by the caller (``run_battery``,
``certify_sigmas``); an executor only decides where the work happens.

``local`` runs in this process (today's behaviour); ``ray`` cuts the work
into shards (whole attack batches, groups of certification points) and runs
them as Ray tasks on a local or remote cluster (Moritz et al., "Ray: A
Distributed Framework for Emerging AI Applications", OSDI 2018,
arXiv:1712.05889). Results are identical sample for sample, because every
batch is seeded by (run seed, test index of its first sample) and every
certified point by (seed, sigma, index, stream), wherever it runs.

No torch or Ray here: the CLI checks names against this module.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Optional

from .base import EXECUTORS, RAY_INSTALL_HINT, Executor, ClusterUnavailable, ExecutorUnavailable, ShardFailed, check_executor, ray_installed

__all__ = ["EXECUTORS", "RAY_INSTALL_HINT", "ClusterUnavailable", "Executor", "ExecutorUnavailable", "ShardFailed", "check_executor",
           "make_executor", "open_executor", "ray_installed"]


def make_executor(name: str = "local", *, address: Optional[str] = None, **options: Any) -> Executor:
    """The executor called ``name``; ``address`` (ray only): a cluster, else RAY_ADDRESS, else a local one.

    ``options`` go to the Ray executor (``device``, ``num_cpus``, ``max_retries``); the local one needs none.
    """
    check_executor(name)
    if name == "local":
        from .local import LocalExecutor

        return LocalExecutor()
    from .ray_executor import RayExecutor

    return RayExecutor(address=address, **options)


@contextmanager
def open_executor(name: str = "local", *, address: Optional[str] = None, **options: Any) -> Iterator[Executor]:
    """An executor for the duration of a run (a Ray cluster this started is shut down after)."""
    executor = make_executor(name, address=address, **options)
    try:
        yield executor
    finally:
        executor.close()
