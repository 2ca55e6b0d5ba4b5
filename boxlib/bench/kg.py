"""``boxlib bench kg``: knowledge-graph logical queries, the Query2Box-style model in every geometry.

For each registered geometry the ``query2box`` model is trained through the same trainer
and settings (:data:`SETTINGS`; ``--quick`` shortens them, :data:`QUICK`) on a
knowledge-graph query dataset, then evaluated on its test split with the checkpoint of
best validation filtered MRR. Metrics are the filtered ones of Query2Box / BetaE: each
hard answer is ranked among all entities with the query's other answers (easy and hard)
removed; MRR and Hits@1/3/10 are averaged over a query's hard answers, then over the
queries of a structure. The main table has one row per model × geometry and one
column per structure (MRR), then the mean over structures (BetaE's average).

Datasets: the WordNet KG by default (``wordnet_kg``; ``--quick`` takes the artifact
subtree), any registered KG dataset with ``--dataset`` / ``--dataset-arg``, or a
BetaE / Query2Box release directory with ``--data-dir`` (e.g. KGReasoning's
``FB15k-237-betae``; its negation structures are left out, Query2Box has no negation).

Output (``--out``, default ``benchmarks/results/kg-<dataset>[-quick]-<date>-<time>``):
``table.md``, ``results.csv``, ``config.yaml``, ``machine.json``, ``mrr.png`` (MRR per
structure), ``training.png`` and ``runs/<system>/`` (each run's config and metrics).
"""

from __future__ import annotations

import argparse
import copy
import math
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

__all__ = ["QUICK", "SETTINGS", "STRUCTURES", "add_arguments", "run"]

#: The structures reported, in BetaE's order (those without negation).
STRUCTURES = ("1p", "2p", "3p", "2i", "3i", "ip", "pi", "2u", "up")
#: Filtered metrics per structure (names of :func:`boxlib.metrics.evaluate`) → short column names.
#: ``metrics.csv`` columns → curve names.
CURVES = {"train/loss": "loss", "valid/filtered_mrr": "valid_mrr", "train/examples_per_s": "examples_per_s"}
METRICS = {
    "filtered_mrr": "mrr",
    "filtered_hits@1": "hits@1",
    "filtered_hits@3": "hits@3",
    "filtered_hits@10": "hits@10",
}

#: Model and training settings of every geometry's run.
SETTINGS: dict[str, Any] = {
    "data": {"name": "wordnet_kg"},
    "model": {"name": "query2box", "dim": 64, "negatives": 128, "alpha": 0.2},
    "optimizer": {"name": "adam", "lr": 1.0e-2},
    "scheduler": {"name": "cosine", "warmup_steps": 100, "min_lr_ratio": 0.05},
    "trainer": {
        "max_steps": 5000,
        "batch_size": 512,
        "grad_clip": 5.0,
        "log_every_n_steps": 50,
        "checkpoint_every_n_steps": 1000,
    },
    "validation": {"every_n_steps": 1000, "monitor": "filtered_mrr", "mode": "max"},
}
#: What ``--quick`` changes: WordNet's artifact subtree and a short schedule (a minute or
#: two per geometry on two CPU cores with ``--threads 1``).
QUICK: dict[str, Any] = {
    "data": {"root": "artifact.n.01", "eval_queries": 100},
    "model": {"dim": 32, "negatives": 64},
    "optimizer": {"lr": 2.0e-2},
    "scheduler": {"warmup_steps": 20},
    "trainer": {"max_steps": 500, "batch_size": 256, "log_every_n_steps": 50, "checkpoint_every_n_steps": 500},
    "validation": {"every_n_steps": 250},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--dataset",
        default=None,
        help="registered knowledge-graph dataset (default: wordnet_kg, WordNet 3.0 nouns as a KG; "
        "kg_triples generates queries from triple files, betae reads a release)",
    )
    source.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="a BetaE / Query2Box release directory (stats.txt, *-queries.pkl, *-answers.pkl), e.g. "
        "KGReasoning's FB15k-237-betae",
    )
    add_training_arguments(parser, dataset_example="root=mammal.n.01")


