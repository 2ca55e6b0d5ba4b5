"""Training throughput, measured in one run on one machine: ANTHEM per geometry, and the
Query2Box-style model against the published reference implementation.

    python benchmarks/perf_training.py --kgreasoning DIR [--steps 450] [--anthem-steps 60]
        [--geometries NAME ...] [--data-dir RELEASE] [--out FILE]

``DIR`` is a checkout of https://github.com/snap-stanford/KGReasoning (MIT licence; its
``models.py``, ``dataloader.py`` and ``util.py`` are imported as they are, and need
``tqdm``: ``pip install tqdm``). Without ``--kgreasoning`` only boxlib is timed.

**ANTHEM** (``anthem``): the default configuration of every geometry
(``configs/anthem-<geometry>-wordnet.yaml``, or the Lorentz one with the geometry swapped
for third-party geometries) trained through ``boxlib.train`` for ``--anthem-steps`` steps
without validation. Examples per second are the trainer's own ``train/examples_per_s``
windows, the first one (start-up, compilation) left out.

**Query2Box** against KGReasoning ``--geo box`` at the settings its ``example.sh``
documents for FB15k-237 (``-n 128 -b 512 -d 400 -g 24 -lr 0.0001 --cpu_num 1
-boxm "(none,0.02)"``), on the same BetaE-format release (by default the WordNet artifact
subtree that ``plugins/kg`` writes, 10,699 entities), for the same number of optimizer
steps of 512 queries:

* the reference runs its own training loop as ``main.py`` does (its ``TrainDataset``
  with negatives that avoid the answers, a ``DataLoader`` with one worker per stream,
  the path / other / path alternation of ``train_step``, the learning rate divided by
  five half-way), then its own ``test_step`` on the test queries;
* boxlib trains ``query2box`` (Euclidean: Query2Box itself) through ``boxlib.train`` with
  the settings of ``boxlib bench kg`` at the reference's batch, negatives and dimension,
  then ``evaluate`` on the test split (filtered metrics, as in BetaE).

Throughput is optimizer steps per second over the steps after the first ``--warmup``
(data-loader start-up, compilation), and wall time of the whole run. The reference model
is also ranked by boxlib's evaluator (its logits against every entity), which must agree
with its own ``test_step``: the two filtered MRRs are computed the same way.

numpy 2.4 removed ``np.in1d``, which the reference's data loader calls; it is set to
``np.isin`` (its documented replacement, the same result for 1-D arrays) before import.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import copy
import io
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

import boxlib
from boxlib.bench.common import geometry_names, read_metrics_csv
from boxlib.bench.kg import METRICS, QUICK, SETTINGS, STRUCTURES, _structure

ROOT = Path(__file__).resolve().parents[1]
BATCH, NEGATIVES, DIM = 512, 128, 400
#: The reference's settings (example.sh, FB15k-237, --geo box).
REFERENCE = {"gamma": 24.0, "lr": 1e-4, "box_mode": ("none", 0.02), "cpu_num": 1}


class Report:
    """Print and keep every line, for --out."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)


# -- ANTHEM ------------------------------------------------------------------------------------
def anthem_config(geometry: str, steps: int, out: Path) -> dict:
    path = ROOT / "configs" / f"anthem-{geometry}-wordnet.yaml"
    raw = yaml.safe_load((path if path.exists() else ROOT / "configs" / "anthem-lorentz-wordnet.yaml").read_text())
    raw["model"]["geometry"] = geometry
    if not path.exists():
        raw["model"].pop("geometry_kwargs", None)
    raw["output_dir"] = str(out)
    raw["validation"] = {}
    raw["trainer"].update(
        max_steps=steps, log_every_n_steps=10, checkpoint_every_n_steps=None, progress=False, tensorboard=False
    )
    return raw


