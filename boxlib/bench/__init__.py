"""``boxlib bench``: cross-geometry benchmarks that train and compare every registered geometry.

Suites (each a module with ``add_arguments(parser)`` and ``run(args) -> int``):

* ``catalog`` (the default): ANTHEM in every registered geometry, the vector dual
  encoder and BM25 on a retrieval catalog (the shipped ``wordnet_artifacts`` by default).
* ``hierarchy``: reconstruction of the WordNet noun / mammal hierarchies (mean rank, MAP).
* ``kg``: knowledge-graph logical queries with the Query2Box-style model per geometry.

Every suite writes ``benchmarks/results/<run>/`` (or ``--out``) with ``table.md``,
``results.csv``, ``config.yaml`` (the resolved settings), ``machine.json`` (hardware,
versions, command line) and plots; see :mod:`boxlib.bench.common`.
"""

from __future__ import annotations

import importlib

__all__ = ["SUITES", "suite"]

#: Suite name → module implementing it.
SUITES = {
    "catalog": "boxlib.bench.catalog",
    "hierarchy": "boxlib.bench.hierarchy",
    "kg": "boxlib.bench.kg",
}


def suite(name: str):
    """The module of suite ``name`` (imported on use, so ``boxlib --help`` stays fast)."""
    return importlib.import_module(SUITES[name])


def build_parser(suite_name: str):
    """The ``boxlib bench <suite>`` parser (the suite's module adds its arguments)."""
    import argparse

    module = suite(suite_name)
    parser = argparse.ArgumentParser(
        prog=f"boxlib bench {suite_name}",
        description=_summary(suite_name),
    )
    module.add_arguments(parser)
    return parser


def main(argv=None) -> int:
    """``boxlib bench [SUITE] [OPTIONS]``: SUITE defaults to ``catalog``; one-line errors."""
    import sys

    from .common import BenchError

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(
            "usage: boxlib bench [SUITE] [OPTIONS]\n\n"
            "Train and compare every registered geometry. Suites:\n"
            + "\n".join(f"  {name:<10} {_summary(name)}" for name in SUITES)
            + "\n\nWith no SUITE, runs 'catalog'. 'boxlib bench SUITE --help' lists a suite's options."
        )
        return 0
    name = argv.pop(0) if argv and argv[0] in SUITES else "catalog"
    args = build_parser(name).parse_args(argv)
    try:
        return suite(name).run(args)
    except BenchError as exc:
        print(f"boxlib bench {name}: error: {exc}", file=sys.stderr)
        return 2


def _summary(name: str) -> str:
    try:
        doc = suite(name).__doc__ or ""
    except ImportError as exc:  # a suite whose dependencies are missing still lists
        return f"(unavailable: {exc})"
    first = doc.strip().split("\n\n")[0].replace("\n", " ")
    return first.split(": ", 1)[-1] if first.startswith("``") else first
