"""Query × item box distances as one fused pass: the machinery behind
:meth:`Geometry.distance_to_region_matrix <boxlib.geometry.Geometry.distance_to_region_matrix>`.

Scoring ``B`` query regions against ``N`` item points needs ``B × N × d`` elementwise
terms (an L1 box distance has no matrix-product form), so the goal is to make that one
pass as lean as a tuned distance kernel such as ``torch.cdist(p=1)``:

* **Item-major blocks.** Items are stored transposed in blocks of :data:`BLOCK` items
  (fewer for wide items, :func:`block_items`), ``[blocks, d, block]`` (:func:`to_blocks`),
  so a vector register holds one coordinate of 16 items and the sum over the ``d`` axes
  is a chain of vector adds, with no horizontal reduction per pair. A block (128 KiB at
  d = 32, at most :data:`BLOCK_BYTES`) stays in L2 while every query of the batch passes
  over it. Whatever depends on items only (the block layout, the
  conformal factor of the Poincaré ball, the ball coordinates of hyperboloid points) is
  computed once per item chunk by :meth:`Geometry.prepare_points` and shared by every
  query of a batch (:class:`PreparedPoints`).
* **One fused loop.** The kernels (``box_distance_blocks`` in the built-in plugins' math
  modules) are plain PyTorch written so that TorchInductor fuses the per-pair scalars and
  the per-axis pass into C++/OpenMP loops with no ``B × N × d`` temporaries; :func:`kernel`
  compiles them with :func:`torch.compile` on first use. Where compiling is impossible
  (no C++ compiler, an unsupported platform) or disabled (``BOXLIB_COMPILE=0``), the same
  functions run eagerly on small slices.
* **Exactness.** The kernels evaluate the same quantities as ``distance_to_region`` up
  to rounding, and compute what would cancel (``1 − c|x|²``, hyperboloid points mapped to
  the ball as double-float numbers) from float64; ``tests/test_scoring.py`` compares them
  with the reference path at random and extreme inputs. Points a kernel cannot score to
  that accuracy are flagged when prepared (``PreparedPoints.outliers``) and scored by the
  reference path.

Calls that need gradients, tensors off the CPU and geometries without a kernel use the
reference broadcast path, chunked over items (:func:`chunked_matrix`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import warnings
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:  # pragma: no cover
    from boxlib.geometry import Geometry, Region

__all__ = [
    "BLOCK",
    "BLOCK_BYTES",
    "CALL_ITEMS",
    "CALL_PAIRS",
    "COMPILE_ENV",
    "MIN_COMPILED_ITEMS",
    "PreparedPoints",
    "REFERENCE_CHUNK_ELEMENTS",
    "MIN_COMPILED_CANDIDATES",
    "block_items",
    "box_terms",
    "candidate_distances",
    "check_alpha",
    "chunked_matrix",
    "compile_enabled",
    "compiles",
    "gap_blocks",
    "kernel",
    "kernel_matrix",
    "kernel_ready",
    "needs_reference",
    "query_fields",
    "query_gap_terms",
    "run_blocks",
    "to_blocks",
]

#: Items per block of the item-major layout: 128 KiB of float32 at d = 32, which a core's
#: L2 holds while every query of a batch passes over it.
BLOCK = 1024
#: The most bytes of item coordinates a block holds (:func:`block_items`).
BLOCK_BYTES = 512 * 1024
#: Items per call of a compiled kernel (the call parallelises over its blocks), and per
#: preparation when raw points are scored.
CALL_ITEMS = 65_536
#: Query × item pairs per call of a compiled kernel: its ``[blocks, B, BLOCK]`` buffers
#: stay at a few MiB, however many queries there are.
CALL_PAIRS = 1 << 22
#: Below this many items a kernel runs eagerly: compiling (seconds, once per process
#: and kernel) does not pay off, and small problems are quick either way.
MIN_COMPILED_ITEMS = 4_096
#: Numbers (``B × M × ambient_dim``) from which :func:`candidate_distances` is compiled:
#: a training batch of 512 queries × 129 candidates × d = 32 has 2.1 million.
MIN_COMPILED_CANDIDATES = 1 << 20
#: Target size (in numbers) of one temporary of an eager kernel or of the reference path.
REFERENCE_CHUNK_ELEMENTS = 1 << 20
#: Environment variable: ``0`` (or ``false``/``no``/``off``) runs kernels eagerly.
COMPILE_ENV = "BOXLIB_COMPILE"


@dataclasses.dataclass(frozen=True, eq=False)
class PreparedPoints:
    """Item points in the layout a geometry's distance kernel reads, from
    :meth:`Geometry.prepare_points <boxlib.geometry.Geometry.prepare_points>`.

    Prepare once, score many batches of regions: the executor prepares each item chunk
    once for all query groups. The fields after ``points`` are set by the geometry that
    prepared them and are only read by its own kernel.

    :param points: the points as given, ``[N, ambient_dim]`` (the reference path reads them).
    :param layout: name of the kernel layout (``""``: none, the reference path is used).
    :param key: what the layout depends on besides the points (e.g. the curvature); a
        geometry refuses points prepared with another key.
    :param blocks: item-major coordinates ``[ceil(N / block), d, block]``, zero-padded.
    :param blocks_lo: the rounding error of ``blocks`` (double-float coordinates) or None.
    :param gap: a per-item factor ``[ceil(N / block), block]`` (e.g. ``1 - c|x|²``) or None.
    :param outliers: indices of items the kernel cannot score accurately (scored by the
        reference path) or None.
    """

    points: Tensor
    layout: str = ""
    key: tuple = ()
    blocks: Tensor | None = None
    blocks_lo: Tensor | None = None
    gap: Tensor | None = None
    outliers: Tensor | None = None

    @property
    def size(self) -> int:
        """Number of items."""
        return self.points.shape[0]

    def __repr__(self) -> str:
        return f"PreparedPoints(size={self.size}, layout={self.layout!r}, dtype={self.points.dtype})"


def block_items(d: int, bytes_per_axis: int = 4) -> int:
    """Items per block for items of ``d`` axes of ``bytes_per_axis`` bytes each:
    :data:`BLOCK`, halved (down to 64) while a block would exceed :data:`BLOCK_BYTES`, so
    that it stays in a core's L2 cache while every query passes over it. Wide items need
    this: 1,024 hyperboloid points at d = 256 in double-float coordinates take 2 MiB, and
    the Lorentz kernel ran 3.2× slower at d = 256 than at 128 until blocks shrank."""
    items = BLOCK
    while items > 64 and items * d * bytes_per_axis > BLOCK_BYTES:
        items //= 2
    return items


def to_blocks(x: Tensor, block: int | None = None) -> Tensor:
    """``[N, d]`` → item-major blocks ``[ceil(N / block), d, block]``, zero-padded
    (``block``: :func:`block_items` of the points by default)."""
    n, d = x.shape
    block = block_items(d, x.element_size()) if block is None else block
    full, rest = divmod(n, block)
    out = x.new_empty(max(1, full + (rest > 0)), d, block)
    out[:full].copy_(x[: full * block].reshape(full, block, d).transpose(1, 2))
    if rest or not full:
        out[full:].zero_()
        out[full, :, :rest] = x[full * block :].T
    return out


def gap_blocks(g: Tensor, block: int, fill: float = 1.0) -> Tensor:
    """``[N]`` → ``[ceil(N / block), block]``, padded with ``fill``."""
    n = g.shape[0]
    nb = max(1, -(-n // block))
    out = g.new_full((nb * block,), fill)
    out[:n] = g
    return out.view(nb, block)


def box_terms(
    t: Tensor, offset: Tensor, alpha: Tensor, gap_minus_offset: Tensor | None = None, twice_gap: Tensor | None = None
) -> Tensor:
    """Per-axis terms of ``outside + alpha * inside`` from absolute canonical coordinates
    ``t``, summed by the caller, as :meth:`Geometry.distance_to_region_parts` defines them.

    ``outside`` per axis is ``relu(t − o)``, or for an empty box (``gap`` set)
    ``max(relu(t − o) + g, 2g) = max(t − o + g, 2g)``; ``inside`` is ``min(t, o)``.
    Written without cancellation, so each term is exact to rounding whatever the offsets.
    """
    inside = alpha * torch.minimum(t, offset)
    if gap_minus_offset is None or twice_gap is None:
        return torch.relu(t - offset) + inside
    return torch.maximum(t + gap_minus_offset, twice_gap) + inside


def query_gap_terms(region: Region, dtype: torch.dtype) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """``(offset, gap − offset, 2 gap)`` of ``region`` in ``dtype``; the last two are None
    when the region has no ``gap`` (the kernels then skip the empty-box terms)."""
    o = region.offset.detach().to(dtype).contiguous()
    if region.gap is None:
        return o, None, None
    g = region.gap.detach().to(dtype)
    return o, (g - o).contiguous(), (2 * g).contiguous()


# -- compiling ---------------------------------------------------------------------------
def compile_enabled() -> bool:
    """Whether kernels are compiled: ``BOXLIB_COMPILE`` is not ``0``/``false``/``no``/``off``
    and an earlier compilation in this process has not failed."""
    flag = os.environ.get(COMPILE_ENV, "1").strip().lower()
    return flag not in ("0", "false", "no", "off") and not _FAILED


_FAILED: list[str] = []


@functools.cache
def _compiled(fn: Callable) -> Callable:
    options = {}
    try:
        import torch._inductor.config as inductor_config

        # The kernels read a per-axis term twice (outside and inside parts); Inductor's
        # default would store it as a [blocks, B, d, BLOCK] buffer instead of fusing it.
        if hasattr(inductor_config, "realize_reads_threshold"):
            options["realize_reads_threshold"] = 64
    except ImportError:  # pragma: no cover - torch without Inductor
        pass
    with _quiet_torch():
        return torch.compile(fn, dynamic=None, options=options or None)


@contextlib.contextmanager
def _quiet_torch():
    """Compiling imports torch.utils.mkldnn, which uses the deprecated
    ``torch.jit.script_method``: torch's own business, not the caller's."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.script", category=DeprecationWarning)
        yield


