"""Bad input never gives a traceback: one line naming the bad value or file, exit 2 (1 for the environment).

Each case is a command a careful user tried (issue 11). Option values are
refused before any work (nothing is written); damaged or hostile files are
named with what is wrong and what to do; damaged records are recomputed with
one warning; a full disk or a permission error is one line, exit 1, and
nothing finished is lost. Nearly every case runs in-process and fails before
any training (the committed plain model is copied into the test's zoo).
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal

import pytest
import torch

from cli_helpers import PLAIN, run_cli, stderr_lines, with_committed_models

RUN = ["run", "--defense", "plain"]
CERT = ["certify", "--defense", "plain", "--sigma", "0.25"]


def cfg(defense: str, item: str) -> list[str]:
    return ["run", "--defense", defense, "--config", item]


# (arguments, text the one line must contain): refused before any work, exit 2
VALUE_CASES = [
    (["run", "--defense", "nope"], ["'nope'", "plain"]),
    (RUN + ["--dataset", "imagenet"], ["'imagenet'", "mnist5k"]),
    (RUN + ["--device", "gpu"], ["'gpu'", "cpu"]),
    (RUN + ["--eps", "1.5"], ["'1.5'", "[0, 1]"]),
    (RUN + ["--eps", "-0.1"], ["'-0.1'", "[0, 1]"]),
    (RUN + ["--eps", "nan"], ["'nan'", "[0, 1]"]),
    (RUN + ["--eps", "abc"], ["'abc'", "[0, 1]"]),
    (RUN + ["--seed", "abc"], ["'abc'", "integer"]),
    (RUN + ["--seed", "-1"], ["'-1'", "integer"]),
    (RUN + ["--seed", "1.5"], ["'1.5'", "integer"]),
    (RUN + ["--seed", "4294967296"], ["'4294967296'", "4294967295"]),
    (RUN + ["--n-test", "0"], ["'0'", "integer >= 1"]),
    (RUN + ["--n-test", "-5"], ["'-5'", "integer >= 1"]),
    (RUN + ["--n-test", "ten"], ["'ten'", "integer >= 1"]),
    (RUN + ["--profile", "slow"], ["'slow'", "quick"]),
    (RUN + ["--executor", "ray", "--ray-address", "x"], ["'x'", "HOST:PORT"]),
    (RUN + ["--attacks", "nope"], ["'nope'", "pgd-linf"]),
    (RUN + ["--attacks", "fgsm,pgd-linfx"], ["'pgd-linfx'", "fgsm"]),
    (RUN + ["--attacks", ","], ["no attack named", "fgsm"]),
    (RUN + ["--attacks", "sweep"], ["'sweep'", "'pgd-linf'"]),
    (RUN + ["--sigma", "0"], ["'0'", "> 0"]),
    (RUN + ["--sigma", "-1"], ["'-1'", "> 0"]),
    (RUN + ["--sigma", "abc"], ["'abc'", "> 0"]),
    (RUN + ["--sigma", "0.25", "--no-certify"], ["--sigma", "--no-certify"]),
    (RUN + ["-v", "-q"], ["-v", "-q"]),
    (RUN + ["--config", "nope=1"], ["'nope'", "epochs"]),
    (RUN + ["--config", "epochs"], ["'epochs'", "KEY=VALUE"]),
    (cfg("plain", "epochs=0"), ["0", "'epochs'", ">= 1"]),
    (cfg("plain", "epochs=-3"), ["-3", "'epochs'", ">= 1"]),
    (cfg("plain", "epochs=1.5"), ["'1.5'", "'epochs'", "integer"]),
    (cfg("plain", "epochs=abc"), ["'abc'", "'epochs'", "integer"]),
    (cfg("plain", "lr=0"), ["0", "'lr'", "> 0"]),
    (cfg("plain", "lr=nan"), ["nan", "'lr'", "finite"]),
    (cfg("plain", "lr=-1"), ["-1", "'lr'", "> 0"]),
    (cfg("plain", "lr=inf"), ["inf", "'lr'", "finite"]),
    (cfg("plain", "batch_size=0"), ["0", "'batch_size'", ">= 1"]),
    (cfg("plain", "seed=-1"), ["-1", "'seed'", ">= 0"]),
    (cfg("plain", "seed=abc"), ["'abc'", "'seed'", "integer"]),
    (cfg("vib", "beta=-1"), ["-1", "'beta'", ">= 0"]),
    (cfg("vib", "k=0"), ["0", "'k'", ">= 1"]),
    (cfg("vib", "samples=0"), ["0", "'samples'", ">= 1"]),
    (cfg("vib", "beta=inf"), ["inf", "'beta'", "finite"]),
    (cfg("tight_vib", "lam=-1"), ["-1", "'lam'", ">= 0"]),
    (cfg("tight_vib", "h_max=0"), ["0", "'h_max'", "> 0"]),
    (cfg("adversarial_training", "eps=2"), ["2", "'eps'", "<= 1"]),
    (cfg("adversarial_training", "steps=0"), ["0", "'steps'", ">= 1"]),
    (cfg("adversarial_training", "step_size=0"), ["0", "'step_size'", "> 0"]),
    (cfg("adversarial_training", "warmup_epochs=-1"), ["-1", "'warmup_epochs'", ">= 0"]),
    (cfg("trades", "beta=-1"), ["-1", "'beta'", ">= 0"]),
    (cfg("feature_squeezing", "bits=9"), ["9", "'bits'", "<= 8"]),
    (cfg("feature_squeezing", "bits=0"), ["0", "'bits'", ">= 1"]),
    (cfg("feature_squeezing", "deploy=nope"), ["'nope'", "'deploy'", "bit_depth"]),
    (cfg("feature_squeezing", "false_positive_rate=1"), ["1", "'false_positive_rate'", "< 1"]),
    (cfg("feature_squeezing", "holdout=0"), ["0", "'holdout'", ">= 1"]),
    (cfg("feature_squeezing", "median_size=0"), ["0", "'median_size'", ">= 1"]),
    (cfg("distillation", "temperature=0"), ["0", "'temperature'", "> 0"]),
    (cfg("distillation", "teacher_epochs=0"), ["0", "'teacher_epochs'", ">= 1"]),
    (cfg("gaussian_augmentation", "sigma=-0.1"), ["-0.1", "'sigma'", ">= 0"]),
    (CERT + ["--alpha", "0"], ["'0'", "(0, 1)"]),
    (CERT + ["--alpha", "1"], ["'1'", "(0, 1)"]),
    (CERT + ["--alpha", "nan"], ["'nan'", "(0, 1)"]),
    (CERT + ["--n", "0"], ["'0'", "integer >= 1"]),
    (CERT + ["--n0", "abc"], ["'abc'", "integer >= 1"]),
    (CERT + ["--n-test", "-1"], ["'-1'", "integer >= 1"]),
    (["certify", "--defense", "plain", "--sigma", "0"], ["'0'", "> 0"]),
    (CERT + ["--profile", "nope"], ["'nope'", "quick"]),
    (CERT + ["--config", "lr=0"], ["0", "'lr'", "> 0"]),
    (["validate", "nope"], ["'nope'", "plain"]),
    (["validate", "plain", "--seed", "-1"], ["'-1'", "integer"]),
    (["report", "--results", "no/such/dir"], ["no/such/dir", "bench run"]),
]


def _ids(cases: list) -> list[str]:
    return [" ".join(args[1:] if args[0] == "run" else args)[:60] for args, _ in cases]


def one_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = stderr_lines(err)
    assert len(lines) == 1, err
    return lines[0]


def files_under(root) -> set:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


@pytest.mark.parametrize("args, tokens", VALUE_CASES, ids=_ids(VALUE_CASES))
def test_bad_value_is_one_line_exit_2_before_any_work(monkeypatch, capsys, bench_home, args, tokens):
    code, out, err = run_cli(monkeypatch, capsys, *args)
    line = one_line(err)
    assert code == 2, err
    assert line.startswith("bench: error: ")
    for token in tokens:
        assert token in line, (token, line)
    assert not any(bench_home.iterdir()), "a refused command must write nothing"


# -- output locations, checked before any work --------------------------------------------------

def _read_only(monkeypatch, directory) -> None:
    """Make ``directory`` refuse new files: chmod, or (as root, where chmod does not stop writes) the probe."""
    directory.chmod(0o555)
    if os.geteuid() == 0:  # root writes anyway; simulate what a read-only mount would answer
        import bench.results

        real = bench.results._writable
        monkeypatch.setattr(bench.results, "_writable", lambda d: False if d == directory else real(d))


OUTPUT_CASES = ["out-is-file", "out-under-file", "out-read-only", "home-is-file", "results-is-file",
                "leaderboards-is-file", "zoo-is-file", "report-out-is-file"]


@pytest.mark.parametrize("case", OUTPUT_CASES)
def test_bad_output_location_is_one_line_exit_2_before_any_work(monkeypatch, capsys, tmp_path, case):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("BENCH_HOME", str(home))
    args, named = RUN + ["--n-test", "5"], None
    if case in ("out-is-file", "out-under-file"):
        (tmp_path / "taken").write_text("mine\n")
        named = tmp_path / "taken"
        args += ["--out", str(named if case == "out-is-file" else named / "run")]
    elif case == "out-read-only":
        named = tmp_path / "locked"
        named.mkdir()
        _read_only(monkeypatch, named)
        args += ["--out", str(named / "run")]
    elif case == "home-is-file":
        named = tmp_path / "home-file"
        named.write_text("mine\n")
        monkeypatch.setenv("BENCH_HOME", str(named))
    elif case == "report-out-is-file":
        (home / "results").mkdir()
        named = home / "board"
        named.write_text("mine\n")
        args = ["report", "--out", str(named)]
    else:
        named = home / {"results-is-file": "results", "leaderboards-is-file": "leaderboards",
                        "zoo-is-file": "models"}[case]
        named.write_text("mine\n")
    before = files_under(tmp_path)
    try:
        code, out, err = run_cli(monkeypatch, capsys, *args)
    finally:
        if (tmp_path / "locked").exists():
            (tmp_path / "locked").chmod(0o755)
    line = one_line(err)
    assert code == 2 and str(named) in line and ("file" in line or "writable" in line), line
    assert files_under(tmp_path) == before, "nothing may be written"


# -- --config-file ------------------------------------------------------------------------------

CONFIG_FILE_CASES = [
    ("missing", None, ["does not exist"]),
    ("not-toml", "defense = [\n", ["not valid TOML"]),
    ("unknown-key", 'defense = "plain"\nepsilon = 0.1\n', ["'epsilon'", "eps"]),
    ("bad-eps", 'defense = "plain"\neps = 2.0\n', ["'eps'", "2.0", "[0, 1]"]),
    ("bad-defense", 'defense = "nope"\n', ["'defense'", "'nope'", "plain"]),
    ("bad-attacks", 'defense = "plain"\nattacks = ["fgsm", "nope"]\n', ["'attacks'", "'nope'", "fgsm"]),
    ("bool-seed", 'defense = "plain"\nseed = true\n', ["'seed'", "True", "integer"]),
    ("bad-flag", 'defense = "plain"\nretrain = "yes"\n', ["'retrain'", "true, false"]),
    ("table-key", 'defense = "plain"\n[eps]\nx = 1\n', ["'eps'", "table"]),
    ("config-not-table", 'defense = "plain"\nconfig = 3\n', ["'config'", "table"]),
    ("config-bad-value", 'defense = "plain"\n[config]\nepochs = 0\n', ["[config]", "'epochs'", ">= 1"]),
    ("config-unknown", 'defense = "plain"\n[config]\nepoch = 2\n', ["[config]", "'epoch'", "epochs"]),
    ("config-wrong-type", 'defense = "vib"\n[config]\nbeta = "big"\n', ["[config]", "'beta'", "finite number"]),
]


@pytest.mark.parametrize("case, text, tokens", CONFIG_FILE_CASES, ids=[c[0] for c in CONFIG_FILE_CASES])
def test_bad_config_file_is_one_line_naming_file_and_key(monkeypatch, capsys, tmp_path, case, text, tokens):
    bench_home = tmp_path / "home"
    bench_home.mkdir()
    monkeypatch.setenv("BENCH_HOME", str(bench_home))
    path = tmp_path / "run.toml"
    if text is not None:
        path.write_text(text)
    code, out, err = run_cli(monkeypatch, capsys, "run", "--config-file", str(path))
    line = one_line(err)
    assert code == 2 and str(path) in line, line
    for token in tokens:
        assert token in line, (token, line)
    assert not any(bench_home.iterdir())


# -- damaged or hostile model-zoo files ---------------------------------------------------------

class _Opens:
    """Unpickling this would call open(path, "w"): code from the file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _damage_zoo(zoo, case: str, marker) -> tuple:
    weights, card_path = zoo / f"{PLAIN}.pt", zoo / f"{PLAIN}.json"
    card = json.loads(card_path.read_text())
    state = torch.load(weights, weights_only=True)
    if case == "malicious-pickle":
        torch.save({"weight": _Opens(str(marker))}, weights)
    elif case == "truncated":
        weights.write_bytes(weights.read_bytes()[:2000])
    elif case == "wrong-shapes":
        torch.save({k: torch.zeros(3) for k in state}, weights)
    elif case == "not-a-state-dict":
        torch.save([torch.zeros(3)], weights)
    elif case == "not-pytorch":
        weights.write_bytes(b"these are not weights\n")
    elif case == "tampered":
        weights.write_bytes(weights.read_bytes() + b"tampered")
        return weights, "sha256"
    elif case == "card-not-json":
        card_path.write_text("{not json")
        return card_path, "not valid JSON"
    elif case == "card-a-list":
        card_path.write_text("[1, 2]\n")
        return card_path, "not a model card"
    elif case == "card-no-sha":
        card.pop("sha256")
        card_path.write_text(json.dumps(card))
        return card_path, "not a model card"
    from bench.results import sha256_file

    card["sha256"] = sha256_file(weights)  # a consistent card: only the weights themselves are wrong
    card_path.write_text(json.dumps(card))
    return weights, {"malicious-pickle": "asks to call io.open", "wrong-shapes": "has shape (3,)",
                     "not-a-state-dict": "not a state dict"}.get(case, "not a readable PyTorch file")


