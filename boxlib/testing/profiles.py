"""Hypothesis profiles for the conformance kit."""

from hypothesis import HealthCheck, settings

__all__ = ["register_profiles"]


def register_profiles() -> None:
    """Register hypothesis profiles.

    ``boxlib`` (the project's default): 100 examples per law, no deadline (the first
    call of a torch kernel can take far longer than later ones). ``boxlib-quick``:
    20 examples, for iterating on a plugin. ``boxlib-thorough``: 1000 examples.

    Hypothesis binds settings when a test is decorated, so load a profile *before*
    importing :mod:`boxlib.testing.conformance` (e.g. in ``conftest.py``).
    """
    common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors])
    settings.register_profile("boxlib", max_examples=100, **common)
    settings.register_profile("boxlib-quick", max_examples=20, **common)
    settings.register_profile("boxlib-thorough", max_examples=1000, **common)
