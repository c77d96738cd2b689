"""The `bench` command: parsing and friendly errors only, no science.

Bad input exits with status 2 and one line naming the bad value and the
valid choices; Ctrl-C exits 130 and leaves only whole files behind.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import typing
from pathlib import Path
from typing import Any, Optional

import click

DEVICES = ("auto", "cpu", "cuda")


class BenchUsageError(click.UsageError):
    """A usage error whose message is already one complete line."""


def _defense_names() -> list[str]:
    from .registry import list_defenses

    return list_defenses()


def _check_defense(ctx: click.Context, param: click.Parameter, value: str) -> str:
    names = _defense_names()
    if value not in names:
        raise BenchUsageError(f"unknown defense {value!r}; valid choices: {', '.join(names)}")
    return value


def _check_dataset(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from .data import list_datasets

    if value not in list_datasets():
        raise BenchUsageError(f"unknown dataset {value!r}; valid choices: {', '.join(list_datasets())}")
    return value


def _check_device(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if value not in DEVICES:
        raise BenchUsageError(f"unknown device {value!r}; valid choices: {', '.join(DEVICES)}")
    if value == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise BenchUsageError("device 'cuda' is not available on this machine; valid choices here: auto, cpu")
    return value


def _check_seed(ctx: click.Context, param: click.Parameter, value: str) -> int:
    try:
        seed = int(value)
    except (TypeError, ValueError):
        seed = -1
    if seed < 0 or seed >= 2**32:
        raise BenchUsageError(f"bad seed {value!r}; valid choices: an integer from 0 to {2**32 - 1}")
    return seed


def _check_eps(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[float]:
    if value is None:
        return None
    try:
        eps = float(value)
    except ValueError:
        eps = float("nan")
    if not 0.0 <= eps <= 1.0:
        raise BenchUsageError(f"bad eps {value!r}; valid choices: a number in [0, 1] (inputs are scaled to [0, 1])")
    return eps


def _check_profile(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from .attacks.battery import PROFILES

    if value not in PROFILES:
        raise BenchUsageError(f"unknown profile {value!r}; valid choices: {', '.join(PROFILES)}")
    return value


def _check_sigmas(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[float, ...]:
    sigmas = []
    for value in values:
        try:
            sigma = float(value)
        except ValueError:
            sigma = float("nan")
        if not (sigma > 0 and sigma != float("inf")):
            raise BenchUsageError(f"bad sigma {value!r}; valid choices: a number > 0 (noise std in [0, 1] pixel units)")
        sigmas.append(sigma)
    return tuple(sorted(set(sigmas)))


def _check_certify_profile(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from .certification import PROFILES

    if value not in PROFILES:
        raise BenchUsageError(f"unknown profile {value!r}; valid choices: {', '.join(PROFILES)}")
    return value


def _check_alpha(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[float]:
    if value is None:
        return None
    try:
        alpha = float(value)
    except ValueError:
        alpha = float("nan")
    if not 0.0 < alpha < 1.0:
        raise BenchUsageError(f"bad alpha {value!r}; valid choices: a number in (0, 1)")
    return alpha


def _check_count(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[int]:
    """A sample or point count: an integer >= 1 (or absent)."""
    if value is None:
        return None
    try:
        count = int(value)
    except (TypeError, ValueError):
        count = 0
    if count < 1:
        raise BenchUsageError(f"bad {param.opts[0].lstrip('-')} {value!r}; valid choices: an integer >= 1")
    return count


def _coerce(value: str, annotation: Any) -> Any:
    """Parse VALUE of --config KEY=VALUE by the config field's type."""
    text = value.strip()
    if text.lower() in ("none", "null"):
        return None
    for kind in (bool, int, float):
        if annotation is kind or annotation == kind.__name__ or (
            isinstance(annotation, str) and kind.__name__ in annotation and kind is not bool
        ):
            if kind is bool:
                if text.lower() in ("true", "1", "yes"):
                    return True
                if text.lower() in ("false", "0", "no"):
                    return False
                raise ValueError(f"expected true or false, got {value!r}")
            return kind(text)
    try:
        return json.loads(text)
    except ValueError:
        return text


