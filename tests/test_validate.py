"""`bench validate`: every built-in passes (parametrized over the registry), and broken defenses fail."""
from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from bench import registry
from bench.cli import main
from bench.contract import ClassifierModel, DefendedModel
from bench.registry import get_spec, list_defenses
from bench.validate import check_model, small_subset, tiny_config, validate_defense

BUILTINS = [name for name in list_defenses() if get_spec(name).fit.__module__.startswith("bench.")]
REQUIRED = ["plain", "adversarial_training", "trades", "feature_squeezing", "distillation",
            "gaussian_augmentation", "vib", "tight_vib"]


def test_required_defenses_are_registered():
    assert set(REQUIRED) <= set(BUILTINS)


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_defense_passes_validation(name, mnist5k):
    checks = validate_defense(name, mnist5k, n_train=64, n_check=24)
    failed = [c.line() for c in checks if not c.passed]
    assert not failed, "\n".join(failed)
    assert [c.name for c in checks][:3] == ["fit", "contract", "forward"]
    assert len(checks) == 12  # fit, contract and the ten contract checks (input transform added with issue 10)


def test_stochastic_configuration_is_recognised(mnist5k):
    checks = {c.name: c for c in validate_defense("vib", mnist5k, config={"samples": 8}, n_train=64, n_check=16)}
    assert all(c.passed for c in checks.values()), [c.line() for c in checks.values() if not c.passed]
    assert "declared True; two forwards differ" in checks["stochastic"].detail


def test_tiny_config_only_touches_existing_fields_and_user_wins():
    assert tiny_config("plain") == {"epochs": 1}
    assert tiny_config("distillation") == {"epochs": 1, "teacher_epochs": 1}
    assert tiny_config("plain", {"epochs": 2, "lr": 0.01}) == {"epochs": 2, "lr": 0.01}


def test_small_subset_is_not_the_class_sorted_head(mnist5k):
    small = small_subset(mnist5k, 200, 50, seed=0)
    assert len(small.x_train) == 200 and len(small.x_test) == 50
    assert len(torch.unique(small.y_train)) == 10


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(784, 10)

    def forward(self, x):
        return self.lin(x.flatten(1))


class HiddenGradients(ClassifierModel):
    """A deployed model whose attack surface is a constant: gradients vanish."""

    def differentiable_forward(self, x):
        return self.net(x.detach() * 0 + 0.5) + 0 * x.sum()


class SecretlyRandom(ClassifierModel):
    def forward(self, x):
        return self.net(x) + torch.randn(len(x), self.num_classes)


class BadDetector(ClassifierModel):
    def detect(self, x):
        return torch.zeros(len(x))  # float, not bool

    def detect_margin(self, x):
        return self.net(x)[:, 0]


class InconsistentDetector(ClassifierModel):
    def detect(self, x):
        return torch.ones(len(x), dtype=torch.bool)

    def detect_margin(self, x):
        return -torch.ones(len(x)) + 0 * x.flatten(1).sum(1)


class DetectorWithoutMargin(ClassifierModel):
    def detect(self, x):
        return torch.zeros(len(x), dtype=torch.bool)


class WrongShape(ClassifierModel):
    def forward(self, x):
        return self.net(x)[:, :5]


@pytest.mark.parametrize(
    "cls, failing",
    [
        (HiddenGradients, "gradients"),
        (SecretlyRandom, "stochastic"),
        (BadDetector, "detector"),
        (InconsistentDetector, "detector"),
        (DetectorWithoutMargin, "detector"),
        (WrongShape, "forward"),
    ],
)
def test_contract_breaches_fail_their_check(cls, failing, mnist5k):
    torch.manual_seed(0)
    model = cls(_Net(), 10)
    checks = {c.name: c for c in check_model(model, small_subset(mnist5k, 10, 16, seed=0))}
    assert not checks[failing].passed, checks[failing].line()
    # The other checks still run and report.
    assert checks["contract"].passed


def test_declared_stochastic_but_deterministic_fails(mnist5k):
    class ClaimsRandom(ClassifierModel):
        stochastic = True

    checks = {c.name: c for c in check_model(ClaimsRandom(_Net(), 10), small_subset(mnist5k, 10, 8, seed=0))}
    assert not checks["stochastic"].passed


def test_not_a_defended_model_fails_early(mnist5k):
    checks = check_model(_Net(), small_subset(mnist5k, 10, 8, seed=0))  # type: ignore[arg-type]
    assert len(checks) == 1 and not checks[0].passed and "DefendedModel" in checks[0].detail


@pytest.fixture()
def broken_defense_registered(monkeypatch):
    """Register a gradient-hiding defense in a private copy of the registry."""
    from dataclasses import dataclass

    monkeypatch.setattr(registry.DEFENSES, "_items", dict(registry.DEFENSES._items))
    monkeypatch.setattr(registry.DEFENSES, "_sources", dict(registry.DEFENSES._sources))

    @dataclass
    class Cfg:
        epochs: int = 5

    @registry.register_defense("test_hidden_gradients", config=Cfg)
    def fit(data, config):
        """Hides its gradients."""
        assert config.epochs == 1  # validate shrank the budget
        return HiddenGradients(_Net(), data.num_classes)

    return "test_hidden_gradients"


def test_cli_validate_exit_status(broken_defense_registered):
    runner = CliRunner()
    bad = runner.invoke(main, ["validate", broken_defense_registered, "--device", "cpu", "--n-train", "16"])
    assert bad.exit_code == 1, bad.output
    assert "FAIL  gradients" in bad.output and "hides gradients" in bad.output
    assert "PASS  forward" in bad.output

    good = runner.invoke(main, ["validate", "plain", "--device", "cpu", "--n-train", "64"])
    assert good.exit_code == 0, good.output
    assert "plain: all 12 checks passed" in good.output


def test_cli_validate_unknown_name_is_one_line_with_choices():
    result = CliRunner().invoke(main, ["validate", "no_such_defense"])
    assert result.exit_code == 2
    assert "unknown defense 'no_such_defense'; valid choices: adversarial_training" in result.output


HIDDEN_PLUGIN = '''
from dataclasses import dataclass

import torch
from torch import nn

from bench.contract import ClassifierModel
from bench.registry import register_defense


class Hidden(ClassifierModel):
    def differentiable_forward(self, x):
        return self.net(x.detach())


@dataclass
class Cfg:
    epochs: int = 1


@register_defense("ci_hidden_gradients", config=Cfg)
def fit(data, config):
    """Hides its gradients (a plugin whose CI runs `bench validate`)."""
    return Hidden(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), data.num_classes)
'''


def test_validate_exits_1_in_a_subprocess_as_a_plugins_ci_runs_it(tmp_path):
    """`bench validate` from the shell: exit 1 on a failed check (not 0, as when click swallowed Exit)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    info = tmp_path / "ci_hidden-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ci-hidden\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[bench.defenses]\nci_hidden_gradients = ci_hidden_plugin:fit\n")
    (tmp_path / "ci_hidden_plugin.py").write_text(HIDDEN_PLUGIN)
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), str(tmp_path)]), "BENCH_PROGRESS": "0"}
    run = lambda name: subprocess.run([sys.executable, "-m", "bench", "validate", name, "--device", "cpu",  # noqa: E731
                                       "--n-train", "16"], capture_output=True, text=True, env=env, timeout=300)
    bad = run("ci_hidden_gradients")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "FAIL  gradients" in bad.stdout and "ci_hidden_gradients: FAILED gradients" in bad.stdout
    good = run("plain")
    assert good.returncode == 0, good.stdout + good.stderr