def compiles(items: int) -> bool:
    """Whether :func:`kernel` compiles a call over ``items`` items."""
    return items >= MIN_COMPILED_ITEMS and compile_enabled()


_QUERY_FIELDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def query_fields(region: Region, key: tuple, build: Callable[[], tuple]) -> tuple:
    """``build()`` — a kernel's per-query inputs — memoised on the ``region`` object.

    The executor scores the same :class:`~boxlib.geometry.Region` against every item
    chunk, so what depends on the queries only (centers mapped to the kernel's
    coordinates, gaps, offsets) is built once per batch rather than once per chunk.
    ``key`` must name everything else the fields depend on (geometry parameters, dtype,
    compiled or not); the tensors' version counters are added, so a region whose tensors
    were modified in place is rebuilt.
    """
    tensors = (region.center, region.offset) + (() if region.gap is None else (region.gap,))
    full = (*key, *(t._version for t in tensors))
    memo = _QUERY_FIELDS.setdefault(region, {})
    if full not in memo:
        memo.clear()  # one entry per region: a new key supersedes the old one
        memo[full] = build()
    return memo[full]


def kernel(fn: Callable, items: int) -> Callable:
    """``fn`` compiled for a call over ``items`` items, or ``fn`` itself (eager) when
    compiling is disabled, has failed before or does not pay off (fewer than
    :data:`MIN_COMPILED_ITEMS` items)."""
    if not compiles(items):
        return fn
    compiled = _compiled(fn)

    @functools.wraps(fn)
    def call(*args):
        if _FAILED:
            return fn(*args)
        for a in args:
            if isinstance(a, Tensor) and a.dim() > 0:
                torch._dynamo.maybe_mark_dynamic(a, 0)
        try:
            with _quiet_torch(), torch.no_grad():  # kernels never need gradients: one graph for both modes
                return compiled(*args)
        except Exception as exc:  # noqa: BLE001 - any compiler failure: fall back, once, loudly
            return _eager_after_failure(fn, args, exc)

    call.compiled = True
    return call


