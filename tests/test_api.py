"""`bench.evaluate` and `bench run --model`: a model the user already has, evaluated like a registry defense.

Budgets are shrunk by swapping in tiny battery and certification profiles; the
transfer source is the committed plain model, so nothing trains but the models here.
"""
from __future__ import annotations

import dataclasses
import json
import pydoc
import re
import shutil
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

import bench
from cli_helpers import run_cli

REPO = Path(__file__).resolve().parents[1]
SOURCE = "plain-6418132e4e21"  # the registry's plain model, seed 1: the transfer source of every mnist5k run


@pytest.fixture()
def tiny(monkeypatch, bench_home):
    """Tiny battery and certification profiles, and the committed transfer source in an empty BENCH_HOME."""
    from bench.attacks import profiles as battery
    from bench.certification import profiles as certification

    quick = battery.PROFILES["quick"]
    monkeypatch.setitem(battery.PROFILES, "quick", dataclasses.replace(
        quick, pgd_steps=3, strong_steps=4, strong_restarts=1, eot=2, cw_search_steps=1, cw_steps=3, fmn_steps=3,
        square_queries=10, transfer_steps=2, sweep_factors=(0.0, 1.0), subsets={k: 8 for k in quick.subsets}))
    monkeypatch.setitem(certification.PROFILES, "quick",
                        dataclasses.replace(certification.PROFILES["quick"], n0=10, n=50, points=4))
    (bench_home / "models" / "mnist5k").mkdir(parents=True)
    for suffix in (".pt", ".json"):
        shutil.copy(REPO / "models" / "mnist5k" / (SOURCE + suffix), bench_home / "models" / "mnist5k")
    return bench_home


def test_help_documents_evaluate():
    text = pydoc.render_doc(bench.evaluate, renderer=pydoc.plaintext)
    for needed in ("Arguments:", "Returns:", "Example:", "dataset:", "threat:", "attacks:", "certify:", "Summary"):
        assert needed in text, needed
    assert "evaluate" in bench.__all__ and "evaluate" in dir(bench)


def _readme_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), flags=re.S)
    [block] = [b for b in blocks if "bench.evaluate(model" in b]
    assert len(block.splitlines()) <= 30
    return block


@pytest.mark.slow
def test_readme_example_runs(tiny, capsys):
    namespace: dict = {}
    exec(compile(_readme_example(), "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
    summary = namespace["summary"]
    [run_dir] = [d for d in (tiny / "results").iterdir() if not d.name.startswith(".")]  # not the run's lock
    written = json.loads((run_dir / "summary.json").read_text())
    assert written["defense"] == "Net" and written["n_test"] == 200 and summary.n_test == 200
    assert written["clean_accuracy"] == summary.clean_accuracy > 0.5  # one epoch learns something
    assert 0 <= summary.robust_accuracy <= summary.clean_accuracy
    assert "transfer" in written["attacks"] and "0.25" in written["certification"]
    assert written["model"]["source"] == "bench.evaluate: builtins.Net" or written["model"]["source"].endswith(".Net")
    per_sample = pd.read_csv(run_dir / "per_sample.csv")
    assert len(per_sample) == 200 and per_sample["robust"].mean() == pytest.approx(summary.robust_accuracy)
    assert str(summary.clean_accuracy) in capsys.readouterr().out


def _linear_points(n: int = 40) -> tuple[torch.Tensor, torch.Tensor, nn.Module, torch.Tensor]:
    """A 2-class linear model on 4-pixel images in [0.3, 0.7] and each point's exact L-inf distance to its boundary."""
    gen = torch.Generator().manual_seed(0)
    x = 0.3 + 0.4 * torch.rand(n, 1, 2, 2, generator=gen)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, -2.0, 0.5, 1.5]]))
        model[1].bias.copy_(torch.tensor([0.0, -0.4]))
    margin = (x.flatten(1) @ torch.tensor([1.0, -2.0, 0.5, 1.5]) - 0.4)
    y = (margin > 0).long()
    y[::5] = 1 - y[::5]  # some points misclassified
    return x, y, model, margin.abs() / 5.0  # ||w1 - w0||_1 = 5


def test_user_tensors_match_the_closed_form_of_a_linear_model(tiny):
    x, y, model, distance = _linear_points()
    eps = 0.05
    keep = (distance - eps).abs() > 0.01  # nothing on the fence: the answer must be exact
    x, y, distance = x[keep], y[keep], distance[keep]
    summary = bench.evaluate(model, (x, y), threat={"linf": eps, "l2": 0.1}, attacks=["fgsm", "pgd-linf"],
                             certify=False, name="linear")
    correct = model(x).argmax(1) == y
    assert summary.clean_accuracy == pytest.approx(correct.float().mean().item())
    # a linear model's L-inf distance to the boundary is |margin| / ||w||_1, reached by one signed step, and the
    # box [0, 1] never binds for points in [0.3, 0.7] at eps 0.05: exactly the points farther than eps survive
    assert summary.robust_accuracy == pytest.approx((correct & (distance > eps)).float().mean().item())
    assert summary.dataset.startswith("tensors-") and summary.certification is None
    assert list(summary.evaluation["attacks"]) == ["fgsm", "pgd-linf"] and summary.notes is None
    out = tiny / "results" / summary.provenance["run_id"]
    assert json.loads((out / "summary.json").read_text())["robust_accuracy"] == summary.robust_accuracy


