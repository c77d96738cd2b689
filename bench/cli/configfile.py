"""`--config-file run.toml`: any option of the command as a key, a ``[config]`` table for the defense config.

    defense = "vib"
    eps = 0.1
    profile = "quick"
    n_test = 200                # or "n-test"
    attacks = ["fgsm", "pgd-linf"]
    sigma = [0.25, 0.5]
    certify = false             # or no_certify = true
    [config]
    beta = 0.01

File values become the command's defaults (click's ``default_map``), so an
option given on the command line wins; ``--config KEY=VALUE`` wins over the
``[config]`` table key by key. Every value is checked when the file is read,
and a bad key or value is one line naming the file, the key and the valid
choices (exit 2). Read with the standard library's ``tomllib``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import click

from .options import BenchUsageError

META_KEY = "bench.config_file"  # ctx.meta[META_KEY] = (path, [config] table)


def _read(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BenchUsageError(f"config file {str(path)!r} does not exist; valid choices: a TOML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise BenchUsageError(f"cannot read config file {str(path)!r} ({reason}); valid choices: a TOML file") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BenchUsageError(f"{path}: not valid TOML ({exc}); see `bench run --help` for the keys") from None


def _keys(command: click.Command) -> dict[str, tuple[click.Option, bool]]:
    """Every key a file may use -> (the option, negated?): long names with - or _, e.g. n_test, no_certify."""
    keys: dict[str, tuple[click.Option, bool]] = {}
    for param in command.params:
        if not isinstance(param, click.Option) or param.name in ("config_file", "config_items", "help"):
            continue
        for opt in param.opts:
            if opt.startswith("--"):
                keys[opt[2:].replace("-", "_")] = (param, False)
        for opt in param.secondary_opts:
            if opt.startswith("--"):
                keys[opt[2:].replace("-", "_")] = (param, True)
    return keys


def _value(ctx: click.Context, path: Path, key: str, option: click.Option, negated: bool, raw: Any) -> Any:
    """The file's value for ``option``, checked exactly as the command line's would be."""
    if isinstance(raw, dict):
        raise BenchUsageError(f"{path}: key {key!r} is a table; valid: a value for {option.opts[0]}")
    if option.multiple and not isinstance(raw, list):
        raw = [raw]
    if isinstance(raw, list) and not option.multiple and not getattr(option.type, "accepts_list", False):
        raise BenchUsageError(f"{path}: key {key!r} is a list; valid: one value for {option.opts[0]}")
    if option.is_flag and not isinstance(raw, bool):
        raise BenchUsageError(f"{path}: bad value {raw!r} for key {key!r}; valid choices: true, false")
    value = (not raw) if negated else raw
    try:
        option.process_value(ctx, value)
    except click.UsageError as exc:
        raise BenchUsageError(f"{path}: key {key!r}: {exc.format_message()}") from None
    return value


def load_config_file(ctx: click.Context, param: click.Parameter, value: Optional[Path]) -> Optional[Path]:
    """Eager callback: read the file, check every key, install its values as defaults."""
    if value is None:
        return None
    path = Path(value)
    data = _read(path)
    table = data.pop("config", {})
    if not isinstance(table, dict):
        raise BenchUsageError(f"{path}: key 'config' must be a table ([config]) of defense config keys")
    keys = _keys(ctx.command)
    defaults: dict[str, Any] = {}
    for key, raw in data.items():
        found = keys.get(key.replace("-", "_"))
        if found is None:
            raise BenchUsageError(f"{path}: unknown key {key!r}; valid keys: {', '.join(sorted(keys))}, [config]")
        option, negated = found
        defaults[str(option.name)] = _value(ctx, path, key, option, negated, raw)
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    ctx.meta[META_KEY] = (path, table)
    return path


def file_config(ctx: click.Context) -> tuple[dict[str, Any], str]:
    """The file's [config] table and the prefix naming it in errors ("run.toml: [config] "), or ({}, "")."""
    path, table = ctx.meta.get(META_KEY, (None, {}))
    return (dict(table), f"{path}: [config] ") if path is not None else ({}, "")


def config_file_option(command: Callable) -> Callable:
    return click.option(
        "--config-file", type=click.Path(path_type=Path, dir_okay=False), is_eager=True, expose_value=False,
        callback=load_config_file,
        help="TOML file with any of these options as keys and a [config] table; flags given here win.",
    )(command)
