"""What every benchmark suite shares: the geometries to compare, the output directory,
the machine record, the table, the CSV and the plots.

A suite collects one ``dict`` per row (a system, or a system × dataset), with plain
``str`` / ``int`` / ``float`` values, and hands them to :func:`write_results`.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "BenchError",
    "DEFAULT_ROOT",
    "Progress",
    "TrainedSystem",
    "add_common_arguments",
    "add_training_arguments",
    "apply_threads",
    "geometry_names",
    "machine_info",
    "markdown_table",
    "merge",
    "parse_key_values",
    "read_metrics_csv",
    "plot_bars",
    "plot_curves",
    "prepare_output",
    "train_system",
    "write_results",
]

#: Where results go when ``--out`` is not given (relative to the working directory).
DEFAULT_ROOT = Path("benchmarks") / "results"


class BenchError(RuntimeError):
    """A benchmark cannot run as asked; the message names the problem and the fix."""


def add_common_arguments(parser) -> None:
    """``--out``, ``--force``, ``--geometries``, ``--seed`` and ``--quick``, the same in every suite."""
    parser.add_argument("--quick", action="store_true", help="a short run (minutes on 2 CPU cores)")
    parser.add_argument(
        "--geometries",
        nargs="+",
        metavar="NAME",
        help="compare only these registered geometries (default: every registered geometry)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of every run (default 0)")
    parser.add_argument(
        "--out",
        type=Path,
        help=f"results directory (default: {DEFAULT_ROOT}/<suite>-<dataset>[-quick]-<date>-<time>)",
    )
    parser.add_argument("--force", action="store_true", help="write into --out even when it already holds results")


def add_training_arguments(parser, *, dataset_example: str = "path=Packages.gz") -> None:
    """``--dataset-arg``, ``--set`` and ``--threads``, for suites that train through ``boxlib.train``."""
    parser.add_argument(
        "--dataset-arg",
        dest="dataset_args",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"keyword argument of the dataset factory, e.g. --dataset-arg {dataset_example} (VALUE read as YAML)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a training setting of every trained system, e.g. --set trainer.max_steps=500 "
        "(keys as in `boxlib train` configs)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        metavar="N",
        help="torch CPU threads (default 0: torch's choice, one per core); on a machine whose cores are busy "
        "with other work, 1 is much faster, as threads stop spin-waiting on each other",
    )


def apply_threads(threads: int) -> None:
    """``torch.set_num_threads(threads)`` unless 0 (keep torch's choice)."""
    if threads < 0:
        raise BenchError(f"--threads must be 0 (torch's choice) or positive, got {threads}")
    if threads:
        import torch

        torch.set_num_threads(threads)


def merge(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with ``changes`` merged in, nested mappings merged key by key."""
    out = dict(base)
    for key, value in changes.items():
        nested = isinstance(value, Mapping) and isinstance(out.get(key), Mapping)
        out[key] = merge(out[key], value) if nested else value
    return out


def parse_key_values(items: Sequence[str], flag: str = "--dataset-arg") -> dict[str, Any]:
    """``["a=1", "b=x"]`` → ``{"a": 1, "b": "x"}``, each value read as YAML (text if it is not YAML)."""
    kwargs: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BenchError(f"{flag} {item!r}: expected KEY=VALUE, e.g. {flag} max_items=5000")
        try:
            kwargs[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            kwargs[key.strip()] = value
    return kwargs


@dataclasses.dataclass
class TrainedSystem:
    """One system trained by :func:`train_system`: its config, the fit, the reloaded best model."""

    name: str
    config: Any  # boxlib.train.config.Config
    result: Any  # boxlib.train.trainer.FitResult
    model: Any
    train_seconds: float

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def metrics_csv(self) -> Path:
        return Path(self.config.output_dir) / "metrics.csv"


def train_system(raw: Mapping[str, Any], overrides: Sequence[str], progress: Progress) -> TrainedSystem:
    """Validate ``raw`` (a ``boxlib train`` config as plain data) with ``--set`` ``overrides``,
    train it, and reload the checkpoint with the best validation score (else the last)."""
    import boxlib
    from boxlib.train import train
    from boxlib.train.config import Config, ConfigError, apply_overrides

    try:
        config = Config.from_dict(apply_overrides(raw, overrides))
    except ConfigError as exc:
        raise BenchError(f"--set: {exc}") from None
    name = Path(config.output_dir).name
    length = f"{config.trainer.max_steps} steps" if config.trainer.max_steps else f"{config.trainer.max_epochs} epochs"
    progress(f"training {name} ({length} of {config.trainer.batch_size})")
    start = time.perf_counter()
    try:
        result = train(config)
    except ConfigError as exc:
        raise BenchError(f"{name}: {exc}") from None
    seconds = time.perf_counter() - start
    model = boxlib.load(result.best_checkpoint or result.last_checkpoint)
    model.eval()
    return TrainedSystem(name, config, result, model, seconds)


def read_metrics_csv(path: Path, columns: Mapping[str, str]) -> dict[str, list[tuple[int, float]]]:
    """Curves from a run's ``metrics.csv``: ``{name: [(step, value), ...]}`` for each
    ``column → name`` of ``columns`` (rows where the column is empty are skipped)."""
    curves: dict[str, list[tuple[int, float]]] = {name: [] for name in columns.values()}
    if not path.exists():
        return curves
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            for column, name in columns.items():
                if row.get(column):
                    curves[name].append((int(row["step"]), float(row[column])))
    return curves


def geometry_names(selected: Sequence[str] | None = None) -> list[str]:
    """Registered geometries in registration order (built-ins first, then third-party
    plugins), or the ``selected`` ones (unknown names fail with a did-you-mean error)."""
    from boxlib.plugins import host
    from boxlib.registry import UnknownComponentError

    registry = host().registries["geometry"]
    if not selected:
        return [entry.name for entry in registry]
    try:
        return list(dict.fromkeys(registry.get(name).name for name in selected))
    except UnknownComponentError as exc:
        raise BenchError(f"--geometries: {exc}") from None


def prepare_output(out: Path | None, name: str, *, force: bool = False) -> Path:
    """Create the results directory: ``out``, or a new dated one under :data:`DEFAULT_ROOT`.

    A directory that already holds ``results.csv`` is refused unless ``force``, so a run
    never overwrites results someone kept.
    """
    if out is None:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = DEFAULT_ROOT / f"{name}-{stamp}"
    out = Path(out)
    if (out / "results.csv").exists() and not force:
        raise BenchError(f"{out} already holds results (results.csv); choose another --out, or pass --force")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BenchError(f"cannot create the results directory {out}: {exc.strerror or exc}") from None
    return out


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        root = Path(__file__).resolve().parents[2]
        result = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """Hardware, library versions, the command line and the boxlib commit of this run."""
    import torch

    cuda = torch.cuda.is_available()
    return {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(["boxlib" if Path(sys.argv[0]).name == "boxlib" else sys.argv[0], *sys.argv[1:]]),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "python": platform.python_version(),
        "versions": {
            dist: _version(dist)
            for dist in ("boxlib", "torch", "geoopt", "lightning-fabric", "numpy", "scipy", "bm25s", "matplotlib")
        },
        "boxlib_commit": _git_commit(),
        "plugins": _plugin_sources(),
    }


def _plugin_sources() -> dict[str, str]:
    from boxlib.plugins import host

    return {f"{e.kind}:{e.name}": e.source for e in host().entries()}


def _cell(value: Any, digits: int) -> str:
    """Metrics (|x| < 10) with ``digits`` decimals; larger numbers (times, counts) with fewer."""
    if isinstance(value, bool) or value is None:
        return "–" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.{digits}f}"
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, digits: int = 3) -> str:
    """A GitHub-flavoured Markdown table of ``columns`` (missing values print as ``–``)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c), digits) for c in columns) + " |")
    return "\n".join(lines)


