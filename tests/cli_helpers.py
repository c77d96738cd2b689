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
