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
        "robust_accuracy_by_norm": {
            norm: {"eps": threat["eps"] if norm == "linf" else threat["l2_eps"],
                   "accuracy": min(e["accuracy"] for e in attack_entries.values() if e["norm"] == norm),
                   "attacks": sorted(k for k, e in attack_entries.items() if e["norm"] == norm)}
            for norm in sorted({e["norm"] for e in attack_entries.values()})},
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
            "abstain_rate": 0.05, "n0": 100, "n": 1000, "alpha": 0.001, "n_test": 100,
        }
    return out


def standard_set() -> dict[str, Any]:
    """Run directory name -> summary (or raw text for a broken file): every case the reporter must handle."""
    runs: dict[str, Any] = {}

    def add(s: dict[str, Any], name: str | None = None) -> None:
        runs[name or s["provenance"]["run_id"]] = s

    plain = summary("plain", 0.99, 0.0, config_hash="aaaaaaaaaaa1", sweep=[0.99, 0.2, 0.01, 0.0, 0.0],
                    sigmas={"0.25": 0.95, "0.5": 0.9})
    # sigma 0.25 certified from records: 95 correct points at radii 0.006 .. 0.57 (k * 0.006), capped at 0.6
    plain["certification"]["0.25"].update(records="records/certify-sigma0.25.csv", max_certifiable_radius=0.6,
                                          average_certified_radius=0.2736)  # sum of 0.006 k, k = 1..95, / 100
    plain["_records"] = {"records/certify-sigma0.25.csv": certify_records(
        [((k + 1) * 0.006, True) for k in range(95)] + [(0.0, False)] * 5)}
    add(plain)
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
    cifar = summary("plain", 0.80, 0.01, dataset="cifar10", config_hash="bbbbbbbbbbb1",
                    threat={"norm": "linf", "eps": 8 / 255, "l2_eps": 0.5, "sigma": 0.25})
    # a deterministic certificate (another branch's block): radii 0.1 on the 40 first points, 40 of them correct
    cifar["deterministic_certification"] = {
        "applicable": True, "bound": "liplt", "mean_radius": 0.04, "n": 100,
        "radii": [0.1] * 40 + [0.0] * 60, "correct": [True] * 40 + [False] * 60,
        "certified_accuracy": {"0": 0.8, "0.1": 0.4}}
    add(cifar)
    # other evaluation settings on the default threat model: fewer points, and a partial battery
    fewer = summary("plain", 0.98, 0.02, config_hash="aaaaaaaaaaa1")
    fewer["n_test"] = 50
    add(fewer, "plain-n50")
    partial = summary("trades", 0.98, 0.90, config_hash="aaaaaaaaaaa3", attacks={"fgsm": 0.92, "pgd-linf": 0.90})
    partial["battery"] = {"selected": ["pgd-linf", "fgsm"]}
    add(partial, "trades-partial")
    # files that cannot be placed in any table
    runs["broken-json"] = '{"defense": "plain", "dataset": '
    no_dataset = summary("tight_vib", 0.9, 0.1)
    del no_dataset["dataset"]
    runs["no-dataset"] = no_dataset
    return runs


def per_sample_csv(s: dict[str, Any]) -> str:
    """per_sample.csv as a run writes it: the first round(clean * n) points clean-correct, the first
    round(robust * n) robust (so two runs' robust sets are nested and McNemar's p has a closed form), and
    fmn-l2 minimal norms 0.5 + robust + k / 1000 on the clean-correct points."""
    n = s["n_test"]
    clean, robust = round(s["clean_accuracy"] * n), round(s["robust_accuracy"] * n)
    lines = ["index,label,clean_correct,fmn-l2_correct,fmn-l2_norm,robust"]
    for k in range(n):
        norm = f"{0.5 + s['robust_accuracy'] + k / 1000!r}" if k < clean else "0.0"
        lines.append(f"{k},{k % 10},{k < clean},{k < robust},{norm},{k < robust}")
    return "\n".join(lines) + "\n"


def certify_records(radii: list[tuple[float, bool]]) -> str:
    """records/certify-sigma<s>.csv with Cohen et al.'s columns, one row per point."""
    lines = ["index,label,prediction,radius,correct,seconds,fingerprint"]
    for k, (radius, correct) in enumerate(radii):
        lines.append(f"{k},{k % 10},{k % 10 if correct else -1},{radius!r},{int(correct)},0.1,abc")
    return "\n".join(lines) + "\n"


def write_results(root: Path, runs: dict[str, Any], per_sample: bool = True) -> Path:
    """Write ``root/<run>/summary.json`` for each run (raw strings verbatim) and its per_sample.csv; returns ``root``.

    A summary may carry ``_records``: {relative path: text} written beside it (certification records).
    """
    for name, content in runs.items():
        path = Path(root) / name / "summary.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, dict):
            content = dict(content)
            for rel, text in content.pop("_records", {}).items():
                (path.parent / rel).parent.mkdir(parents=True, exist_ok=True)
                (path.parent / rel).write_text(text, encoding="utf-8")
            if per_sample and isinstance(content.get("n_test"), int) and isinstance(content.get("robust_accuracy"), float):
                (path.parent / "per_sample.csv").write_text(per_sample_csv(content), encoding="utf-8")
        text = content if isinstance(content, str) else json.dumps(content, indent=2, sort_keys=True)
        path.write_text(text, encoding="utf-8")
    return Path(root)