def test_user_tensors_skip_transfer_and_say_so(tiny):
    x, _, _, _ = _linear_points(12)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 10))  # ten classes: AutoAttack's targeted APGD needs them
    y = model(x).argmax(1)
    summary = bench.evaluate(model, (x, y), threat={"linf": 0.05, "l2": 0.1, "sigma": 0.1}, out=tiny / "run")
    assert "transfer" not in summary.attacks and {"fgsm", "autoattack", "cw-l2"} <= set(summary.attacks)
    assert summary.notes == [bench.api.TRANSFER_SKIPPED]
    assert json.loads((tiny / "run" / "summary.json").read_text())["notes"] == summary.notes
    assert "0.1" in summary.certification and summary.threat_model.sigma == 0.1


@pytest.mark.parametrize("call, message", [
    (lambda m, x, y: bench.evaluate(m, (x, y)), "threat is required"),
    (lambda m, x, y: bench.evaluate(m, (x * 3, y), threat={"linf": 0.1, "l2": 1}), "valid: images scaled to [0, 1]"),
    (lambda m, x, y: bench.evaluate(m, (x, y + 5), threat={"linf": 0.1, "l2": 1}), "valid: 0 .. 1"),
    (lambda m, x, y: bench.evaluate(m, (x, y), threat={"eps": 0.1}), "valid keys: linf, l2, sigma"),
    (lambda m, x, y: bench.evaluate(m, "mnist5k"), "fails on inputs of shape (1, 28, 28) in [0, 1] (RuntimeError"),
    (lambda m, x, y: bench.evaluate(nn.Sequential(nn.Flatten(), nn.Linear(784, 2)), "mnist5k"),
     "has 2 outputs; mnist5k has 10 classes"),
    (lambda m, x, y: bench.evaluate("not a model", (x, y)), "expected a torch.nn.Module"),
    (lambda m, x, y: bench.evaluate(m, (x, y), threat={"linf": 0.1, "l2": 1}, attacks=["transfer"]), "named dataset"),
    (lambda m, x, y: bench.evaluate(m, (x, y), threat={"linf": 0.1, "l2": 1}, attacks=["nope"]), "valid choices: "),
])
def test_bad_input_is_one_clear_line(tiny, call, message):
    x, y, model, _ = _linear_points(8)
    with pytest.raises(ValueError) as info:
        call(model, x, y)
    assert message in str(info.value) and "\n" not in str(info.value)


# -- bench run --model ------------------------------------------------------------------------------

FACTORY = '''
import torch
from torch import nn


def make():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))


def not_a_module():
    return 42
'''


@pytest.fixture()
def user_package(tmp_path, monkeypatch):
    package = tmp_path / "userpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text(textwrap.dedent(FACTORY))
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


@pytest.mark.slow
def test_run_model_with_and_without_weights(tiny, user_package, monkeypatch, capsys):
    from bench.data import load_dataset

    code, out, err = run_cli(monkeypatch, capsys, "run", "--model", "userpkg.nets:make", "--n-test", "10")
    assert code == 0, err
    [first] = [json.loads(p.read_text()) for p in (tiny / "results").glob("*/summary.json")]
    assert first["defense"] == "Sequential" and first["model"]["source"] == "--model userpkg.nets:make"
    assert "robust (worst case)" in out and (tiny / "leaderboards" / "index.html").is_file()
    # weights that always answer class 3: clean accuracy is the share of 3s, and no perturbation changes it
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    with torch.no_grad():
        net[1].weight.zero_()
        net[1].bias.copy_(torch.nn.functional.one_hot(torch.tensor(3), 10).float())
    torch.save(net.state_dict(), user_package / "three.pt")
    code, out, err = run_cli(monkeypatch, capsys, "run", "--model", "userpkg.nets:make", "--weights",
                             str(user_package / "three.pt"), "--n-test", "10", "--out", str(tiny / "three"))
    assert code == 0, err
    summary = json.loads((tiny / "three" / "summary.json").read_text())
    labels = load_dataset("mnist5k").y_test[:10]
    assert summary["clean_accuracy"] == pytest.approx((labels == 3).float().mean().item())
    assert summary["robust_accuracy"] == summary["clean_accuracy"]
    assert "--weights three.pt (sha256 " in summary["model"]["source"]
    assert summary["model"]["sha256"] != first["model"]["sha256"]


@pytest.mark.parametrize("args, expected", [
    (["--model", "userpkg.nets"], "expected MODULE:FACTORY"),
    (["--model", "userpkg.nope:make"], "cannot import 'userpkg.nope'"),
    (["--model", "userpkg.nets:missing"], "has no callable 'missing'"),
    (["--model", "userpkg.nets:not_a_module"], "not a torch.nn.Module"),
    (["--model", "userpkg.nets:make", "--weights", "absent.pt"], "no such file"),
    (["--model", "userpkg.nets:make", "--weights", "{bad}"], "does not fit the model"),
    (["--model", "userpkg.nets:make", "--weights", "{text}"], "not a weights-only state dict"),
    (["--model", "userpkg.nets:make", "--defense", "plain"], "exactly one of"),
    (["--model", "userpkg.nets:make", "--config", "epochs=1"], "--config and --retrain go with --defense"),
    (["--defense", "plain", "--weights", "w.pt"], "--weights goes with --model"),
])
def test_run_model_bad_spec_is_one_line_exit_2(user_package, bench_home, monkeypatch, capsys, args, expected):
    torch.save({"other.weight": torch.zeros(1)}, user_package / "bad.pt")
    (user_package / "text.pt").write_text("not a checkpoint")
    args = [a.format(bad=user_package / "bad.pt", text=user_package / "text.pt") for a in args]
    code, out, err = run_cli(monkeypatch, capsys, "run", *args)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], err
    assert not (bench_home / "results").exists(), "a rejected command writes nothing"
