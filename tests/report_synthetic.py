"""Synthetic summary.json files for the reporter's tests.

A reporter only reads what runs wrote, so writing summaries by hand is a
fair test input: every figure below is made up and the tests check that
the reporter carries each one through unchanged (or reports what is missing).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

COMMIT = "0123456789abcdef0123456789abcdef01234567"
MNIST_THREAT = {"norm": "linf", "eps": 0.3, "l2_eps": 2.0, "sigma": 0.25}

ATTACK_NORMS = {
    "fgsm": "linf", "pgd-linf": "linf", "pgd-l2": "l2", "cw-l2": "l2", "autoattack": "linf",
    "square": "linf", "transfer": "linf", "fmn-l2": "l2", "fmn-linf": "linf",
}


def summary(
    defense: str,
    clean: float,
    robust: float,
    *,
    dataset: str = "mnist5k",
    threat: dict | None = None,
    config_hash: str | None = None,
    date: str = "2026-01-01T00:00:00+00:00",
    flags: list[str] | None = None,
    attacks: dict[str, float] | None = None,
    sweep: list[float] | None = None,
    sweep_as_mapping: bool = False,
    sigmas: dict[str, float] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """A schema-1 summary. ``sigmas`` maps sigma -> certified accuracy at radius 0 (it then decays)."""
    threat = dict(threat or MNIST_THREAT)
    config_hash = config_hash or hashlib.sha256(defense.encode()).hexdigest()[:12]
    attacks = attacks if attacks is not None else {name: robust for name in ATTACK_NORMS}
    attack_entries = {}
    for name, acc in attacks.items():
        norm = ATTACK_NORMS.get(name, "linf")
        entry = {
            "norm": norm, "eps": threat["eps"] if norm == "linf" else threat["l2_eps"], "accuracy": acc,
            "seconds": 1.5, "params": {"steps": 10}, "n": 100,
        }
        if name in ("fmn-l2", "cw-l2"):
            entry["median_norm"] = round(0.5 + robust, 4)
        if name == "fmn-linf":
            entry["median_norm"] = round(0.05 + robust / 4, 4)
        attack_entries[name] = entry
    out: dict[str, Any] = {
        "defense": defense,
        "dataset": dataset,
        "n_test": 100,
        "clean_accuracy": clean,
        "robust_accuracy": robust,
        "attacks": attack_entries,
        "certification": {},
        "flags": list(flags or []),
        "seconds": 30.25,
        "threat_model": threat,
        "config": {"seed": seed},
        "model": {"train_seconds": 12.5, "sha256": "ab" * 32, "reused": False},
        "profile": "quick",
        "provenance": {
            "schema_version": 1, "packages": {"torch": "2.15.0"}, "git_commit": COMMIT, "seed": seed,
            "config_hash": config_hash, "date": date, "run_id": f"{dataset}-{defense}-{config_hash}-s{seed}",
        },
    }
    if sweep is not None:
        eps = [0.0, 0.1, 0.2, 0.3, 0.4][: len(sweep)]
        if sweep_as_mapping:
            out["sweeps"] = {"pgd-linf": {str(e): a for e, a in zip(eps, sweep)}}
        else:
            out["sweeps"] = {"pgd-linf": {"norm": "linf", "eps": eps, "accuracy": sweep}}
    for sigma, acc0 in (sigmas or {}).items():
        radii = [0.0, 0.25, 0.5, 0.75, 1.0]
        out["certification"][sigma] = {
            "certified_accuracy": {str(r): round(acc0 * (1 - r) ** 2, 4) for r in radii},
            "average_certified_radius": round(acc0 * 0.4, 4),
            "abstain_rate": 0.05, "n0": 100, "n": 1000, "alpha": 0.001,
        }
    return out


def standard_set() -> dict[str, Any]:
    """Run directory name -> summary (or raw text for a broken file): every case the reporter must handle."""
    runs: dict[str, Any] = {}

    def add(s: dict[str, Any], name: str | None = None) -> None:
        runs[name or s["provenance"]["run_id"]] = s

    add(summary("plain", 0.99, 0.0, config_hash="aaaaaaaaaaa1", sweep=[0.99, 0.2, 0.01, 0.0, 0.0],
                sigmas={"0.25": 0.95, "0.5": 0.9}))
    add(summary("adversarial_training", 0.97, 0.88, config_hash="aaaaaaaaaaa2", sweep=[0.97, 0.95, 0.92, 0.88, 0.5],
                sweep_as_mapping=True, sigmas={"0.25": 0.96}))
    add(summary("trades", 0.98, 0.88, config_hash="aaaaaaaaaaa3", sweep=[0.98, 0.96, 0.93, 0.88, 0.6]))
    add(summary("feature_squeezing", 0.99, 0.95, config_hash="aaaaaaaaaaa4", flags=[
        "single-step beats iterative: fgsm breaks 12 samples that pgd-linf does not (gradient masking | non-converged)",
    ]))
    # vib: two runs of one config (the later one must win) and a second config
    add(summary("vib", 0.96, 0.10, config_hash="aaaaaaaaaaa5", date="2026-01-01T00:00:00+00:00"), "vib-old")
    add(summary("vib", 0.97, 0.12, config_hash="aaaaaaaaaaa5", date="2026-02-01T00:00:00+00:00"), "vib-new")
    add(summary("vib", 0.95, 0.30, config_hash="aaaaaaaaaaa6", seed=1))
    # an older schema: no schema version, no model/seconds, no threat model
    old = summary("distillation", 0.98, 0.05, config_hash="aaaaaaaaaaa7")
    del old["provenance"]["schema_version"], old["model"], old["seconds"], old["threat_model"]
    add(old, "distillation-old-schema")
    # another threat model on the same dataset, and another dataset
    add(summary("plain", 0.99, 0.40, config_hash="aaaaaaaaaaa1",
                threat={"norm": "linf", "eps": 0.1, "l2_eps": 2.0, "sigma": 0.25}), "plain-eps0.1")
    add(summary("plain", 0.80, 0.01, dataset="cifar10", config_hash="bbbbbbbbbbb1",
                threat={"norm": "linf", "eps": 8 / 255, "l2_eps": 0.5, "sigma": 0.25}))
    # files that cannot be placed in any table
    runs["broken-json"] = '{"defense": "plain", "dataset": '
    no_dataset = summary("tight_vib", 0.9, 0.1)
    del no_dataset["dataset"]
    runs["no-dataset"] = no_dataset
    return runs


def write_results(root: Path, runs: dict[str, Any]) -> Path:
    """Write ``root/<run>/summary.json`` for each run (raw strings verbatim); returns ``root``."""
    for name, content in runs.items():
        path = Path(root) / name / "summary.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = content if isinstance(content, str) else json.dumps(content, indent=2, sort_keys=True)
        path.write_text(text, encoding="utf-8")
    return Path(root)
