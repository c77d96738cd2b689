"""`--executor ray` on a local 2-worker cluster: identical records and summary numbers to the local executor,
a worker killed mid-shard is retried, a shard that fails for good names itself and loses nothing finished."""
from __future__ import annotations

import os
import signal
import sys

import pandas as pd
import pytest
import torch

ray = pytest.importorskip("ray")

from bench.attacks import FGSM, FMN, PGD  # noqa: E402
from bench.attacks.base import Attack  # noqa: E402
from bench.attacks.execute import run_battery  # noqa: E402
from bench.attacks.plan import PlannedAttack  # noqa: E402
from bench.attacks.summary import summarize_battery  # noqa: E402
from bench.certification.certify import certify_sigmas  # noqa: E402
from bench.certification.records import records_path  # noqa: E402
from bench.executors import ShardFailed, make_executor  # noqa: E402
from bench.executors.ray_executor import start_local_cluster  # noqa: E402
from bench.results import read_json  # noqa: E402
from bench.training import predict  # noqa: E402

pytestmark = pytest.mark.slow  # a Ray cluster starts (seconds; tens of seconds on a busy machine)

# The attacks below travel to the workers by value (the workers cannot import this test module).
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

POINTS = list(range(0, 1000, 59))  # 17 test points, spread over the classes
BATCH = 5  # 4 batches (the last one short): shards for both workers


@pytest.fixture(scope="module")
def cluster():
    started = not ray.is_initialized()
    if started:
        start_local_cluster(num_cpus=2)
    yield make_executor("ray")
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def points(mnist5k):
    return mnist5k.x_test[POINTS], mnist5k.y_test[POINTS]


def _plan():
    return [PlannedAttack(FGSM(), 0.3), PlannedAttack(PGD(steps=5), 0.3),
            PlannedAttack(FMN(norm="l2", steps=10), 2.0, n=11)]  # a seeded subset, with minimal norms


def _records(records_dir):
    """Every attack record on disk, less the time it took."""
    return {p.stem: {k: v for k, v in read_json(p).items() if k != "seconds"} for p in records_dir.glob("*.json")}


def test_ray_results_are_the_local_results_sample_for_sample(cluster, plain_model, mnist5k, points, tmp_path):
    x, y = points
    assert cluster.workers == 2
    outcomes, summaries, certified = {}, {}, {}
    clean = predict(plain_model, x) == y
    for name, executor in (("local", make_executor("local")), ("ray", cluster)):
        records = tmp_path / name
        outcomes[name] = run_battery(plain_model, x, y, _plan(), records_dir=records, model_id="m", indices=POINTS,
                                     seed=11, batch_size=BATCH, executor=executor)
        report = summarize_battery(plain_model, x, y, clean, _plan(), outcomes[name], indices=POINTS, eps=0.3,
                                   profile="quick", seed=11, batch_size=BATCH)
        summaries[name] = (report.robust_accuracy, {k: (e.accuracy, e.n, e.median_norm) for k, e in report.attacks.items()},
                           report.robust.tolist(), report.columns)
        certify_sigmas(plain_model, mnist5k.x_test, mnist5k.y_test, sigmas=[0.25, 0.5], indices=POINTS[::3], n0=20,
                       n=100, alpha=0.001, records_dir=records, model_id="m", dataset="mnist5k", seed=11,
                       log=lambda _: None, executor=executor)
        certified[name] = {s: pd.read_csv(records_path(records, s)).drop(columns="seconds") for s in (0.25, 0.5)}
        assert len(certified[name][0.25]) == len(POINTS[::3])
    for attack, local in outcomes["local"].items():
        remote = outcomes["ray"][attack]
        assert torch.equal(local.correct, remote.correct) and local.indices == remote.indices
        assert (local.norms is None) == (remote.norms is None)
        assert local.norms is None or torch.equal(local.norms, remote.norms)
        assert local.warnings == remote.warnings and local.params == remote.params
    assert _records(tmp_path / "local") == _records(tmp_path / "ray")
    assert summaries["local"] == summaries["ray"]
    for sigma in (0.25, 0.5):
        assert certified["local"][sigma].equals(certified["ray"][sigma])


class KillOnce(PGD):
    """PGD whose worker process dies (SIGKILL, as the OOM killer would) on the first batch it ever runs."""

    def __init__(self, marker):
        super().__init__(steps=5)
        self.marker = str(marker)

    def run(self, model, x, y, eps):
        if not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return super().run(model, x, y, eps)


def test_a_worker_killed_mid_shard_is_retried_and_the_numbers_do_not_change(cluster, plain_model, points, tmp_path):
    x, y = points
    marker = tmp_path / "killed-once"
    plan = [PlannedAttack(KillOnce(marker), 0.3)]
    remote = run_battery(plain_model, x, y, plan, records_dir=tmp_path / "ray", model_id="m", indices=POINTS,
                         seed=2, batch_size=BATCH, executor=cluster)
    assert marker.exists()  # a worker was killed
    local = run_battery(plain_model, x, y, plan, records_dir=tmp_path / "local", model_id="m", indices=POINTS,
                        seed=2, batch_size=BATCH)
    assert torch.equal(remote["pgd-linf"].correct, local["pgd-linf"].correct)
    make_executor("ray").close()  # an executor that joined a running cluster leaves it running
    assert ray.is_initialized()


class FailOn(Attack):
    """Raises on the batch that starts at one test index (a bug, not a crash: not retried); breaks the others."""

    name = "fail-on"

    def __init__(self, bad_first_index):
        super().__init__()
        self.bad = bad_first_index

    def params(self):
        return {"bad": self.bad}

    def run(self, model, x, y, eps):
        # batches are seeded by seed * 1_000_003 + first test index, and seed is 0 here
        if self.bad is not None and torch.initial_seed() == self.bad:
            raise ValueError("this batch is broken")
        return torch.ones_like(x)


def test_a_shard_that_fails_for_good_names_itself_and_finished_shards_are_kept(cluster, plain_model, points, tmp_path):
    x, y = points
    bad = POINTS[2 * BATCH]  # the third batch's first test index
    executor_state = tmp_path / "state"
    with pytest.raises(ShardFailed) as failure:
        cluster.run_attack(PlannedAttack(FailOn(bad), 0.3), plain_model, x, y, seed=0, batch_size=BATCH,
                           indices=POINTS, state_dir=executor_state)
    message = str(failure.value)
    assert "\n" not in message and "'fail-on'" in message
    assert f"test indices {bad}..{POINTS[3 * BATCH - 1]}" in message and "ValueError: this batch is broken" in message
    kept = sorted(p.name for p in executor_state.glob("batch-*.json"))
    assert kept == ["batch-0-5.json", "batch-15-17.json", "batch-5-10.json"]
    # a rerun resumes: only the failed batch runs again (here, fixed) and the outcome is whole
    outcome = cluster.run_attack(PlannedAttack(FailOn(None), 0.3), plain_model, x, y, seed=0, batch_size=BATCH,
                                 indices=POINTS, state_dir=executor_state)
    assert outcome.n == len(POINTS) and outcome.params == {"bad": None}
