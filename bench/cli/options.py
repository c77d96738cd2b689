"""Shared options of the `bench` commands and their checks: parsing and one-line errors, no science.

Each check turns a bad value into ``BenchUsageError`` naming the value and
the valid choices (exit status 2). Nothing here imports torch: checks look
names up in light tables (registries, profiles, datasets).
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Callable, Optional

import click

from ..config import MAX_SEED, coerce, field_kinds

DEVICES = ("auto", "cpu", "cuda")


class BenchUsageError(click.UsageError):
    """A usage error whose message is already one complete line."""


def check_defense(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from ..registry import list_defenses

    names = list_defenses()
    if value not in names:
        raise BenchUsageError(f"unknown defense {value!r}; valid choices: {', '.join(names)}")
    return value


def check_dataset(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from ..data import list_datasets

    if value not in list_datasets():
        raise BenchUsageError(f"unknown dataset {value!r}; valid choices: {', '.join(list_datasets())}")
    return value


def check_device(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if value not in DEVICES:
        raise BenchUsageError(f"unknown device {value!r}; valid choices: {', '.join(DEVICES)}")
    if value == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise BenchUsageError("device 'cuda' is not available on this machine; valid choices here: auto, cpu")
    return value


def check_seed(ctx: click.Context, param: click.Parameter, value: str) -> int:
    try:
        seed = int(value)
    except (TypeError, ValueError):
        seed = -1
    if seed < 0 or seed > MAX_SEED:
        raise BenchUsageError(f"bad seed {value!r}; valid choices: an integer from 0 to {MAX_SEED}")
    return seed


def _number(value: str, what: str, ok: Callable[[float], bool], valid: str) -> float:
    """``value`` as a float that passes ``ok``, else a one-line usage error naming it and ``valid``."""
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not (math.isfinite(number) and ok(number)):
        raise BenchUsageError(f"bad {what} {value!r}; valid choices: {valid}")
    return number


def check_eps(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[float]:
    if value is None:
        return None
    return _number(value, "eps", lambda e: 0.0 <= e <= 1.0, "a number in [0, 1] (inputs are scaled to [0, 1])")


def _check_in(table: Callable[[], dict], what: str) -> Callable[[click.Context, click.Parameter, str], str]:
    def check(ctx: click.Context, param: click.Parameter, value: str) -> str:
        names = table()
        if value not in names:
            raise BenchUsageError(f"unknown {what} {value!r}; valid choices: {', '.join(names)}")
        return value

    return check


def _battery_profiles() -> dict:
    from ..attacks.profiles import PROFILES

    return PROFILES


def _certify_profiles() -> dict:
    from ..certification.profiles import PROFILES

    return PROFILES


check_profile = _check_in(_battery_profiles, "profile")
check_certify_profile = _check_in(_certify_profiles, "profile")


def check_sigmas(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[float, ...]:
    sigmas = {_number(v, "sigma", lambda s: s > 0, "a number > 0 (noise std in [0, 1] pixel units)") for v in values}
    return tuple(sorted(sigmas))


def check_alpha(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[float]:
    if value is None:
        return None
    return _number(value, "alpha", lambda a: 0.0 < a < 1.0, "a number in (0, 1)")


def check_count(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[int]:
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


def parse_config(defense: str, items: tuple[str, ...]) -> dict[str, Any]:
    """``--config KEY=VALUE`` items as typed overrides of the defense's config dataclass."""
    from ..registry import get_spec

    config_type = get_spec(defense).config
    fields = [f.name for f in dataclasses.fields(config_type)]
    kinds = field_kinds(config_type)
    config: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise BenchUsageError(f"bad --config {item!r}; expected KEY=VALUE with KEY one of: {', '.join(fields)}")
        if key not in kinds:
            raise BenchUsageError(f"unknown config key {key!r} for defense {defense!r}; valid keys: {', '.join(fields)}")
        try:
            config[key] = coerce(raw, kinds[key][0])
        except ValueError as exc:
            raise BenchUsageError(f"bad value {raw!r} for config key {key!r}: {exc}") from None
    return config


# -- option decorators shared by the commands ------------------------------------------------------

def _option(*names: str, **kwargs: Any) -> Callable:
    return click.option(*names, **kwargs)


defense_option = _option("--defense", required=True, callback=check_defense,
                         help="Registered defense (see `bench defenses`).")
dataset_option = _option("--dataset", default="mnist5k", show_default=True, callback=check_dataset,
                         help="mnist5k, mnist, fashion-mnist or cifar10.")
seed_option = _option("--seed", default="0", show_default=True, callback=check_seed, help="Seed for training and attacks.")
device_option = _option("--device", default="auto", show_default=True, callback=check_device, help="auto, cpu or cuda.")
out_option = _option("--out", type=click.Path(path_type=Path), default=None,
                     help="Run directory [default: results/<run-id>/].")
config_option = _option("--config", "config_items", multiple=True, metavar="KEY=VALUE",
                        help="Defense config override (repeatable).")
data_dir_option = _option("--data-dir", type=click.Path(path_type=Path), default=None,
                          help="Where torchvision datasets live.")
eps_option = _option("--eps", default=None, callback=check_eps, help="Headline L-inf eps [default: the dataset's].")
n_test_option = _option("--n-test", type=click.IntRange(min=1), default=None,
                        help="Evaluate on the first N test points only.")
profile_option = _option("--profile", default="quick", show_default=True, callback=check_profile,
                         help="quick (minutes on a CPU) or full (paper settings).")
retrain_option = _option("--retrain", is_flag=True, help="Train even if the model zoo has this model.")


def echo_err(message: str) -> None:
    """Progress and logs go to stderr; results (tables, JSON, paths) to stdout."""
    click.echo(message, err=True)
