"""The publishing workflow parses, and every `bench ...` line it runs is a real command with real options."""
from __future__ import annotations

import shlex
from pathlib import Path

import click
import pytest

yaml = pytest.importorskip("yaml")

from bench.cli import main  # noqa: E402

WORKFLOW = Path(__file__).resolve().parents[1] / ".github" / "workflows" / "leaderboard.yml"
BUILT_IN = ["plain", "adversarial_training", "trades", "feature_squeezing", "distillation",
            "gaussian_augmentation", "vib", "tight_vib"]


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def _steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def _bench_lines(workflow: dict) -> list[list[str]]:
    lines = []
    for step in _steps(workflow):
        for line in step.get("run", "").splitlines():
            if line.strip().startswith("bench "):
                lines.append(shlex.split(line.strip()))
    return lines


def test_triggers_on_push_to_main_and_publishes(workflow):
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers["push"]["branches"] == ["main"]
    uses = {step["uses"].split("@")[0]: step for step in _steps(workflow) if "uses" in step}
    assert {"actions/checkout", "actions/upload-artifact", "actions/upload-pages-artifact",
            "actions/deploy-pages"} <= uses.keys()
    assert uses["actions/upload-pages-artifact"]["with"]["path"].rstrip("/") == "leaderboards"
    assert "leaderboards/" in uses["actions/upload-artifact"]["with"]["path"]
    runs = [step.get("run", "") for step in _steps(workflow)]
    assert any("pip install -e ." in r for r in runs)
    publish = next(job for job in workflow["jobs"].values() if any("deploy-pages" in s.get("uses", "") for s in job["steps"]))
    assert publish["permissions"] == {"pages": "write", "id-token": "write"}


def test_every_bench_line_is_a_valid_command(workflow):
    lines = _bench_lines(workflow)
    assert [line[1] for line in lines] == ["run"] * len(BUILT_IN) + ["report"]
    for tokens in lines:
        command = main.get_command(click.Context(main), tokens[1])
        assert isinstance(command, click.Command), f"no subcommand {tokens[1]!r}"
        args = tokens[2:]
        # Parse with click itself (unknown options and bad values raise); the defense name is
        # replaced by one that exists on every branch and checked against the registry below.
        if "--defense" in args:
            args[args.index("--defense") + 1] = "plain"
        ctx = command.make_context(f"bench {tokens[1]}", args)
        if tokens[1] == "run":
            assert ctx.params["profile"] == "quick"
        else:
            assert ctx.params["out"] == Path("leaderboards") and ctx.params["results_dir"] == Path("results")


def test_workflow_runs_every_built_in_defense(workflow):
    named = [t[t.index("--defense") + 1] for t in _bench_lines(workflow) if "--defense" in t]
    assert named == BUILT_IN


def test_workflow_defenses_are_registered(workflow):
    from bench.registry import list_defenses

    named = [t[t.index("--defense") + 1] for t in _bench_lines(workflow) if "--defense" in t]
    assert sorted(set(named) - set(list_defenses())) == []
