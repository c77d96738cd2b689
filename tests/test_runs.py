"""Runs as a careful user relies on them: reproducible, keyed by what changes their numbers, race-free.

Two runs of one command give the same numbers and per_sample.csv; runs that
differ in eps (or points, battery, certification) never touch each other's
results or leaderboard rows; a rerun keeps the old results until the new
ones are complete; two processes that need the same uncached model train it
once; a TOML config file is the same run as its flags. Runs reuse the
committed plain model (nothing is trained) except the concurrency test.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_helpers import PLAIN, REPO, run_cli, stderr_lines, with_committed_models

SMALL = ["run", "--defense", "plain", "--n-test", "10", "--attacks", "fgsm,pgd-linf", "--no-certify", "-q"]
TIMING = {"seconds", "date", "train_seconds", "bound_seconds"}


def numbers(obj):
    """``obj`` without timing and date fields (everything else must reproduce exactly)."""
    if isinstance(obj, dict):
        return {k: numbers(v) for k, v in obj.items() if k not in TIMING}
    if isinstance(obj, list):
        return [numbers(v) for v in obj]
    return obj


def summaries(home: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in (home / "results").glob("*/summary.json")}


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_two_runs_of_one_command_give_identical_numbers_and_per_sample(monkeypatch, capsys, bench_home):
    import shutil

    with_committed_models(bench_home)
    args = [*SMALL[:-2], "--sigma", "0.25", "-q"]  # with certification (10 points)
    code, out, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0, err
    (first_name, first), = summaries(bench_home).items()
    first_rows = (bench_home / "results" / first_name / "per_sample.csv").read_bytes()
    shutil.rmtree(bench_home / "results")  # nothing to reuse: every attack and certificate is recomputed
    code, out, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0, err
    (second_name, second), = summaries(bench_home).items()
    assert second_name == first_name
    assert numbers(second) == numbers(first)
    assert (bench_home / "results" / second_name / "per_sample.csv").read_bytes() == first_rows
    assert first["certification"]["0.25"]["n_test"] == 10 and set(first["attacks"]) == {"fgsm", "pgd-linf"}


def test_the_evaluation_is_in_the_summary_and_the_run_id(monkeypatch, capsys, bench_home):
    with_committed_models(bench_home)
    monkeypatch.chdir(bench_home)
    code, out, err = run_cli(monkeypatch, capsys, *SMALL)
    assert code == 0 and err == "", err  # -q: only the table, on stdout
    (name, summary), = summaries(bench_home).items()
    evaluation = summary["evaluation"]
    assert evaluation == {"kind": "run", "eps": 0.3, "n_test": 10, "points": "first", "profile": "quick",
                          "battery": "reduced", "attacks": ["fgsm", "pgd-linf"], "certify": None, "batch_size": 500}
    from bench.runkey import evaluation_hash

    assert name == f"mnist5k-plain-{summary['provenance']['config_hash']}-s0-e{evaluation_hash(evaluation)}"
    assert len(summary["run_key"]) == 16 and "certification" not in summary
    assert any(flag["check"] == "reduced-battery" and flag["message"].startswith("reduced battery: only fgsm, pgd-linf ran")
               for flag in summary["flags"])
    assert summary["options"]["attacks"] == ["fgsm", "pgd-linf"] and summary["options"]["certify"] is False
    assert f"results: results/{name}/summary.json" in out  # a path the user can paste
    monkeypatch.chdir(REPO)
    code, out, err = run_cli(monkeypatch, capsys, *SMALL)
    assert f"results: {bench_home / 'results' / name / 'summary.json'}" in out


def test_another_eps_leaves_the_first_runs_results_and_row_untouched(monkeypatch, capsys, bench_home):
    with_committed_models(bench_home)
    code, out, err = run_cli(monkeypatch, capsys, *SMALL)
    assert code == 0, err
    (first_name, _), = summaries(bench_home).items()
    before = files(bench_home / "results" / first_name)
    board = (bench_home / "leaderboards" / "mnist5k.md").read_text()
    row = [line for line in board.splitlines() if line.startswith("|") and "[plain](" in line]
    code, out, err = run_cli(monkeypatch, capsys, *SMALL, "--eps", "0.1")
    assert code == 0, err
    found = summaries(bench_home)
    assert len(found) == 2 and files(bench_home / "results" / first_name) == before
    eps = {s["threat_model"]["eps"] for s in found.values()}
    assert eps == {0.3, 0.1}
    after = (bench_home / "leaderboards" / "mnist5k.md").read_text()
    assert len(row) == 1 and [line for line in after.splitlines() if line.startswith("|") and "[plain](" in line] == row
    assert "plain" in (bench_home / "leaderboards" / "mnist5k-linf-0.1-l2-2.md").read_text()
    code, out, err = run_cli(monkeypatch, capsys, *SMALL, "--n-test", "5")  # fewer points: a third run
    assert code == 0 and len(summaries(bench_home)) == 3 and files(bench_home / "results" / first_name) == before


def test_an_interrupted_rerun_keeps_the_old_results_and_a_finished_one_replaces_them(monkeypatch, capsys, bench_home):
    import bench.attacks.summary as battery_summary

    with_committed_models(bench_home)
    code, out, err = run_cli(monkeypatch, capsys, *SMALL)
    (name, first), = summaries(bench_home).items()
    run_dir = bench_home / "results" / name
    before = files(run_dir)
    real = battery_summary.summarize_battery

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(battery_summary, "summarize_battery", interrupted)
    code, out, err = run_cli(monkeypatch, capsys, *SMALL)
    assert code == 130 and files(run_dir) == before  # records were reused, nothing of the old run changed
    assert (bench_home / "results" / f".{name}.next").is_dir()
    monkeypatch.setattr(battery_summary, "summarize_battery", real)
    code, out, err = run_cli(monkeypatch, capsys, *SMALL[:-1], "-v")
    assert code == 0 and "rerun of a finished run" in err and err.count("reused from records") == 2, err
    assert not (bench_home / "results" / f".{name}.next").exists()
    assert numbers(summaries(bench_home)[name]) == numbers(first)


def test_rundir_recovers_a_swap_a_crash_interrupted(tmp_path):
    from bench.rundir import recover, staged

    out = tmp_path / "run"
    out.mkdir()
    (out / "summary.json").write_text("old\n")
    with staged(out) as work:
        assert work != out and not (work / "summary.json").exists()
        (work / "summary.json").write_text("new\n")
        assert (out / "summary.json").read_text() == "old\n"
    assert (out / "summary.json").read_text() == "new\n" and sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    # a crash after the old directory was moved aside: with the new summary written, the new one wins
    nxt, old = tmp_path / ".run.next", tmp_path / ".run.old"
    out.rename(old)
    nxt.mkdir()
    (nxt / "summary.json").write_text("newer\n")
    recover(out)
    assert (out / "summary.json").read_text() == "newer\n" and not old.exists() and not nxt.exists()
    # ... without it, the old one comes back
    out.rename(old)
    nxt.mkdir()
    recover(out)
    assert (out / "summary.json").read_text() == "newer\n" and not old.exists()


def test_a_second_run_of_the_same_key_waits_for_the_first(monkeypatch, capsys, bench_home, tmp_path):
    import threading

    import bench.runsetup
    from bench.rundir import lock_path, locked

    with_committed_models(bench_home)
    code, out, err = run_cli(monkeypatch, capsys, *SMALL)
    (name, _), = summaries(bench_home).items()
    lock, done = lock_path(bench_home / "results" / name), tmp_path / "let-go"
    holder = subprocess.Popen(  # another process writing this run, until told to let go
        [sys.executable, "-c", "import os, time; from filelock import FileLock\n"
         f"lock = FileLock({str(lock)!r}); lock.acquire(); print('held', flush=True)\n"
         f"while not os.path.exists({str(done)!r}): time.sleep(0.1)"],
        stdout=subprocess.PIPE, text=True)
    waiting = threading.Event()

    def spy(path, what, log):  # tells the test when the run logged that it waits
        return locked(path, what, lambda message: (log(message), waiting.set()))

    monkeypatch.setattr(bench.runsetup, "locked", spy)
    threading.Thread(target=lambda: waiting.wait(300) and done.touch(), daemon=True).start()
    try:
        assert holder.stdout.readline().strip() == "held"
        code, out, err = run_cli(monkeypatch, capsys, *SMALL[:-1])
    finally:
        done.touch()
        holder.wait(timeout=60)
    assert code == 0 and f"waiting: another process is writing {name}" in err  # then went on when it let go
    assert err.count("reused from records") == 2


def _bench(home: Path, log: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "BENCH_HOME": str(home), "PYTHONPATH": str(REPO), "BENCH_PROGRESS": "0"}
    with open(log, "w") as stderr:
        return subprocess.Popen([sys.executable, "-m", "bench", *args], env=env, cwd=home, text=True,
                                stdout=subprocess.PIPE, stderr=stderr)


@pytest.mark.slow
def test_two_concurrent_cold_runs_train_once_and_name_the_weights_on_disk(tmp_path):
    """Two processes need the same uncached model (different eps, so different runs): one trains, one waits."""
    from filelock import FileLock

    from bench.registry import create_defense
    from bench.results import config_hash, sha256_file

    config = create_defense("plain", epochs=1, seed=0).config_dict()
    lock = tmp_path / "models" / "mnist5k" / f"plain-{config_hash('plain', 'mnist5k', config)}.lock"
    lock.parent.mkdir(parents=True)
    held = FileLock(str(lock))
    held.acquire()  # both processes must find the entry being trained
    args = ["run", "--defense", "plain", "--config", "epochs=1", "--n-test", "10", "--attacks", "fgsm", "--no-certify"]
    logs = [tmp_path / "stderr-0", tmp_path / "stderr-1"]
    procs = [_bench(tmp_path, logs[0], *args), _bench(tmp_path, logs[1], *args, "--eps", "0.1")]
    deadline = time.monotonic() + 300
    while not all("waiting: another process is training plain" in p.read_text() for p in logs):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), [p.read_text() for p in logs]
        time.sleep(0.5)
    held.release()
    for proc in procs:
        proc.communicate(timeout=600)
        assert proc.returncode == 0, [p.read_text() for p in logs]
    text = "".join(p.read_text() for p in logs)
    assert text.count("trained model in") == 1 and text.count("reused cached model") == 1, text
    weights = list((tmp_path / "models" / "mnist5k").glob("plain-*.pt"))
    assert len(weights) == 1
    card = json.loads(weights[0].with_suffix(".json").read_text())
    found = summaries(tmp_path)
    assert len(found) == 2
    assert {s["model"]["sha256"] for s in found.values()} == {card["sha256"]} == {sha256_file(weights[0])}


def test_a_config_file_is_the_same_run_as_its_flags(monkeypatch, capsys, tmp_path):
    flags = ["run", "--defense", "plain", "--eps", "0.2", "--n-test", "8", "--attacks", "fgsm,pgd-linf",
             "--sigma", "0.25", "--config", "epochs=5", "-q"]
    toml = ('defense = "plain"\neps = 0.2\nn-test = 8\nattacks = ["fgsm", "pgd-linf"]\nsigma = [0.25]\n'
            'quiet = true\n[config]\nepochs = 5\n')
    (tmp_path / "run.toml").write_text(toml)
    results = []
    for name, args in (("flags", flags), ("file", ["run", "--config-file", str(tmp_path / "run.toml")])):
        home = tmp_path / name
        with_committed_models(home)
        monkeypatch.setenv("BENCH_HOME", str(home))
        code, out, err = run_cli(monkeypatch, capsys, *args)
        assert code == 0 and err == "", err
        (run_name, summary), = summaries(home).items()
        results.append((run_name, numbers(summary), (home / "results" / run_name / "per_sample.csv").read_bytes()))
    assert results[0] == results[1]
    assert results[0][1]["options"]["eps"] == 0.2 and results[0][1]["options"]["config"] == {"epochs": 5}
    # a flag overrides the file, key by key for --config
    code, out, err = run_cli(monkeypatch, capsys, "run", "--config-file", str(tmp_path / "run.toml"), "--eps", "0.25",
                             "--config", "lr=0.001")
    assert code == 0, err
    chosen = [s for s in summaries(tmp_path / "file").values() if s["threat_model"]["eps"] == 0.25]
    assert chosen and chosen[0]["options"]["config"] == {"epochs": 5, "lr": 0.001}


def test_reading_a_summary_from_before_the_evaluation_field(tmp_path):
    """Committed summaries have no ``evaluation``/``run_key``: they read back with those fields absent."""
    from bench.schema.read import read_summary

    raw = json.loads(next((REPO / "results").glob(f"mnist5k-{PLAIN[:5]}*/summary.json")).read_text())
    raw = {k: v for k, v in raw.items() if k not in ("evaluation", "run_key")}  # as written before the run keys
    summary, notes, problem = read_summary(raw)
    assert problem is None and summary.evaluation is None and summary.run_key is None
