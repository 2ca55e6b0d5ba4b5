"""Where generated knowledge-graph releases live, and how one is built exactly once.

A release is identified by a key that hashes everything it depends on (parameters and
the content of its source files), so a cache entry never goes stale: other parameters
or changed sources give another key. The root is ``$BOXLIB_CACHE``, else
``~/.cache/boxlib``; releases go to ``<root>/kg/<name>-<key>/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .release import INFO_FILE, BetaERelease, write_release

__all__ = ["cache_root", "cached_release", "file_sha256"]


def cache_root() -> Path:
    """``$BOXLIB_CACHE``, else ``~/.cache/boxlib``."""
    configured = os.environ.get("BOXLIB_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "boxlib"


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The hex SHA-256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_release(
    name: str,
    params: Mapping[str, Any],
    build: Callable[[], BetaERelease],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    rebuild: bool = False,
) -> Path:
    """The directory of the release ``build()`` makes from ``params`` (JSON data), built
    on first use.

    Concurrent builds are safe: each writes a temporary directory and renames it into
    place; when another process got there first, its copy is kept and ours discarded.
    """
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    base = (Path(cache_dir) if cache_dir is not None else cache_root()) / "kg"
    target = base / f"{name}-{key}"
    if (target / INFO_FILE).exists() and not rebuild:
        return target
    release = build()
    release.info["cache_key_params"] = dict(params)
    try:
        base.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{name}-{key}-", dir=base))
    except OSError as exc:
        raise OSError(
            f"cannot write the knowledge-graph cache under {base}: {exc.strerror or exc}; "
            "set $BOXLIB_CACHE or pass cache_dir= to a writable directory"
        ) from None
    try:
        write_release(release, scratch)
        if rebuild and target.exists():
            shutil.rmtree(target)
        try:
            scratch.rename(target)
        except OSError:
            if not (target / INFO_FILE).exists():  # not a concurrent build that finished first
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target
