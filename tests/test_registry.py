"""The defense registry: built-ins, config binding, entry-point plugins."""
from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from importlib import metadata

import pytest

from bench import registry
from bench.contract import ClassifierModel
from bench.registry import (
    DefenseConfigError,
    DuplicateDefenseError,
    UnknownDefenseError,
    create_defense,
    list_defenses,
    register_defense,
)


@pytest.fixture()
def clean_registry(monkeypatch):
    """Run a test against a copy of the registry so registrations don't leak."""
    registry.DEFENSES.loaded()
    monkeypatch.setattr(registry.DEFENSES, "_items", dict(registry.DEFENSES._items))
    monkeypatch.setattr(registry.DEFENSES, "_sources", dict(registry.DEFENSES._sources))
    monkeypatch.setattr(registry.DEFENSES, "_plugins_loaded", False)
    return registry


def test_builtins_are_listed():
    names = list_defenses()
    assert {"plain", "vib", "tight_vib"} <= set(names)
    assert names == sorted(names)
    assert list_defenses("*vib") == ["tight_vib", "vib"]
    assert "plain" not in list_defenses(exclude="pl*")


def test_create_defense_binds_config_and_refuses_unknown_keys():
    defense = create_defense("vib", beta=0.01, samples=4)
    assert defense.config.beta == 0.01 and defense.config.samples == 4 and defense.config.k == 256
    with pytest.raises(DefenseConfigError, match=r"unknown config key 'betta'.*valid keys: .*beta"):
        create_defense("vib", betta=0.01)


def test_unknown_defense_lists_valid_choices():
    with pytest.raises(UnknownDefenseError) as info:
        create_defense("no_such_defense")
    assert "no_such_defense" in str(info.value) and "plain" in str(info.value)


def test_register_requires_dataclass_config():
    with pytest.raises(TypeError, match="dataclass"):
        register_defense("bad", config=dict)


def _fake_entry_point(monkeypatch, tmp_path, name: str, module_name: str, source: str) -> None:
    """Make importlib.metadata report one entry point in bench.defenses pointing at module_name:fit.

    The module is only imported when the registry loads the entry point, as with a real plugin.
    """
    (tmp_path / f"{module_name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, module_name, raising=False)
    ep = metadata.EntryPoint(name=name, value=f"{module_name}:fit", group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "_entry_points", lambda: [ep])


PLUGIN_SOURCE = """
from dataclasses import dataclass
from bench.registry import register_defense
from bench.contract import ClassifierModel

@dataclass
class Cfg:
    width: int = 3

@register_defense("third_party_toy", config=Cfg)
def fit(data, config):
    '''A toy defense shipped by another package.'''
    raise NotImplementedError
"""


def test_plugin_from_entry_point_is_discovered(clean_registry, monkeypatch, tmp_path):
    _fake_entry_point(monkeypatch, tmp_path, "third_party_toy", "fake_bench_plugin", PLUGIN_SOURCE)
    assert "third_party_toy" in list_defenses()
    spec = registry.get_spec("third_party_toy")
    assert spec.description == "A toy defense shipped by another package."
    assert spec.source.startswith("plugin 'third_party_toy'")
    assert create_defense("third_party_toy", width=5).config.width == 5


def test_broken_plugin_warns_instead_of_crashing(clean_registry, monkeypatch):
    ep = metadata.EntryPoint(name="broken", value="module_that_does_not_exist_xyz:fit", group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "_entry_points", lambda: [ep])
    with pytest.warns(UserWarning, match="skipped defense plugin .broken."):
        names = list_defenses()
    assert "plain" in names and "broken" not in names


def test_duplicate_name_is_an_error_naming_both_sources(clean_registry, monkeypatch, tmp_path):
    source = PLUGIN_SOURCE.replace('"third_party_toy"', '"plain"')
    _fake_entry_point(monkeypatch, tmp_path, "plain", "fake_dup_plugin", source)
    with pytest.raises(DuplicateDefenseError) as info:
        list_defenses()
    message = str(info.value)
    assert "bench.defenses.plain:fit_plain" in message and "plugin 'plain'" in message and "fake_dup_plugin:fit" in message


def test_plugins_are_loaded_once(clean_registry, monkeypatch):
    calls = []
    monkeypatch.setattr(registry, "_entry_points", lambda: calls.append(1) or [])
    list_defenses()
    list_defenses()
    create_defense("plain")
    assert calls == [1]


def test_builtin_catalogue_matches_what_the_modules_register():
    """`bench defenses` lists built-ins from a table without importing them; the table must not drift."""
    for name, builtin in registry.BUILTIN_DEFENSES.items():
        spec = registry.get_spec(name)
        assert builtin.target == spec.source, name
        assert builtin.description == spec.description, name
        assert registry.describe_defense(name) == spec.description


def test_a_plugin_cannot_end_the_process_on_import(clean_registry, monkeypatch, tmp_path):
    source = "import sys\nsys.exit(0)\n"
    _fake_entry_point(monkeypatch, tmp_path, "quitter", "fake_quitting_plugin", source)
    with pytest.warns(UserWarning, match="skipped defense plugin 'quitter'.*SystemExit"):
        names = list_defenses()
    assert "plain" in names and "quitter" not in names
