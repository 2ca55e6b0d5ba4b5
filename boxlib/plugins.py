"""The plugin host: entry points and in-process plugins feed one registry per kind.

Plugins are found in the ``boxlib`` entry-point group (built-ins included) and through
:func:`register`. A plugin that fails to import, names a hook that does not exist, or
raises while registering is recorded as a :class:`LoadFailure` (shown by
``boxlib plugins``) and does not stop the others from loading.

Environment variables:

``BOXLIB_DISABLE_PLUGINS``
    Comma-separated entry-point names not to load (e.g. ``poincare,my_geometry``).
``BOXLIB_TRACE_PLUGINS``
    When set to a non-empty value other than ``0``, print every hook call and what it
    registered to stderr.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.metadata
import os
import sys
import traceback
import warnings
from typing import Any

import pluggy

from boxlib import hookspecs
from boxlib.registry import Entry, Registry

__all__ = [
    "ENTRY_POINT_GROUP",
    "HOOKS",
    "LoadFailure",
    "PluginHost",
    "PluginInfo",
    "host",
    "register",
    "reset",
]

ENTRY_POINT_GROUP = "boxlib"

#: Component kind → the hook that fills its registry.
HOOKS: dict[str, str] = {
    "geometry": "boxlib_add_geometries",
    "model": "boxlib_add_models",
    "dataset": "boxlib_add_datasets",
}


@dataclasses.dataclass(frozen=True)
class LoadFailure:
    """A plugin that could not be loaded or could not register."""

    plugin: str
    distribution: str | None
    stage: str  # "import", "validate" or "register"
    error: str
    detail: str = ""  # the formatted traceback

    def __str__(self) -> str:
        dist = f" ({self.distribution})" if self.distribution else ""
        return f"plugin '{self.plugin}'{dist} failed to {self.stage}: {self.error}"


@dataclasses.dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin and where it came from."""

    name: str
    distribution: str | None
    version: str | None
    module: str
    hooks: tuple[str, ...]


def _format_error(exc: BaseException) -> tuple[str, str]:
    return f"{type(exc).__name__}: {exc}", "".join(traceback.format_exception(exc))


class _SingleComponent:
    """Wraps a component class passed to :func:`register` as a one-hook plugin."""

    def __init__(self, kind: str, factory: Any, name: str | None):
        def add(registry: Registry) -> None:
            registry.add(factory, name)

        setattr(self, HOOKS[kind], hookspecs.hookimpl(add))


def _component_kind(obj: Any) -> str | None:
    from boxlib.geometry import Geometry

    if isinstance(obj, type) and issubclass(obj, Geometry):
        return "geometry"
    return getattr(obj, "boxlib_kind", None) if isinstance(obj, type) else None


