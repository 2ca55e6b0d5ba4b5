"""The conformance kit: hypothesis strategies and a test base class for geometries.

See ``docs/plugin-guide.md``. Importing this module needs the ``test`` extra
(pytest and hypothesis). The base class is imported lazily, so a ``conftest.py`` can
load a hypothesis profile (:func:`register_profiles`) before the laws are decorated.
"""

from .profiles import register_profiles

__all__ = ["GeometryConformance", "register_profiles", "strategies"]


def __getattr__(name: str):
    if name == "GeometryConformance":
        from .conformance import GeometryConformance

        return GeometryConformance
    if name == "strategies":
        import importlib

        return importlib.import_module(".strategies", __name__)
    raise AttributeError(f"module 'boxlib.testing' has no attribute {name!r}")