def _data_config(args: argparse.Namespace) -> dict[str, Any]:
    """The ``data:`` section: the chosen dataset and its arguments (``--quick`` sizes the default one)."""
    extra = parse_key_values(args.dataset_args)
    if args.data_dir is not None:
        if not args.data_dir.is_dir():
            raise BenchError(f"--data-dir {args.data_dir}: not a directory (expected a BetaE release directory)")
        return {"name": "betae", "path": str(args.data_dir.resolve()), "structures": list(STRUCTURES), **extra}
    if args.dataset is None or args.dataset == SETTINGS["data"]["name"]:
        data = merge(SETTINGS["data"], QUICK["data"]) if args.quick else dict(SETTINGS["data"])
        return {**data, **extra}
    return {"name": args.dataset, **extra}


def _configs(args: argparse.Namespace, data: dict[str, Any], out: Path) -> list[dict[str, Any]]:
    settings = merge(SETTINGS, QUICK) if args.quick else copy.deepcopy(SETTINGS)
    configs = []
    for geometry in geometry_names(args.geometries):
        raw = {k: v for k, v in settings.items() if k != "data"}
        raw = merge(raw, {"seed": args.seed, "output_dir": str(out / "runs" / f"query2box-{geometry}")})
        raw["data"] = data
        raw["model"] = {**settings["model"], "geometry": geometry}
        configs.append(raw)
    return configs


def _over_entity_ids(dataset: Any) -> bool:
    """Whether the dataset's queries name entities and relations by int id (what query2box embeds)."""
    from boxlib.query import bindings

    sample = [e for split in ("train", "test") for e in dataset.splits.get(split, [])[:50]]
    return "n_relations" in dataset.metadata and all(
        isinstance(name, int) for e in sample for names in bindings(e.query) for name in names
    )


def _structure(example: Any) -> str:
    from boxlib.query import betae_name

    return betae_name(example.query) or example.kind


def _train_and_evaluate(raw: dict[str, Any], overrides: list[str], progress: Progress) -> dict[str, Any]:
    trained = train_system(raw, overrides, progress)
    system, config, model = trained.name, trained.config, trained.model
    progress(f"evaluating {system} on the test split")
    start = time.perf_counter()
    metrics = model.evaluate("test", tuple(METRICS), by_kind=_structure)
    eval_seconds = time.perf_counter() - start
    row: dict[str, Any] = {
        "system": system,
        "model": config.model.name,
        "geometry": config.model.kwargs.get("geometry", "-"),
    }
    structures = [s for s in STRUCTURES if f"{s}/filtered_mrr" in metrics]
    structures += sorted({k.split("/")[0] for k in metrics if "/" in k} - set(structures))
    for long, short in METRICS.items():
        values = [metrics[f"{s}/{long}"] for s in structures]
        for s, value in zip(structures, values):
            row[s if short == "mrr" else f"{s}/{short}"] = value
        defined = [v for v in values if not math.isnan(v)]
        row["avg" if short == "mrr" else f"avg/{short}"] = sum(defined) / len(defined) if defined else math.nan
    for long, short in METRICS.items():
        row[f"all/{short}"] = metrics[long]  # over all test queries (micro average)
    curve = read_metrics_csv(trained.metrics_csv(), CURVES)
    throughput = [v for _, v in curve["examples_per_s"]]
    row.update(
        {
            "steps": trained.result.state.global_step,
            "train_s": round(trained.train_seconds, 1),
            "eval_s": round(eval_seconds, 1),
            "examples_per_s": round(statistics.median(throughput), 1) if throughput else math.nan,
            "best_valid_mrr": max((v for _, v in curve["valid_mrr"]), default=math.nan),
            "parameters": trained.parameters,
            "_structures": structures,
            "_curves": curve,
        }
    )
    return row


def _describe(dataset: Any) -> list[str]:
    """Notes on the dataset: sizes, and queries per structure and split."""
    from collections import Counter

    meta = dataset.metadata
    counts = {split: Counter(_structure(e) for e in examples) for split, examples in dataset.splits.items()}
    structures = [s for s in STRUCTURES if any(s in c for c in counts.values())]
    structures += sorted({s for c in counts.values() for s in c} - set(structures))
    triples = meta.get("triples") or {}
    lines = [
        f"Dataset `{dataset.name}`: {len(dataset.items):,} entities, {meta.get('n_relations', '?')} relations "
        "(with reciprocals)"
        + (", triples (both directions) " + ", ".join(f"{s} {n:,}" for s, n in triples.items()) if triples else "")
        + ". Queries per structure:",
        "",
        "| split | " + " | ".join(structures) + " |",
        "|---|" + "---|" * len(structures),
    ]
    for split, counter in counts.items():
        lines.append(f"| {split} | " + " | ".join(f"{counter.get(s, 0):,}" for s in structures) + " |")
    return lines


