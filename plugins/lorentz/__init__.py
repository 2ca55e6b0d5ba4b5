"""The Lorentz-hyperboloid geometry plugin."""

from boxlib.hookspecs import hookimpl

from .geometry import LorentzGeometry

__all__ = ["LorentzGeometry"]


@hookimpl
def boxlib_add_geometries(registry) -> None:
    registry.add(LorentzGeometry)
