"""The Poincaré-ball geometry plugin."""

from boxlib.hookspecs import hookimpl

from .geometry import PoincareGeometry

__all__ = ["PoincareGeometry"]


@hookimpl
def boxlib_add_geometries(registry) -> None:
    registry.add(PoincareGeometry)
