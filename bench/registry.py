"""One small generic registry (defenses, attacks, datasets) and the defense registry built on it.

``Registry[T]`` is a name -> item table, as lm-evaluation-harness keeps one
for each kind of thing. Built-ins are named up front with the module that
registers them, so listing them imports nothing heavy (``bench defenses``
and ``bench --help`` do not load torch); the module is imported on the first
lookup of one of its names. Third-party packages declare entry points in the
registry's group; those are loaded lazily, once. A plugin that fails to load
(or tries to end the process while importing) is a warning; two items with
one name are an error naming both sources; an unknown name lists the valid
ones.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import importlib
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable, Generic, Iterator, Mapping, Optional, TypeVar

from .config import DefenseConfigError, validate_config
from .defense_catalog import BUILTIN_DEFENSES, Builtin  # noqa: F401  (Builtin: part of the registry's API)

T = TypeVar("T")
ENTRY_POINT_GROUP = "bench.defenses"


class RegistryError(Exception):
    """Base class for registry errors (usage errors: exit status 2)."""


class UnknownNameError(RegistryError, KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; keep it readable.
        return str(self.args[0])


class DuplicateNameError(RegistryError):
    pass


class Registry(Generic[T]):
    """Items of one kind by name: built-ins (loaded on first lookup) plus entry-point plugins.

    ``builtins`` maps each built-in name to ``"module:object"``, the module
    whose import registers it (and the source named in duplicate errors).
    """

    def __init__(self, kind: str, *, group: Optional[str] = None, builtins: Optional[Mapping[str, str]] = None,
                 entry_points: Optional[Callable[[], list[metadata.EntryPoint]]] = None) -> None:
        self.kind, self.group = kind, group
        self.builtins = dict(builtins or {})
        self._items: dict[str, T] = {}
        self._sources: dict[str, str] = {}
        self._plugins_loaded = False
        self._current_source: Optional[str] = None
        self._entry_points = entry_points or (lambda: list(metadata.entry_points(group=group)) if group else [])

    # -- registration -------------------------------------------------------------------------
    @contextlib.contextmanager
    def source(self, label: str) -> Iterator[None]:
        """Items registered inside this block are attributed to ``label`` (a plugin's entry point)."""
        previous, self._current_source = self._current_source, label
        try:
            yield
        finally:
            self._current_source = previous

    def attribution(self, default: str) -> str:
        """Where an item registered now comes from: the plugin being loaded, else ``default``."""
        return self._current_source or default

    def add(self, name: str, item: T, source: str) -> None:
        source = self.attribution(source)
        existing = self._sources.get(name) or self.builtins.get(name)
        if existing is not None and existing != source:
            raise DuplicateNameError(f"{self.kind} {name!r} is registered twice: by {existing} and by {source}")
        self._items[name] = item
        self._sources[name] = source

    # -- lookup -------------------------------------------------------------------------------
    def load_plugins(self, force: bool = False) -> None:
        """Import every entry point of the group once (cached)."""
        if self._plugins_loaded and not force:
            return
        self._plugins_loaded = True
        for ep in self._entry_points():
            dist = getattr(getattr(ep, "dist", None), "name", None) or "unknown distribution"
            label = f"plugin {ep.name!r} from {dist} ({ep.value})"
            try:
                with self.source(label):
                    ep.load()
            except DuplicateNameError:
                raise
            except (Exception, SystemExit) as exc:  # a broken plugin must neither take bench down nor end it
                warnings.warn(f"bench: skipped {self.kind} {label}: {type(exc).__name__}: {exc}", stacklevel=2)

    def _load_builtin(self, name: str) -> None:
        if name in self.builtins and name not in self._items:
            importlib.import_module(self.builtins[name].split(":")[0])

    def get(self, name: str) -> T:
        self._load_builtin(name)
        if name not in self._items:
            self.load_plugins()
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; valid choices: {', '.join(self.names())}"
            ) from None

    def names(self, filter: str = "*", exclude: Optional[str] = None) -> list[str]:
        """Sorted names matching the fnmatch pattern ``filter`` (built-ins are not imported)."""
        self.load_plugins()
        names = [n for n in sorted(set(self.builtins) | set(self._items)) if fnmatch.fnmatch(n, filter)]
        if exclude:
            names = [n for n in names if not fnmatch.fnmatch(n, exclude)]
        return names

    def loaded(self) -> list[T]:
        """Every item, all built-ins imported (for code that needs the objects, e.g. tests over the registry)."""
        for name in self.builtins:
            self._load_builtin(name)
        self.load_plugins()
        return [self._items[n] for n in sorted(self._items)]

    def source_of(self, name: str) -> Optional[str]:
        return self._sources.get(name) or self.builtins.get(name)