def train_and_time(raw: dict) -> tuple[list[float], float, object]:
    """Train ``raw`` through boxlib.train: (examples/s per log window, wall seconds, result)."""
    from boxlib.train import train
    from boxlib.train.config import Config

    start = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):
        result = train(Config.from_dict(raw))
    seconds = time.perf_counter() - start
    curve = read_metrics_csv(Path(raw["output_dir"]) / "metrics.csv", {"train/examples_per_s": "eps"})
    return [v for _, v in curve["eps"]], seconds, result


def run_anthem(geometries: list[str], steps: int, work: Path, say: Report) -> None:
    say(f"ANTHEM at its default configuration, {steps} steps through boxlib.train, no validation")
    say(f"{'geometry':<12} {'batch':>5} {'neg':>4} {'dim':>4} {'examples/s':>11} {'windows':>8} {'wall s':>7}")
    for geometry in geometries:
        raw = anthem_config(geometry, steps, work / f"anthem-{geometry}")
        windows, seconds, _ = train_and_time(raw)
        steady = windows[1:] or windows
        say(
            f"{geometry:<12} {raw['trainer']['batch_size']:>5} {raw['model'].get('negatives', 4):>4} "
            f"{raw['model']['dim']:>4} {statistics.median(steady):>11.0f} {len(steady):>8} {seconds:>7.1f}"
        )


# -- the reference implementation --------------------------------------------------------------
def import_reference(directory: Path):
    import numpy as np

    if not hasattr(np, "in1d"):  # removed in numpy 2.4; np.isin is its documented replacement
        np.in1d = lambda a, b, assume_unique=False, invert=False: np.isin(  # noqa: E731
            a, b, assume_unique=assume_unique, invert=invert
        )
    for name in ("models.py", "dataloader.py", "util.py"):
        if not (directory / name).exists():
            raise SystemExit(
                f"--kgreasoning {directory}: no {name}; clone https://github.com/snap-stanford/KGReasoning"
            )
    sys.path.insert(0, str(directory))
    try:
        import dataloader
        import models
        import util
    except ImportError as exc:
        raise SystemExit(f"importing KGReasoning failed ({exc}); it needs tqdm: pip install tqdm") from None
    return models, dataloader, util


def reference_names() -> dict[tuple, str]:
    """KGReasoning's ``query_name_dict`` (its unions are named ``2u-DNF``, ``up-DNF``)."""
    from boxlib.query.kg import BETAE_STRUCTURES

    return {s: (f"{n}-DNF" if n in ("2u", "up") else n) for n, s in BETAE_STRUCTURES.items()}


def run_reference(directory: Path, release, steps: int, seed: int, say: Report):
    """The reference's training loop for ``steps`` optimizer steps and its test_step, on
    ``release`` (a :class:`~boxlib_plugins.kg.release.BetaERelease` of the nine structures
    without negation: the pickles' own dictionaries, checked)."""
    models, dataloader, util = import_reference(directory)
    from torch.utils.data import DataLoader

    names = reference_names()
    util.set_global_seed(seed)
    ne, nr = release.n_entities, release.n_relations
    queries = release.queries["train"]
    path = {s: q for s, q in queries.items() if names[s] in ("1p", "2p", "3p")}
    other = {s: q for s, q in queries.items() if s not in path}

    def stream(part):
        data = dataloader.TrainDataset(util.flatten_query(part), ne, nr, NEGATIVES, release.train_answers)
        loader = DataLoader(
            data, batch_size=BATCH, shuffle=True, num_workers=REFERENCE["cpu_num"], collate_fn=data.collate_fn
        )
        return dataloader.SingledirectionalOneShotIterator(loader)

    start = time.perf_counter()
    path_it, other_it = stream(path), (stream(other) if other else None)
    model = models.KGReasoning(
        nentity=ne,
        nrelation=nr,
        hidden_dim=DIM,
        gamma=REFERENCE["gamma"],
        geo="box",
        use_cuda=False,
        box_mode=REFERENCE["box_mode"],
        test_batch_size=16,
        query_name_dict=names,
    )
    args = argparse.Namespace(cuda=False, test_batch_size=16, test_log_steps=10**9, print_on_screen=False)
    lr = REFERENCE["lr"]
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    iterations = max(1, round(steps / (3 if other_it else 1)))
    warm_up = iterations // 2  # main.py: warm_up_steps = max_steps // 2, then lr / 5
    times: list[float] = []
    for it in range(iterations):
        order = [path_it, other_it, path_it] if other_it else [path_it]
        for stream_it in order:
            t = time.perf_counter()
            log = model.train_step(model, optimizer, stream_it, args, it)
            times.append(time.perf_counter() - t)
        if it >= warm_up:
            lr /= 5
            optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
            warm_up = int(warm_up * 1.5)
    train_seconds = time.perf_counter() - start
    say(f"  reference: {len(times)} steps in {train_seconds:.1f} s, last loss {log['loss']:.4f}")

    test = util.flatten_query(release.queries["test"])
    loader = DataLoader(
        dataloader.TestDataset(test, ne, nr),
        batch_size=16,
        num_workers=REFERENCE["cpu_num"],
        collate_fn=dataloader.TestDataset.collate_fn,
    )
    t = time.perf_counter()
    easy, hard = release.easy_answers["test"], release.hard_answers["test"]
    metrics = model.test_step(model, easy, hard, args, loader, names)
    eval_seconds = time.perf_counter() - t
    per = {names[s].split("-")[0]: m["MRR"] for s, m in metrics.items()}
    return model, times, train_seconds, eval_seconds, per


