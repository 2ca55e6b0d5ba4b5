"""How cost grows: scoring against the number of items and the dimension, per geometry,
and ANTHEM's query encoder against query length (its pairwise intersection layer).

    python benchmarks/perf_scaling.py [--out DIR] [--geometries NAME ...] [--repeat 3]

Writes ``DIR`` (default ``benchmarks/results/scaling``): ``scaling.txt`` (every figure
below, with the machine), ``scaling.csv`` and three plots:

* ``items.png``: ``QueryExecutor.distances`` and ``QueryExecutor.topk`` (k = 10) for
  B = 64 single-term queries against N = 10⁴ … 10⁶ item points, d = 32, float32, through
  the public API (the fused kernels of :mod:`boxlib.scoring`);
* ``dim.png``: ``QueryExecutor.distances`` at N = 200,000 for d = 8 … 256;
* ``query_length.png``: ANTHEM's query encoder (``encode_texts``: token regions, the pair
  layer, attention) for a batch of 256 texts of T = 2 … 128 character trigrams, forward
  and backward, with every pair (``pair_window=None``, quadratic in T) and with the band
  the model uses by default (``pair_window=15``: every pair up to 16 tokens, then linear),
  next to the pair counts.

Each time is the best of ``--repeat`` runs after one warm-up call (which compiles the
kernels). Cost per pair (or per item) is printed with each series, so a reader can see
where growth stops being linear.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import string
import sys
from pathlib import Path

import torch

from boxlib.bench.common import geometry_names, plot_curves
from boxlib.query import Term
from boxlib.query.execute import QueryExecutor, TableEmbedder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perf_scoring import best_time, make_data  # noqa: E402 - the same data and timer as the scoring benchmark

ITEMS = (10_000, 30_000, 100_000, 300_000, 1_000_000)
DIMS = (8, 16, 32, 64, 128, 256)
LENGTHS = (2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128)
QUERIES, DIM, DIM_ITEMS, TEXTS = 64, 32, 200_000, 256


def warm_best_time(fn, repeat: int) -> float:
    """The best of ``repeat`` runs after one warm-up call (which compiles kernels)."""
    fn()
    return best_time(fn, repeat)


def executor_for(g, region):
    names = [f"q{i}" for i in range(region.batch_shape[0])]
    embedder = TableEmbedder(g, {n: region[i] for i, n in enumerate(names)})
    return QueryExecutor(embedder), [Term(n) for n in names]


def scoring_rows(geometries: list[str], repeat: int, say) -> list[dict]:
    rows = []
    say(f"Scoring: B = {QUERIES} single-term queries, float32, public API (QueryExecutor)")
    say(f"{'geometry':<12} {'N':>9} {'d':>4} {'distances s':>12} {'ns/pair':>8} {'topk s':>8} {'ns/pair':>8}")
    grid = [(n, DIM) for n in ITEMS] + [(DIM_ITEMS, d) for d in DIMS]
    for name in geometries:
        for n, d in grid:
            g, items, region = make_data(name, n, QUERIES, d)
            executor, queries = executor_for(g, region)
            with torch.no_grad():
                dist = warm_best_time(lambda e=executor, q=queries, x=items: e.distances(q, x), repeat)
                topk = warm_best_time(lambda e=executor, q=queries, x=items: e.topk(q, x, k=10), repeat)
            per_pair = 1e9 / (QUERIES * n)
            rows.append({"part": "scoring", "geometry": name, "N": n, "d": d, "distances_s": dist, "topk_s": topk})
            say(f"{name:<12} {n:>9,} {d:>4} {dist:>12.4f} {dist * per_pair:>8.2f} {topk:>8.4f} {topk * per_pair:>8.2f}")
            del items
    return rows


def texts_of_length(t: int, count: int, seed: int = 0) -> list[str]:
    """``count`` texts of exactly ``t`` character trigrams: random words of 3 to 8 letters
    (the last one shorter as needed; a word of L letters has L trigrams with its boundary
    markers)."""
    gen = torch.Generator().manual_seed(seed + t)
    letters = string.ascii_lowercase
    texts = []
    for _ in range(count):
        words, left = [], t
        while left:
            size = min(left, int(torch.randint(3, 9, (1,), generator=gen)))
            words.append("".join(letters[int(i)] for i in torch.randint(26, (size,), generator=gen)))
            left -= size
        texts.append(" ".join(words))
    return texts


def query_length_rows(repeat: int, say) -> list[dict]:
    from boxlib_plugins.anthem.model import pair_indices

    from boxlib.plugins import host

    items = [f"item {i}" for i in range(16)]
    say()
    say(f"ANTHEM query encoder (poincare, d = 32): a batch of {TEXTS} texts of T trigram tokens, forward + backward")
    say(
        f"{'T':>4} {'pairs all':>9} {'pairs band':>10} {'all s':>8} {'band s':>8} {'all/band':>8} {'band ms/token':>13}"
    )
    rows = []
    models = {}
    for window in (None, 15):
        torch.manual_seed(0)
        models[window] = (
            host()
            .registries["model"]
            .create("anthem", items, geometry="poincare", dim=32, max_query_tokens=max(LENGTHS), pair_window=window)
        )
    for t in LENGTHS:
        texts = texts_of_length(t, TEXTS)
        assert all(len(models[None].tokenizer.tokens(x)) == t for x in texts)
        times = {}
        for window, model in models.items():

            def step(model=model, texts=texts):
                region = model.encode_texts(texts)
                (region.center.sum() + region.offset.sum()).backward()

            times[window] = warm_best_time(step, repeat)
        full, band = len(pair_indices(t, None)[0]), len(pair_indices(t, 15)[0])
        rows.append(
            {
                "part": "query_length",
                "T": t,
                "pairs_all": full,
                "pairs_band": band,
                "all_s": times[None],
                "band_s": times[15],
            }
        )
        say(
            f"{t:>4} {full:>9,} {band:>10,} {times[None]:>8.4f} {times[15]:>8.4f} {times[None] / times[15]:>8.2f} "
            f"{times[15] / t * 1e3:>13.3f}"
        )
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scaling"))
    parser.add_argument("--geometries", nargs="+")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-scoring", action="store_true")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    load = os.getloadavg()
    say(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start"
    )
    rows = [] if args.skip_scoring else scoring_rows(geometry_names(args.geometries), args.repeat, say)
    rows += query_length_rows(args.repeat, say)
    load = os.getloadavg()
    say(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end")

    (args.out / "scaling.txt").write_text("\n".join(lines) + "\n")
    fields = sorted({k for r in rows for k in r}, key=lambda k: (k != "part", k))
    with (args.out / "scaling.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fields)
        writer.writeheader()
        writer.writerows(rows)

    scoring = [r for r in rows if r["part"] == "scoring"]
    if scoring:
        names = list(dict.fromkeys(r["geometry"] for r in scoring))
        curves = {}
        for name in names:
            series = [r for r in scoring if r["geometry"] == name and r["d"] == DIM]
            curves[f"{name} distances"] = [(r["N"], r["distances_s"]) for r in series]
            curves[f"{name} topk"] = [(r["N"], r["topk_s"]) for r in series]
        plot_curves(
            args.out / "items.png",
            curves,
            xlabel="items N",
            ylabel="seconds",
            title=f"{QUERIES} queries × N items, d = {DIM} (log-log)",
            log=True,
        )
        curves = {
            name: [
                (r["d"], r["distances_s"])
                for r in sorted(scoring, key=lambda r: r["d"])
                if r["geometry"] == name and r["N"] == DIM_ITEMS
            ]
            for name in names
        }
        plot_curves(
            args.out / "dim.png",
            curves,
            xlabel="dimension d",
            ylabel="seconds",
            title=f"{QUERIES} queries × {DIM_ITEMS:,} items (log-log)",
            log=True,
        )
    lengths = [r for r in rows if r["part"] == "query_length"]
    plot_curves(
        args.out / "query_length.png",
        {
            "every pair (pair_window=None)": [(r["T"], r["all_s"]) for r in lengths],
            "band, pair_window=15 (default)": [(r["T"], r["band_s"]) for r in lengths],
        },
        xlabel="query tokens T",
        ylabel="seconds per batch of 256 (fwd + bwd)",
        title="ANTHEM query encoder against query length (log-log)",
        log=True,
    )
    print(f"wrote {args.out}/scaling.txt, scaling.csv, items.png, dim.png, query_length.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
