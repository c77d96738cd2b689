"""Atomic writes and hashes: an interrupted write leaves the old file or none, never half a file."""
from __future__ import annotations

import pytest

from bench.results import atomic_write_json, atomic_write_text, config_hash, read_json


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / "sub" / "summary.json"
    atomic_write_json(path, {"a": 1.0, "b": float("nan")})
    assert read_json(path) == {"a": 1.0, "b": None}
    atomic_write_text(path, "{}\n")
    assert path.read_text() == "{}\n"
    assert [p.name for p in path.parent.iterdir()] == ["summary.json"]


def test_interrupted_write_keeps_old_content_and_no_temp_file(tmp_path, monkeypatch):
    import bench.results as results

    path = tmp_path / "summary.json"
    atomic_write_text(path, "old\n")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(results.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(path, "new and long " * 1000)
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_config_hash_is_stable_and_sensitive():
    a = config_hash("vib", "mnist5k", {"beta": 1e-3, "k": 256})
    assert a == config_hash("vib", "mnist5k", {"k": 256, "beta": 1e-3})
    assert a != config_hash("vib", "mnist5k", {"k": 256, "beta": 1e-2})
    assert a != config_hash("tight_vib", "mnist5k", {"k": 256, "beta": 1e-3})
    assert len(a) == 12


def test_provenance_says_when_the_source_had_uncommitted_edits(tmp_path):
    """A summary made from edited code must not pass for a run of its commit: git_commit gets git's -dirty mark."""
    import subprocess

    from bench.report.load import _commit
    from bench.results import git_commit, source_modified

    assert source_modified(tmp_path) is None  # not a git checkout: unknown, not False
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(git + ["init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "code.py").write_text("x = 1\n")
    subprocess.run(git + ["add", "code.py"], cwd=tmp_path, check=True)
    subprocess.run(git + ["commit", "-qm", "c"], cwd=tmp_path, check=True)
    assert source_modified(tmp_path) is False
    (tmp_path / "results.csv").write_text("untracked output does not count\n")
    assert source_modified(tmp_path) is False
    (tmp_path / "code.py").write_text("x = 2\n")
    assert source_modified(tmp_path) is True
    sha = git_commit(tmp_path)
    assert _commit({"git_commit": sha, "source_modified": True}) == f"{sha}-dirty"
    assert _commit({"git_commit": sha, "source_modified": False}) == sha
    assert _commit({"git_commit": sha}) == sha  # older summaries say nothing: shown as they are
