"""Named registries with forgiving lookup and loud errors.

Names are normalised before comparison (lower case; ``-``, ``_``, spaces and dots
dropped; a trailing kind suffix such as ``geometry`` removed), so ``"Lorentz-Geometry"``
finds ``lorentz``. An unknown name raises :class:`UnknownComponentError` with the closest
matches and every valid choice; adding a name twice raises
:class:`DuplicateComponentError` naming both sources.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["DuplicateComponentError", "Entry", "Registry", "UnknownComponentError", "normalize_name"]


class UnknownComponentError(LookupError):
    """A registry lookup found no component of that name."""


class DuplicateComponentError(ValueError):
    """Two plugins registered components under the same name."""


def normalize_name(name: str, suffix: str = "") -> str:
    """Lower-case, drop separators, and strip a trailing ``suffix`` (e.g. ``geometry``)."""
    key = re.sub(r"[\s_.\-]+", "", str(name).lower())
    if suffix and key.endswith(suffix) and key != suffix:
        key = key[: -len(suffix)]
    return key


@dataclasses.dataclass(frozen=True)
class Entry:
    """One registered component and where it came from."""

    name: str
    factory: Callable[..., Any]
    kind: str
    plugin: str
    distribution: str | None
    version: str | None
    description: str = ""

    @property
    def source(self) -> str:
        """``distribution version``, or ``in-process`` for ``boxlib.register``."""
        if self.distribution is None:
            return "in-process"
        return f"{self.distribution} {self.version or ''}".strip()

    @property
    def capabilities(self) -> tuple[str, ...]:
        return tuple(sorted(getattr(self.factory, "capabilities", ()) or ()))


class Registry:
    """Components of one kind (geometry, model, dataset) by name."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        # Set by the plugin host while it calls one plugin's hooks, so entries record
        # which plugin and distribution added them.
        self._origin: tuple[str, str | None, str | None] = ("in-process", None, None)

    def add(self, factory: Callable[..., Any], name: str | None = None, *, description: str | None = None) -> Entry:
        """Register ``factory`` (usually a class) under ``name`` (default ``factory.name``)."""
        if name is None:
            name = getattr(factory, "name", None)
            if not isinstance(name, str) or not name:
                raise ValueError(
                    f"cannot register {factory!r} as a {self.kind}: give it a class attribute "
                    "`name = '...'` or pass name=..."
                )
        key = normalize_name(name, self.kind)
        if not key:
            raise ValueError(f"invalid {self.kind} name {name!r}")
        plugin, dist, version = self._origin
        if description is None:
            doc = (getattr(factory, "__doc__", None) or "").strip()
            description = doc.splitlines()[0] if doc else ""
        entry = Entry(name, factory, self.kind, plugin, dist, version, description)
        if key in self._entries:
            old = self._entries[key]
            raise DuplicateComponentError(
                f"{self.kind} name '{name}' from plugin '{plugin}' ({entry.source}) clashes with "
                f"'{old.name}' from plugin '{old.plugin}' ({old.source}); rename one of them or "
                "disable a plugin with BOXLIB_DISABLE_PLUGINS"
            )
        self._entries[key] = entry
        return entry

    def _discard_plugin(self, plugin: str) -> None:
        """Remove every entry a plugin added (used when its hook fails halfway)."""
        self._entries = {k: e for k, e in self._entries.items() if e.plugin != plugin}

    def get(self, name: str) -> Entry:
        """The entry for ``name``, or :class:`UnknownComponentError` with suggestions."""
        try:
            return self._entries[normalize_name(name, self.kind)]
        except KeyError:
            pass
        names = sorted(e.name for e in self._entries.values())
        close = difflib.get_close_matches(normalize_name(name, self.kind), list(self._entries), n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(self._entries[c].name) for c in close)}?" if close else "."
        available = ", ".join(names) if names else "none (is boxlib installed with its plugins?)"
        raise UnknownComponentError(f"unknown {self.kind} '{name}'{hint} Available: {available}")

    def create(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """Instantiate the component registered as ``name``."""
        return self.get(name).factory(*args, **kwargs)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and normalize_name(name, self.kind) in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return [e.name for e in self]

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