class ReferenceRanker:
    """The reference model behind boxlib's evaluator: its logits against every entity."""

    def __init__(self, model, dataset):
        from boxlib.query import betae_name, to_betae

        self.model, self.dataset, self.names = model, dataset, reference_names()
        self._to_betae, self._betae_name = to_betae, betae_name

    def evaluate(self, split: str):
        from boxlib_plugins.anthem.task import RankingTask

        ranker = self

        class _Task(RankingTask):
            eval_batch_size = 64

            def all_scores(self, queries):
                return ranker.all_scores(queries)

        task = _Task()
        task._setup_task(self.dataset, 1, False)
        return task.evaluate(split, tuple(METRICS), by_kind=_structure)

    def all_scores(self, queries) -> torch.Tensor:
        from boxlib.query.kg import BETAE_STRUCTURES

        def flat(t):
            return [x for part in t for x in flat(part)] if isinstance(t, tuple) else [t]

        by_structure, rows = collections.defaultdict(list), collections.defaultdict(list)
        for i, q in enumerate(queries):
            s = BETAE_STRUCTURES[self._betae_name(q)]
            by_structure[s].append(flat(self._to_betae(q)))
            rows[s].append(i)
        batch = {s: torch.LongTensor(v) for s, v in by_structure.items()}
        everything = torch.arange(self.model.nentity).repeat(len(queries), 1)
        with torch.no_grad():
            _, logits, _, order = self.model(None, everything, None, batch, rows)
        out = torch.empty_like(logits)
        out[torch.as_tensor(order)] = logits
        return out