ZOO_CASES = ["malicious-pickle", "truncated", "wrong-shapes", "not-a-state-dict", "not-pytorch", "tampered",
             "card-not-json", "card-a-list", "card-no-sha"]


@pytest.mark.parametrize("case", ZOO_CASES)
def test_damaged_zoo_file_is_one_line_naming_it_exit_2(monkeypatch, capsys, bench_home, tmp_path, case):
    marker = tmp_path / "code-ran"
    named, what = _damage_zoo(with_committed_models(bench_home), case, marker)
    code, out, err = run_cli(monkeypatch, capsys, *RUN, "--n-test", "5", "--attacks", "fgsm", "--no-certify", "-q")
    line = one_line(err)
    assert code == 2 and str(named) in line and what in line and "--retrain" in line, line
    assert not marker.exists(), "no code from the file may run"
    assert not list((bench_home / "results").glob("*/summary.json"))


# -- damaged records of a finished run: recomputed with one warning ------------------------------

FAST = [*RUN, "--n-test", "5", "--attacks", "fgsm", "--no-certify", "-q"]
CERT_FAST = [*CERT, "--n", "100", "--n0", "10", "--n-test", "3", "-q"]


def _cli_in(home, args: list[str]) -> None:
    import sys

    from bench.cli import cli

    saved, os.environ["BENCH_HOME"] = os.environ.get("BENCH_HOME"), str(home)
    argv, sys.argv = sys.argv, ["bench", *args]
    try:
        cli()
    except SystemExit as exc:
        assert not exc.code
    finally:
        sys.argv = argv
        os.environ.pop("BENCH_HOME") if saved is None else os.environ.__setitem__("BENCH_HOME", saved)


