"""WordNet 3.0 noun hierarchies for reconstruction: ``wordnet_nouns`` and ``wordnet_mammals``.

Built on demand from the WordNet database files (``data.noun``, ``index.noun``; Debian's
``wordnet-base`` puts them in ``/usr/share/wordnet``) with :mod:`.wndb`, exactly as
Nickel & Kiela (2017, "Poincaré Embeddings for Learning Hierarchical Representations")
built theirs with NLTK (``wordnet/transitive_closure.py`` of facebookresearch/poincare-embeddings):

* **nouns**: every pair ``(u, v)`` such that ``v`` is reached from ``u`` by one or more
  hypernym (``@``) *or instance-hypernym* (``@i``) pointers. Their script takes
  ``closure(hypernyms)`` of every noun synset and adds, for every instance, the closure
  of its instance hypernyms and their hypernyms, which is this closure. On WordNet 3.0:
  82,115 synsets and 743,241 pairs, the counts of the paper. ``instances=False`` follows
  ``@`` only: 663,508 pairs over the 74,401 synsets that take part in one (the 7,714
  instance synsets have no ``@`` pointer and drop out).
* **mammals**: ``mammal.n.01`` and every synset below it (1,182 synsets, 6,542 pairs
  inside the subtree), minus the two that Nickel & Kiela's ``mammals_filter.txt`` removes
  (``tusker.n.01`` and ``female_mammal.n.01``, categories by feature or sex rather than by
  taxon): 1,180 synsets and 6,540 pairs. ``exclude=()`` keeps the whole subtree.

The closure takes a few seconds to build, so it is cached as a compressed NumPy archive
(no pickles) in ``$BOXLIB_CACHE`` (default ``~/.cache/boxlib``), keyed by the sha256 of
both source files: a changed file gives a new key and a fresh build, and a damaged cache
file is rebuilt with a warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
from boxlib_plugins.hierarchy.data import HierarchyDataset

from .wndb import HYPERNYMS, WordNetFileError, find_wordnet_dir, read_noun_database

__all__ = [
    "MAMMAL_EXCLUDE",
    "cache_directory",
    "noun_hierarchy",
    "wordnet_mammals",
    "wordnet_nouns",
]

#: Bump when the cached arrays change meaning or layout.
CACHE_VERSION = 1
#: Synsets below ``mammal.n.01`` left out by Nickel & Kiela (``wordnet/mammals_filter.txt``).
MAMMAL_EXCLUDE = ("tusker.n.01", "female_mammal.n.01")
_SOURCES = ("data.noun", "index.noun")


def cache_directory(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """``cache_dir``, else ``$BOXLIB_CACHE``, else ``~/.cache/boxlib``."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("BOXLIB_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "boxlib"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _text_array(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def _build(directory: Path, symbols: tuple[str, ...], sha: dict[str, str]) -> HierarchyDataset:
    synsets = read_noun_database(directory)
    offsets = sorted(synsets, key=lambda o: synsets[o].name)
    position = {o: i for i, o in enumerate(offsets)}
    parents = [[position[t] for s, t in synsets[o].pointers if s in symbols] for o in offsets]
    full = HierarchyDataset.from_parents("wordnet_nouns", [synsets[o].name for o in offsets], parents)
    # Nickel & Kiela's nodes are those that take part in a pair (all of them when instances count).
    used = torch.zeros(full.n_nodes, dtype=torch.bool)
    used[full.edges.reshape(-1)] = True
    new_id = torch.cumsum(used.to(torch.int64), 0) - 1
    nodes = tuple(name for name, keep in zip(full.nodes, used.tolist()) if keep)
    metadata = {
        "source": str(directory),
        "sha256": sha,
        "pointers": list(symbols),
        "instances": "@i" in symbols,
        "synsets_in_file": len(synsets),
    }
    return HierarchyDataset("wordnet_nouns", nodes, new_id[full.edges], metadata)


def _save(path: Path, dataset: HierarchyDataset) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(
                f,
                nodes=_text_array("\n".join(dataset.nodes)),
                edges=dataset.edges.numpy().astype(np.int32),
                metadata=_text_array(json.dumps(dict(dataset.metadata))),
            )
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache may be shared
        os.replace(tmp, path)  # atomic: a reader never sees half a file
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load(path: Path) -> HierarchyDataset:
    with np.load(path, allow_pickle=False) as archive:
        nodes = archive["nodes"].tobytes().decode("utf-8").split("\n")
        edges = torch.from_numpy(archive["edges"].astype(np.int64))
        metadata = json.loads(archive["metadata"].tobytes().decode("utf-8"))
    return HierarchyDataset("wordnet_nouns", tuple(nodes), edges, metadata)


def noun_hierarchy(
    wordnet_dir: str | os.PathLike[str] | None = None,
    *,
    instances: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
) -> HierarchyDataset:
    """The transitive closure of the WordNet noun hierarchy (cached; see the module docstring).

    :param wordnet_dir: directory holding ``data.noun`` and ``index.noun`` (default
        ``$WNSEARCHDIR``, then ``/usr/share/wordnet``).
    :param instances: follow instance-hypernym (``@i``) pointers too (Nickel & Kiela do).
    :param cache_dir: where the built closure is kept (default ``$BOXLIB_CACHE`` or
        ``~/.cache/boxlib``).
    :raises WordNetFileError: the files are missing or malformed (names the file and line).
    """
    directory = find_wordnet_dir(wordnet_dir)
    for name in _SOURCES:
        if not (directory / name).is_file():
            raise WordNetFileError(
                f"{directory / name} not found: the WordNet noun database needs {' and '.join(_SOURCES)}"
            )
    sha = {name: _sha256(directory / name) for name in _SOURCES}
    symbols = HYPERNYMS if instances else ("@",)
    key = hashlib.sha256(json.dumps([CACHE_VERSION, symbols, sha], sort_keys=True).encode()).hexdigest()[:20]
    path = cache_directory(cache_dir) / "wordnet" / f"noun-closure-{key}.npz"
    if path.is_file():
        try:
            return _load(path)
        except (OSError, ValueError, KeyError, UnicodeDecodeError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
            warnings.warn(f"rebuilding the damaged WordNet closure cache {path}: {exc}", RuntimeWarning, stacklevel=2)
    dataset = _build(directory, symbols, sha)
    try:
        _save(path, dataset)
    except OSError as exc:  # a read-only home still gets its dataset, only slower next time
        warnings.warn(
            f"cannot cache the WordNet closure in {path}: {exc.strerror or exc}", RuntimeWarning, stacklevel=2
        )
    return dataset


def wordnet_nouns(
    wordnet_dir: str | os.PathLike[str] | None = None,
    *,
    instances: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
) -> HierarchyDataset:
    """WordNet 3.0 nouns: 82,115 synsets, 743,241 transitive-closure pairs (Nickel & Kiela 2017)."""
    return noun_hierarchy(wordnet_dir, instances=instances, cache_dir=cache_dir)


def wordnet_mammals(
    wordnet_dir: str | os.PathLike[str] | None = None,
    *,
    root: str = "mammal.n.01",
    exclude: list[str] | tuple[str, ...] = MAMMAL_EXCLUDE,
    instances: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
) -> HierarchyDataset:
    """The WordNet mammal subtree: 1,180 synsets, 6,540 pairs (Nickel & Kiela's ``mammal_closure``).

    :param root: the subtree's root synset.
    :param exclude: synsets left out (default: the two of Nickel & Kiela's filter; ``[]``
        keeps all 1,182 synsets and 6,542 pairs).
    """
    nouns = noun_hierarchy(wordnet_dir, instances=instances, cache_dir=cache_dir)
    name = "wordnet_mammals" if root == "mammal.n.01" else f"wordnet_subtree:{root}"
    return nouns.subtree(root, exclude=exclude, name=name)
