"""Batched query execution against one-query-at-a-time execution, measured in one run.

    python benchmarks/perf_execute.py [--queries 512] [--items 100000] [--dim 32]

Builds random term regions for each geometry, a mixed batch of boolean queries (single
terms, two- and three-way ANDs, ORs and nested ones) and random item points, then times
``QueryExecutor.distances`` on the whole batch (grouped by structure) and on each query
alone, and checks both give the same matrix.
"""

from __future__ import annotations

import argparse
import random
import time

import torch

import boxlib
from boxlib import Region
from boxlib.query import And, Or, Term
from boxlib.query.execute import QueryExecutor, TableEmbedder


def make_queries(n: int, vocab: int, rng: random.Random):
    def t():
        return Term(f"t{rng.randrange(vocab)}")

    shapes = [
        lambda: t(),
        lambda: And(t(), t()),
        lambda: And(t(), t(), t()),
        lambda: Or(t(), t()),
        lambda: And(Or(t(), t()), t()),
    ]
    return [rng.choice(shapes)() for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=512)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--vocab", type=int, default=200)
    parser.add_argument("--single", type=int, default=64, help="queries timed one at a time (extrapolated)")
    args = parser.parse_args()
    torch.manual_seed(0)
    queries = make_queries(args.queries, args.vocab, random.Random(0))
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, B={args.queries}, N={args.items}, d={args.dim}"
    )
    print(f"{'geometry':<10} {'batched s':>10} {'pairs/s':>12} {'one-at-a-time s':>16} {'speed-up':>9}")
    for name in ("euclidean", "poincare", "lorentz"):
        g = boxlib.get_geometry(name, args.dim)
        centers = g.expmap0(torch.randn(args.vocab, args.dim) * 0.5)
        offsets = torch.rand(args.vocab, args.dim) * 0.5
        table = {f"t{i}": Region(centers[i], offsets[i]) for i in range(args.vocab)}
        items = g.expmap0(torch.randn(args.items, args.dim) * 0.5)
        executor = QueryExecutor(TableEmbedder(g, table), chunk_size=8192)
        executor.distances(queries[:8], items[:1000])  # warm up
        start = time.perf_counter()
        batched = executor.distances(queries, items)
        t_batch = time.perf_counter() - start
        sample = queries[: args.single]
        start = time.perf_counter()
        single = torch.cat([executor.distances([q], items) for q in sample])
        t_single = (time.perf_counter() - start) * len(queries) / len(sample)
        assert torch.allclose(single, batched[: len(sample)], rtol=1e-5, atol=1e-5)
        pairs = args.queries * args.items / t_batch
        print(f"{name:<10} {t_batch:>10.2f} {pairs:>12.3g} {t_single:>16.2f} {t_single / t_batch:>8.1f}x")


if __name__ == "__main__":
    main()
