"""The documentation's code runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).parents[1] / "docs"


def file_blocks(markdown: str) -> dict[str, str]:
    """Python code blocks whose first line is ``# file: NAME``, by file name."""
    blocks = {}
    for body in re.findall(r"```python\n(.*?)```", markdown, flags=re.S):
        first, _, rest = body.partition("\n")
        match = re.fullmatch(r"# file: (\S+)", first.strip())
        if match:
            blocks[match.group(1)] = body
    return blocks


def test_plugin_guide_examples_run(tmp_path):
    blocks = file_blocks((DOCS / "plugin-guide.md").read_text())
    assert {"my_geometry.py", "notebook.py", "test_my_geometry.py", "conftest.py"} <= set(blocks)
    for name, body in blocks.items():
        (tmp_path / name).write_text(body)
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    notebook = subprocess.run(
        [sys.executable, "notebook.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert notebook.returncode == 0, notebook.stderr
    assert "tensor(" in notebook.stdout
    # The guide's conftest loads the full profile; the quick one keeps this test short
    # while still running every law.
    (tmp_path / "conftest.py").write_text(blocks["conftest.py"].replace('"boxlib")', '"boxlib-quick")'))
    kit = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_geometry.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert kit.returncode == 0, kit.stdout[-3000:]
    passed = int(re.search(r"(\d+) passed", kit.stdout).group(1))
    assert passed >= 15, kit.stdout[-500:]
