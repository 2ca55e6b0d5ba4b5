"""The examples in docs/queries.md run and print what the page says they print."""

from __future__ import annotations

from pathlib import Path

from doc_examples import run_python_blocks

DOC = Path(__file__).resolve().parents[2] / "docs" / "queries.md"


def test_every_python_block_in_the_query_docs_runs():
    run_python_blocks(DOC, min_blocks=10)
