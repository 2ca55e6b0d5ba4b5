"""The hooks a boxlib plugin can implement.

Every hook is named ``boxlib_*`` and receives a :class:`boxlib.registry.Registry` to add
components to; all implementations run (none is ``firstresult``). The built-in
geometries register through these hooks from entry points exactly as a third-party
package does. An implementation may accept fewer arguments than the spec lists, so a
spec can gain an argument later without breaking plugins.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("boxlib")
hookimpl = pluggy.HookimplMarker("boxlib")


@hookspec
def boxlib_add_geometries(registry) -> None:
    """Add geometry classes to ``registry``.

    :param registry: the geometry :class:`~boxlib.registry.Registry`; call
        ``registry.add(MyGeometry)`` (the name comes from ``MyGeometry.name``) or
        ``registry.add(factory, name="...")``.
    """


@hookspec
def boxlib_add_models(registry) -> None:
    """Add model classes (query/item encoders) to ``registry``.

    :param registry: the model :class:`~boxlib.registry.Registry`.
    """


@hookspec
def boxlib_add_datasets(registry) -> None:
    """Add dataset loaders to ``registry``.

    :param registry: the dataset :class:`~boxlib.registry.Registry`.
    """
