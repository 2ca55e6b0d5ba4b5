"""boxlib: query-box embeddings on any manifold.

Queries are regions ("boxes") on a manifold, items are points, and boolean queries are
geometry. The geometry is a plugin; see :func:`get_geometry` and :func:`register`.
"""

from __future__ import annotations

from boxlib.geometry import CAPABILITIES, CapabilityError, Geometry, PointCheck, Region
from boxlib.hookspecs import hookimpl, hookspec
from boxlib.inference import load
from boxlib.plugins import register, unregister
from boxlib.query import And, Not, Or, Project, Query, QueryError, QueryExecutor, SymbolicIndex, Term, parse
from boxlib.registry import Registry, UnknownComponentError

__version__ = "0.1.0"

__all__ = [
    "And",
    "CAPABILITIES",
    "CapabilityError",
    "Geometry",
    "Not",
    "Or",
    "PointCheck",
    "Project",
    "Query",
    "QueryError",
    "QueryExecutor",
    "Region",
    "Registry",
    "SymbolicIndex",
    "Term",
    "UnknownComponentError",
    "geometries",
    "get_geometry",
    "hookimpl",
    "hookspec",
    "load",
    "parse",
    "register",
    "unregister",
]


def geometries() -> Registry:
    """The registry of geometries (built-ins, entry points and in-process plugins)."""
    from boxlib.plugins import host

    return host().registries["geometry"]


def get_geometry(name: str, dim: int, **kwargs) -> Geometry:
    """Instantiate a registered geometry: ``get_geometry("poincare", 32, c=1.0)``.

    An unknown name raises :class:`UnknownComponentError` with suggestions and the list
    of available geometries.
    """
    return geometries().create(name, dim, **kwargs)