@pytest.fixture(scope="module")
def finished_home(tmp_path_factory):
    """A BENCH_HOME holding a finished run of FAST and one of CERT_FAST (the committed plain model: no training)."""
    home = tmp_path_factory.mktemp("finished")
    with_committed_models(home)
    _cli_in(home, FAST)
    _cli_in(home, CERT_FAST)
    return home


def _run_dir(home, kind: str):
    for summary in (home / "results").glob("mnist5k-plain-*/summary.json"):
        if json.loads(summary.read_text())["evaluation"]["kind"] == kind:
            return summary.parent
    raise AssertionError(f"no {kind} run in {home}")


@pytest.fixture()
def finished(finished_home, tmp_path, monkeypatch):
    home = tmp_path / "home"
    shutil.copytree(finished_home, home)
    monkeypatch.setenv("BENCH_HOME", str(home))
    return home, _run_dir(home, "run")


def _numbers(summary: dict) -> tuple:
    attacks = {k: (a["accuracy"], a["n"]) for k, a in (summary.get("attacks") or {}).items()}
    certs = {k: (b["certified_accuracy"], b["average_certified_radius"])
             for k, b in (summary.get("certification") or {}).items()}
    return summary.get("clean_accuracy"), summary.get("robust_accuracy"), attacks, certs


