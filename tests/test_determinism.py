"""The same config and seed give bit-identical weights (the same sha256) on one machine and thread count.

Each training starts from a different state of torch's global generator (a
fresh process starts from a random one), so a defense that draws anything
(its weight init included) from an unseeded generator fails here. The model
zoo's sha256 of the saved weights is what is compared: it is what a model
card promises.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench.registry import create_defense
from bench.zoo import ModelZoo

TRAIN = 256  # training images: a few seconds per defense
# Reduced budgets; every defense's own randomness (PGD starts, noise, holdout split, z draws) still runs.
SMALL = {
    "plain": {},
    "adversarial_training": {"warmup_epochs": 0, "steps": 2},
    "trades": {"warmup_epochs": 0, "steps": 2},
    "feature_squeezing": {"holdout": 64},
    "distillation": {"teacher_epochs": 1},
    "gaussian_augmentation": {},
    "vib": {},
    "tight_vib": {},
}


@pytest.fixture(scope="module")
def small(mnist5k):
    return dataclasses.replace(mnist5k, x_train=mnist5k.x_train[:TRAIN], y_train=mnist5k.y_train[:TRAIN],
                               x_test=mnist5k.x_test[:200], y_test=mnist5k.y_test[:200])


def state_sha256(model: torch.nn.Module) -> str:
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, buffer)
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def zoo_sha256(root: Path, name: str, data, disturb: int) -> str:
    torch.manual_seed(disturb)  # a different global generator state before each training, as in a new process
    torch.rand(disturb % 7 + 1)
    entry = ModelZoo(root / "models").get_or_fit(create_defense(name, epochs=1, **SMALL[name]), data,
                                                 torch.device("cpu"))
    assert not entry.reused
    return entry.card["sha256"]


@pytest.mark.parametrize("name", ["plain", "tight_vib"])
def test_two_trainings_in_fresh_homes_save_identical_weights(name, small, tmp_path):
    first = zoo_sha256(tmp_path / "home1", name, small, disturb=1)
    second = zoo_sha256(tmp_path / "home2", name, small, disturb=2)
    assert first == second


@pytest.mark.parametrize("name", sorted(set(SMALL) - {"plain", "tight_vib"}))
def test_every_builtin_defense_trains_bit_identically(name, small):
    hashes = []
    for disturb in (3, 4):
        torch.manual_seed(disturb)
        hashes.append(state_sha256(create_defense(name, epochs=1, **SMALL[name]).fit(small)))
    assert hashes[0] == hashes[1]


def test_deterministic_settings_are_restored_after_training(small):
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark, torch.get_num_threads())
    create_defense("plain", epochs=1).fit(small)
    assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark,
            torch.get_num_threads()) == before


_CHILD = """
import dataclasses, sys
import bench, torch
torch.set_num_threads(int(sys.argv[1]))
from bench.data import load_dataset
from bench.registry import create_defense
from tests.test_determinism import state_sha256, TRAIN
d = load_dataset("mnist5k")
d = dataclasses.replace(d, x_train=d.x_train[:TRAIN], y_train=d.y_train[:TRAIN])
for name in sys.argv[2:]:
    print(name, state_sha256(create_defense(name, epochs=1).fit(d)))
"""


@pytest.mark.slow
def test_a_separate_process_trains_the_same_weights(small):
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
           "BENCH_PROGRESS": "0"}
    names = ["plain", "tight_vib"]
    out = subprocess.run([sys.executable, "-c", _CHILD, str(torch.get_num_threads()), *names], cwd=root, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    child = dict(line.split() for line in out.stdout.strip().splitlines()[-len(names):])
    torch.manual_seed(5)
    assert child == {name: state_sha256(create_defense(name, epochs=1).fit(small)) for name in names}