def run(args: argparse.Namespace) -> int:
    from boxlib.plugins import host

    geometries = geometry_names(args.geometries)  # fails early on an unknown name
    apply_threads(args.threads)
    data = _data_config(args)
    label = Path(data["path"]).name if data["name"] == "betae" else data["name"]
    name = f"kg-{label}{'-quick' if args.quick else ''}"
    progress = Progress("kg")
    progress(f"dataset {data['name']}; geometries: {', '.join(geometries)}")
    kwargs = {k: v for k, v in data.items() if k != "name"}
    start = time.perf_counter()
    try:
        dataset = host().registries["dataset"].create(data["name"], **kwargs)
    except Exception as exc:  # unknown name, missing or malformed file: one line, not a traceback
        raise BenchError(f"dataset {data['name']}: {exc}") from None
    progress(f"{dataset!r} ({time.perf_counter() - start:.1f} s)")
    if not dataset.splits.get("test"):
        raise BenchError(f"dataset {data['name']} has no test queries to evaluate")
    if not _over_entity_ids(dataset):
        raise BenchError(
            f"dataset {data['name']} is not a knowledge-graph query dataset (its queries are not over entity and "
            "relation ids); use wordnet_kg, kg_triples or --data-dir with a BetaE release"
        )
    out = prepare_output(args.out, name, force=args.force)
    configs = _configs(args, data, out)
    rows = [_train_and_evaluate(raw, args.overrides, progress) for raw in configs]
    curves = {row["system"]: row.pop("_curves") for row in rows}
    structures = list(dict.fromkeys(s for row in rows for s in row.pop("_structures")))
    columns = ["system", *structures, "avg"]
    hits = {
        f"Hits@{k} by structure": (rows, ["system", *[f"{s}/hits@{k}" for s in structures], f"avg/hits@{k}"])
        for k in (1, 3, 10)
    }
    training = ["system", "steps", "train_s", "eval_s", "examples_per_s", "best_valid_mrr", "parameters"]
    resolved = {
        "suite": "kg",
        "dataset": data,
        "quick": args.quick,
        "seed": args.seed,
        "geometries": geometries,
        "threads": args.threads,
        "overrides": args.overrides,
        "runs": configs,
    }
    notes = [
        "Filtered MRR on the test split (each hard answer ranked among the entities that are not answers, "
        "easy answers removed, as in Query2Box / BetaE; ties ranked realistically), per query structure; "
        "`avg` is the mean over structures. Each geometry is evaluated with its checkpoint of best validation "
        "filtered MRR. `results.csv` also has `all/*`, the means over all test queries.",
        "",
        *_describe(dataset),
        "",
        f"Reproduce: `{_command(args)}`.",
    ]
    table = write_results(
        out,
        rows,
        columns,
        title=f"boxlib bench kg: {label}{' (quick)' if args.quick else ''}",
        config=resolved,
        notes=notes,
        extra_tables={**hits, "Training": (rows, training)},
    )
    plot_bars(out / "mrr.png", rows, "system", [*structures, "avg"], title=f"{label}: filtered MRR by structure")
    if any(curves.values()):
        plot_curves(
            out / "training.png",
            {s: c["valid_mrr"] for s, c in curves.items()},
            xlabel="step",
            ylabel="validation filtered MRR",
            title="validation filtered MRR during training",
        )
    print(table)
    progress(f"wrote {out}")
    return 0


def _command(args: argparse.Namespace) -> str:
    parts = ["boxlib bench kg"]
    if args.data_dir is not None:
        parts.append(f"--data-dir {args.data_dir}")
    elif args.dataset is not None:
        parts.append(f"--dataset {args.dataset}")
    parts += [f"--dataset-arg {a}" for a in args.dataset_args]
    if args.quick:
        parts.append("--quick")
    if args.geometries:
        parts.append("--geometries " + " ".join(args.geometries))
    if args.seed:
        parts.append(f"--seed {args.seed}")
    if args.threads:
        parts.append(f"--threads {args.threads}")
    parts += [f"--set {o}" for o in args.overrides]
    return " ".join(parts)