def _eager_after_failure(fn: Callable, args: tuple, exc: Exception):
    """``fn(*args)`` run eagerly after its compiled version raised ``exc``.

    A mistake in the call itself fails eagerly too, and raises from here (without
    disabling compilation); only a compiler failure reaches the warning, once, and turns
    compilation off for the rest of the process.
    """
    result = fn(*args)
    _FAILED.append(f"{type(exc).__name__}: {exc}")
    warnings.warn(
        f"boxlib.scoring: compiling the distance kernel {fn.__module__}.{fn.__qualname__} failed "
        f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); distances run eagerly "
        f"(slower) from now on. Install a C++ compiler for torch.compile, or set {COMPILE_ENV}=0 to "
        "silence this",
        RuntimeWarning,
        stacklevel=4,
    )
    return result


# -- each query against its own candidates (training) ------------------------------------------
def _candidates_eager(
    geometry: Geometry, center: Tensor, offset: Tensor, gap: Tensor | None, points: Tensor, alpha: float
) -> Tensor:
    from boxlib.geometry import Region

    region = Region._trusted(center[:, None], offset[:, None], None if gap is None else gap[:, None])
    return geometry.distance_to_region(region, points, alpha)


@functools.cache
def _compiled_candidates() -> Callable:
    with _quiet_torch():
        return torch.compile(_candidates_eager, dynamic=None)