# -- defenses ---------------------------------------------------------------------------------

DefenseRegistryError = RegistryError
UnknownDefenseError = UnknownNameError
DuplicateDefenseError = DuplicateNameError


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
            raise RegistryError(f"defense {self.name!r} registered no build function; it cannot be reloaded")
        return self.spec.build(data, self.config)


def _entry_points() -> list[metadata.EntryPoint]:
    return list(metadata.entry_points(group=ENTRY_POINT_GROUP))


DEFENSES: Registry[DefenseSpec] = Registry(
    "defense", group=ENTRY_POINT_GROUP, builtins={n: b.target for n, b in BUILTIN_DEFENSES.items()},
    entry_points=lambda: _entry_points(),
)


def register_defense(
    name: str,
    *,
    config: type,
    build: Optional[Callable[..., Any]] = None,
    description: Optional[str] = None,
) -> Callable:
    """Decorator registering ``fit(data, config) -> DefendedModel`` under ``name``.

    ``config`` must be a dataclass whose defaults make a sane defense (extend
    ``bench.config.TrainConfig``); a field named ``seed`` receives the run's
    ``--seed``. ``build(data, config)`` returns the untrained model, which
    lets the model zoo reload cached weights (without it the defense is
    retrained on every run). The description defaults to the first line of
    the function's docstring.
    """
    if not dataclasses.is_dataclass(config):
        raise TypeError(f"register_defense({name!r}): config must be a dataclass, got {config!r}")

    def decorator(fit: Callable) -> Callable:
        first_doc_line = ((fit.__doc__ or "").strip().splitlines() or [""])[0]
        text = description if description is not None else first_doc_line
        source = DEFENSES.attribution(f"{fit.__module__}:{fit.__qualname__}")
        spec = DefenseSpec(name=name, fit=fit, config=config, description=text.strip(), source=source, build=build)
        DEFENSES.add(name, spec, source)
        fit.bench_defense = spec  # type: ignore[attr-defined]
        return fit

    return decorator


def get_spec(name: str) -> DefenseSpec:
    return DEFENSES.get(name)


def create_defense(name: str, **config: Any) -> Defense:
    """Look up ``name`` and bind a config built from the dataclass defaults plus overrides."""
    spec = get_spec(name)
    return Defense(spec=spec, config=spec.make_config(**config))


def config_with_seed(name: str, config: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """``config`` with the run's seed in the defense's ``seed`` field (unless the config sets one)."""
    merged = dict(config)
    if "seed" in {f.name for f in dataclasses.fields(get_spec(name).config)}:
        merged.setdefault("seed", seed)
    return merged


def list_defenses(filter: str = "*", exclude: Optional[str] = None) -> list[str]:
    """Sorted registered names matching the fnmatch pattern ``filter``."""
    return DEFENSES.names(filter, exclude)


def describe_defense(name: str) -> str:
    """The one-line description `bench defenses` shows (built-ins without importing them)."""
    if name in BUILTIN_DEFENSES and DEFENSES.source_of(name) == BUILTIN_DEFENSES[name].target:
        return BUILTIN_DEFENSES[name].description
    return get_spec(name).description
