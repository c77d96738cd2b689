"""The Ray executor: shards of an attack or of a certification run as Ray tasks, records written as they finish.

The model goes into Ray's object store once (``ray.put``) and every task
reads it from there; each task asks for one CPU, or one GPU when the
cluster has GPUs. A worker that dies mid-shard (killed, out of memory, a
lost node) is retried by Ray up to ``max_retries`` times; an exception the
shard itself raises is not retried (it would raise again: every shard is
seeded). The driver saves each finished shard at once (attack batches into
the per-batch state files, certification rows into the records CSV), so a
killed driver resumes where it stopped, and a shard that fails for good
fails the run with one line naming it after the other shards have finished
and been saved. Ray: Moritz et al., OSDI 2018, arXiv:1712.05889.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import pandas as pd
import torch

from ..attacks.base import AttackOutcome
from ..attacks.execute import batch_bounds, outcome_of
from ..attacks.plan import PlannedAttack
from ..attacks.store import BatchResult, load_batch, save_batch
from ..certification.certify import CertifySettings
from ..certification.records import format_key, merge_records, read_records, write_records
from ..progress import progress
from .base import RAY_INSTALL_HINT, ClusterUnavailable, ExecutorUnavailable, ShardFailed
from .shards import attack_shards, certify_shards, run_attack_shard, run_certify_shard

MAX_RETRIES = 3  # attempts after a worker dies mid-shard


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ExecutorUnavailable(f"executor 'ray' needs Ray, which is not installed; install it with: "
                                  f"{RAY_INSTALL_HINT}") from None
    return ray


def local_runtime_env() -> dict[str, Any]:
    """Workers of a local cluster import this very ``bench`` (the driver's), not another installed copy."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in [root, os.environ.get("PYTHONPATH", "")] if p)
    return {"env_vars": {"PYTHONPATH": path}}


def start_local_cluster(num_cpus: Optional[int] = None) -> None:
    """``ray.init`` of a local cluster whose workers import this ``bench`` (tests and the executor use it)."""
    ray = _import_ray()
    ray.init(num_cpus=num_cpus, include_dashboard=False, runtime_env=local_runtime_env(), logging_level="WARNING")


def _noop() -> None:
    return None


def _one_line(exc: BaseException) -> str:
    """The root cause of a failed task in one line (Ray's own message carries the remote traceback)."""
    cause = getattr(exc, "cause", None) or exc
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}".rstrip(": ")


