"""Checkpoint files: plain data only, written atomically, read without running pickled code.

A checkpoint is one ``torch.save`` file holding a dict of tensors and plain Python values
(``dict``, ``list``, ``tuple``, ``str``, ``int``, ``float``, ``bool``, ``None``), so
``torch.load(weights_only=True)`` reads it and never executes code from the file.
:func:`save_checkpoint` checks that before writing anything; :func:`load_checkpoint`
turns every way a file can be unreadable into a :class:`CheckpointError` naming it.

Writes go to a temporary file in the target's directory, are flushed and fsynced, and
replace the target with ``os.replace`` (atomic on POSIX and Windows), so a crash or a
full disk leaves the previous checkpoint untouched.

RNG states are stored as tensors and numbers: :func:`capture_rng` / :func:`restore_rng`
cover Python's ``random``, NumPy's legacy global generator, torch's CPU generator and,
when CUDA has been initialised, every CUDA device's generator.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import random
import re
import tempfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "CheckpointError",
    "atomic_write",
    "capture_rng",
    "check_plain_data",
    "load_checkpoint",
    "nonfinite_tensors",
    "restore_rng",
    "save_checkpoint",
]

FORMAT = "boxlib.train.checkpoint"
FORMAT_VERSION = 1
#: Keys every checkpoint written by :class:`~boxlib.train.Trainer` has.
REQUIRED_KEYS = ("model", "optimizer", "scheduler", "trainer", "sampler", "rng", "config", "versions")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be written or read; the message names the file."""


# -- writing ----------------------------------------------------------------------------
def atomic_write(path: str | os.PathLike, write: Any) -> None:
    """Create ``path`` through ``write(file)`` on a temporary file in the same directory,
    fsync it, then move it into place; on any error the old ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    # Make the rename itself durable; not every platform can open a directory.
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def save_checkpoint(state: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write ``state`` (plain data, see module docstring) atomically to ``path``.

    :raises TypeError: ``state`` holds something ``weights_only`` loading would refuse;
        the message gives the key path. Nothing is written then.
    """
    check_plain_data(state)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **state}
    try:
        atomic_write(path, lambda f: torch.save(payload, f))
    except OSError as exc:
        raise CheckpointError(f"could not write checkpoint {path}: {exc}") from exc


# Exact types: subclasses (numpy.float64, torch's TorchVersion, enums) pickle as their
# own class, which weights_only loading refuses.
_PLAIN = (str, int, float, bool, type(None))


def check_plain_data(value: Any, where: str = "checkpoint") -> None:
    """Raise ``TypeError`` naming the first entry of ``value`` that is not a tensor or plain data."""
    if isinstance(value, torch.Tensor) or type(value) in _PLAIN:
        return
    if type(value) in (dict, OrderedDict):
        for key, item in value.items():
            if type(key) not in (str, int):
                raise TypeError(f"cannot checkpoint {where}: key {key!r} is a {type(key).__name__}, not str or int")
            check_plain_data(item, f"{where}[{key!r}]")
    elif type(value) in (list, tuple, torch.Size):
        for i, item in enumerate(value):
            check_plain_data(item, f"{where}[{i}]")
    else:
        raise TypeError(
            f"cannot checkpoint {where}: a {type(value).__module__}.{type(value).__qualname__} is not a tensor or "
            "plain data, and loading with weights_only=True would refuse it; store its state as tensors/numbers"
        )


def nonfinite_tensors(tensors: Mapping[str, Any]) -> list[str]:
    """Names of the floating-point tensors in ``tensors`` that hold a NaN or an infinity."""
    names = [k for k, t in tensors.items() if isinstance(t, torch.Tensor) and t.is_floating_point()]
    if not names:
        return []
    finite = torch.stack([torch.isfinite(tensors[k]).all().cpu() for k in names])  # one sync
    return [k for k, ok in zip(names, finite.tolist()) if not ok]


# -- reading ----------------------------------------------------------------------------
def load_checkpoint(path: str | os.PathLike, *, required: tuple[str, ...] = REQUIRED_KEYS) -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)`` onto the CPU.

    :raises CheckpointError: missing file, truncated or corrupt file, objects other than
        plain data, not a boxlib checkpoint, or missing keys; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if unsafe:
            raise CheckpointError(
                f"checkpoint {path} holds objects other than tensors and plain data ({unsafe.group(1)}); refusing "
                "to load it, since that would execute code from the file"
            ) from None
        raise CheckpointError(f"checkpoint {path} is corrupt and cannot be read (not a torch.save file)") from None
    except Exception as exc:  # truncated zip archives, short reads, bad magic numbers, ...
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupt and cannot be read ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a boxlib training checkpoint (no format marker {FORMAT!r})")
    if state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {state.get('format_version')!r}; this boxlib reads "
            f"version {FORMAT_VERSION}"
        )
    missing = [k for k in required if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(missing)}")
    return state


# -- random number generators -----------------------------------------------------------
def capture_rng() -> dict[str, Any]:
    """This process's global RNG states as tensors and numbers."""
    version, internal, gauss = random.getstate()
    algorithm, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state = {
        "python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64), "gauss_next": gauss},
        "numpy": {
            "algorithm": algorithm,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"].tolist()), py["gauss_next"]))
    npy = state["numpy"]
    np.random.set_state(
        (npy["algorithm"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"], npy["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