RECORD_CASES = {
    "record-not-json": ("fgsm.json", lambda r: "{{{ not json"),
    "record-garbage-fingerprint-intact": ("fgsm.json", lambda r: json.dumps({**r, "correct": "garbage"})),
    "record-wrong-length": ("fgsm.json", lambda r: json.dumps({**r, "correct": r["correct"][:-1]})),
    "record-no-indices": ("fgsm.json", lambda r: json.dumps({k: v for k, v in r.items() if k != "indices"})),
    "record-numbers-as-text": ("fgsm.json", lambda r: json.dumps({**r, "eps": "0.3"})),
    "record-a-list": ("fgsm.json", lambda r: json.dumps([r])),
    "certificates-binary": ("certify-sigma0.25.csv", lambda r: "\x00\x01\x02 garbage"),
    "certificates-missing-columns": ("certify-sigma0.25.csv", lambda r: "index,label\n0,1\n"),
    "certificates-radius-text": ("certify-sigma0.25.csv", lambda r: r.replace(",0.", ",abc", 1)),
}


@pytest.mark.parametrize("case", sorted(RECORD_CASES))
def test_damaged_record_is_recomputed_with_one_warning(monkeypatch, capsys, finished, case):
    home, _ = finished
    name, damage = RECORD_CASES[case]
    run_dir, args = (_run_dir(home, "run"), FAST) if name.endswith(".json") else (_run_dir(home, "certify"), CERT_FAST)
    path = run_dir / "records" / name
    original = json.loads((run_dir / "summary.json").read_text())
    text = path.read_text()
    path.write_text(damage(json.loads(text) if name.endswith(".json") else text))
    code, out, err = run_cli(monkeypatch, capsys, *args)
    line = one_line(err)
    assert code == 0, err
    # a rerun reads the finished run's records through its staging sibling (.<run>.next, hard links)
    assert line.startswith("bench: warning: ") and run_dir.name in line and name in line and "recomputing" in line, line
    assert _numbers(json.loads((run_dir / "summary.json").read_text())) == _numbers(original)
    if name.endswith(".json"):  # the same record again (but its timing)
        same = {k: v for k, v in json.loads(text).items() if k != "seconds"}
        assert {k: v for k, v in json.loads(path.read_text()).items() if k != "seconds"} == same
    else:
        assert path.read_text().splitlines()[0] == text.splitlines()[0]