class RayExecutor:
    """Shards on a Ray cluster: ``address``, else RAY_ADDRESS, else a local cluster (shut down by ``close``)."""

    name = "ray"

    def __init__(self, address: Optional[str] = None, *, num_cpus: Optional[int] = None, device: str = "auto",
                 max_retries: int = MAX_RETRIES, gpus_per_task: Optional[float] = None) -> None:
        self._ray = ray = _import_ray()
        self._started = False
        if not ray.is_initialized():
            address = address or os.environ.get("RAY_ADDRESS") or None
            if address is None:
                start_local_cluster(num_cpus)
            else:
                try:
                    ray.init(address=address, logging_level="WARNING")
                except (ValueError, ConnectionError, RuntimeError) as exc:  # one line, not Ray's traceback
                    raise ClusterUnavailable(f"cannot join the Ray cluster at {address!r}: {str(exc).splitlines()[0]}; "
                                      "check the address (or $RAY_ADDRESS) and that the cluster is up") from None
            self._started = True
        resources = ray.cluster_resources()
        gpus = float(resources.get("GPU", 0))
        if gpus_per_task is None:  # a task with no GPU sees none (Ray empties CUDA_VISIBLE_DEVICES) and runs on CPU
            gpus_per_task = 1.0 if gpus >= 1 and device != "cpu" else 0.0
        self.gpus_per_task = float(gpus_per_task)
        slots = gpus / self.gpus_per_task if self.gpus_per_task else float(resources.get("CPU", 1))
        self.workers = max(1, int(slots))
        self.max_retries = int(max_retries)
        self._objects: dict[int, tuple[Any, Any]] = {}
        self._remote: dict[Callable, Any] = {}

    def close(self) -> None:
        """Shut down the cluster this executor started (a cluster it joined keeps running)."""
        self._objects.clear()
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
        self._started = False

    def shard_overhead(self, tasks: int = 8) -> float:
        """Seconds a no-op task costs from submission to result here (median of ``tasks``, after a warm-up)."""
        task = self._task(_noop)
        self._ray.get([task.remote() for _ in range(self.workers)])  # workers started and warm
        times = []
        for _ in range(tasks):
            start = time.perf_counter()
            self._ray.get(task.remote())
            times.append(time.perf_counter() - start)
        return sorted(times)[len(times) // 2]

    # -- plumbing -------------------------------------------------------------------------------

    def _put(self, obj: Any) -> Any:
        """Into the object store once per object (the model), as a CPU copy that any worker can load."""
        key = id(obj)
        if key not in self._objects:
            if isinstance(obj, torch.nn.Module) and any(p.device.type != "cpu" for p in obj.parameters()):
                import copy

                obj_cpu = copy.deepcopy(obj).cpu()
            else:
                obj_cpu = obj
            self._objects[key] = (obj, self._ray.put(obj_cpu))
        return self._objects[key][1]

    def _task(self, fn: Callable) -> Any:
        if fn not in self._remote:
            self._remote[fn] = self._ray.remote(fn).options(
                num_cpus=1, num_gpus=self.gpus_per_task,
                max_retries=self.max_retries, retry_exceptions=False)
        return self._remote[fn]

    def _gather(self, submitted: dict[Any, Any], on_done: Callable[[Any, Any], None]) -> None:
        """Wait for every shard; save each as it finishes; then fail naming the first shard that failed."""
        pending = list(submitted)
        failed: list[tuple[Any, BaseException]] = []
        while pending:
            ready, pending = self._ray.wait(pending, num_returns=1)
            for ref in ready:
                try:
                    result = self._ray.get(ref)
                except self._ray.exceptions.RayError as exc:
                    failed.append((submitted[ref], exc))
                    continue
                on_done(submitted[ref], result)
        if failed:
            shard, exc = failed[0]
            more = f" (and {len(failed) - 1} more shards)" if len(failed) > 1 else ""
            raise ShardFailed(f"{shard.describe()} failed after up to {self.max_retries} retries: "
                              f"{_one_line(exc)}{more}; finished shards are saved and a rerun resumes")

    # -- the executor interface -----------------------------------------------------------------

    def run_attack(self, planned: PlannedAttack, model: Any, x: torch.Tensor, y: torch.Tensor, *, seed: int,
                   batch_size: int = 500, indices: Optional[Sequence[int]] = None,
                   state_dir: Optional[Path] = None) -> AttackOutcome:
        """One attack's batches as Ray tasks (one batch per shard); the outcome the local loop would return."""
        indices = list(range(len(x))) if indices is None else list(indices)
        bounds = batch_bounds(len(x), batch_size)
        start = time.perf_counter()
        done: dict[tuple[int, int], BatchResult] = {}
        for lo, hi in bounds if state_dir is not None else []:
            kept = load_batch(state_dir, lo, hi)
            if kept is not None:
                done[(lo, hi)] = kept
        shards = attack_shards(planned.name, [b for b in bounds if b not in done], indices)
        with progress(total=len(x), initial=sum(hi - lo for lo, hi in done), desc=planned.name, unit="pt") as bar:
            submitted = {}
            if shards:
                model_ref, planned_ref = self._put(model), self._ray.put(planned)
                task = self._task(run_attack_shard)
                for shard in shards:
                    lo, hi = shard.span
                    submitted[task.remote(planned_ref, model_ref, x[lo:hi], y[lo:hi], seed, shard)] = shard

            def finished(shard: Any, results: list[BatchResult]) -> None:
                for (lo, hi), batch in zip(shard.bounds, results):
                    done[(lo, hi)] = batch
                    if state_dir is not None:
                        save_batch(state_dir, lo, hi, batch)
                bar.update(shard.points)
                bar.set_postfix_str(f"{len(done)}/{len(bounds)} batches, {self.workers} workers")

            self._gather(submitted, finished)
        return outcome_of(planned, [done[b] for b in bounds], indices, time.perf_counter() - start)

    def certify_points(self, model: Any, x: torch.Tensor, y: torch.Tensor, indices: Sequence[int],
                       settings: CertifySettings, *, records_file: Path, fingerprint: str,
                       batch_size: Optional[int] = None) -> pd.DataFrame:
        """The points not yet in ``records_file`` as Ray tasks; rows reach the file as each shard finishes."""
        frames = [read_records(records_file, fingerprint)]
        done = set(frames[0]["index"].tolist())
        todo = [int(i) for i in indices if int(i) not in done]
        shards = certify_shards(settings.sigma, todo, self.workers)
        desc = f"certify sigma={format_key(settings.sigma)}"
        with progress(total=len(todo), desc=desc, unit="point") as bar:
            submitted = {}
            if shards:
                model_ref, task = self._put(model), self._task(run_certify_shard)
                for shard in shards:
                    pos = torch.as_tensor(shard.indices, dtype=torch.long)
                    ref = task.remote(model_ref, x[pos], y[pos], shard, settings, fingerprint, batch_size)
                    submitted[ref] = shard

            def finished(shard: Any, rows: list[dict[str, Any]]) -> None:
                frames.append(pd.DataFrame(rows))
                write_records(records_file, merge_records(frames))
                bar.update(shard.points)

            self._gather(submitted, finished)
        records = merge_records(frames)
        wanted = set(int(i) for i in indices)
        return records[records["index"].isin(wanted)].reset_index(drop=True)