def candidate_distances(geometry: Geometry, region: Region, points: Tensor, alpha: float) -> Tensor:
    """:meth:`Geometry.distance_to_candidates <boxlib.geometry.Geometry.distance_to_candidates>`:
    ``distance_to_region(region[:, None], points, alpha)`` for regions ``[B]`` and their
    candidates ``[B, M, ambient_dim]``, differentiable.

    From :data:`MIN_COMPILED_CANDIDATES` numbers on, the geometry's own
    ``distance_to_region`` is compiled with :func:`torch.compile` (forward and backward,
    through AOTAutograd): TorchInductor fuses the per-axis terms and the sums over axes
    into one loop each way, instead of the ``B × M × dim`` temporaries (and their saved
    copies for the backward pass) of the eager broadcast. Same maths, same clamps, so it
    works for any geometry, including third-party ones; batch and candidate counts are
    dynamic, so query groups of every size share one compiled graph.
    """
    if len(region.batch_shape) != 1:
        raise ValueError(
            f"distance_to_candidates needs regions with one batch dimension [B], got batch shape "
            f"{tuple(region.batch_shape)}"
        )
    b = region.batch_shape[0]
    if (
        not isinstance(points, Tensor)
        or points.dim() != 3
        or points.shape[0] != b
        or (points.shape[-1] != geometry.ambient_dim)
    ):
        shape = tuple(points.shape) if isinstance(points, Tensor) else type(points).__name__
        raise ValueError(
            f"distance_to_candidates needs candidates [B={b}, M, {geometry.ambient_dim}] for {geometry!r} "
            f"(each region's own points), got {shape}"
        )
    check_alpha(alpha)
    args = (geometry, region.center, region.offset, region.gap, points, alpha)
    if points.numel() < MIN_COMPILED_CANDIDATES or not compile_enabled():
        return _candidates_eager(*args)
    for t in args[1:5]:
        if isinstance(t, Tensor):
            torch._dynamo.maybe_mark_dynamic(t, 0)
    torch._dynamo.maybe_mark_dynamic(points, 1)
    try:
        with _quiet_torch():
            return _compiled_candidates()(*args)
    except Exception as exc:  # noqa: BLE001 - any compiler failure: fall back, once, loudly
        return _eager_after_failure(_candidates_eager, args, exc)


