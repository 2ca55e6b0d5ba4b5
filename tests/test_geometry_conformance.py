"""The conformance kit over every registered geometry.

The built-ins run with a few constructor variants each; any other registered geometry
(an installed third-party plugin) gets a generated class with default arguments. The
meta-test fails when a registered geometry has no conformance run.
"""

from boxlib.plugins import host
from boxlib.testing import GeometryConformance


class TestEuclidean(GeometryConformance):
    geometry_name = "euclidean"


class TestEuclideanHighDim(GeometryConformance):
    geometry_name = "euclidean"
    dim = 16


class TestPoincare(GeometryConformance):
    geometry_name = "poincare"


class TestPoincareCurvedLearnable(GeometryConformance):
    geometry_name = "poincare"
    geometry_kwargs = {"c": 2.5, "learnable": True}


class TestLorentz(GeometryConformance):
    geometry_name = "lorentz"


class TestLorentzFlatter(GeometryConformance):
    geometry_name = "lorentz"
    geometry_kwargs = {"c": 0.3}
    dim = 8


def _covered() -> set[str]:
    return {
        cls.geometry_name
        for cls in globals().values()
        if isinstance(cls, type) and issubclass(cls, GeometryConformance) and cls.geometry_name
    }


# Geometries from other installed plugins get the battery with default arguments.
for _entry in host().registries["geometry"]:
    if _entry.name not in _covered():
        globals()[f"TestPlugin_{_entry.name}"] = type(
            f"TestPlugin_{_entry.name}", (GeometryConformance,), {"geometry_name": _entry.name}
        )


def test_every_registered_geometry_has_a_conformance_run():
    registered = set(host().registries["geometry"].names())
    missing = registered - _covered()
    assert not missing, f"geometries without a conformance run: {sorted(missing)}"
    assert {"euclidean", "poincare", "lorentz"} <= registered
