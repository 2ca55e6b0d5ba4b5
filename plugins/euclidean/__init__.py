"""The Euclidean geometry plugin: axis-aligned boxes with exact intersection."""

from boxlib.hookspecs import hookimpl

from .geometry import EuclideanGeometry

__all__ = ["EuclideanGeometry"]


@hookimpl
def boxlib_add_geometries(registry) -> None:
    registry.add(EuclideanGeometry)