def test_damaged_summary_is_one_line_when_certification_merges_into_it(monkeypatch, capsys, finished):
    home, run_dir = finished
    (run_dir / "summary.json").write_text("[not a summary")
    records = {p.name: p.read_bytes() for p in (run_dir / "records").iterdir() if p.is_file()}
    code, out, err = run_cli(monkeypatch, capsys, *CERT_FAST, "--out", str(run_dir))
    line = one_line(err)
    assert code == 2 and str(run_dir / "summary.json") in line and "not valid JSON" in line, line
    assert {p.name: p.read_bytes() for p in (run_dir / "records").iterdir() if p.is_file()} == records


def test_damaged_summary_is_skipped_by_the_reporter_with_one_warning(monkeypatch, capsys, finished):
    home, run_dir = finished
    (run_dir / "summary.json").write_text("{not json")
    code, out, err = run_cli(monkeypatch, capsys, "report")
    warnings = [line for line in stderr_lines(err) if "warning" in line]
    assert code == 0 and "Traceback" not in err and len(warnings) == 1 and run_dir.name in warnings[0], err


# -- the environment: disk full, permissions (exit 1, nothing finished lost) ----------------------

def _failing_writes(monkeypatch, name: str, code: int) -> None:
    import bench.results

    real = bench.results._atomic_write

    def write(path, data):
        if path.name == name:
            raise OSError(code, os.strerror(code))
        real(path, data)

    monkeypatch.setattr(bench.results, "_atomic_write", write)


def _files(root) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


