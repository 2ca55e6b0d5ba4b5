"""The ANTHEM model plugin (and the baselines that share its trainer)."""

from boxlib.hookspecs import hookimpl

from .baselines import Query2BoxModel, VectorModel
from .model import AnthemModel
from .tokenize import Tokenizer

__all__ = ["AnthemModel", "Query2BoxModel", "Tokenizer", "VectorModel"]


@hookimpl
def boxlib_add_models(registry) -> None:
    registry.add(AnthemModel)
    registry.add(VectorModel)
    registry.add(Query2BoxModel)