def _parse_config(defense: str, items: tuple[str, ...]) -> dict[str, Any]:
    from .registry import get_spec

    spec = get_spec(defense)
    fields = {f.name: f for f in dataclasses.fields(spec.config)}
    try:
        hints = typing.get_type_hints(spec.config)
    except Exception:
        hints = {}
    config: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise BenchUsageError(f"bad --config {item!r}; expected KEY=VALUE with KEY one of: {', '.join(fields)}")
        if key not in fields:
            raise BenchUsageError(f"unknown config key {key!r} for defense {defense!r}; valid keys: {', '.join(fields)}")
        annotation = hints.get(key, fields[key].type)
        try:
            config[key] = _coerce(raw, annotation)
        except ValueError as exc:
            raise BenchUsageError(f"bad value {raw!r} for config key {key!r}: {exc}") from None
    return config


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bench")
def main() -> None:
    """bench: how robust is a defense, honestly and fast."""


@main.command()
@click.option("--defense", required=True, callback=_check_defense, help="Registered defense (see `bench defenses`).")
@click.option("--dataset", default="mnist5k", show_default=True, callback=_check_dataset, help="mnist5k, mnist, fashion-mnist or cifar10.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Run directory [default: results/<run-id>/].")
@click.option("--seed", default="0", show_default=True, callback=_check_seed, help="Seed for training and attacks.")
@click.option("--device", default="auto", show_default=True, callback=_check_device, help="auto, cpu or cuda.")
@click.option("--eps", default=None, callback=_check_eps, help="Headline L-inf eps [default: the dataset's].")
@click.option("--config", "config_items", multiple=True, metavar="KEY=VALUE", help="Defense config override (repeatable).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Where torchvision datasets live.")
@click.option("--n-test", type=click.IntRange(min=1), default=None, help="Evaluate on the first N test points only.")
@click.option("--profile", default="quick", show_default=True, callback=_check_profile, help="quick (minutes on a CPU) or full (paper settings).")
@click.option("--retrain", is_flag=True, help="Train even if the model zoo has this model.")
def run(defense: str, dataset: str, out: Optional[Path], seed: int, device: str, eps: Optional[float],
        config_items: tuple[str, ...], data_dir: Optional[Path], n_test: Optional[int], profile: str,
        retrain: bool) -> None:
    """Train (or reuse) a defense, attack it, write results/<run>/summary.json."""
    from .runner import RunOptions, bench_home, run as run_pipeline

    config = _parse_config(defense, config_items)
    opts = RunOptions(defense=defense, dataset=dataset, out=out, seed=seed, device=device, retrain=retrain,
                      eps=eps, config=config, data_dir=data_dir, n_test=n_test, profile=profile)
    log = lambda msg: click.echo(msg, err=True)  # noqa: E731
    summary = run_pipeline(opts, log=log)
    home = bench_home()
    _refresh_leaderboards(home / "results", home / "leaderboards", quiet=True)
    click.echo(_summary_table(summary))


@main.command()
@click.option("--defense", required=True, callback=_check_defense, help="Registered defense (see `bench defenses`).")
@click.option("--sigma", "sigmas", required=True, multiple=True, callback=_check_sigmas,
              help="Gaussian noise std (repeatable), e.g. 0.25.")
@click.option("--n", default=None, callback=_check_count, help="Estimation samples per point [default: the profile's].")
@click.option("--n0", default=None, callback=_check_count, help="Selection samples per point [default: the profile's].")
@click.option("--alpha", default=None, callback=_check_alpha, help="Failure probability of each certificate [default: 0.001].")
@click.option("--dataset", default="mnist5k", show_default=True, callback=_check_dataset, help="mnist5k, mnist, fashion-mnist or cifar10.")
@click.option("--n-test", default=None, callback=_check_count,
              help="Certify N test points spread evenly over the test set [default: the profile's].")
