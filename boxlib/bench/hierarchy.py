"""``boxlib bench hierarchy``: reconstruct WordNet's noun (or mammal) hierarchy in every geometry.

For every registered geometry the ``hierarchy`` model is trained twice through the
ordinary trainer: with the **box** score (``u`` is-a ``v`` when ``u``'s point lies in
``v``'s region) and with the **point** score (Nickel & Kiela's negative point distance,
for reference). The checkpoint with the best validation MAP is then evaluated with the
reconstruction protocol of Nickel & Kiela (2017): mean rank and MAP of every observed
pair among the non-ancestors (see :mod:`boxlib_plugins.hierarchy.evaluate` and
``docs/hierarchy.md``). Their Table 1 reports, for WordNet nouns at ``d = 10``, Poincaré
MR 4.02 / MAP 0.851 and Euclidean MR 2286.9 / MAP 0.059; the table notes repeat them.

Output (``--out``, default ``benchmarks/results/hierarchy-<dataset>[-quick]-<date>-<time>``):
``table.md``, ``results.csv``, ``config.yaml``, ``machine.json``, ``map.png`` (MAP by
geometry and score), ``training.png`` (validation MAP per epoch, when there were several
validations), ``loss.png`` and ``runs/<system>/``
(each run's ``config.yaml`` and ``metrics.csv``; checkpoints too, which ``.gitignore``
keeps out of the repository).
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .common import (
    BenchError,
    Progress,
    add_common_arguments,
    apply_threads,
    geometry_names,
    plot_bars,
    plot_curves,
    prepare_output,
    train_system,
    write_results,
)

__all__ = ["PAPER", "SETTINGS", "add_arguments", "run"]

DATASETS = {"mammals": "wordnet_mammals", "nouns": "wordnet_nouns"}
SCORES = ("box", "point")

#: Training and evaluation settings per dataset (``--quick`` takes :data:`QUICK`'s values).
#: Adam with a cosine decay to ``min_lr_ratio`` times ``lr`` (a constant rate left the hyperbolic
#: boxes oscillating between MAP 0.990 and 0.997 on the mammals; the decay ends at 0.999).
#: ``eval_sources``: source nodes of the final evaluation (None: all); ``valid_sources``:
#: of the validations during training; ``validations``: how many, evenly spread.
SETTINGS: dict[str, dict[str, Any]] = {
    "mammals": {
        "epochs": 300,
        "batch_size": 256,
        "lr": 0.03,
        "min_lr_ratio": 0.1,
        "validations": 6,
        "valid_sources": None,
        "eval_sources": None,
    },
    "nouns": {
        "epochs": 5,
        "batch_size": 256,
        "lr": 0.03,
        "min_lr_ratio": 0.1,
        "validations": 1,
        "valid_sources": 500,
        "eval_sources": 2000,
    },
}
QUICK: dict[str, dict[str, Any]] = {
    "mammals": {"epochs": 50, "validations": 1},
    "nouns": {"epochs": 1, "validations": 1, "valid_sources": 200, "eval_sources": 500},
}

#: Nickel & Kiela (2017), Table 1, WordNet nouns reconstruction at d = 10 (Riemannian SGD).
PAPER = (
    {"system": "Nickel & Kiela 2017: Poincaré", "dim": 10, "mean_rank": 4.02, "map": 0.851},
    {"system": "Nickel & Kiela 2017: Euclidean", "dim": 10, "mean_rank": 2286.9, "map": 0.059},
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument(
        "--dataset",
        choices=(*DATASETS, "all"),
        default="mammals",
        help="WordNet mammal subtree (1,180 synsets, default), all nouns (82,115 synsets), or both",
    )
    parser.add_argument("--dim", type=int, default=10, help="intrinsic dimension (default 10, as the paper's Table 1)")
    parser.add_argument(
        "--scores",
        nargs="+",
        choices=SCORES,
        default=list(SCORES),
        help="box: region containment; point: Nickel & Kiela's point distance (default: both)",
    )
    parser.add_argument("--epochs", type=int, help="training epochs (default per dataset; see SETTINGS)")
    parser.add_argument(
        "--eval-sources",
        type=int,
        help="source nodes of the final reconstruction (default: all for mammals, 2000 sampled for nouns; 0 means all)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: the batches are small, and on a shared machine more threads "
        "spin-wait; 0 keeps torch's default)",
    )
    parser.add_argument(
        "--wordnet-dir", type=Path, help="directory with data.noun and index.noun (default: /usr/share/wordnet)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a training setting of every run, e.g. --set model.center=separate",
    )


def _settings(args: argparse.Namespace, dataset: str) -> dict[str, Any]:
    settings = {**SETTINGS[dataset], **(QUICK[dataset] if args.quick else {})}
    if args.epochs is not None:
        if args.epochs < 1:
            raise BenchError(f"--epochs must be at least 1, got {args.epochs}")
        settings["epochs"] = args.epochs
    if args.eval_sources is not None:
        if args.eval_sources < 0:
            raise BenchError(f"--eval-sources must be 0 (all) or positive, got {args.eval_sources}")
        settings["eval_sources"] = args.eval_sources or None
    return settings


def _load_dataset(name: str, args: argparse.Namespace):
    from boxlib.plugins import host

    kwargs = {} if args.wordnet_dir is None else {"wordnet_dir": str(args.wordnet_dir)}
    try:
        return host().registries["dataset"].create(DATASETS[name], **kwargs), kwargs
    except Exception as exc:  # missing or malformed WordNet files: one line, not a traceback
        raise BenchError(f"--dataset {name}: {exc}") from None


def _config(
    args: argparse.Namespace,
    dataset: Any,
    data: Mapping[str, Any],
    settings: Mapping[str, Any],
    geometry: str,
    score: str,
    out: Path,
) -> dict[str, Any]:
    batch = min(settings["batch_size"], dataset.n_edges)
    steps_per_epoch = dataset.n_edges // batch
    total = steps_per_epoch * settings["epochs"]
    every = max(1, total // settings["validations"])
    model = {"name": "hierarchy", "geometry": geometry, "dim": args.dim, "score": score}
    if settings["valid_sources"] is not None:
        model["eval_sources"] = settings["valid_sources"]
    return {
        "seed": args.seed,
        "output_dir": str(out / "runs" / f"{dataset.name}-{geometry}-{score}"),
        "data": dict(data),
        "model": model,
        "optimizer": {"name": "adam", "lr": settings["lr"]},
        "scheduler": {"name": "cosine", "min_lr_ratio": settings["min_lr_ratio"]},
        "trainer": {
            "max_epochs": settings["epochs"],
            "batch_size": batch,
            "log_every_n_steps": max(1, min(50, steps_per_epoch)),
            "checkpoint_every_n_steps": None,
            "progress": False,
            "tensorboard": False,
        },
        "validation": {"every_n_steps": every, "split": "reconstruction", "monitor": "map", "mode": "max"},
    }


def _train_and_evaluate(
    raw: dict[str, Any], overrides: list[str], eval_sources: int | None, progress: Progress
) -> dict[str, Any]:
    from boxlib_plugins.hierarchy import sample_sources

    trained = train_system(raw, overrides, progress)
    config, model, system = trained.config, trained.model, trained.name
    sources = sample_sources(model.dataset, eval_sources, seed=config.seed)
    progress(f"evaluating {system} on {len(sources)} source nodes")
    found = model.reconstruct(sources)
    kwargs = config.model.kwargs
    return {
        "system": system,
        "dataset": model.dataset.name,
        "geometry": kwargs["geometry"],
        "score": kwargs["score"],
        "dim": kwargs["dim"],
        "mean_rank": found.mean_rank,
        "map": found.map,
        "sources": found.sources,
        "pairs": found.pairs,
        "epochs": config.trainer.max_epochs,
        "steps": trained.result.state.global_step,
        "best_step": trained.result.state.best_step,
        "train_s": round(trained.train_seconds, 1),
        "eval_s": round(found.seconds, 1),
        "parameters": trained.parameters,
        "_curves": _curves(Path(config.output_dir) / "metrics.csv"),
    }


def _curves(path: Path) -> dict[str, list[tuple[float, float]]]:
    curves: dict[str, list[tuple[float, float]]] = {"map": [], "loss": []}
    epoch = 0.0
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row.get("train/epoch"):
                epoch = float(row["train/epoch"]) + 1
            if row.get("train/loss"):
                curves["loss"].append((int(row["step"]), float(row["train/loss"])))
            if row.get("reconstruction/map"):
                curves["map"].append((epoch, float(row["reconstruction/map"])))
    return curves


def run(args: argparse.Namespace) -> int:
    import torch

    geometries = geometry_names(args.geometries)  # fails early on an unknown name
    if args.dim < 1:
        raise BenchError(f"--dim must be a positive integer, got {args.dim}")
    apply_threads(args.threads)
    names = list(DATASETS) if args.dataset == "all" else [args.dataset]
    progress = Progress("hierarchy")
    progress(f"datasets {', '.join(names)}; geometries: {', '.join(geometries)}; scores: {', '.join(args.scores)}")
    loaded = {name: _load_dataset(name, args) for name in names}  # fail on missing WordNet before any output
    out = prepare_output(args.out, f"hierarchy-{args.dataset}{'-quick' if args.quick else ''}", force=args.force)
    rows, systems = [], []
    for name in names:
        dataset, data_kwargs = loaded[name]
        settings = _settings(args, name)
        progress(f"{dataset!r}")
        data = {"name": DATASETS[name], **data_kwargs}
        for geometry in geometries:
            for score in args.scores:
                raw = _config(args, dataset, data, settings, geometry, score, out)
                systems.append(raw)
                rows.append(_train_and_evaluate(raw, args.overrides, settings["eval_sources"], progress))
    curves = {row["system"]: row.pop("_curves") for row in rows}
    columns = ["system", "geometry", "score", "mean_rank", "map", "sources", "epochs", "train_s", "eval_s"]
    resolved = {
        "suite": "hierarchy",
        "datasets": names,
        "dim": args.dim,
        "quick": args.quick,
        "seed": args.seed,
        "threads": torch.get_num_threads(),
        "geometries": geometries,
        "scores": args.scores,
        "settings": {name: _settings(args, name) for name in names},
        "overrides": args.overrides,
        "systems": systems,
    }
    table = write_results(
        out,
        rows,
        columns,
        title=f"boxlib bench hierarchy: WordNet {' and '.join(names)}{' (quick)' if args.quick else ''}",
        config=resolved,
        notes=_notes(args, rows),
        extra_tables={
            "Reference: Nickel & Kiela (2017), Table 1, WordNet nouns reconstruction": (
                list(PAPER),
                ["system", "dim", "mean_rank", "map"],
            )
        },
    )
    _plot_map(out / "map.png", rows)
    if any(len(c["map"]) > 1 for c in curves.values()):  # a single validation draws no line
        plot_curves(
            out / "training.png",
            {s: c["map"] for s, c in curves.items()},
            xlabel="epoch",
            ylabel="validation MAP",
            title="reconstruction MAP during training",
        )
    plot_curves(
        out / "loss.png",
        {s: c["loss"] for s, c in curves.items()},
        xlabel="step",
        ylabel="training loss",
        title="sampled-softmax loss",
    )
    print(table)
    progress(f"wrote {out}")
    return 0


def _plot_map(path: Path, rows: list[dict[str, Any]]) -> Path:
    """MAP by geometry: one group of bars per geometry, one bar per score (and dataset)."""
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    geometries = list(dict.fromkeys(r["geometry"] for r in rows))
    bars: dict[str, dict[str, Any]] = {}
    for r in rows:
        label = r["score"] if len(datasets) == 1 else f"{r['dataset'].removeprefix('wordnet_')} {r['score']}"
        bars.setdefault(label, {"label": label})[r["geometry"]] = float(r["map"])
    title = f"{' and '.join(datasets)}: reconstruction MAP by geometry"
    return plot_bars(path, list(bars.values()), "label", geometries, title=title)


def _notes(args: argparse.Namespace, rows: list[dict[str, Any]]) -> list[str]:
    sampled = sorted({(r["dataset"], r["sources"]) for r in rows})
    return [
        "Protocol (Nickel & Kiela 2017; `eval_reconstruction` in facebookresearch/poincare-embeddings): for every "
        "observed pair (u, v) of the transitive closure, v is ranked among v and all non-ancestors of u (u itself "
        "excluded) by the score s(u, ·); `mean_rank` is the mean over pairs (1 is perfect), `map` the mean over "
        "source nodes u of the average precision of u's ancestors. Ties count half (expected rank / AP).",
        "",
        "Scores: `box` is s(u, v) = -distance_to_region(R(v), p(u)) (outside + 0.2 × inside distance, L1 over the "
        "canonical axes): v's region must hold the points of all its descendants and no other; `point` is "
        "s(u, v) = -d(p(u), p(v)), Nickel & Kiela's model (their Poincaré embedding with the `poincare` geometry, "
        "their Euclidean baseline with `euclidean`). Both are trained with their loss (softmax of the observed pair "
        "against 10 uniformly sampled non-ancestors) by Adam on tangent parameters at the origin (expmap0), not "
        "by Riemannian SGD, and for far fewer epochs than the paper on nouns.",
        "",
        "Evaluated source nodes (dataset, count): "
        + ", ".join(f"{d} {n}" for d, n in sampled)
        + ". The paper's numbers are for all 82,115 nouns; a sample gives an unbiased estimate of the same means.",
        "",
        f"Reproduce: `{_command(args)}`.",
    ]


def _command(args: argparse.Namespace) -> str:
    parts = ["boxlib bench hierarchy", f"--dataset {args.dataset}"]
    if args.dim != 10:
        parts.append(f"--dim {args.dim}")
    if list(args.scores) != list(SCORES):
        parts.append("--scores " + " ".join(args.scores))
    if args.epochs is not None:
        parts.append(f"--epochs {args.epochs}")
    if args.eval_sources is not None:
        parts.append(f"--eval-sources {args.eval_sources}")
    if args.threads != 1:
        parts.append(f"--threads {args.threads}")
    if args.wordnet_dir is not None:
        parts.append(f"--wordnet-dir {args.wordnet_dir}")
    if args.quick:
        parts.append("--quick")
    if args.geometries:
        parts.append("--geometries " + " ".join(args.geometries))
    if args.seed:
        parts.append(f"--seed {args.seed}")
    parts += [f"--set {o}" for o in args.overrides]
    return " ".join(parts)
