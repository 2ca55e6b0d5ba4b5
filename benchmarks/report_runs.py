"""Summarise training runs: steps, wall time, throughput, validation and test metrics.

    python benchmarks/report_runs.py RUN_DIR [RUN_DIR ...] [--split test] [--out table.md]

For each run directory written by ``boxlib train``: the last step, the median training
throughput from ``metrics.csv``, the best validation MRR, and the test-split metrics of
``best.ckpt`` overall and per query structure (single, and, or, nested).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path

import boxlib

METRICS = ("ndcg@3", "ndcg@5", "ndcg@10", "map", "mrr")


def summarise(run: Path, split: str) -> dict:
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    train = [r for r in rows if r.get("train/loss")]
    valid = [r for r in rows if r.get("valid/mrr")]
    model = boxlib.load(run)
    start = time.perf_counter()
    metrics = model.evaluate(split, METRICS, by_kind=True)
    return {
        "run": run.name,
        "model": type(model).__name__,
        "geometry": getattr(getattr(model, "geometry", None), "name", "-"),
        "steps": int(train[-1]["step"]) if train else 0,
        "examples/s": statistics.median(float(r["train/examples_per_s"]) for r in train) if train else float("nan"),
        "best valid mrr": max((float(r["valid/mrr"]) for r in valid), default=float("nan")),
        "eval s": time.perf_counter() - start,
        **metrics,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--split", default="test")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results = [summarise(run, args.split) for run in args.runs]
    kinds = sorted({k.split("/")[0] for r in results for k in r if k.endswith("/mrr")})
    lines = [
        f"Split: {args.split}. Metrics of best.ckpt (by validation MRR), realistic tie handling.",
        "",
        "| run | geometry | steps | ex/s | best valid MRR | "
        + " | ".join(METRICS)
        + " | "
        + " | ".join(f"{k} MRR" for k in kinds)
        + " |",
        "|" + "---|" * (5 + len(METRICS) + len(kinds)),
    ]
    for r in results:
        cells = [r["run"], r["geometry"], str(r["steps"]), f"{r['examples/s']:.0f}", f"{r['best valid mrr']:.3f}"]
        cells += [f"{r[m]:.3f}" for m in METRICS] + [f"{r.get(f'{k}/mrr', float('nan')):.3f}" for k in kinds]
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
