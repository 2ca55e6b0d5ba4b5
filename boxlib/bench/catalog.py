"""``boxlib bench [catalog]``: every registered geometry, the vector baseline and BM25 on one catalog.

For each registered geometry ANTHEM is trained through the same trainer and settings
(:data:`SETTINGS`, ``--quick`` shortens them), then the dual-encoder baseline, then the
two BM25 baselines are scored. Every system is evaluated on the test split of the
dataset with the checkpoint that had the best validation MRR: NDCG@3/5/10, MAP, MRR
overall and MRR / NDCG@10 per query structure (single, and, or, nested).

Output (``--out``, default ``benchmarks/results/catalog-<dataset>[-quick]-<date>-<time>``):
``table.md``, ``results.csv``, ``config.yaml``, ``machine.json``, ``metrics.png``,
``by-structure.png``, ``training.png`` and ``runs/<system>/`` (each run's
``config.yaml`` and ``metrics.csv``; checkpoints too, which ``.gitignore`` keeps out of
the repository).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

from .common import (
    BenchError,
    Progress,
    add_common_arguments,
    add_training_arguments,
    apply_threads,
    geometry_names,
    merge,
    parse_key_values,
    plot_bars,
    plot_curves,
    prepare_output,
    read_metrics_csv,
    train_system,
    write_results,
)

__all__ = ["METRICS", "SETTINGS", "add_arguments", "run"]

#: Overall metrics of the main table.
METRICS = ("ndcg@3", "ndcg@5", "ndcg@10", "map", "mrr")
#: Query structures reported separately, in this order (others follow if a dataset has them).
KINDS = ("single", "and", "or", "nested")

#: ``metrics.csv`` columns → curve names.
CURVES = {"train/loss": "loss", "valid/mrr": "valid_mrr", "train/examples_per_s": "examples_per_s"}

#: Training settings shared by every trained system (the committed ``configs/*-wordnet.yaml``).
SETTINGS: dict[str, Any] = {
    "dim": 32,
    "optimizer": {"name": "adamw", "lr": 5.0e-3},
    "scheduler": {"name": "cosine", "warmup_steps": 50, "min_lr_ratio": 0.05},
    "trainer": {
        "max_steps": 1500,
        "batch_size": 256,
        "grad_clip": 5.0,
        "log_every_n_steps": 20,
        "checkpoint_every_n_steps": 500,
    },
    "validation": {"every_n_steps": 250, "monitor": "mrr", "mode": "max"},
}
#: What ``--quick`` changes: 200 steps at twice the learning rate, decaying to a fifth of
#: it (E-ANTHEM reached validation MRR 0.65 at step 200 this way, against 0.15 with the
#: full run's schedule compressed into 200 steps and 0.66 at step 250 of the full run).
QUICK: dict[str, Any] = {
    "optimizer": {"lr": 1.0e-2},
    "scheduler": {"warmup_steps": 20, "min_lr_ratio": 0.2},
    "trainer": {"max_steps": 200, "checkpoint_every_n_steps": 200},
    "validation": {"every_n_steps": 100},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument(
        "--dataset",
        default="wordnet_artifacts",
        help="registered retrieval dataset (default: wordnet_artifacts, shipped with boxlib; "
        "debian_packages reads this machine's apt-cache)",
    )
    add_training_arguments(parser)
    parser.add_argument(
        "--no-baselines", action="store_true", help="train only ANTHEM (no vector dual encoder, no BM25)"
    )


def _system_configs(args: argparse.Namespace, out: Path) -> list[dict[str, Any]]:
    """One raw trainer config per trained system: ANTHEM per geometry, then the vector baseline."""
    settings = merge(SETTINGS, QUICK) if args.quick else dict(SETTINGS)
    dim = settings.pop("dim")
    data = {"name": args.dataset, **parse_key_values(args.dataset_args)}
    models = [(f"anthem-{g}", {"name": "anthem", "geometry": g, "dim": dim}) for g in geometry_names(args.geometries)]
    if not args.no_baselines:
        models.append(("vector", {"name": "vector", "dim": dim}))
    configs = []
    for system, model in models:
        raw = merge(settings, {"seed": args.seed, "output_dir": str(out / "runs" / system), "data": data})
        raw["model"] = model
        configs.append(raw)
    return configs


def _train_and_evaluate(raw: dict[str, Any], overrides: list[str], progress: Progress) -> dict[str, Any]:
    system = train_system(raw, overrides, progress)
    progress(f"evaluating {system.name} on the test split")
    metrics = system.model.evaluate("test", (*METRICS, "hits@1", "hits@10"), by_kind=True)
    curve = read_metrics_csv(system.metrics_csv(), CURVES)
    throughput = [v for _, v in curve["examples_per_s"]]
    return {
        "system": system.name,
        "model": system.config.model.name,
        "geometry": system.config.model.kwargs.get("geometry", "-"),
        "steps": system.result.state.global_step,
        "train_s": round(system.train_seconds, 1),
        "examples_per_s": round(statistics.median(throughput), 1) if throughput else float("nan"),
        "best_valid_mrr": max((v for _, v in curve["valid_mrr"]), default=float("nan")),
        "parameters": system.parameters,
        **metrics,
        "_curves": curve,
    }


def _bm25_rows(dataset: Any, progress: Progress) -> list[dict[str, Any]]:
    from .bm25 import BM25Baseline

    rows = []
    for mode in ("bag", "boolean"):
        progress(f"scoring BM25 ({mode})")
        start = time.perf_counter()
        baseline = BM25Baseline(dataset, mode)
        metrics = baseline.evaluate("test", (*METRICS, "hits@1", "hits@10"), by_kind=True)
        rows.append(
            {
                "system": f"bm25-{mode}",
                "model": "bm25",
                "geometry": "-",
                "steps": 0,
                "train_s": round(time.perf_counter() - start, 1),
                **metrics,
            }
        )
    return rows


def run(args: argparse.Namespace) -> int:
    from boxlib.plugins import host

    geometries = geometry_names(args.geometries)  # fails early on an unknown name
    apply_threads(args.threads)
    name = f"catalog-{args.dataset}{'-quick' if args.quick else ''}"
    progress = Progress("catalog")
    progress(f"dataset {args.dataset}; geometries: {', '.join(geometries)}")
    kwargs = parse_key_values(args.dataset_args)
    try:
        dataset = host().registries["dataset"].create(args.dataset, **kwargs)
    except Exception as exc:  # unknown name, missing or malformed file: one line, not a traceback
        raise BenchError(f"--dataset {args.dataset}: {exc}") from None
    progress(f"{dataset!r}")
    out = prepare_output(args.out, name, force=args.force)
    configs = _system_configs(args, out)
    rows = [_train_and_evaluate(raw, args.overrides, progress) for raw in configs]
    if not args.no_baselines:
        rows += _bm25_rows(dataset, progress)
    curves = {row["system"]: row.pop("_curves") for row in rows if "_curves" in row}
    kinds = [k for k in KINDS if any(f"{k}/mrr" in r for r in rows)]
    kinds += sorted({key.split("/")[0] for r in rows for key in r if "/" in key} - set(kinds))
    columns = ["system", *METRICS, *[f"{k}/mrr" for k in kinds]]
    by_structure = ["system", *[f"{k}/{m}" for k in kinds for m in ("mrr", "ndcg@10")]]
    training = ["system", "steps", "train_s", "examples_per_s", "best_valid_mrr", "parameters"]
    resolved = {
        "suite": "catalog",
        "dataset": {"name": args.dataset, **kwargs},
        "quick": args.quick,
        "seed": args.seed,
        "geometries": geometries,
        "overrides": args.overrides,
        "systems": configs,
    }
    counts = {split: len(examples) for split, examples in dataset.splits.items()}
    notes = [
        f"Test split of `{args.dataset}` ({counts.get('test', 0)} queries over {len(dataset.items)} items); "
        "trained systems are evaluated with the checkpoint of best validation MRR. "
        "Ties are ranked realistically (the expected metric over the tied order; see `docs/datasets.md`). "
        "`<kind>/mrr`: MRR over the queries of one structure.",
        "",
        f"Reproduce: `{_command(args)}`.",
    ]
    table = write_results(
        out,
        rows,
        columns,
        title=f"boxlib bench catalog: {args.dataset}{' (quick)' if args.quick else ''}",
        config=resolved,
        notes=notes,
        extra_tables={
            "By query structure (MRR, NDCG@10)": (rows, by_structure),
            "Training": ([r for r in rows if r["model"] != "bm25"], training),
        },
    )
    plot_bars(out / "metrics.png", rows, "system", METRICS, title=f"{args.dataset}: test metrics")
    plot_bars(out / "by-structure.png", rows, "system", [f"{k}/mrr" for k in kinds], title="MRR by query structure")
    if curves:
        plot_curves(
            out / "training.png",
            {s: c["valid_mrr"] for s, c in curves.items()},
            xlabel="step",
            ylabel="validation MRR",
            title="validation MRR during training",
        )
    print(table)
    progress(f"wrote {out}")
    return 0


def _command(args: argparse.Namespace) -> str:
    parts = ["boxlib bench catalog"]
    if args.dataset != "wordnet_artifacts":
        parts.append(f"--dataset {args.dataset}")
    parts += [f"--dataset-arg {a}" for a in args.dataset_args]
    if args.quick:
        parts.append("--quick")
    if args.geometries:
        parts.append("--geometries " + " ".join(args.geometries))
    if args.seed:
        parts.append(f"--seed {args.seed}")
    parts += [f"--set {o}" for o in args.overrides]
    if args.threads:
        parts.append(f"--threads {args.threads}")
    if args.no_baselines:
        parts.append("--no-baselines")
    return " ".join(parts)
