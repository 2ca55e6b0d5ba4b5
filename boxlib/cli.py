"""The ``boxlib`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import boxlib

__all__ = ["main"]


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(header, widths)).rstrip()]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def _plugins(args: argparse.Namespace) -> int:
    from boxlib.plugins import host

    h = host()
    entries = h.entries()
    if args.json:
        payload = {
            "components": [
                {
                    "kind": e.kind,
                    "name": e.name,
                    "plugin": e.plugin,
                    "distribution": e.distribution,
                    "version": e.version,
                    "source": e.source,
                    "capabilities": list(e.capabilities),
                    "description": e.description,
                }
                for e in entries
            ],
            "plugins": [
                {
                    "name": p.name,
                    "distribution": p.distribution,
                    "version": p.version,
                    "module": p.module,
                    "hooks": list(p.hooks),
                }
                for p in h.plugins.values()
            ],
            "failures": [
                {"plugin": f.plugin, "distribution": f.distribution, "stage": f.stage, "error": f.error}
                for f in h.failures
            ],
        }
        print(json.dumps(payload, indent=2))
        return 0
    rows = [[e.kind, e.name, e.version or "-", e.source, e.plugin, ", ".join(e.capabilities) or "-"] for e in entries]
    print(
        _table(rows, ["kind", "name", "version", "source", "plugin", "capabilities"])
        if rows
        else "no components registered"
    )
    if h.failures:
        print("\nplugins that failed to load:")
        for f in h.failures:
            print(f"  {f}")
        if args.verbose:
            for f in h.failures:
                print(f"\n--- {f.plugin} ---\n{f.detail}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="boxlib", description="Query-box embeddings on any manifold.")
    parser.add_argument("--version", action="version", version=f"boxlib {boxlib.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    plugins = sub.add_parser("plugins", help="list registered geometries, models and datasets, and load failures")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    plugins.add_argument("-v", "--verbose", action="store_true", help="show tracebacks of load failures")
    plugins.set_defaults(func=_plugins)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
