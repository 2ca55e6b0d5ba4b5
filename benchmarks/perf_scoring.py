"""Box scoring of B query regions against N item points, against a tuned kernel and the
straightforward path, measured in one run on the same tensors.

    python benchmarks/perf_scoring.py [--items 1000000] [--queries 64] [--dim 32]
        [--straightforward-items 100000] [--geometries NAME ...] [--out FILE]

For every registered geometry (third-party ones included) it times:

* ``kernel``: ``geometry.distance_to_region_matrix(regions, items)`` (no gradients), the
  fused kernel of :mod:`boxlib.scoring` for the built-ins, the chunked broadcast default
  for any other geometry;
* ``cdist``: ``torch.cdist(centers, items, p=1)`` on the same tensors, a tuned kernel that
  does about half the elementwise work of a box distance;
* ``straightforward``: plain broadcast PyTorch, chunked over items: ``|x - c|`` for the
  Euclidean box; geoopt's log map at the center and parallel transport to the origin
  (``geometry.reference_tangent_coords``) for the hyperbolic geometries; the geometry's
  own ``distance_to_region`` for any other. Timed on all items for Euclidean, else on
  the first ``--straightforward-items`` items and scaled linearly to ``N`` (marked in
  the table);
* the public API: ``QueryExecutor.distances`` and ``QueryExecutor.topk`` (k = 10) for B
  single-term queries, and ``model.rank`` of an ANTHEM model (one query, ``items=`` the
  points) over a catalogue of ``--rank-items`` items;
* the peak memory of ``QueryExecutor.topk`` in a fresh subprocess: resident memory
  sampled every millisecond, above what it was before the call, against the size of the
  item matrix.

``max rel err`` compares the kernel with the straightforward path on the timed subset
(for float32 geoopt that includes geoopt's own rounding); ``vs float64`` compares it, on
the first 5,000 items, with the straightforward path evaluated in float64,
``straightfwd vs f64`` shows how far the float32 straightforward path itself is from that,
and ``vs boxlib f64`` compares the kernel with boxlib's own ``distance_to_region`` in
float64 (the reference of ``tests/test_scoring.py``).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

import boxlib
from boxlib import Region
from boxlib.bench.common import geometry_names
from boxlib.query.execute import QueryExecutor, TableEmbedder

ALPHA = 0.2


def make_data(name: str, n: int, b: int, dim: int, seed: int = 0):
    """Items and regions of geometry ``name``: canonical vectors ~ N(0, 0.5²) per axis
    mapped by ``expmap0`` (radius about 2.8 at d = 32), offsets uniform in [0, 0.5]."""
    g = boxlib.get_geometry(name, dim)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        items = g.expmap0(torch.randn(n, dim, generator=gen) * 0.5).contiguous()
        centers = g.expmap0(torch.randn(b, dim, generator=gen) * 0.5).contiguous()
    offsets = torch.rand(b, dim, generator=gen) * 0.5
    return g, items, Region(centers, offsets)


def straightforward(g, region: Region, items: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    """The box distance the plain way: per chunk of items, every pair's canonical
    coordinates as a ``[B, chunk, d]`` tensor, then the box terms."""
    out = []
    with torch.no_grad():
        for s in range(0, items.shape[0], chunk):
            x = items[None, s : s + chunk]
            c = region.center[:, None]
            if g.name == "euclidean":
                t = (x - c).abs()
            elif hasattr(g, "reference_tangent_coords"):
                t = g.reference_tangent_coords(c.expand(-1, x.shape[1], -1), x.expand(c.shape[0], -1, -1)).abs()
            else:
                out.append(g.distance_to_region(region[:, None], x, ALPHA))
                continue
            o = region.offset[:, None]
            out.append(torch.relu(t - o).sum(-1) + ALPHA * torch.minimum(t, o).sum(-1))
    return torch.cat(out, dim=1)


def best_time(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def rel_err(got: torch.Tensor, ref: torch.Tensor) -> float:
    ref = ref.double()
    return float(((got.double() - ref).abs() / ref.abs().clamp_min(1e-12)).max())


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_probe(args) -> None:
    """Subprocess: peak resident memory of ``QueryExecutor.topk`` above its start."""
    g, items, region = make_data(args.geometries[0], args.items, args.queries, args.dim)
    table = {f"q{i}": region[i] for i in range(args.queries)}
    executor = QueryExecutor(TableEmbedder(g, table))
    queries = list(table)
    with torch.no_grad():
        executor.topk(queries, items[:8192], k=10)  # compile (or load) the kernel first
    base = rss_bytes()
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(0.001)

    thread = threading.Thread(target=sample, daemon=True)
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    thread.start()
    with torch.no_grad():
        executor.topk(queries, items, k=10)
    done.set()
    thread.join()
    maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "peak_extra": peak[0] - base,
                "maxrss_delta": max(0, maxrss_after - maxrss_before),
                "items_bytes": items.numel() * items.element_size(),
            }
        )
    )


def measure_memory(name: str, args) -> dict:
    cmd = [sys.executable, __file__, "--memory-probe", "--geometries", name]
    cmd += ["--items", str(args.items), "--queries", str(args.queries), "--dim", str(args.dim)]
    cmd += ["--threads", str(torch.get_num_threads())]
    result = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if result.returncode != 0:
        raise RuntimeError(f"memory probe for {name} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def time_rank(name: str, items: torch.Tensor, args) -> tuple[float, int]:
    """Seconds per ``model.rank`` call of an ANTHEM model over ``--rank-items`` items."""
    from boxlib_plugins.anthem.model import AnthemModel

    m = min(args.rank_items, items.shape[0])
    titles = [f"item {i}" for i in range(m)]
    model = AnthemModel(items=titles, geometry=name, dim=args.dim, vocab_size=1 << 12, max_title_tokens=4)
    points = items[:m]
    model.rank("item 7", items=points, k=10)  # warm up
    return best_time(lambda: model.rank("item 7", items=points, k=10), args.repeat), m


def measure(names: list[str], args) -> list[dict]:
    """Every timing of every geometry (see the module docstring).

    The timings that the goals compare (kernel, cdist, executor) run in interleaved
    rounds, every geometry once per round, and keep each one's best round, so that a
    burst of load from other processes does not fall on one geometry only.
    """
    data = {name: make_data(name, args.items, args.queries, args.dim) for name in names}
    timers = {}
    for name, (g, items, region) in data.items():
        table = {f"q{i}": region[i] for i in range(args.queries)}
        executor = QueryExecutor(TableEmbedder(g, table), alpha=ALPHA)
        queries = list(table)
        with torch.no_grad():
            g.distance_to_region_matrix(region, items[:8192], ALPHA)  # compile (or load) the kernels
        timers[name, "kernel"] = functools.partial(g.distance_to_region_matrix, region, items, ALPHA)
        timers[name, "cdist"] = functools.partial(torch.cdist, region.center, items, p=1)
        timers[name, "dist"] = functools.partial(executor.distances, queries, items)
        timers[name, "topk"] = functools.partial(executor.topk, queries, items, k=10)
        timers[name, "top1"] = functools.partial(executor.topk, queries[:1], items, k=10)
    best = dict.fromkeys(timers, float("inf"))
    with torch.no_grad():
        for _ in range(args.repeat):
            for key, fn in timers.items():
                start = time.perf_counter()
                fn()
                best[key] = min(best[key], time.perf_counter() - start)
    del timers

    rows = []
    for name, (g, items, region) in data.items():
        with torch.no_grad():
            fast = g.distance_to_region_matrix(region, items, ALPHA)
        # The plain Euclidean path is quick enough to time in full.
        m = args.items if name == "euclidean" else min(args.straightforward_items, args.items)
        start = time.perf_counter()
        plain = straightforward(g, region, items[:m])
        t_plain = (time.perf_counter() - start) * args.items / m
        small = min(5000, m)
        r64 = Region(region.center.double(), region.offset.double())
        plain64 = straightforward(g, r64, items[:small].double())
        ref64 = g.distance_to_region(r64[:, None], items[None, :small].double(), ALPHA)
        row = {what: best[name, what] for what in ("kernel", "cdist", "dist", "topk", "top1")}
        row.update(
            name=name,
            plain=t_plain,
            plain_items=m,
            err=rel_err(fast[:, :m], plain),
            err64=rel_err(fast[:, :small], plain64),
            err_plain=rel_err(plain[:, :small], plain64),
            err_ref64=rel_err(fast[:, :small], ref64),
        )
        del fast, plain
        if not args.no_rank:
            row["rank"], row["rank_items"] = time_rank(name, items, args)
        if not args.no_memory:
            row["memory"] = measure_memory(name, args)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=64)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--straightforward-items", type=int, default=100_000)
    parser.add_argument("--rank-items", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5, help="best of this many interleaved rounds")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice, all cores)")
    parser.add_argument("--geometries", nargs="+", metavar="NAME", help="default: every registered geometry")
    parser.add_argument("--no-memory", action="store_true", help="skip the top-k memory subprocess")
    parser.add_argument("--no-rank", action="store_true", help="skip model.rank (needs the anthem plugin)")
    parser.add_argument("--out", type=Path, help="also write the report to this file")
    parser.add_argument("--memory-probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_probe:
        memory_probe(args)
        return
    names = geometry_names(args.geometries)
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    load = os.getloadavg()
    say(f"$ python benchmarks/perf_scoring.py {' '.join(sys.argv[1:])}")
    say(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start; B={args.queries}, N={args.items}, "
        f"d={args.dim}, float32, alpha={ALPHA}"
    )
    rows = measure(names, args)

    pairs = args.queries * args.items
    euclid = next((r["kernel"] for r in rows if r["name"] == "euclidean"), None)
    say()
    say("distance_to_region_matrix (kernel) against the references, same tensors, same run:")
    say(
        f"{'geometry':<18} {'kernel s':>9} {'pairs/s':>9} {'cdist s':>8} {'÷cdist':>7} {'÷euclid':>8} "
        f"{'straightfwd s':>14} {'speed-up':>9} {'max rel err':>12} {'vs float64':>11} {'straightfwd vs f64':>19} "
        f"{'vs boxlib f64':>14}"
    )
    for r in rows:
        scaled = "*" if r["plain_items"] < args.items else " "
        ratio_e = f"{r['kernel'] / euclid:>8.2f}" if euclid else f"{'-':>8}"
        say(
            f"{r['name']:<18} {r['kernel']:>9.3f} {pairs / r['kernel']:>9.3g} {r['cdist']:>8.3f} "
            f"{r['kernel'] / r['cdist']:>7.2f} {ratio_e} {r['plain']:>13.2f}{scaled} "
            f"{r['plain'] / r['kernel']:>8.1f}x {r['err']:>12.2e} {r['err64']:>11.2e} {r['err_plain']:>19.2e} "
            f"{r['err_ref64']:>14.2e}"
        )
    if any(r["plain_items"] < args.items for r in rows):
        say(
            f"* straightforward path timed on the first {args.straightforward_items} items and scaled linearly to "
            f"{args.items}; max rel err on those items"
        )
    say()
    say("the public API on the same tensors (k = 10):")
    header = f"{'geometry':<18} {'executor.distances s':>21} {'÷kernel':>8} {'executor.topk s':>16} {'pairs/s':>9}"
    header += f" {'topk B=1 s':>11}"
    if not args.no_rank:
        header += f" {'model.rank s':>13} {'rank items':>11}"
    if not args.no_memory:
        header += f" {'topk peak MiB':>14} {'÷item matrix':>13}"
    say(header)
    for r in rows:
        line = (
            f"{r['name']:<18} {r['dist']:>21.3f} {r['dist'] / r['kernel']:>8.2f} {r['topk']:>16.3f} "
            f"{pairs / r['topk']:>9.3g} {r['top1']:>11.3f}"
        )
        if "rank" in r:
            line += f" {r['rank']:>13.4f} {r['rank_items']:>11}"
        if "memory" in r:
            mem = r["memory"]
            line += f" {mem['peak_extra'] / 2**20:>14.1f} {mem['peak_extra'] / mem['items_bytes']:>13.2f}"
        say(line)
    load = os.getloadavg()
    say(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end")
    say()
    say("goals:")
    cd = next((r for r in rows if r["name"] == "euclidean"), None)
    if cd:
        say(f"  euclidean within 2x cdist: {cd['kernel'] / cd['cdist']:.2f}x -> {_ok(cd['kernel'] <= 2 * cd['cdist'])}")
    for r in rows:
        if r["name"] in ("poincare", "lorentz") and euclid:
            say(f"  {r['name']} within 3x euclidean: {r['kernel'] / euclid:.2f}x -> {_ok(r['kernel'] <= 3 * euclid)}")
    for r in rows:
        say(
            f"  {r['name']}: {r['plain'] / r['kernel']:.1f}x faster than straightforward -> "
            f"{_ok(r['plain'] >= 10 * r['kernel'])}; max rel err vs straightforward {r['err']:.1e} -> "
            f"{_ok(r['err'] <= 1e-5)} (the float32 straightforward path is {r['err_plain']:.1e} from its float64 "
            f"evaluation), vs its float64 evaluation {r['err64']:.1e} -> {_ok(r['err64'] <= 1e-5)}; "
            f"executor.distances {r['dist'] / r['kernel']:.2f}x the kernel time"
            + (
                f"; topk peak {r['memory']['peak_extra'] / r['memory']['items_bytes']:.2f}x the item matrix -> "
                f"{_ok(r['memory']['peak_extra'] < 2 * r['memory']['items_bytes'])}"
                if "memory" in r
                else ""
            )
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")


def _ok(flag: bool) -> str:
    return "met" if flag else "NOT met"


if __name__ == "__main__":
    main()
