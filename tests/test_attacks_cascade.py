"""The cascade: a strong attack runs on exactly the points still robust after the earlier attacks at its budget."""
from __future__ import annotations

import torch

from bench.attacks.base import Attack
from bench.attacks.execute import run_battery
from bench.attacks.plan import PlannedAttack
from bench.attacks.summary import attack_entry
from bench.contract import DefendedModel


class Threshold(DefendedModel):
    """Class 1 iff pixel (0, 0) > 0.5; pixel (0, 1) carries the sample's id / 100 (so attacks can report it)."""

    def __init__(self) -> None:
        super().__init__(2)
        self.scale = torch.nn.Parameter(torch.tensor(10.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = x[:, 0, 0, 0]
        return torch.stack([(0.5 - p) * self.scale, (p - 0.5) * self.scale], dim=1)


class NudgeUp(Attack):
    """Adds eps to the decisive pixel: breaks the points within eps of the threshold, no others."""

    name = "nudge"
    norm = "linf"

    def run(self, model, x, y, eps):
        out = x.clone()
        out[:, 0, 0, 0] += eps
        return out


class Recorder(Attack):
    """Changes nothing; remembers which samples (by the id pixel) it was asked to attack."""

    name = "recorder"
    norm = "linf"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []

    def run(self, model, x, y, eps):
        self.seen += [round(float(v) * 100) for v in x[:, 0, 0, 1]]
        return x


def _points() -> tuple[torch.Tensor, torch.Tensor, set[int], set[int]]:
    """12 points of class 0: ids 0-3 robust (far from 0.5), 4-7 breakable within eps 0.3, 8-11 misclassified."""
    decisive = [0.05] * 4 + [0.35] * 4 + [0.7] * 4
    x = torch.zeros(12, 1, 2, 2)
    x[:, 0, 0, 0] = torch.tensor(decisive)
    x[:, 0, 0, 1] = torch.arange(12) / 100
    return x, torch.zeros(12, dtype=torch.long), set(range(4)), set(range(4, 8))


def test_cascade_attacks_exactly_the_points_still_robust(tmp_path):
    model = Threshold().eval()
    x, y, robust, breakable = _points()
    clean_correct = model(x).argmax(1) == y
    recorder = Recorder()
    plan = [PlannedAttack(NudgeUp(), 0.3), PlannedAttack(recorder, 0.3, cascade=True),
            PlannedAttack(Recorder(), 0.1, cascade=True, label="recorder-small-eps")]
    outcomes = run_battery(model, x, y, plan, records_dir=tmp_path, model_id="toy", indices=list(range(12)), seed=0,
                           batch_size=5, clean_correct=clean_correct)
    assert set(recorder.seen) == robust  # not the broken 4-7, not the misclassified 8-11
    assert outcomes["recorder"].indices == sorted(robust)
    # a cascade only counts attacks at its own budget: at eps 0.1 nothing ran before, so 0-7 are attacked
    assert outcomes["recorder-small-eps"].indices == sorted(robust | breakable)
    nudge = attack_entry(outcomes["nudge"], "white-box", clean_correct, cascade=False)
    assert (nudge.attempted, nudge.broken, nudge.n) == (12, 4, 12)
    cascaded = attack_entry(outcomes["recorder"], "white-box", clean_correct[sorted(robust)], cascade=True)
    assert (cascaded.attempted, cascaded.broken, cascaded.cascade, cascaded.accuracy) == (4, 0, True, 1.0)
    lo, hi = cascaded.interval
    assert lo < 1.0 == hi  # 4 of 4: the interval says how little 4 points prove


def test_cascade_resumes_on_the_same_points(tmp_path):
    model = Threshold().eval()
    x, y, robust, _ = _points()
    clean_correct = model(x).argmax(1) == y
    kwargs = dict(records_dir=tmp_path, model_id="toy", indices=list(range(12)), seed=0, clean_correct=clean_correct)
    first = Recorder()
    run_battery(model, x, y, [PlannedAttack(NudgeUp(), 0.3), PlannedAttack(first, 0.3, cascade=True)], **kwargs)
    again = Recorder()
    reused = {}
    run_battery(model, x, y, [PlannedAttack(NudgeUp(), 0.3), PlannedAttack(again, 0.3, cascade=True)], **kwargs,
                on_outcome=lambda o, r: reused.update({o.name: r}))
    assert first.seen and again.seen == [] and reused == {"nudge": True, "recorder": True}