# -- running a kernel over item blocks ---------------------------------------------------------
def run_blocks(
    fn: Callable,
    item_fields: Sequence[Tensor | None],
    query_fields: Sequence[Tensor | None],
    n: int,
    out: Tensor | None = None,
) -> Tensor:
    """``[B, n]`` from a block kernel ``fn(*item_fields, *query_fields) -> [blocks, B, BLOCK]``.

    ``item_fields`` have the blocks as their first dimension; ``query_fields`` with a
    first dimension are per query, ``[B, ...]``, 0-d ones are constants; None passes
    through. Compiled kernels get up to :data:`CALL_ITEMS` items and :data:`CALL_PAIRS`
    pairs per call (at least two blocks); eager ones one block and a slice of queries at a
    time, so that their temporaries stay near :data:`REFERENCE_CHUNK_ELEMENTS` numbers.
    The result is written into ``out`` (``[B, n]``, e.g. a column slice of a larger
    matrix) when given.
    """
    first = next(f for f in item_fields if f is not None)
    nb, d, block = first.shape
    b = next(f for f in query_fields if f is not None and f.dim() > 0).shape[0]

    def per_query(f: Tensor | None) -> bool:
        return f is not None and f.dim() > 0

    run = kernel(fn, n)
    compiled = getattr(run, "compiled", False)
    if compiled and b == 1:
        # One compiled kernel serves every batch size >= 2 (size 1 would specialise).
        query_fields = [f.expand(2, *f.shape[1:]).contiguous() if per_query(f) else f for f in query_fields]
    step_blocks = max(2, min(CALL_ITEMS, CALL_PAIRS // max(b, 2)) // block) if compiled else 1
    step_queries = max(b, 2) if compiled else max(1, REFERENCE_CHUNK_ELEMENTS // (d * block))
    if out is None:
        out = torch.empty(b, n, dtype=first.dtype, device=first.device)
    full = n // block  # blocks without padding; the last one may be partial
    grid = out[:, : full * block].view(b, full, block)
    for s in range(0, nb, step_blocks):
        e = min(nb, s + step_blocks)
        if compiled and e - s == 1 and nb > 1:
            s = e - 2  # at least two blocks per call, for the same reason
        items = [None if f is None else f[s:e] for f in item_fields]
        for q in range(0, b, step_queries):
            qs = [f[q : q + step_queries] if per_query(f) else f for f in query_fields]
            res = run(*items, *qs)[:, : min(step_queries, b - q)]  # drop the padding query
            rows = slice(q, q + res.shape[1])
            if s < full:
                grid[rows, s : min(e, full)] = res[: min(e, full) - s].transpose(0, 1)
            if e > full and n > full * block:
                out[rows, full * block :] = res[full - s, :, : n - full * block]
    return out


# -- the reference path -------------------------------------------------------------------------
def kernel_ready(points: Tensor) -> bool:
    """Whether a kernel can read these points: float32 or float64, on the CPU."""
    return points.device.type == "cpu" and points.dtype in (torch.float32, torch.float64)


def needs_reference(region: Region, points: Tensor) -> bool:
    """Whether a kernel cannot serve this call: gradients are wanted, a tensor is off the
    CPU, the dtypes differ (the reference path promotes them as PyTorch does) or are
    neither float32 nor float64."""
    tensors = [region.center, region.offset, points] + ([region.gap] if region.gap is not None else [])
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return True
    return not kernel_ready(points) or any(t.device != points.device or t.dtype != points.dtype for t in tensors)


def chunked_matrix(
    geometry: Geometry, region: Region, points: Tensor, alpha: float, out: Tensor | None = None
) -> Tensor:
    """``distance_to_region(region[:, None], points[None], alpha)`` streamed over point
    chunks so that a ``B × chunk × ambient_dim`` temporary holds about
    :data:`REFERENCE_CHUNK_ELEMENTS` numbers; any geometry. Differentiable unless
    written into ``out``."""
    b, n = region.batch_shape[0], points.shape[0]
    step = max(1, REFERENCE_CHUNK_ELEMENTS // max(1, b * points.shape[-1]))
    if n <= step:
        result = geometry.distance_to_region(region[:, None], points[None], alpha)
        return result if out is None else out.copy_(result)
    if out is not None:
        for s in range(0, n, step):
            out[:, s : s + step] = geometry.distance_to_region(region[:, None], points[None, s : s + step], alpha)
        return out
    parts = [geometry.distance_to_region(region[:, None], points[None, s : s + step], alpha) for s in range(0, n, step)]
    return torch.cat(parts, dim=1)


def check_alpha(alpha) -> None:
    """``alpha`` (a number; a tensor is left to the caller) must lie in ``[0, 1]``: it
    weighs depth inside the box, and above 1 growing a box could increase the distance."""
    if isinstance(alpha, (int, float)) and not 0 <= alpha <= 1:
        raise ValueError(f"alpha weighs depth inside the box and must lie in [0, 1], got {alpha}")


def check_matrix_args(geometry: Geometry, region: Region, points, alpha, out: Tensor | None = None) -> None:
    """Argument checks of :meth:`Geometry.distance_to_region_matrix`, with errors that name the fix."""
    check_alpha(alpha)
    if len(region.batch_shape) != 1:
        raise ValueError(
            f"distance_to_region_matrix needs regions with one batch dimension [B], got batch shape "
            f"{tuple(region.batch_shape)}; flatten them with Region(center.reshape(-1, D), offset.reshape(-1, d))"
        )
    pts = points.points if isinstance(points, PreparedPoints) else points
    if not isinstance(pts, Tensor) or pts.dim() != 2 or pts.shape[-1] != geometry.ambient_dim:
        shape = tuple(pts.shape) if isinstance(pts, Tensor) else type(pts).__name__
        raise ValueError(
            f"distance_to_region_matrix needs points [N, {geometry.ambient_dim}] for {geometry!r}, got {shape}"
        )
    if out is not None:
        want = (region.batch_shape[0], pts.shape[0])
        if not isinstance(out, Tensor) or tuple(out.shape) != want or out.dtype != pts.dtype:
            got = f"{tuple(out.shape)} {out.dtype}" if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(
                f"distance_to_region_matrix out= must be a {pts.dtype} tensor of shape {want} (regions × points), "
                f"got {got}"
            )


def kernel_matrix(
    geometry: Geometry,
    region: Region,
    points: Tensor | PreparedPoints,
    alpha: float,
    layout: str,
    key: tuple,
    score: Callable[[Region, PreparedPoints, Tensor, Tensor | None], Tensor],
    out: Tensor | None = None,
) -> Tensor:
    """The body of a geometry's :meth:`~boxlib.geometry.Geometry.distance_to_region_matrix`
    override: checks, the reference path where a kernel cannot serve the call, and
    ``score(region, prepared, alpha, out) -> [B, n]`` over prepared points, writing into
    ``out`` when it is not None (raw points are prepared :data:`CALL_ITEMS` at a time, so
    memory stays bounded, and scored into column slices of one matrix). The result goes
    into ``out`` when it is given."""
    check_matrix_args(geometry, region, points, alpha, out)
    raw = points.points if isinstance(points, PreparedPoints) else points
    alpha_grad = isinstance(alpha, Tensor) and alpha.requires_grad and torch.is_grad_enabled()
    if alpha_grad or needs_reference(region, raw) or (isinstance(points, PreparedPoints) and not points.layout):
        return chunked_matrix(geometry, region, raw, alpha, out)
    if isinstance(points, PreparedPoints) and (points.layout, points.key) != (layout, key):
        raise ValueError(
            f"these points were prepared for layout {points.layout!r} {points.key}, but {geometry!r} reads "
            f"{layout!r} {key}; prepare them with this geometry's prepare_points()"
        )
    a = torch.as_tensor(alpha.detach() if isinstance(alpha, Tensor) else alpha, dtype=raw.dtype)
    if isinstance(points, PreparedPoints):
        return score(region, points, a, out)
    n = raw.shape[0]
    if n <= CALL_ITEMS:
        return score(region, geometry.prepare_points(raw), a, out)
    if out is None:
        out = torch.empty(region.batch_shape[0], n, dtype=raw.dtype)
    for s in range(0, n, CALL_ITEMS):
        score(region, geometry.prepare_points(raw[s : s + CALL_ITEMS]), a, out[:, s : s + CALL_ITEMS])
    return out


def patch_outliers(
    geometry: Geometry, out: Tensor, region: Region, points: Tensor, alpha: float, rows: Tensor | None, cols
) -> Tensor:
    """Overwrite the rows (regions) and columns (items) a kernel cannot score accurately
    with the reference path's values."""
    if cols is not None and cols.numel():
        out[:, cols] = chunked_matrix(geometry, region, points[cols], alpha).to(out.dtype)
    if rows is not None and rows.numel():
        out[rows] = chunked_matrix(geometry, region[rows], points, alpha).to(out.dtype)
    return out
