"""Executors without Ray: shards are whole batches as the local loop forms them, the local executor is
today's loop, the plan's arithmetic, and `--executor ray` without Ray installed is one line (exit 2)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench.attacks import FGSM, PGD
from bench.attacks.execute import batch_bounds, run_attack, run_battery
from bench.attacks.plan import PlannedAttack
from bench.executors import EXECUTORS, ExecutorUnavailable, check_executor, make_executor
from bench.executors.calibrate import RowCost, Timing, spread, wall_seconds
from bench.executors.shards import attack_shards, certify_shards, run_attack_shard
from bench.planning import AttackPlan, CertifyPlan, RunPlan

ROOT = Path(__file__).resolve().parents[1]


def test_batches_and_shards_cover_every_position_once_in_the_loops_order():
    bounds = batch_bounds(23, 5)
    assert bounds == [(0, 5), (5, 10), (10, 15), (15, 20), (20, 23)]
    indices = list(range(100, 123))
    shards = attack_shards("pgd-linf", bounds, indices, batches_per_shard=2)
    assert [s.bounds for s in shards] == [((0, 5), (5, 10)), ((10, 15), (15, 20)), ((20, 23),)]
    assert [i for s in shards for i in s.indices] == indices
    assert "pgd-linf" in shards[1].describe() and "110..119" in shards[1].describe()
    cert = certify_shards(0.25, list(range(0, 50, 5)), workers=2)
    assert [i for s in cert for i in s.indices] == list(range(0, 50, 5)) and len(cert) == 5


def test_an_attack_shard_run_anywhere_is_the_local_batch(plain_model, mnist5k):
    idx = list(range(0, 1000, 50))
    x, y = mnist5k.x_test[idx], mnist5k.y_test[idx]
    planned = PlannedAttack(PGD(steps=5), 0.3)
    local = run_attack(planned, plain_model, x, y, seed=5, batch_size=6, indices=idx)
    shard = attack_shards("pgd-linf", batch_bounds(len(idx), 6), idx)[2]  # positions 12..17
    lo, hi = shard.span
    results = run_attack_shard(planned, plain_model, x[lo:hi], y[lo:hi], 5, shard)
    assert torch.equal(results[0].correct, local.correct[lo:hi])


def test_the_local_executor_is_the_battery_loop(plain_model, mnist5k, tmp_path):
    idx = list(range(3, 1000, 90))
    x, y = mnist5k.x_test[idx], mnist5k.y_test[idx]
    plan = [PlannedAttack(FGSM(), 0.3), PlannedAttack(PGD(steps=5), 0.3, n=7)]
    kwargs = dict(model_id="m", indices=idx, seed=1, batch_size=4)
    here = run_battery(plain_model, x, y, plan, records_dir=tmp_path / "a", **kwargs)
    local = run_battery(plain_model, x, y, plan, records_dir=tmp_path / "b", executor=make_executor("local"), **kwargs)
    for name in here:
        assert torch.equal(here[name].correct, local[name].correct) and here[name].indices == local[name].indices


def test_unknown_executor_is_one_line_naming_the_choices():
    assert EXECUTORS == ("local", "ray")
    with pytest.raises(ExecutorUnavailable, match="unknown executor 'dask'; valid choices: local, ray"):
        check_executor("dask")


def test_executor_ray_without_ray_installed_is_one_line_and_exit_2():
    code = ("import sys\nsys.modules['ray'] = None  # as if Ray were not installed\n"
            "from bench.cli import cli\ncli(['run', '--defense', 'plain', '--executor', 'ray'])")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'bench[ray]'" in lines[0], result.stderr


def test_wall_seconds_shares_batches_among_workers():
    assert wall_seconds([4.0, 4.0, 2.0], 1) == 10.0
    assert wall_seconds([4.0, 4.0, 2.0], 2) == 6.0  # 4 | 4 + 2
    assert wall_seconds([4.0, 4.0, 2.0], 8, overhead=0.5) == 4.5
    assert wall_seconds([], 4) == 0.0
    assert spread(list(range(10)), 3) == [0, 3, 6]


def test_a_timing_extrapolates_by_the_marginal_cost_of_the_extra_rows():
    # 10 points took 2 s and pushed 400 forward rows (100 of them back-propagated) through model 1
    timing = Timing(points=10, seconds=2.0, rows={1: type("R", (), {"forward": 400, "backward": 100})()})
    costs = {1: RowCost(forward=0.001, backward=0.002)}
    # 50 points: 4x the extra rows: 2 + 4 * (400 * 0.001 + 100 * 0.002) = 4.4 s
    assert timing.estimate(50, costs) == pytest.approx(4.4)
    assert timing.estimate(5, costs) == pytest.approx(1.0)  # fewer points: proportional


def _plan_with(points_and_seconds):
    """A plan whose attacks took ``seconds`` on their 10 calibration points, rows costing nothing extra."""
    plan = RunPlan(title="t", batch_size=500, workers=(1, 2, 8))
    plan.attacks = [AttackPlan(f"a{k}", "linf", 0.3, points, Timing(10, seconds), {})
                    for k, (points, seconds) in enumerate(points_and_seconds)]
    return plan


def test_the_plan_projects_batches_onto_workers():
    plan = _plan_with([(1000, 1.0), (100, 30.0)])  # 2 batches of 1 s; 1 batch of 30 s
    plan.certification = [CertifyPlan(0.25, 100, 1000, 0.001, 100, 0.2)]
    plan.other_seconds = 1.0
    assert plan.estimate(1) == pytest.approx(2 + 30 + 20 + 1)
    plan.shard_overhead = 0.0
    assert plan.attack_seconds(2) == pytest.approx(1 + 30)
    assert plan.certify_seconds(8) == pytest.approx(20 / 8, rel=0.3)
    assert plan.batch_size_for(8) == 125 and plan.batch_size_for(1) == 500
    assert plan.attack_seconds(8, 125) == pytest.approx(1 + 30)  # no extra rows cost: batches cost what 10 points did
    text = "\n".join(plan.lines())
    assert "a1" in text and "8 workers" in text and "--batch-size 125" in text
    assert text.splitlines()[-1] == "nothing was run or written (--plan)"


@pytest.mark.slow
def test_run_plan_prints_every_attack_and_an_estimate_and_writes_no_results(monkeypatch, capsys, bench_home):
    from cli_helpers import run_cli

    code, out, err = run_cli(monkeypatch, capsys, "run", "--defense", "plain", "--config", "epochs=1", "--n-test", "40",
                             "--plan", "--workers", "1,4")
    assert code == 0, err
    for attack in ("fgsm", "pgd-linf", "autoattack", "cw-l2", "fmn-l2", "transfer", "pgd-linf@0.5"):
        assert f"\n{attack} " in out
    assert "estimated wall time on this process:" in out and "estimated wall time on 4 workers:" in out
    assert "--batch-size 10 (a shard for every worker)" in out
    assert out.strip().endswith("nothing was run or written (--plan)")
    assert not (bench_home / "results").exists() and not (bench_home / "leaderboards").exists()
