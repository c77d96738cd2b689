"""Running the `bench` console entry point in-process, as a user would call it."""
from __future__ import annotations

import sys

from bench.cli import cli


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Call ``bench ARGS``; return (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["bench", *args])
    code = 0
    try:
        cli()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


REPO = __import__("pathlib").Path(__file__).resolve().parents[1]
PLAIN = "plain-4eae53ff6ffd"  # the committed default plain model (seed 0): runs that reuse it train nothing
SOURCE = "plain-6418132e4e21"  # the committed transfer source (plain, seed 1)


def with_committed_models(home, *stems: str):
    """Copy committed zoo entries (weights and card) into ``home``'s model zoo; returns the zoo directory."""
    import shutil

    zoo = home / "models" / "mnist5k"
    zoo.mkdir(parents=True, exist_ok=True)
    for stem in stems or (PLAIN,):
        for suffix in (".pt", ".json"):
            shutil.copy(REPO / "models" / "mnist5k" / f"{stem}{suffix}", zoo / f"{stem}{suffix}")
    return zoo


def stderr_lines(err: str) -> list[str]:
    """The non-empty lines a command wrote on stderr."""
    return [line for line in err.splitlines() if line.strip()]
