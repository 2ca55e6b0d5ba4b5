"""The plugin system: registries, entry points, in-process registration, the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import boxlib
from boxlib.hookspecs import hookimpl
from boxlib.plugins import HOOKS, PluginHost
from boxlib.registry import DuplicateComponentError, Registry, UnknownComponentError, normalize_name


# -- registry ---------------------------------------------------------------------------
def test_lookup_normalises_names():
    assert normalize_name("Lorentz-Geometry", "geometry") == "lorentz"
    assert isinstance(boxlib.get_geometry("Lorentz Geometry", 2), boxlib.geometries().get("lorentz").factory)
    assert isinstance(boxlib.get_geometry("POINCARE", 2), boxlib.geometries().get("poincare").factory)


def test_unknown_name_suggests_and_lists_available():
    with pytest.raises(UnknownComponentError) as info:
        boxlib.get_geometry("lorenz", 3)
    message = str(info.value)
    assert "did you mean 'lorentz'?" in message
    for name in ("euclidean", "lorentz", "poincare"):
        assert name in message.split("Available:")[1]


def test_unknown_name_without_close_match_still_lists_available():
    with pytest.raises(UnknownComponentError, match=r"unknown geometry 'zzz'\. Available: .*euclidean"):
        boxlib.get_geometry("zzz", 3)


def test_duplicate_name_names_both_sources():
    registry = Registry("geometry")
    registry._origin = ("first", "dist-a", "1.0")
    registry.add(object, name="box")
    registry._origin = ("second", "dist-b", "2.0")
    with pytest.raises(DuplicateComponentError) as info:
        registry.add(object, name="Box")
    assert "dist-a 1.0" in str(info.value) and "dist-b 2.0" in str(info.value)


def test_component_without_a_name_is_refused_clearly():
    with pytest.raises(ValueError, match="class attribute `name"):
        Registry("geometry").add(lambda: None)


# -- hooks --------------------------------------------------------------------------------
def test_every_hook_has_a_registry_and_the_built_ins_use_the_public_hooks():
    host = PluginHost()
    assert set(HOOKS.values()) == {name for name in dir(host.pm.hook) if name.startswith("boxlib_")}
    for name in ("euclidean", "poincare", "lorentz"):
        info = host.plugins[name]
        assert info.distribution == "boxlib" and "boxlib_add_geometries" in info.hooks
        assert host.registries["geometry"].get(name).plugin == name


def test_hooks_are_documented_with_their_parameters():
    guide = (Path(__file__).parents[1] / "docs" / "plugin-guide.md").read_text()
    for hook in HOOKS.values():
        assert f"{hook}(registry)" in guide, f"{hook} missing from docs/plugin-guide.md"


class _ToyPlugin:
    """A plugin object (not a module) with one hook."""

    @hookimpl
    def boxlib_add_geometries(self, registry):
        from boxlib_plugins.euclidean import EuclideanGeometry

        class Taxicab(EuclideanGeometry):
            name = "taxicab"

        registry.add(Taxicab)


def test_in_process_registration_and_unregistration():
    host = PluginHost()
    name = host.register(_ToyPlugin(), name="toy-in-process")
    entry = host.registries["geometry"].get("taxicab")
    assert entry.source == "in-process" and entry.plugin == "toy-in-process"
    host.unregister(name)
    assert "taxicab" not in host.registries["geometry"]


def test_register_accepts_a_geometry_class(monkeypatch):
    from boxlib_plugins.euclidean import EuclideanGeometry

    class Notebook(EuclideanGeometry):
        name = "notebook_geometry"

    name = boxlib.register(Notebook)
    try:
        g = boxlib.get_geometry("notebook-geometry", 4)
        assert isinstance(g, Notebook) and g.dim == 4
        with pytest.raises(ValueError, match="already registered"):
            boxlib.register(Notebook)
    finally:
        boxlib.unregister(name)
    assert "notebook_geometry" not in boxlib.geometries()


def test_register_refuses_a_name_clash_and_leaves_the_registry_intact():
    from boxlib_plugins.euclidean import EuclideanGeometry

    class Impostor(EuclideanGeometry):
        name = "Poincare"

    host = PluginHost()
    with pytest.raises(ValueError, match="clashes with 'poincare'"):
        host.register(Impostor)
    assert host.registries["geometry"].get("poincare").plugin == "poincare"
    assert not host.failures


def test_misspelt_hook_is_reported_with_a_suggestion():
    class Typo:
        @hookimpl
        def boxlib_add_geometry(self, registry):  # missing the final "ies"
            pass

    host = PluginHost()
    with pytest.raises(ValueError, match="did you mean boxlib_add_geometries"):
        host.register(Typo(), name="typo")


def test_plugin_that_raises_while_registering_does_not_break_the_others():
    class Exploding:
        @hookimpl
        def boxlib_add_geometries(self, registry):
            raise RuntimeError("boom")

    host = PluginHost()
    with pytest.raises(ValueError, match="boom"):
        host.register(Exploding(), name="exploding")
    assert {"euclidean", "poincare", "lorentz"} <= set(host.registries["geometry"].names())


def test_disable_list_blocks_entry_points(monkeypatch):
    monkeypatch.setenv("BOXLIB_DISABLE_PLUGINS", "poincare, lorentz")
    host = PluginHost()
    assert host.registries["geometry"].names() == ["euclidean"]


def test_trace_prints_what_each_plugin_registered(monkeypatch, capsys):
    monkeypatch.setenv("BOXLIB_TRACE_PLUGINS", "1")
    assert "lorentz" in PluginHost().registries["geometry"]
    err = capsys.readouterr().err
    assert "boxlib_add_geometries <- lorentz: lorentz" in err


# -- CLI ------------------------------------------------------------------------------------
def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "boxlib.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_cli_plugins_table_and_json():
    table = _run(["plugins"])
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:5] == ["KIND", "NAME", "VERSION", "SOURCE", "PLUGIN"]
    rows = {line.split()[1]: line for line in lines[1:] if line.strip()}
    assert {"euclidean", "poincare", "lorentz"} <= set(rows)
    assert "exact_intersection" in rows["euclidean"] and "exact_intersection" not in rows["lorentz"]
    payload = json.loads(_run(["plugins", "--json"]).stdout)
    names = {c["name"]: c for c in payload["components"]}
    assert names["lorentz"]["kind"] == "geometry" and names["lorentz"]["distribution"] == "boxlib"
    assert payload["failures"] == []


# -- a real third-party package, installed (fixture ``toy_env`` in conftest.py) --------------
def test_third_party_entry_point_is_listed_and_a_broken_one_reported(toy_env):
    result = _run(["plugins", "--json"], env=toy_env)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    toy = [c for c in payload["components"] if c["name"] == "scaled_euclidean"]
    assert toy and toy[0]["distribution"] == "boxlib-toy-plugin" and toy[0]["version"] == "0.0.1"
    assert [f["plugin"] for f in payload["failures"]] == ["broken"]
    assert "not-installed-anywhere" in payload["failures"][0]["error"]
    assert {"euclidean", "poincare", "lorentz"} <= {c["name"] for c in payload["components"]}
    table = _run(["plugins"], env=toy_env).stdout
    assert "failed to import" in table and "scaled_euclidean" in table


def test_third_party_geometry_passes_the_conformance_kit(toy_env, tmp_path):
    test_file = tmp_path / "test_toy_conformance.py"
    test_file.write_text(
        "from boxlib.testing import GeometryConformance\n\n"
        "class TestToy(GeometryConformance):\n"
        "    geometry_name = 'scaled_euclidean'\n"
        "    geometry_kwargs = {'s': 3.0}\n"
    )
    (tmp_path / "conftest.py").write_text(
        "from hypothesis import settings\nfrom boxlib.testing import register_profiles\n"
        "register_profiles()\nsettings.load_profile('boxlib-quick')\n"
    )
    env = toy_env
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"(\d+) passed, \d+ skipped.*", summary) and int(summary.split()[0]) >= 15, summary


def test_geometry_module_is_a_torch_module_so_curvature_trains():
    g = boxlib.get_geometry("poincare", 3, c=2.0, learnable=True)
    params = list(g.parameters())
    assert len(params) == 1 and "learnable_curvature" in g.capabilities
    x = g.expmap0(torch.randn(4, 3))
    y = g.expmap0(torch.randn(4, 3))
    g.distance(x, y).sum().backward()
    assert params[0].grad is not None and torch.isfinite(params[0].grad).all()
    assert not list(boxlib.get_geometry("poincare", 3).parameters())


def test_third_party_cannot_displace_a_built_in_and_is_rolled_back(monkeypatch):
    import importlib.metadata as md
    import types

    from boxlib_plugins.euclidean import EuclideanGeometry

    class Fake(EuclideanGeometry):
        name = "poincare"

    class Extra(EuclideanGeometry):
        name = "extra"

    module = types.SimpleNamespace(__name__="aaa_plugin")

    @hookimpl
    def boxlib_add_geometries(registry):
        registry.add(Extra)
        registry.add(Fake)

    module.boxlib_add_geometries = boxlib_add_geometries

    class FakeEntryPoint:
        name = "aaa"  # sorts before every built-in by name
        dist = types.SimpleNamespace(metadata={"Name": "evil-dist"}, version="6.6.6")

        def load(self):
            return module

    real = md.entry_points
    monkeypatch.setattr(md, "entry_points", lambda group: [FakeEntryPoint(), *real(group=group)])
    with pytest.warns(RuntimeWarning, match="aaa"):
        host = PluginHost()
        geometries = host.registries["geometry"]
    assert geometries.get("poincare").distribution == "boxlib"
    assert "extra" not in geometries, "a plugin that failed halfway must not stay half-registered"
    assert [f.plugin for f in host.failures] == ["aaa"] and "evil-dist" in str(host.failures[0])
