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
    from .leaderboard import write_leaderboards
    from .runner import RunOptions, bench_home, run as run_pipeline

    config = _parse_config(defense, config_items)
    opts = RunOptions(defense=defense, dataset=dataset, out=out, seed=seed, device=device, retrain=retrain,
                      eps=eps, config=config, data_dir=data_dir, n_test=n_test, profile=profile)
    log = lambda msg: click.echo(msg, err=True)  # noqa: E731
    summary = run_pipeline(opts, log=log)
    home = bench_home()
    write_leaderboards(home / "results", home / "leaderboards")
    click.echo(_summary_table(summary))


def _summary_table(summary: dict[str, Any]) -> str:
    lines = [
        f"{summary['defense']} on {summary['dataset']} ({summary['n_test']} test points, {summary['seconds']:.1f} s)",
        f"  {'clean accuracy':<34}{summary['clean_accuracy']:.3f}",
    ]
    for name, a in summary["attacks"].items():
        subset = f", n={a['n']}" if a.get("n", summary["n_test"]) < summary["n_test"] else ""
        lines.append(f"  {name + ' (' + a['norm'] + ' ' + format(a['eps'], 'g') + subset + ')':<34}{a['accuracy']:.3f}")
    lines.append(f"  {'robust (worst case)':<34}{summary['robust_accuracy']:.3f}")
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


def cli() -> None:
    """Console entry point: turns errors into one line and the right exit status."""
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
    except (DatasetError, DatasetUnavailableError, DefenseRegistryError, TamperedWeightsError) as exc:
        click.echo(f"bench: error: {exc}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"bench: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    cli()
