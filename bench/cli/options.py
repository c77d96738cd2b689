"""Shared options of the `bench` commands and their checks: parsing and one-line errors, no science.

Each check turns a bad value into ``BenchUsageError`` naming the value and
the valid choices (exit status 2). Typed options (``--seed`` INTEGER,
``--eps`` FLOAT, ...) use ``Checked``, a click type whose conversion is such
a check, so ``--help`` shows the type and errors stay one line. Values may
come from the command line (text) or a ``--config-file`` (TOML numbers).
Nothing here imports torch: checks look names up in light tables
(registries, profiles, datasets).
"""
from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any, Callable, Optional

import click

from ..config import MAX_SEED, DefenseConfigError, coerce, describe_range, field_kinds

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


class Checked(click.ParamType):
    """A click type converting with one of the checks below: ``--help`` shows its name, errors stay one line."""

    def __init__(self, name: str, check: Callable[[click.Context, click.Parameter, Any], Any],
                 accepts_list: bool = False) -> None:
        self.name = name
        self._check = check
        self.accepts_list = accepts_list  # a config file may give a TOML list (e.g. attacks = [...])

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> Any:
        return self._check(ctx, param, value)  # type: ignore[arg-type]


def _as_int(value: Any) -> Optional[int]:
    """An integer from text or a TOML integer; None for anything else (bools and floats included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def check_seed(ctx: click.Context, param: click.Parameter, value: Any) -> int:
    seed = _as_int(value)
    if seed is None or seed < 0 or seed > MAX_SEED:
        raise BenchUsageError(f"bad seed {value!r}; valid choices: an integer from 0 to {MAX_SEED}")
    return seed


def _number(value: Any, what: str, ok: Callable[[float], bool], valid: str) -> float:
    """``value`` as a float that passes ``ok``, else a one-line usage error naming it and ``valid``."""
    try:
        number = float("nan") if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not (math.isfinite(number) and ok(number)):
        raise BenchUsageError(f"bad {what} {value!r}; valid choices: {valid}")
    return number


def check_eps(ctx: click.Context, param: click.Parameter, value: Any) -> Optional[float]:
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


def check_sigma(ctx: click.Context, param: click.Parameter, value: Any) -> float:
    return _number(value, "sigma", lambda s: s > 0, "a number > 0 (noise std in [0, 1] pixel units)")


def check_sigmas(ctx: click.Context, param: click.Parameter, values: Any) -> tuple[float, ...]:
    """The sigmas sorted, without duplicates (each already a float > 0 when the option's type is SIGMA)."""
    if isinstance(values, (str, int, float)):  # a single value from a config file
        values = (values,)
    return tuple(sorted({check_sigma(ctx, param, v) for v in values or ()}))


def check_alpha(ctx: click.Context, param: click.Parameter, value: Any) -> Optional[float]:
    if value is None:
        return None
    return _number(value, "alpha", lambda a: 0.0 < a < 1.0, "a number in (0, 1)")


def check_count(ctx: click.Context, param: click.Parameter, value: Any) -> Optional[int]:
    """A sample or point count: an integer >= 1 (or absent)."""
    if value is None:
        return None
    count = _as_int(value)
    if count is None or count < 1:
        name = param.opts[0].lstrip("-") if param is not None else "count"
        raise BenchUsageError(f"bad {name} {value!r}; valid choices: an integer >= 1")
    return count


SEED = Checked("integer", check_seed)
EPS = Checked("float", lambda ctx, param, value: check_eps(ctx, param, value))
COUNT = Checked("integer", check_count)
ALPHA = Checked("float", check_alpha)
SIGMA = Checked("float", check_sigma)


def check_attacks(ctx: click.Context, param: click.Parameter, value: Any) -> Optional[tuple[str, ...]]:
    """``--attacks NAME,NAME`` (or a TOML list): registered attacks, ``sweep``, ``extras``; None: all."""
    from ..errors import BadOptionError
    from ..runspec import check_attack_selection

    if value is None:
        return None
    names = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    try:
        return check_attack_selection(names)
    except BadOptionError as exc:
        raise BenchUsageError(str(exc)) from None


ATTACKS = Checked("names", check_attacks, accepts_list=True)


def parse_config(defense: str, items: tuple[str, ...], base: Optional[dict[str, Any]] = None,
                 where: str = "") -> dict[str, Any]:
    """``--config KEY=VALUE`` items as typed overrides of the defense's config dataclass, over ``base``
    (a config file's [config] table, named by ``where``); every value checked against its declared range."""
    from ..registry import get_spec

    spec = get_spec(defense)
    fields = {f.name: f for f in dataclasses.fields(spec.config)}
    kinds = field_kinds(spec.config)
    config: dict[str, Any] = {}
    for key, value in (base or {}).items():
        if key not in fields:
            raise BenchUsageError(f"{where}unknown config key {key!r} for defense {defense!r}; "
                                  f"valid keys: {', '.join(fields)}")
        config[key] = value
    _check_values(spec, dict(config), where)
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise BenchUsageError(f"bad --config {item!r}; expected KEY=VALUE with KEY one of: {', '.join(fields)}")
        if key not in kinds:
            raise BenchUsageError(f"unknown config key {key!r} for defense {defense!r}; valid keys: {', '.join(fields)}")
        try:
            config[key] = coerce(raw, kinds[key][0])
        except ValueError:
            valid = describe_range(fields[key], *kinds[key])
            raise BenchUsageError(f"bad value {raw!r} for config key {key!r} of defense {defense!r}; "
                                  f"valid: {valid}") from None
    _check_values(spec, config, "")
    return config


def _check_values(spec: Any, config: dict[str, Any], where: str) -> None:
    """Every value in its declared range (``--config seed=-1`` is refused like ``--seed -1``), before any work."""
    try:
        spec.make_config(**config)
    except DefenseConfigError as exc:
        raise BenchUsageError(f"{where}{exc}") from None


# -- option decorators shared by the commands ------------------------------------------------------

def _option(*names: str, **kwargs: Any) -> Callable:
    return click.option(*names, **kwargs)


defense_option = _option("--defense", required=True, callback=check_defense,
                         help="Registered defense (see `bench defenses`).")
dataset_option = _option("--dataset", default="mnist5k", show_default=True, callback=check_dataset,
                         help="mnist5k, mnist, fashion-mnist or cifar10.")
seed_option = _option("--seed", type=SEED, default="0", show_default=True, help="Seed for training and attacks.")
device_option = _option("--device", default="auto", show_default=True, callback=check_device, help="auto, cpu or cuda.")
out_option = _option("--out", type=click.Path(path_type=Path), default=None,
                     help="Run directory [default: results/<run-id>/].")
config_option = _option("--config", "config_items", multiple=True, metavar="KEY=VALUE",
                        help="Defense config override (repeatable).")
data_dir_option = _option("--data-dir", type=click.Path(path_type=Path), default=None,
                          help="Where torchvision datasets live.")
eps_option = _option("--eps", type=EPS, default=None, help="Headline L-inf eps in [0, 1] [default: the dataset's].")
n_test_option = _option("--n-test", type=COUNT, default=None, help="Evaluate on the first N test points only.")
profile_option = _option("--profile", default="quick", show_default=True, callback=check_profile,
                         help="quick (minutes on a CPU) or full (paper settings).")
retrain_option = _option("--retrain", is_flag=True, help="Train even if the model zoo has this model.")


def check_executor(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from ..executors import ExecutorUnavailable, check_executor as usable

    try:
        return usable(value)
    except ExecutorUnavailable as exc:
        raise BenchUsageError(str(exc)) from None


def check_workers(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    """``--workers 1,8,64``: positive worker counts."""
    try:
        counts = tuple(sorted({int(v) for v in value.split(",")}))
    except ValueError:
        counts = (0,)
    if not counts or counts[0] < 1:
        raise BenchUsageError(f"bad --workers {value!r}; valid choices: positive integers separated by commas, e.g. 1,8,64")
    return counts


RAY_ADDRESS_FORM = re.compile(r"^(auto|local|(ray://)?[A-Za-z0-9._-]+:[0-9]{1,5})$")


def check_ray_address(executor: str, address: Optional[str]) -> None:
    """Before any work: the address goes with --executor ray and has a form ray.init accepts."""
    if address is not None and executor != "ray":
        raise BenchUsageError(f"--ray-address {address!r} needs --executor ray (got --executor {executor})")
    if address is not None and not RAY_ADDRESS_FORM.match(address):
        raise BenchUsageError(f"bad --ray-address {address!r}; valid choices: auto, local, HOST:PORT or "
                              "ray://HOST:PORT (e.g. ray://head:10001)")


executor_option = _option("--executor", default="local", show_default=True, callback=check_executor,
                          help="Where attacks and certification run: local (this process) or ray (shards as Ray "
                               "tasks; results are identical).")
ray_address_option = _option("--ray-address", default=None,
                             help="Ray cluster for --executor ray [default: $RAY_ADDRESS, else a local cluster].")


def echo_err(message: str) -> None:
    """Progress and logs go to stderr; results (tables, JSON, paths) to stdout."""
    click.echo(message, err=True)
