"""Defense configs whose fields carry their own valid range, checked before any work starts.

A defense's config is a dataclass. Declaring a field with ``param(default,
min=..., gt=..., choices=...)`` puts the valid range beside the field, so the
one check in ``validate_config`` can refuse ``epochs=0`` or ``lr=nan`` with a
line naming the key, the value and the range, before a model is trained.
Types come from the annotations (``int``, ``float``, ``bool``, ``str`` and
``Optional`` of those); other annotations are not checked. ``TrainConfig`` is
the base every built-in defense extends: the fields the shared training loop
reads.

No torch here: the CLI imports this to parse ``--config KEY=VALUE``.
"""
from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

MAX_SEED = 2**32 - 1


class DefenseConfigError(ValueError):
    """A config value is of the wrong type or outside its valid range (a usage error)."""


def param(
    default: Any,
    *,
    min: Optional[float] = None,
    max: Optional[float] = None,
    gt: Optional[float] = None,
    lt: Optional[float] = None,
    choices: Optional[Sequence[Any]] = None,
) -> Any:
    """A dataclass field with its valid range: ``min``/``max`` inclusive, ``gt``/``lt`` exclusive."""
    bounds = {k: v for k, v in (("min", min), ("max", max), ("gt", gt), ("lt", lt)) if v is not None}
    metadata: dict[str, Any] = {"bounds": bounds}
    if choices is not None:
        metadata["choices"] = tuple(choices)
    return field(default=default, metadata=metadata)


def describe_range(f: dataclasses.Field, kind: Optional[type], optional: bool) -> str:
    """The valid values of one field, in words (for error messages and docs)."""
    if "choices" in f.metadata:
        text = "one of " + ", ".join(str(c) for c in f.metadata["choices"])
    else:
        bounds = f.metadata.get("bounds", {})
        name = {int: "an integer", float: "a finite number", bool: "true or false", str: "a string"}.get(kind, "a value")
        parts = [f"{op} {_bound(bounds[key])}" for key, op in (("min", ">="), ("gt", ">"), ("max", "<="), ("lt", "<"))
                 if key in bounds]
        text = name + (" " + " and ".join(parts) if parts else "")
    return text + (" (or none)" if optional else "")


def _bound(value: float) -> str:
    """A bound as text: integers exactly (a seed's 4294967295, not 4.29497e+09), others short."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _kind(annotation: Any) -> tuple[Optional[type], bool]:
    """(base type, optional?) for int/float/bool/str annotations, else (None, optional?)."""
    optional = False
    origin = typing.get_origin(annotation)
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        annotation = args[0] if len(args) == 1 else None
    return (annotation if annotation in (int, float, bool, str) else None), optional


def field_kinds(config_type: type) -> dict[str, tuple[Optional[type], bool]]:
    """Per field name: (base type or None, optional?) from the dataclass's annotations."""
    try:
        hints = typing.get_type_hints(config_type)
    except Exception:  # a plugin's annotations may not resolve; then types are not checked
        hints = {}
    return {f.name: _kind(hints.get(f.name)) for f in dataclasses.fields(config_type)}


def _problem(value: Any, f: dataclasses.Field, kind: Optional[type], optional: bool) -> bool:
    """True when ``value`` is not valid for field ``f``."""
    if value is None:
        return not optional and kind is not None
    if kind is bool and not isinstance(value, bool):
        return True
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        return True
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return True
    if kind is str and not isinstance(value, str):
        return True
    if "choices" in f.metadata:
        return value not in f.metadata["choices"]
    bounds = f.metadata.get("bounds", {})
    if bounds and not isinstance(value, (int, float)):
        return True
    return bool(
        ("min" in bounds and value < bounds["min"])
        or ("max" in bounds and value > bounds["max"])
        or ("gt" in bounds and value <= bounds["gt"])
        or ("lt" in bounds and value >= bounds["lt"])
    )


def coerce(value: str, kind: Optional[type]) -> Any:
    """Parse VALUE of --config KEY=VALUE by the config field's type (JSON, else text, when untyped)."""
    text = value.strip()
    if text.lower() in ("none", "null"):
        return None
    if kind is bool:
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise ValueError(f"expected true or false, got {value!r}")
    if kind in (int, float):
        return kind(text)
    if kind is str:
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def validate_config(config: Any, owner: str = "") -> Any:
    """Return ``config`` unchanged, or raise DefenseConfigError naming the first bad key, value and range."""
    kinds = field_kinds(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        kind, optional = kinds[f.name]
        if _problem(value, f, kind, optional):
            where = f" of defense {owner!r}" if owner else ""
            raise DefenseConfigError(
                f"bad value {value!r} for config key {f.name!r}{where}; valid: {describe_range(f, kind, optional)}"
            )
    return config


@dataclass
class TrainConfig:
    """What the shared training loop reads; every built-in defense's config extends it.

    ``seed`` receives the run's ``--seed``; ``bench validate`` shrinks
    ``epochs`` to a tiny budget.
    """

    epochs: int = param(5, min=1)
    batch_size: int = param(128, min=1)
    lr: float = param(1e-3, gt=0)
    seed: int = param(0, min=0, max=MAX_SEED)