@click.option("--profile", default="quick", show_default=True, callback=_check_certify_profile,
              help="quick (n=1,000, 100 points) or full (Cohen et al.: n=100,000, 500 points).")
@click.option("--seed", default="0", show_default=True, callback=_check_seed, help="Seed for training and noise.")
@click.option("--device", default="auto", show_default=True, callback=_check_device, help="auto, cpu or cuda.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Run directory [default: results/<run-id>/].")
@click.option("--config", "config_items", multiple=True, metavar="KEY=VALUE", help="Defense config override (repeatable).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Where torchvision datasets live.")
@click.option("--clamp", is_flag=True, help="Clamp noisy inputs to [0, 1] (default: no clamping, as Cohen et al.).")
@click.option("--retrain", is_flag=True, help="Train even if the model zoo has this model.")
def certify(defense: str, sigmas: tuple[float, ...], n: Optional[int], n0: Optional[int], alpha: Optional[float],
            dataset: str, n_test: Optional[int], profile: str, seed: int, device: str, out: Optional[Path],
            config_items: tuple[str, ...], data_dir: Optional[Path], clamp: bool, retrain: bool) -> None:
    """Randomized-smoothing certification alone (Cohen et al. 2019); merges into the run's summary.json."""
    from .certification.standalone import CertifyOptions, certify_defense

    config = _parse_config(defense, config_items)
    opts = CertifyOptions(defense=defense, sigmas=sigmas, dataset=dataset, n=n, n0=n0, alpha=alpha, n_test=n_test,
                          profile=profile, seed=seed, device=device, out=out, config=config, data_dir=data_dir,
                          retrain=retrain, clamp=clamp)
    log = lambda msg: click.echo(msg, err=True)  # noqa: E731
    summary = certify_defense(opts, log=log)
    lines = [f"{summary['defense']} on {summary['dataset']}: randomized smoothing"]
    lines += _certification_lines(summary, only=sigmas)
    click.echo("\n".join(lines))


def _certification_lines(summary: dict[str, Any], only: Optional[tuple[float, ...]] = None) -> list[str]:
    """One line per sigma: certified accuracy at r = 0, 0.25, 0.5, 1.0 and the average certified radius."""
    lines = []
    for key, block in sorted((summary.get("certification") or {}).items(), key=lambda kv: float(kv[0])):
        if only is not None and float(key) not in only:
            continue
        curve = block.get("certified_accuracy", {})
        at = "  ".join(f"r={r}:{curve.get(r, 0.0):.3f}" for r in ("0.0", "0.25", "0.5", "1.0"))
        lines.append(
            f"  {'certified (sigma ' + key + ')':<34}{at}  ACR={block.get('average_certified_radius', 0.0):.3f}"
            f"  abstain={block.get('abstain_rate', 0.0):.3f}  (n={block.get('n')}, {block.get('n_test')} points)"
        )
    return lines


def _refresh_leaderboards(results: Path, out: Path, quiet: bool = False) -> list[Path]:
    """Run the reporter; its warnings (skipped summaries) go to stderr, one line each."""
    from .report import write_report

    report = write_report(results, out)
    for warning in report.warnings:
        click.echo(f"bench: warning: {warning}", err=True)
    if not quiet:
        click.echo(f"{len(report.boards)} leaderboard(s), {len(report.files)} file(s) in {out}", err=True)
    return report.files


@main.command()
@click.option("--results", "results_dir", type=click.Path(path_type=Path), default=None,
              help="Directory holding <run>/summary.json [default: $BENCH_HOME/results].")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Where the leaderboards go [default: $BENCH_HOME/leaderboards].")