class PluginHost:
    """Owns a pluggy ``PluginManager`` and the registries built from its hooks."""

    def __init__(self, *, load_entry_points: bool = True):
        self.pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.failures: list[LoadFailure] = []
        self.plugins: dict[str, PluginInfo] = {}
        self._registries: dict[str, Registry] | None = None
        self.trace = os.environ.get("BOXLIB_TRACE_PLUGINS", "").strip().lower() not in ("", "0", "false", "no", "off")
        if load_entry_points:
            self.load_entry_points()

    # -- loading -------------------------------------------------------------------
    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Load every entry point of ``group``, recording failures instead of raising."""
        disabled = {n.strip().lower() for n in os.environ.get("BOXLIB_DISABLE_PLUGINS", "").split(",") if n.strip()}

        def dist_name_of(ep) -> str | None:
            dist = getattr(ep, "dist", None)
            return dist.metadata["Name"] if dist is not None else None

        # boxlib's own plugins load (and so register) first: a third-party component that
        # reuses a built-in name is the one refused, never the built-in.
        eps = sorted(importlib.metadata.entry_points(group=group), key=lambda e: (dist_name_of(e) != "boxlib", e.name))
        for ep in eps:
            if ep.name.lower() in disabled or ep.name in self.plugins:
                continue
            dist = getattr(ep, "dist", None)
            dist_name = dist_name_of(ep)
            version = dist.version if dist is not None else None
            try:
                obj = ep.load()
            except Exception as exc:  # any import-time error is reported, not raised
                self._fail(ep.name, dist_name, "import", exc)
                continue
            self._add_plugin(obj, ep.name, dist_name, version)

    def register(self, plugin: Any, name: str | None = None) -> str:
        """Register an in-process plugin: a module or object with ``boxlib_*`` hooks,
        or directly a component class such as a :class:`~boxlib.geometry.Geometry` subclass.

        Raises ``ValueError`` when the plugin is invalid (unlike entry points, whose
        failures are recorded), since the caller is right there to fix it.
        """
        kind = _component_kind(plugin)
        if kind is not None:
            component_name = name or getattr(plugin, "name", None)
            plugin = _SingleComponent(kind, plugin, name)
            name = f"{kind}:{component_name}"
        name = name or getattr(plugin, "__name__", None) or f"plugin-{id(plugin):x}"
        if name in self.plugins:
            raise ValueError(f"a plugin named '{name}' is already registered; unregister it first or pick another name")
        failure = self._add_plugin(plugin, name, None, None)
        if failure is not None:
            self.failures.remove(failure)
            raise ValueError(str(failure))
        _ = self.registries  # build now so a name clash surfaces at the call site
        for failure in list(self.failures):
            if failure.plugin == name:
                self.unregister(name)  # also forgets the failure
                raise ValueError(str(failure))
        return name

    def unregister(self, name: str) -> None:
        """Remove a plugin by name and rebuild the registries on next use."""
        if name not in self.plugins:
            raise ValueError(f"no plugin named '{name}'; registered: {', '.join(sorted(self.plugins))}")
        self.pm.unregister(name=name)
        del self.plugins[name]
        self.failures = [f for f in self.failures if f.plugin != name]
        self._registries = None

    def _fail(self, plugin: str, dist: str | None, stage: str, exc: BaseException | str) -> LoadFailure:
        if isinstance(exc, BaseException):
            error, detail = _format_error(exc)
        else:
            error, detail = exc, ""
        failure = LoadFailure(plugin, dist, stage, error, detail)
        self.failures.append(failure)
        warnings.warn(str(failure), RuntimeWarning, stacklevel=3)
        return failure

    def _add_plugin(self, obj: Any, name: str, dist: str | None, version: str | None) -> LoadFailure | None:
        known = set(HOOKS.values())
        claimed = [a for a in dir(obj) if a.startswith("boxlib_")]
        unknown = [a for a in claimed if a not in known]
        if unknown:
            hints = []
            for a in unknown:
                close = difflib.get_close_matches(a, sorted(known), n=1)
                hints.append(f"{a} (did you mean {close[0]}?)" if close else a)
            return self._fail(
                name, dist, "validate", f"unknown hook(s) {', '.join(hints)}; known hooks: {', '.join(sorted(known))}"
            )
        try:
            self.pm.register(obj, name=name)
        except Exception as exc:  # pluggy validation errors, duplicate registration
            return self._fail(name, dist, "validate", exc)
        hooks = tuple(sorted(c.name for c in (self.pm.get_hookcallers(obj) or [])))
        module = getattr(obj, "__name__", None) or type(obj).__module__
        self.plugins[name] = PluginInfo(name, dist, version, module, hooks)
        self._registries = None
        return None

    # -- registries ------------------------------------------------------------------
    @property
    def registries(self) -> dict[str, Registry]:
        """Kind → :class:`Registry`, rebuilt from the hooks after any (un)registration."""
        if self._registries is None:
            self.failures = [f for f in self.failures if f.stage != "register"]
            self._registries = {kind: self._build(kind, hook) for kind, hook in HOOKS.items()}
        return self._registries

    def _build(self, kind: str, hook_name: str) -> Registry:
        registry = Registry(kind)
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            info = self.plugins.get(impl.plugin_name)
            registry._origin = (
                impl.plugin_name,
                info.distribution if info else None,
                info.version if info else None,
            )
            before = set(registry.names())
            kwargs = {a: registry for a in impl.argnames if a == "registry"}
            try:
                impl.function(**kwargs)
            except Exception as exc:  # a broken plugin must not break the others
                registry._discard_plugin(impl.plugin_name)  # no half-registered plugin
                self._fail(impl.plugin_name, registry._origin[1], "register", exc)
            if self.trace:
                added = sorted(set(registry.names()) - before)
                print(f"[boxlib] {hook_name} <- {impl.plugin_name}: {', '.join(added) or 'nothing'}", file=sys.stderr)
        registry._origin = ("in-process", None, None)
        return registry

    def entries(self) -> list[Entry]:
        """Every registered component of every kind."""
        return [entry for registry in self.registries.values() for entry in registry]


_HOST: PluginHost | None = None


def host() -> PluginHost:
    """The process-wide plugin host, created (and entry points loaded) on first use."""
    global _HOST
    if _HOST is None:
        _HOST = PluginHost()
    return _HOST


def reset() -> None:
    """Forget the process-wide host; the next :func:`host` call reloads entry points."""
    global _HOST
    _HOST = None


def register(plugin: Any, name: str | None = None) -> str:
    """Register an in-process plugin or component class; returns the plugin name.

    >>> import boxlib
    >>> boxlib.register(MyGeometry)          # doctest: +SKIP
    'geometry:my_geometry'
    """
    return host().register(plugin, name)


def unregister(name: str) -> None:
    """Remove a plugin registered with :func:`register` (or an entry point) by name."""
    host().unregister(name)
