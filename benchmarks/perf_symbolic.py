"""Throughput of exact symbolic evaluation (boxlib.query.SymbolicIndex).

Builds a random index (posting lists with log-uniform lengths, random relation
edges) and evaluates a batch of random mixed queries: single terms, and/or/not,
nested combinations and knowledge-graph projections. Prints the time to build the
index, to evaluate the batch with ``evaluate_many`` (shared sub-queries computed once)
and one query at a time with ``evaluate``.

    python benchmarks/perf_symbolic.py                     # 10,000 queries x 100,000 items
    python benchmarks/perf_symbolic.py --queries 1000 --items 1000000
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from boxlib.query import SymbolicIndex, parse


def random_index(rng: np.random.Generator, n_items: int, n_terms: int, n_relations: int, n_edges: int):
    lengths = np.exp(rng.uniform(np.log(10), np.log(n_items / 20), size=n_terms)).astype(int)
    terms = {f"t{i}": rng.choice(n_items, size=length, replace=False) for i, length in enumerate(lengths)}
    relations = {
        f"r{i}": (rng.integers(0, n_items, n_edges), rng.integers(0, n_items, n_edges)) for i in range(n_relations)
    }
    return terms, relations


# Query templates; {t} is a random term, {r} a random relation.
TEMPLATES = [
    "{t}",
    "{t} and {t}",
    "{t} or {t}",
    "{t} and not {t}",
    "not {t}",
    "({t} or {t}) and not ({t} and {t})",
    "{t} and ({t} or {t} or {t})",
    "@{r}({t}) and {t}",
    "@{r}(@{r}({t}))",
    "@{r}({t} or {t}) and not @{r}({t})",
]


def random_queries(rng: np.random.Generator, n_queries: int, n_terms: int, n_relations: int):
    texts = []
    for template in rng.choice(TEMPLATES, size=n_queries):
        parts = iter(template.split("{"))
        text = next(parts)
        for part in parts:
            kind, rest = part.split("}", 1)
            text += f"t{rng.integers(n_terms)}" if kind == "t" else f"r{rng.integers(n_relations)}"
            text += rest
        texts.append(text)
    return [parse(text) for text in texts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--terms", type=int, default=2_000)
    parser.add_argument("--relations", type=int, default=4)
    parser.add_argument("--edges", type=int, default=300_000, help="edges per relation")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    terms, relations = random_index(rng, args.items, args.terms, args.relations, args.edges)
    queries = random_queries(rng, args.queries, args.terms, args.relations)

    start = time.perf_counter()
    index = SymbolicIndex(args.items, terms, relations)
    build = time.perf_counter() - start

    start = time.perf_counter()
    answers = index.evaluate_many(queries)
    batch = time.perf_counter() - start

    start = time.perf_counter()
    for query in queries:
        index.evaluate(query)
    single = time.perf_counter() - start

    sizes = np.array([len(a) for a in answers])
    print(
        f"symbolic evaluation: {args.queries:,} queries over {args.items:,} items "
        f"({args.terms:,} terms, {args.relations} relations x {args.edges:,} edges)"
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )
    print(f"{'index build':<24}{build:8.2f} s")
    print(f"{'evaluate_many':<24}{batch:8.2f} s {args.queries / batch:12,.0f} queries/s")
    print(f"{'evaluate, one by one':<24}{single:8.2f} s {args.queries / single:12,.0f} queries/s")
    print(f"answer sizes: median {np.median(sizes):,.0f}, mean {sizes.mean():,.0f}, max {sizes.max():,} items")
    print(f"evaluate_many returns all answers at once: {sizes.sum():,} int64 ids ({sizes.sum() * 8 / 1e6:,.0f} MB)")


if __name__ == "__main__":
    main()