ENVIRONMENT_CASES = [("summary.json", errno.ENOSPC, FAST), ("per_sample.csv", errno.ENOSPC, FAST),
                     ("fgsm.json", errno.ENOSPC, FAST), ("summary.json", errno.EACCES, FAST),
                     ("certify-sigma0.25.csv", errno.EROFS, CERT_FAST), ("summary.json", errno.EDQUOT, CERT_FAST)]


@pytest.mark.parametrize("target, code, args", ENVIRONMENT_CASES,
                         ids=[f"{t}-{errno.errorcode[c]}-{a[0]}" for t, c, a in ENVIRONMENT_CASES])
def test_disk_full_or_permission_is_one_line_exit_1_and_keeps_finished_work(monkeypatch, capsys, finished,
                                                                           target, code, args):
    home, _ = finished
    before = _files(home / "results")
    _failing_writes(monkeypatch, target, code)
    new_key = ["--eps", "0.2"] if args[0] == "run" else ["--n-test", "4"]
    code_, out, err = run_cli(monkeypatch, capsys, *args, *new_key)  # a new run beside the finished ones
    line = one_line(err)
    assert code_ == 1 and target in line and os.strerror(code) in line, line
    after = _files(home / "results")
    assert {k: v for k, v in after.items() if k in before} == before, "finished runs must be untouched"
    new = [k for k in after if k not in before and not k.split("/")[-1].startswith(".")]
    assert all(k.split("/")[-1] not in (target, "summary.json") for k in new), new


def test_a_run_resumes_after_the_disk_is_freed(monkeypatch, capsys, finished):
    home, run_dir = finished
    _failing_writes(monkeypatch, "summary.json", errno.ENOSPC)
    code, out, err = run_cli(monkeypatch, capsys, *FAST, "--eps", "0.2")
    assert code == 1
    monkeypatch.undo()
    monkeypatch.setenv("BENCH_HOME", str(home))
    code, out, err = run_cli(monkeypatch, capsys, *FAST[:-1], "--eps", "0.2")
    assert code == 0 and "fgsm" in err and "reused from records" in err, err


def test_a_full_disk_on_a_rerun_keeps_the_old_results(monkeypatch, capsys, finished):
    home, run_dir = finished
    before = _files(run_dir)
    _failing_writes(monkeypatch, "summary.json", errno.ENOSPC)
    code, out, err = run_cli(monkeypatch, capsys, *FAST)
    assert code == 1 and "No space left" in one_line(err)
    assert _files(run_dir) == before


# -- signals ------------------------------------------------------------------------------------

@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_ctrl_c_flush_certificates_and_say_one_line(monkeypatch, capsys, finished, signum, status):
    from bench.certification import smoothing

    real, calls = smoothing.SmoothedClassifier.certify, []

    def certify(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signum)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(smoothing.SmoothedClassifier, "certify", certify)
    code, out, err = run_cli(monkeypatch, capsys, *CERT_FAST, "--n-test", "5")  # a new run (5 points)
    assert code == status and one_line(err) == "bench: interrupted; finished work is kept and a rerun resumes"
    home, _ = finished
    new_run = [d for d in (home / "results").iterdir() if d.is_dir() and not (d / "summary.json").exists()]
    rows = (new_run[0] / "records" / "certify-sigma0.25.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 2, "the two finished certificates were flushed"


# -- certification refuses to certify non-finite logits and checks its inputs before sampling -----

class _Counting(torch.nn.Module):
    """A linear model whose logits can be made NaN or inf, counting its forwards."""

    num_classes = 3

    def __init__(self, fill: float | None = None) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)
        self.fill, self.forwards = fill, 0

    def forward(self, x):
        self.forwards += 1
        out = self.linear(x.flatten(1))
        return out if self.fill is None else torch.full_like(out, self.fill)


