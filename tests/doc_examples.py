"""Running a documentation page's ``python`` blocks as one doctest session (shared by the
tests that check docs/queries.md, docs/datasets.md and docs/knowledge-graphs.md)."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def run_python_blocks(doc: Path, *, min_blocks: int = 1, optionflags: int = doctest.ELLIPSIS) -> None:
    """Run every ``python`` block of ``doc`` as doctests in one namespace (later blocks
    continue from earlier ones). Fails when the page has fewer than ``min_blocks`` blocks,
    when a block has no ``>>>`` example, or with the report of every failed example."""
    text = doc.read_text(encoding="utf-8")
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=optionflags)
    namespace: dict = {}
    report: list[str] = []
    blocks = list(BLOCK.finditer(text))
    assert len(blocks) >= min_blocks, f"docs/{doc.name} has {len(blocks)} python blocks, expected {min_blocks}+"
    for match in blocks:
        line = text.count("\n", 0, match.start(1)) + 1
        test = parser.get_doctest(match.group(1), namespace, f"{doc.name}:{line}", str(doc), line - 1)
        assert test.examples, f"the python block at docs/{doc.name}:{line} has no >>> examples to check"
        runner.run(test, out=report.append, clear_globs=False)
        namespace.update(test.globs)
    assert runner.failures == 0, "".join(report)
