"""An interrupted battery resumes: finished attacks are reloaded from their records, not recomputed."""
from __future__ import annotations

import torch

from bench.attacks import FGSM, PGD, CarliniWagnerL2
from bench.attacks.base import Attack
from bench.attacks.execute import run_battery
from bench.attacks.plan import PlannedAttack


class InterruptOnce(Attack):
    """Raises KeyboardInterrupt the first time it runs (a Ctrl-C mid-battery), then does nothing."""

    name = "interrupt-once"
    calls = 0

    def run(self, model, x, y, eps):
        type(self).calls += 1
        if type(self).calls == 1:
            raise KeyboardInterrupt
        return x


class CountingPGD(PGD):
    runs = 0

    def run(self, model, x, y, eps):
        type(self).runs += 1
        return super().run(model, x, y, eps)


def _plan():
    return [
        PlannedAttack(FGSM(), 0.3),
        PlannedAttack(CountingPGD(steps=5), 0.3),
        PlannedAttack(CarliniWagnerL2(search_steps=2, steps=20, lr=0.1), 2.0, n=6),  # a subset, with norms
        PlannedAttack(InterruptOnce(), 0.3),
    ]


def test_an_interrupted_battery_resumes_from_its_records(plain_model, mnist5k, tmp_path):
    idx = torch.arange(0, len(mnist5k.x_test), 100)
    x, y = mnist5k.x_test[idx], mnist5k.y_test[idx]
    indices = idx.tolist()
    kwargs = dict(records_dir=tmp_path / "records", model_id="m", indices=indices, seed=3)
    try:
        run_battery(plain_model, x, y, _plan(), **kwargs)
        raise AssertionError("the battery should have been interrupted")
    except KeyboardInterrupt:
        pass
    assert CountingPGD.runs == 1
    assert sorted(p.stem for p in (tmp_path / "records").glob("*.json")) == ["cw-l2", "fgsm", "pgd-linf"]

    seen = {}
    outcomes = run_battery(plain_model, x, y, _plan(), on_outcome=lambda o, reused: seen.update({o.name: reused}), **kwargs)
    assert seen == {"fgsm": True, "pgd-linf": True, "cw-l2": True, "interrupt-once": False}
    assert CountingPGD.runs == 1  # not recomputed
    cw = outcomes["cw-l2"]
    assert cw.n == 6 and len(cw.indices) == 6 and set(cw.indices) <= set(indices)
    assert cw.norms is not None and len(cw.norms) == 6 and bool((cw.norms >= 0).all())

    # a different seed is a different experiment: nothing is reused
    seen.clear()
    run_battery(plain_model, x, y, _plan()[:2], **{**kwargs, "seed": 4}, on_outcome=lambda o, r: seen.update({o.name: r}))
    assert seen == {"fgsm": False, "pgd-linf": False}


class InterruptSecondBatch(Attack):
    """Breaks every sample (returns a far-away input), but is interrupted on its second batch once."""

    name = "interrupt-second-batch"
    norm = "linf"
    batches = 0

    def run(self, model, x, y, eps):
        type(self).batches += 1
        if type(self).batches == 2:
            raise KeyboardInterrupt
        return torch.ones_like(x)


def test_an_interrupted_attack_resumes_at_its_first_unfinished_batch(plain_model, mnist5k, tmp_path):
    from bench.attacks.execute import run_attack

    x, y = mnist5k.x_test[:12], mnist5k.y_test[:12]
    planned = PlannedAttack(InterruptSecondBatch(), 1.0)
    try:
        run_attack(planned, plain_model, x, y, seed=0, batch_size=4, state_dir=tmp_path)
        raise AssertionError("the attack should have been interrupted")
    except KeyboardInterrupt:
        pass
    assert [p.name for p in tmp_path.glob("batch-*.json")] == ["batch-0-4.json"]
    outcome = run_attack(planned, plain_model, x, y, seed=0, batch_size=4, state_dir=tmp_path)
    assert InterruptSecondBatch.batches == 4  # batch 1 once, batch 2 twice (interrupted, then run), batch 3 once
    assert outcome.n == 12
    expected = plain_model(torch.ones_like(x)).argmax(1) == y
    assert torch.equal(outcome.correct, expected)