def report(results_dir: Optional[Path], out: Optional[Path]) -> None:
    """Write leaderboards (Markdown, CSV, HTML, plots) from every summary.json; prints the files written."""
    from .runner import bench_home

    results_dir = results_dir if results_dir is not None else bench_home() / "results"
    out = out if out is not None else bench_home() / "leaderboards"
    if not results_dir.is_dir():
        raise BenchUsageError(f"results directory {str(results_dir)!r} does not exist; valid choices: "
                              "a directory holding <run>/summary.json (written by `bench run`)")
    for path in _refresh_leaderboards(results_dir, out):
        click.echo(str(path))


def _summary_table(summary: dict[str, Any]) -> str:
    lines = [
        f"{summary['defense']} on {summary['dataset']} ({summary['n_test']} test points, {summary['seconds']:.1f} s)",
        f"  {'clean accuracy':<34}{summary['clean_accuracy']:.3f}",
    ]
    for name, a in summary["attacks"].items():
        subset = f", n={a['n']}" if a.get("n", summary["n_test"]) < summary["n_test"] else ""
        lines.append(f"  {name + ' (' + a['norm'] + ' ' + format(a['eps'], 'g') + subset + ')':<34}{a['accuracy']:.3f}")
    lines.append(f"  {'robust (worst case)':<34}{summary['robust_accuracy']:.3f}")
    lines += _certification_lines(summary)
    for flag in summary.get("flags", []):
        lines.append(f"  FLAG: {flag}")
    run = summary.get("provenance", {}).get("run_id")
    if run:
        lines.append(f"  results: {run}/summary.json")
    return "\n".join(lines)


@main.command()
def defenses() -> None:
    """List registered defenses, built-in and plugins: name, then description."""
    from .registry import get_spec, list_defenses

    names = list_defenses()
    width = max(len(n) for n in names) + 2
    for name in names:
        click.echo(f"{name:<{width}}{get_spec(name).description}")


@main.command()
@click.argument("name", callback=_check_defense)
@click.option("--dataset", default="mnist5k", show_default=True, callback=_check_dataset, help="Dataset to fit and probe on.")
@click.option("--device", default="auto", show_default=True, callback=_check_device, help="auto, cpu or cuda.")
@click.option("--seed", default="0", show_default=True, callback=_check_seed, help="Seed for the subset and the fit.")
@click.option("--config", "config_items", multiple=True, metavar="KEY=VALUE", help="Defense config override (repeatable).")
@click.option("--n-train", type=click.IntRange(min=1), default=256, show_default=True, help="Training images for the tiny fit.")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Where torchvision datasets live.")
def validate(name: str, dataset: str, device: str, seed: int, config_items: tuple[str, ...], n_train: int,
             data_dir: Optional[Path]) -> None:
    """Check a defense against the contract on a tiny fit; exit 1 if any check fails."""
    from .data import load_dataset
    from .perf import resolve_device
    from .validate import validate_defense

    config = _parse_config(name, config_items)
    checks = validate_defense(name, load_dataset(dataset, data_dir), config=config, n_train=n_train, seed=seed,
                              device=resolve_device(device))
    for check in checks:
        click.echo(check.line())
    failed = [c.name for c in checks if not c.passed]
    click.echo(f"{name}: {'FAILED ' + ', '.join(failed) if failed else 'all ' + str(len(checks)) + ' checks passed'}")
    if failed:
        raise click.exceptions.Exit(1)


def cli() -> None:
    """Console entry point: turns errors into one line and the right exit status."""
    from .config import DefenseConfigError
    from .data import DatasetError, DatasetUnavailableError
    from .registry import DefenseRegistryError
    from .zoo import TamperedWeightsError

    try:
        main.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        click.echo(f"bench: error: {exc.format_message()}", err=True)
        sys.exit(2)
    except click.Abort:
        click.echo("bench: interrupted; finished work is kept and a rerun resumes", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("bench: interrupted; finished work is kept and a rerun resumes", err=True)
        sys.exit(130)
    except (DatasetError, DatasetUnavailableError, DefenseRegistryError, DefenseConfigError, TamperedWeightsError) as exc:
        click.echo(f"bench: error: {exc}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"bench: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    cli()
