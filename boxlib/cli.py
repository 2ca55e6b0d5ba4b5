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


def _train(args: argparse.Namespace) -> int:
    from boxlib.train import main_train

    return main_train(args.config, args.overrides, resume=args.resume)


def _load(path: str):
    import boxlib

    try:
        return boxlib.load(path)
    except Exception as exc:  # one clear line, not a traceback from deep inside torch
        raise SystemExit(f"boxlib: error: cannot load {path}: {exc}") from None


def _query(args: argparse.Namespace) -> int:
    from boxlib.query import QueryError, parse

    try:
        query = parse(args.query)
    except QueryError as exc:
        print(f"boxlib query: invalid query:\n{exc}", file=sys.stderr)
        return 2
    model = _load(args.checkpoint)
    try:
        top = model.rank(query, k=args.k)
    except (QueryError, NotImplementedError) as exc:
        print(f"boxlib query: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([{"item": i, "title": t, "score": s} for i, t, s in top], indent=2))
        return 0
    print(f"top {len(top)} for: {query}")
    for rank, (item, title, score) in enumerate(top, 1):
        print(f"{rank:>3}  {score:9.4f}  #{item:<6} {title[:100]}")
    return 0


def _explain(args: argparse.Namespace) -> int:
    model = _load(args.checkpoint)
    if not hasattr(model, "attention_grid"):
        print(f"boxlib explain: {type(model).__name__} has no attention grid", file=sys.stderr)
        return 2
    from boxlib_plugins.anthem.explain import save_attention_grid

    path = save_attention_grid(model, args.query, args.title, args.output)
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="boxlib", description="Query-box embeddings on any manifold.")
    parser.add_argument("--version", action="version", version=f"boxlib {boxlib.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    plugins = sub.add_parser("plugins", help="list registered geometries, models and datasets, and load failures")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    plugins.add_argument("-v", "--verbose", action="store_true", help="show tracebacks of load failures")
    plugins.set_defaults(func=_plugins)

    from boxlib.train import add_arguments

    train = sub.add_parser("train", help="train a model from a YAML config through Lightning Fabric")
    add_arguments(train)
    train.set_defaults(func=_train)

    query = sub.add_parser("query", help="rank catalogue items for a query with a trained model")
    query.add_argument("query", help='a query in the algebra\'s syntax, e.g. "fire or kindle"')
    query.add_argument("--checkpoint", required=True, help="a checkpoint file or run directory")
    query.add_argument("-k", type=int, default=10, help="how many items (default 10)")
    query.add_argument("--json", action="store_true", help="machine-readable output")
    query.set_defaults(func=_query)

    explain = sub.add_parser("explain", help="write a query-trigram x title-trigram attention grid as a PNG")
    explain.add_argument("query")
    explain.add_argument("title")
    explain.add_argument("--checkpoint", required=True, help="a checkpoint file or run directory")
    explain.add_argument("-o", "--output", default="attention.png", help="PNG path (default attention.png)")
    explain.set_defaults(func=_explain)

    sub.add_parser(
        "bench",
        help="train and compare every registered geometry: 'boxlib bench [catalog|hierarchy|kg] --help'",
        add_help=False,
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":  # each suite has its own parser, built on use
        from boxlib.bench import main as bench_main

        return bench_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