@pytest.mark.parametrize("fill", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_logits_abstain_instead_of_being_certified(fill):
    from bench.certification.smoothing import ABSTAIN, SmoothedClassifier

    smoothed = SmoothedClassifier(_Counting(fill), 0.25, batch_size=100)
    cert = smoothed.certify(torch.zeros(4), n0=20, n=200, alpha=0.001)
    assert cert.prediction == ABSTAIN and cert.radius == 0.0 and cert.nonfinite == 220
    assert smoothed.predict(torch.zeros(4), n=100, alpha=0.001) == ABSTAIN


def test_non_finite_points_are_counted_in_the_block_and_the_log(tmp_path):
    from bench.certification import certify_sigmas

    lines: list[str] = []
    x, y = torch.zeros(4, 4), torch.zeros(4, dtype=torch.long)
    blocks = certify_sigmas(_Counting(float("nan")), x, y, sigmas=[0.25], indices=[0, 1, 2], n0=10, n=100,
                            alpha=0.01, records_dir=tmp_path, model_id="nan", dataset="toy", log=lines.append)
    block = blocks["0.25"]
    assert block.nonfinite_points == 3 and block.abstain_rate == 1.0 and block.certified_accuracy["0.0"] == 0.0
    assert any("non-finite logits" in line for line in lines)


@pytest.mark.parametrize("kwargs, bad", [({"alpha": 0.0}, "alpha"), ({"alpha": 1.0}, "alpha"),
                                         ({"alpha": float("nan")}, "alpha"), ({"n0": 0}, "n0"), ({"n": 0}, "n"),
                                         ({"n0": 1.5}, "n0"), ({"n": True}, "n")])
def test_certify_and_predict_check_inputs_before_sampling(kwargs, bad):
    from bench.certification.certify import CertifySettings
    from bench.certification.smoothing import SmoothedClassifier

    model = _Counting()
    smoothed = SmoothedClassifier(model, 0.25, batch_size=100)
    args = {"n0": 10, "n": 100, "alpha": 0.001, **kwargs}
    with pytest.raises(ValueError, match=f"bad {bad} "):
        smoothed.certify(torch.zeros(4), **args)
    if "n0" not in kwargs:
        with pytest.raises(ValueError, match=f"bad {bad} "):
            smoothed.predict(torch.zeros(4), n=args["n"], alpha=args["alpha"])
    with pytest.raises(ValueError, match=f"bad {bad} "):
        CertifySettings(sigma=0.25, **args)
    assert model.forwards == 0, "nothing may be sampled before the inputs are checked"


# -- hostile plugins and summaries ---------------------------------------------------------------

def test_a_plugin_that_exits_on_import_is_one_warning(monkeypatch, capsys, tmp_path):
    from importlib import metadata

    from bench import registry

    (tmp_path / "quitting_plugin_mod.py").write_text("import sys\nsys.exit(0)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry.DEFENSES, "_items", dict(registry.DEFENSES._items))
    monkeypatch.setattr(registry.DEFENSES, "_sources", dict(registry.DEFENSES._sources))
    monkeypatch.setattr(registry.DEFENSES, "_plugins_loaded", False)
    entry = metadata.EntryPoint(name="quitter", value="quitting_plugin_mod:fit", group="bench.defenses")
    monkeypatch.setattr(registry, "_entry_points", lambda: [entry])
    code, out, err = run_cli(monkeypatch, capsys, "defenses")
    assert code == 0 and "plain" in out.split()
    line = one_line(err)
    assert line.startswith("bench: warning: skipped defense plugin 'quitter'") and "SystemExit" in line


def test_markdown_leaderboards_do_not_embed_html_from_summaries(tmp_path):
    from bench.report import write_report
    from report_synthetic import summary

    hostile = summary("plain", 0.9, 0.1, flags=["<script>alert(1)</script> expected <= 0.02"])
    hostile["defense"] = "<img src=x onerror=alert(1)>"
    hostile["provenance"]["run_id"] = "run`<b>x</b>"
    (tmp_path / "results" / "r").mkdir(parents=True)
    (tmp_path / "results" / "r" / "summary.json").write_text(json.dumps(hostile))
    write_report(tmp_path / "results", tmp_path / "boards")
    # the board and the defense's detail page: every Markdown file the reporter writes
    text = "".join(p.read_text() for p in sorted((tmp_path / "boards").rglob("*.md")))
    fences = text.split("```")
    outside_fences = "".join(fences[::2])  # fenced code (the config) is shown as text
    outside_code = "".join(outside_fences.replace("\\`", "").split("`")[::2])  # so is a code span
    assert "<script" not in outside_code and "<img" not in outside_code and "<b>" not in outside_code
    assert "&lt;script>alert(1)&lt;/script> expected <= 0.02" in text
    assert "&lt;img src=x onerror=alert(1)>" in text
