"""The examples in docs/queries.md run and print what the page says they print."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "queries.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def test_every_python_block_in_the_query_docs_runs():
    text = DOC.read_text(encoding="utf-8")
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    namespace: dict = {}
    report: list[str] = []
    blocks = list(BLOCK.finditer(text))
    assert len(blocks) >= 10
    for match in blocks:
        line = text.count("\n", 0, match.start(1)) + 1
        test = parser.get_doctest(match.group(1), namespace, f"queries.md:{line}", str(DOC), line - 1)
        assert test.examples, f"the python block at docs/queries.md:{line} has no >>> examples to check"
        runner.run(test, out=report.append, clear_globs=False)
        namespace.update(test.globs)  # later blocks continue from earlier ones
    assert runner.failures == 0, "".join(report)