def write_results(
    out: Path,
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    title: str,
    config: Mapping[str, Any],
    notes: Iterable[str] = (),
    extra_tables: Mapping[str, tuple[Sequence[Mapping[str, Any]], Sequence[str]]] | None = None,
) -> str:
    """Write ``results.csv`` (every key of every row), ``table.md`` (``columns``, then each
    of ``extra_tables`` under its heading, then ``notes``), ``config.yaml`` and
    ``machine.json``; return the main table's text."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    with (out / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    table = markdown_table(rows, columns)
    parts = [f"# {title}", "", table]
    for heading, (extra_rows, extra_columns) in (extra_tables or {}).items():
        parts += ["", f"## {heading}", "", markdown_table(extra_rows, extra_columns)]
    notes = list(notes)
    if notes:
        parts += ["", *notes]
    (out / "table.md").write_text("\n".join(parts) + "\n")
    (out / "config.yaml").write_text(yaml.safe_dump(_plain(config), sort_keys=False))
    (out / "machine.json").write_text(json.dumps(machine_info(), indent=2) + "\n")
    return table


def _plain(value: Any) -> Any:
    """Config values as YAML-safe builtins (paths and tuples included)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_bars(
    path: Path, rows: Sequence[Mapping[str, Any]], label: str, metrics: Sequence[str], *, title: str = ""
) -> Path:
    """Grouped bars: one group per metric, one bar per row (labelled by ``row[label]``)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(metrics) * max(1, len(rows)) / 3), 3.6))
    width = 0.8 / max(1, len(rows))
    for i, row in enumerate(rows):
        values = [float(row.get(m, float("nan")) or float("nan")) for m in metrics]
        ax.bar([j + i * width for j in range(len(metrics))], values, width, label=str(row[label]))
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(metrics))], list(metrics), rotation=20)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncols=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_curves(
    path: Path,
    curves: Mapping[str, Sequence[tuple[float, float]]],
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    log: bool = False,
) -> Path:
    """One line per named curve of ``(x, y)`` points (``log``: both axes logarithmic,
    with a marker at each point)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    for name, points in curves.items():
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, label=name, marker="o" if log else None, markersize=3)
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


class Progress:
    """One line per step of a benchmark on stderr, with the elapsed time."""

    def __init__(self, suite: str) -> None:
        self.suite = suite
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        elapsed = time.perf_counter() - self.start
        print(f"[bench {self.suite} {elapsed // 60:02.0f}:{elapsed % 60:04.1f}] {message}", file=sys.stderr, flush=True)
