"""The defense registry: built-ins and third-party plugins in one table.

Built-in defenses register themselves with ``@register_defense`` when
``bench.defenses`` is imported. Third-party packages declare an entry point
in the group ``bench.defenses`` whose value is an importable object (usually
their decorated ``fit`` function); loading it runs their decorator. Plugins
are loaded lazily on the first lookup and cached; a plugin that fails to load
is a warning, two defenses with one name are an error naming both sources.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import importlib
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable, Iterator, Optional

from .config import DefenseConfigError, validate_config

ENTRY_POINT_GROUP = "bench.defenses"


class DefenseRegistryError(Exception):
    """Base class for registry errors."""


class UnknownDefenseError(DefenseRegistryError, KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; keep it readable.
        return str(self.args[0])


class DuplicateDefenseError(DefenseRegistryError):
    pass




@dataclass(frozen=True)
class DefenseSpec:
    """A registered defense: its name, config dataclass, fit function, origin."""

    name: str
    fit: Callable[..., Any]
    config: type
    description: str
    source: str
    build: Optional[Callable[..., Any]] = None  # untrained model for (data, config); enables the model zoo

    def make_config(self, **overrides: Any) -> Any:
        """Build the config dataclass, refusing unknown keys and values outside their declared ranges."""
        valid = [f.name for f in dataclasses.fields(self.config)]
        unknown = sorted(set(overrides) - set(valid))
        if unknown:
            raise DefenseConfigError(
                f"unknown config key {unknown[0]!r} for defense {self.name!r}; valid keys: {', '.join(valid)}"
            )
        try:
            config = self.config(**overrides)
        except TypeError as exc:  # a plugin config with a required field, say
            raise DefenseConfigError(f"config of defense {self.name!r}: {exc}") from None
        return validate_config(config, owner=self.name)


@dataclass
class Defense:
    """A defense with its config bound: what ``create_defense`` returns."""

    spec: DefenseSpec
    config: Any = field(default=None)

    @property
    def name(self) -> str:
        return self.spec.name

    def config_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)

    def fit(self, data: Any) -> Any:
        return self.spec.fit(data, self.config)

    def build(self, data: Any) -> Any:
        if self.spec.build is None:
            raise DefenseRegistryError(f"defense {self.name!r} registered no build function; it cannot be reloaded")
        return self.spec.build(data, self.config)


_REGISTRY: dict[str, DefenseSpec] = {}
_plugins_loaded = False
_current_source: Optional[str] = None


@contextlib.contextmanager
def _source(label: str) -> Iterator[None]:
    global _current_source
    previous, _current_source = _current_source, label
    try:
        yield
    finally:
        _current_source = previous


def _add(spec: DefenseSpec) -> None:
    existing = _REGISTRY.get(spec.name)
    if existing is not None and existing.fit is not spec.fit and existing.source != spec.source:
        raise DuplicateDefenseError(
            f"defense {spec.name!r} is registered twice: by {existing.source} and by {spec.source}"
        )
    _REGISTRY[spec.name] = spec


def register_defense(
    name: str,
    *,
    config: type,
    build: Optional[Callable[..., Any]] = None,
    description: Optional[str] = None,
) -> Callable:
    """Decorator registering ``fit(data, config) -> DefendedModel`` under ``name``.

    ``config`` must be a dataclass whose defaults make a sane defense; a field
    named ``seed`` receives the run's ``--seed``. ``build(data, config)``
    returns the untrained model, which lets the model zoo reload cached
    weights (without it the defense is retrained on every run). The
    description defaults to the first line of the function's docstring.
    """
    if not dataclasses.is_dataclass(config):
        raise TypeError(f"register_defense({name!r}): config must be a dataclass, got {config!r}")

    def decorator(fit: Callable) -> Callable:
        first_doc_line = ((fit.__doc__ or "").strip().splitlines() or [""])[0]
        text = description if description is not None else first_doc_line
        source = _current_source or f"{fit.__module__}:{fit.__qualname__}"
        spec = DefenseSpec(
            name=name, fit=fit, config=config, description=text.strip(), source=source, build=build
        )
        _add(spec)
        fit.bench_defense = spec  # type: ignore[attr-defined]
        return fit

    return decorator


def _load_builtins() -> None:
    importlib.import_module("bench.defenses")


def _entry_points() -> list[metadata.EntryPoint]:
    return list(metadata.entry_points(group=ENTRY_POINT_GROUP))


def load_plugins(force: bool = False) -> None:
    """Import every ``bench.defenses`` entry point once (cached)."""
    global _plugins_loaded
    if _plugins_loaded and not force:
        return
    _plugins_loaded = True
    _load_builtins()
    for ep in _entry_points():
        dist = getattr(getattr(ep, "dist", None), "name", None) or "unknown distribution"
        label = f"plugin {ep.name!r} from {dist} ({ep.value})"
        try:
            with _source(label):
                obj = ep.load()
        except DuplicateDefenseError:
            raise
        except Exception as exc:  # a broken plugin must not take the CLI down
            warnings.warn(f"bench: skipped defense {label}: {type(exc).__name__}: {exc}", stacklevel=2)
            continue
        spec = getattr(obj, "bench_defense", obj)
        if isinstance(spec, DefenseSpec) and spec.name not in _REGISTRY:
            _add(spec)


def get_spec(name: str) -> DefenseSpec:
    load_plugins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownDefenseError(
            f"unknown defense {name!r}; valid choices: {', '.join(sorted(_REGISTRY))}"
        ) from None


def create_defense(name: str, **config: Any) -> Defense:
    """Look up ``name`` and bind a config built from the dataclass defaults plus overrides."""
    spec = get_spec(name)
    return Defense(spec=spec, config=spec.make_config(**config))


def list_defenses(filter: str = "*", exclude: Optional[str] = None) -> list[str]:
    """Sorted registered names matching the fnmatch pattern ``filter``."""
    load_plugins()
    names = [n for n in sorted(_REGISTRY) if fnmatch.fnmatch(n, filter)]
    if exclude:
        names = [n for n in names if not fnmatch.fnmatch(n, exclude)]
    return names
