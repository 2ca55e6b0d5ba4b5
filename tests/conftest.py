import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

from boxlib.testing import register_profiles

register_profiles()
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "boxlib"))

#: A third-party plugin package (``boxlib-toy-plugin``): the ``scaled_euclidean`` geometry
#: through the ``boxlib`` entry-point group, and a plugin that fails to import.
TOY_PLUGIN = Path(__file__).parent / "fixtures" / "toy_plugin"


@pytest.fixture(scope="session")
def toy_site(tmp_path_factory) -> Path:
    """The toy plugin package installed (entry points included) into an isolated directory;
    see ``toy_env``."""
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "--target",
            str(target),
            str(TOY_PLUGIN),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=build,
    )
    assert result.returncode == 0, result.stderr
    return target


@pytest.fixture(scope="session")
def toy_env(toy_site) -> dict[str, str]:
    """Environment for a subprocess that sees the toy plugin (``toy_site`` first on ``PYTHONPATH``)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(toy_site), env.get("PYTHONPATH", "")])
    return env


def pytest_collection_modifyitems(config, items):
    """Tests marked ``slow`` run only when asked for (``-m slow``, or any ``-m`` expression)."""
    if config.getoption("markexpr"):
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
