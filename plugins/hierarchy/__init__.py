"""Hierarchy reconstruction: the ``hierarchy`` model, its dataset type and evaluation.

* :class:`~.data.HierarchyDataset`: named nodes and the transitive closure of an is-a
  relation (the WordNet plugin builds ``wordnet_nouns`` and ``wordnet_mammals``).
* :class:`~.model.HierarchyModel` (registry name ``hierarchy``): a point and a region per
  node on any registered geometry, scored by region containment or point distance,
  trained by ``boxlib train`` with Nickel & Kiela's (2017) sampled-softmax loss.
* :func:`~.evaluate.reconstruction`: their mean rank and MAP, vectorised and chunked.

See ``docs/hierarchy.md``.
"""

from boxlib.hookspecs import hookimpl

from .data import HierarchyDataset, HierarchyError, transitive_closure
from .evaluate import Reconstruction, reconstruction, sample_sources
from .model import HierarchyModel

__all__ = [
    "HierarchyDataset",
    "HierarchyError",
    "HierarchyModel",
    "Reconstruction",
    "reconstruction",
    "sample_sources",
    "transitive_closure",
]


@hookimpl
def boxlib_add_models(registry) -> None:
    registry.add(HierarchyModel)
