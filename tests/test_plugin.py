"""Third-party defenses: the example package really installed, and broken or clashing plugins reported."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench import registry

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "plugin_defense"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """pip-install the example into a private target directory (offline; the shared venv is untouched)."""
    root = tmp_path_factory.mktemp("plugin")
    source = root / "source"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    site = root / "site"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "--target", str(site), str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert any(p.name.startswith("bench_example_plugin-") and p.suffix == ".dist-info" for p in site.iterdir())
    return site


def _bench(args: list[str], site: Path, home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(site)])
    env["BENCH_HOME"] = str(home)
    env["BENCH_PROGRESS"] = "0"
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, env=env,
                          cwd=home, timeout=300)


def test_installed_plugin_is_listed_and_runs_through_the_cli(plugin_site, tmp_path):
    listed = _bench(["defenses"], plugin_site, tmp_path)
    assert listed.returncode == 0, listed.stderr
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert "example_blur" in names and "plain" in names and "adversarial_training" in names

    run = _bench(["run", "--defense", "example_blur", "--n-test", "20", "--config", "epochs=1", "--device", "cpu"],
                 plugin_site, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    summaries = list((tmp_path / "results").glob("*/summary.json"))
    assert len(summaries) == 1
    summary = json.loads(summaries[0].read_text())
    assert summary["defense"] == "example_blur" and summary["n_test"] == 20
    assert {"fgsm", "pgd-linf"} <= set(summary["attacks"])
    assert 0.0 <= summary["robust_accuracy"] <= summary["clean_accuracy"] <= 1.0
    assert list((tmp_path / "models" / "mnist5k").glob("example_blur-*.pt"))  # cached in the zoo


def test_installed_plugin_passes_validation(plugin_site, monkeypatch, fresh_registry, mnist5k):
    from bench.validate import validate_defense

    fresh_registry.extend(["bench_example_plugin", "bench_example_plugin.defense"])
    monkeypatch.syspath_prepend(str(plugin_site))
    checks = validate_defense("example_blur", mnist5k, n_train=64, n_check=16)
    assert all(c.passed for c in checks), [c.line() for c in checks if not c.passed]
    assert registry.get_spec("example_blur").source.startswith("plugin 'example_blur' from bench-example-plugin")


def _fake_distribution(root: Path, dist: str, module: str, entry: str, code: str) -> None:
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[bench.defenses]\n{entry} = {module}:fit\n")
    (root / f"{module}.py").write_text(textwrap.dedent(code))


@pytest.fixture()
def fresh_registry(monkeypatch):
    """A private copy of the registry with plugins not yet loaded."""
    monkeypatch.setattr(registry.DEFENSES, "_items", dict(registry.DEFENSES._items))
    monkeypatch.setattr(registry.DEFENSES, "_sources", dict(registry.DEFENSES._sources))
    monkeypatch.setattr(registry.DEFENSES, "_plugins_loaded", False)
    added: list[str] = []
    yield added
    for module in added:
        sys.modules.pop(module, None)


def test_broken_plugin_is_a_warning_not_a_crash(tmp_path, monkeypatch, fresh_registry):
    _fake_distribution(tmp_path, "broken-dist", "bench_test_broken_plugin", "broken",
                       "raise ImportError('needs a package that is not installed')\n")
    fresh_registry.append("bench_test_broken_plugin")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(UserWarning, match=r"skipped defense plugin 'broken' from broken-dist .*ImportError: needs a package"):
        names = registry.list_defenses()
    assert "plain" in names and "broken" not in names


DUPLICATE = """
    from dataclasses import dataclass
    from bench.registry import register_defense

    @dataclass
    class Config:
        epochs: int = 1

    @register_defense("plain", config=Config)
    def fit(data, config):
        '''A second defense called plain.'''
"""


def test_duplicate_name_is_an_error_naming_both_sources(tmp_path, monkeypatch, fresh_registry):
    _fake_distribution(tmp_path, "clash-dist", "bench_test_clash_plugin", "clash", DUPLICATE)
    fresh_registry.append("bench_test_clash_plugin")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(registry.DuplicateDefenseError) as info:
        registry.list_defenses()
    message = str(info.value)
    assert "'plain' is registered twice" in message
    assert "bench.defenses.plain:fit_plain" in message
    assert "plugin 'clash' from clash-dist (bench_test_clash_plugin:fit)" in message


def test_duplicate_through_the_cli_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, fresh_registry):
    from bench.cli import cli

    _fake_distribution(tmp_path, "clash-dist", "bench_test_clash_plugin2", "clash", DUPLICATE)
    fresh_registry.append("bench_test_clash_plugin2")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["bench", "defenses"])
    with pytest.raises(SystemExit) as info:
        cli()
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "registered twice" in err and "clash-dist" in err
