"""The sweep's grid: which defenses, which config values, which training seeds, as a list of cells.

``--defense vib,tight_vib --grid beta=1e-4,1e-3 --seeds 0,1,2`` is every
defense at every combination of the grid's values (the Cartesian product of
the axes) for every seed. Each value is parsed by the defense's own config
type and every cell's config is checked against the declared ranges
(``bench.config``) before anything is trained, so a malformed grid fails in
one line. Cells are ordered seed first, so an interrupted sweep has already
finished whole comparisons (every method at every value) for the first seeds.
"""
from __future__ import annotations

import dataclasses
import itertools
import re
from dataclasses import dataclass
from typing import Any, Optional

from ..config import MAX_SEED, coerce, field_kinds

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class GridError(ValueError):
    """A malformed sweep request; the message is one line naming the bad value and the valid choices."""


@dataclass(frozen=True)
class GridAxis:
    """One ``--grid KEY=V1,V2,...``: a config key and its values as written."""

    key: str
    texts: tuple[str, ...]


@dataclass(frozen=True)
class Cell:
    """One run of the sweep: a defense, its grid point (key -> value as written), a training seed."""

    defense: str
    point: tuple[tuple[str, str], ...]
    config: tuple[tuple[str, Any], ...]  # typed config overrides (fixed --config items and the grid point)
    seed: int

    @property
    def point_label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.point) or "(defaults)"

    @property
    def label(self) -> str:
        return f"{self.defense} {self.point_label} seed {self.seed}"


@dataclass(frozen=True)
class SweepSpec:
    """A parsed, checked sweep request."""

    defenses: tuple[str, ...]
    axes: tuple[GridAxis, ...]
    seeds: tuple[int, ...]
    fixed: tuple[tuple[str, str], ...]  # --config KEY=VALUE items, as written
    name: str
    cells: tuple[Cell, ...]

    @property
    def points(self) -> list[tuple[tuple[str, str], ...]]:
        """Every grid point, in grid order."""
        return [tuple(zip([a.key for a in self.axes], combo)) for combo in itertools.product(*(a.texts for a in self.axes))]


def split_list(text: str, what: str, example: str) -> list[str]:
    """``a,b,c`` as a list, refusing empty items and repeats."""
    items = [t.strip() for t in (text or "").split(",")]
    if not items or any(not t for t in items):
        raise GridError(f"bad {what} {text!r}; expected a comma-separated list such as {example!r}")
    repeated = sorted({t for t in items if items.count(t) > 1})
    if repeated:
        raise GridError(f"bad {what} {text!r}: {repeated[0]!r} is listed twice")
    return items


def parse_defenses(text: str) -> tuple[str, ...]:
    from ..registry import list_defenses

    names = split_list(text, "--defense", "vib,tight_vib")
    valid = list_defenses()
    for name in names:
        if name not in valid:
            raise GridError(f"unknown defense {name!r}; valid choices: {', '.join(valid)}")
    return tuple(names)


def parse_seeds(text: str) -> tuple[int, ...]:
    seeds = []
    for item in split_list(text, "--seeds", "0,1,2"):
        seed = int(item) if item.isdigit() else -1
        if not 0 <= seed <= MAX_SEED:
            raise GridError(f"bad seed {item!r} in --seeds; valid choices: integers from 0 to {MAX_SEED}")
        seeds.append(seed)
    return tuple(seeds)


def parse_axes(items: tuple[str, ...], fixed_keys: set[str]) -> tuple[GridAxis, ...]:
    axes: list[GridAxis] = []
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise GridError(f"bad --grid {item!r}; expected KEY=V1,V2,... such as 'beta=1e-4,1e-3'")
        if key == "seed":
            raise GridError("bad --grid key 'seed': training seeds are given with --seeds 0,1,2")
        if key in fixed_keys or key in {a.key for a in axes}:
            raise GridError(f"bad --grid {item!r}: key {key!r} is set twice (in --grid or --config)")
        axes.append(GridAxis(key, tuple(split_list(values, f"--grid {key}", f"{key}=1e-4,1e-3"))))
    return tuple(axes)


def typed_value(defense: str, key: str, text: str, option: str) -> Any:
    """``text`` parsed by the type of ``defense``'s config field ``key`` (a one-line error otherwise)."""
    from ..registry import get_spec

    config_type = get_spec(defense).config
    kinds = field_kinds(config_type)
    if key not in kinds:
        valid = ", ".join(f.name for f in dataclasses.fields(config_type))
        raise GridError(f"bad {option} key {key!r}: defense {defense!r} has no such setting; valid keys: {valid}")
    try:
        return coerce(text, kinds[key][0])
    except ValueError as exc:
        raise GridError(f"bad {option} value {text!r} for {defense!r} key {key!r}: {exc}") from None


def parse_fixed(items: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    fixed = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise GridError(f"bad --config {item!r}; expected KEY=VALUE such as 'epochs=1'")
        if key.strip() in {k for k, _ in fixed}:
            raise GridError(f"bad --config {item!r}: key {key.strip()!r} is set twice")
        fixed.append((key.strip(), value))
    return tuple(fixed)


def _defense_configs(defense: str, spec_points: list, fixed: tuple) -> list[tuple[tuple[str, Any], ...]]:
    """Each grid point's typed config for ``defense``, checked against the declared ranges."""
    from ..registry import get_spec

    base = {k: typed_value(defense, k, v, "--config") for k, v in fixed}
    configs, seen = [], {}
    for point in spec_points:
        config = {**base, **{k: typed_value(defense, k, v, "--grid") for k, v in point}}
        get_spec(defense).make_config(**config)  # DefenseConfigError: one line naming key, value and range
        frozen = tuple(sorted(config.items()))
        if frozen in seen:
            raise GridError(f"bad --grid: {_label(seen[frozen])} and {_label(point)} are the same setting of {defense!r}")
        seen[frozen] = point
        configs.append(frozen)
    return configs


def _label(point: tuple) -> str:
    return " ".join(f"{k}={v}" for k, v in point)


def default_name(defenses: tuple[str, ...], axes: tuple[GridAxis, ...]) -> str:
    """e.g. ``vib-vs-tight_vib-beta``: the methods compared and the keys swept."""
    return "-vs-".join(defenses) + "".join(f"-{a.key}" for a in axes)


def build_spec(defense_text: str, grid_items: tuple[str, ...] = (), seeds_text: str = "0",
               config_items: tuple[str, ...] = (), name: Optional[str] = None) -> SweepSpec:
    """Parse and check the whole request; every cell's config is valid when this returns."""
    defenses = parse_defenses(defense_text)
    fixed = parse_fixed(config_items)
    axes = parse_axes(grid_items, {k for k, _ in fixed})
    seeds = parse_seeds(seeds_text)
    chosen = name if name is not None else default_name(defenses, axes)
    if not NAME_PATTERN.match(chosen):
        raise GridError(f"bad --name {chosen!r}; valid: letters, digits, '.', '_' and '-' (a file name)")
    spec = SweepSpec(defenses, axes, seeds, fixed, chosen, ())
    points = spec.points
    configs = {d: _defense_configs(d, points, fixed) for d in defenses}
    cells = tuple(Cell(d, point, configs[d][i], seed)
                  for seed in seeds for i, point in enumerate(points) for d in defenses)
    return dataclasses.replace(spec, cells=cells)