# -- boxlib's query2box ----------------------------------------------------------------------
def q2b_config(geometry: str, release: Path, steps: int, seed: int, out: Path) -> dict:
    raw = copy.deepcopy({k: v for k, v in SETTINGS.items() if k != "validation"})
    raw["data"] = {"name": "betae", "path": str(release), "structures": list(STRUCTURES)}
    raw["model"] = {**raw["model"], "geometry": geometry, "dim": DIM, "negatives": NEGATIVES}
    raw["trainer"].update(
        max_steps=steps,
        batch_size=BATCH,
        log_every_n_steps=10,
        checkpoint_every_n_steps=None,
        progress=False,
        tensorboard=False,
    )
    raw["scheduler"]["warmup_steps"] = min(raw["scheduler"]["warmup_steps"], max(1, steps // 10))
    raw.update(seed=seed, output_dir=str(out))
    return raw


def run_boxlib(
    geometry: str, release: Path, steps: int, seed: int, work: Path, say: Report, reference_optimizer: bool = False
):
    import boxlib.train.trainer as trainer_module

    name = f"query2box-{geometry}" + ("-reference-lr" if reference_optimizer else "")
    raw = q2b_config(geometry, release, steps, seed, work / name)
    if reference_optimizer:
        # The reference's optimizer: Adam at 1e-4, divided by five half-way.
        raw["optimizer"] = {"name": "adam", "lr": REFERENCE["lr"]}
        raw["scheduler"] = {"name": "step", "step_size": max(1, steps // 2), "gamma": 0.2}
    # Per-step times: the trainer's own step, wrapped (no change to what it does).
    times: list[float] = []
    original = trainer_module.Trainer._train_batch

    def timed(self, batch):
        t = time.perf_counter()
        original(self, batch)
        times.append(time.perf_counter() - t)

    trainer_module.Trainer._train_batch = timed
    try:
        windows, seconds, result = train_and_time(raw)
    finally:
        trainer_module.Trainer._train_batch = original
    model = boxlib.load(result.last_checkpoint)
    model.eval()
    t = time.perf_counter()
    metrics = model.evaluate("test", tuple(METRICS), by_kind=_structure)
    eval_seconds = time.perf_counter() - t
    say(f"  boxlib {name}: {len(times)} steps in {seconds:.1f} s (fit, including data set-up and compiling)")
    return model, times, seconds, eval_seconds, _per_structure(metrics), raw


def profile_boxlib(geometry: str, dataset, seed: int, say: Report, steps: int = 5, rows: int = 12) -> None:
    """Where the time of a boxlib query2box step goes: ``torch.profiler`` over ``steps``
    steps (collate, loss, backward, Adam) after three warm-up steps (compilation)."""
    import random

    from torch.profiler import profile

    from boxlib.plugins import host

    torch.manual_seed(seed)
    kwargs = {k: v for k, v in SETTINGS["model"].items() if k != "name"}
    kwargs.update(geometry=geometry, dim=DIM, negatives=NEGATIVES)
    model = host().registries["model"].create("query2box", dataset=dataset, **kwargs)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    examples, rng = model.training_examples(), random.Random(seed)

    def step():
        loss = model.training_loss(model.collate(rng.sample(examples, BATCH)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    with profile() as prof:
        for _ in range(steps):
            step()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    say(f"  where a boxlib {geometry} step goes (torch.profiler, self CPU time over {steps} steps, top {rows}):")
    for e in events[:rows]:
        name = e.key if len(e.key) <= 60 else e.key[:57] + "..."
        share, ms = e.self_cpu_time_total / total, e.self_cpu_time_total / steps / 1e3
        say(f"    {name:<60} {share:>6.1%} {ms:>8.1f} ms/step {e.count // steps:>5} calls")


def _per_structure(metrics: dict) -> dict[str, float]:
    return {s: metrics[f"{s}/filtered_mrr"] for s in STRUCTURES if f"{s}/filtered_mrr" in metrics}


def _steady(times: list[float], warmup: int) -> float:
    rest = times[warmup:] or times
    return len(rest) / sum(rest)


def _mean(per: dict[str, float]) -> float:
    values = [v for v in per.values() if not math.isnan(v)]
    return sum(values) / len(values) if values else math.nan


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kgreasoning", type=Path, help="checkout of snap-stanford/KGReasoning")
    parser.add_argument("--steps", type=int, default=450, help="optimizer steps of each Query2Box run")
    parser.add_argument("--warmup", type=int, default=10, help="first steps left out of steps/s")
    parser.add_argument("--anthem-steps", type=int, default=60)
    parser.add_argument("--geometries", nargs="+", help="default: every registered geometry")
    parser.add_argument("--query2box-geometries", nargs="+", default=["euclidean"])
    parser.add_argument("--data-dir", type=Path, help="a BetaE release (default: the WordNet artifact subtree)")
    parser.add_argument("--skip-anthem", action="store_true")
    parser.add_argument(
        "--reference-optimizer",
        action="store_true",
        help="also train boxlib with the reference's optimizer settings (Adam 1e-4, /5 half-way)",
    )
    parser.add_argument("--profile", action=argparse.BooleanOptionalAction, default=True, help="profile a few steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the report here")
    args = parser.parse_args(argv)

    say = Report()
    load = os.getloadavg()
    say(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start"
    )
    with tempfile.TemporaryDirectory(prefix="boxlib-perf-training-") as tmp:
        work = Path(tmp)
        if not args.skip_anthem:
            run_anthem(geometry_names(args.geometries), args.anthem_steps, work, say)
            say()

        if args.data_dir is not None:
            release = args.data_dir.resolve()
        else:
            from boxlib.plugins import host

            data = host().registries["dataset"].create("wordnet_kg", **QUICK["data"])
            release = Path(data.metadata["cache_dir"])
        say(f"Query2Box on the BetaE release {release.name} ({release}), {args.steps} optimizer steps of")
        say(f"{BATCH} queries with {NEGATIVES} negatives each, d = {DIM}; steps/s after the first {args.warmup} steps")
        from boxlib.plugins import host

        dataset = host().registries["dataset"].create("betae", path=str(release), structures=list(STRUCTURES))
        rows = []
        if args.profile:
            for geometry in args.query2box_geometries:
                profile_boxlib(geometry, dataset, args.seed, say)
        for geometry in args.query2box_geometries:
            _, times, wall, eval_s, per, raw = run_boxlib(geometry, release, args.steps, args.seed, work, say)
            opt = raw["optimizer"]
            rows.append((f"boxlib query2box {geometry} (adam lr {opt['lr']:g}, cosine)", times, wall, eval_s, per))
            if args.reference_optimizer:
                _, times, wall, eval_s, per, _ = run_boxlib(
                    geometry, release, args.steps, args.seed, work, say, reference_optimizer=True
                )
                rows.append((f"boxlib query2box {geometry} (adam lr 1e-4, /5 half-way)", times, wall, eval_s, per))
        if args.kgreasoning is not None:
            from boxlib_plugins.kg.release import read_release

            rel = read_release(release, structures=STRUCTURES, splits=("train", "test"))
            model, times, wall, eval_s, per = run_reference(args.kgreasoning, rel, args.steps, args.seed, say)
            rows.append(("KGReasoning --geo box (adam lr 1e-4, /5 half-way)", times, wall, eval_s, per))
            ours = ReferenceRanker(model, dataset).evaluate("test")
            cross = _per_structure(ours)
            say(
                "  the reference model ranked by boxlib's evaluator: average filtered MRR "
                f"{_mean(cross):.4f} (its own test_step: {_mean(per):.4f}); largest difference per structure "
                f"{max(abs(cross[s] - per[s]) for s in per if s in cross):.1e}"
            )
        say()
        structures = [s for s in STRUCTURES if any(s in r[4] for r in rows)]
        say(
            f"{'system':<52} {'steps':>5} {'steps/s':>8} {'wall s':>7} {'eval s':>6} {'MRR avg':>8}  "
            + " ".join(f"{s:>6}" for s in structures)
        )
        for name, times, wall, eval_s, per in rows:
            say(
                f"{name:<52} {len(times):>5} {_steady(times, args.warmup):>8.3f} {wall:>7.1f} {eval_s:>6.1f} "
                f"{_mean(per):>8.4f}  " + " ".join(f"{per.get(s, math.nan):>6.3f}" for s in structures)
            )
        if args.kgreasoning is not None:
            ref = rows[-1]
            say()
            for name, times, wall, _, per in rows[:-1]:
                speed = _steady(times, args.warmup) / _steady(ref[1], args.warmup)
                say(
                    f"goal: {name}: {speed:.2f}x the reference's steps/s (goal 1.5x) -> "
                    f"{'met' if speed >= 1.5 else 'NOT met'}; wall time {ref[2] / wall:.2f}x; average filtered MRR "
                    f"{_mean(per):.4f} vs {_mean(ref[4]):.4f} -> {'met' if _mean(per) >= _mean(ref[4]) else 'NOT met'}"
                )
    load = os.getloadavg()
    say(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(say.lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
