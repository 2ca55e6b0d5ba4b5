"""Load a trained model from a checkpoint, for ranking and inspection.

``boxlib.load(path)`` rebuilds the model exactly as the training run did (from the
resolved config stored in the checkpoint: dataset and model by registry name) and loads
its weights. The file is read with ``torch.load(weights_only=True)``, so loading never
runs code from it; an unreadable file is a :class:`~boxlib.train.CheckpointError` that
names it.
"""

from __future__ import annotations

import os

import torch

__all__ = ["load"]


def load(checkpoint: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """The trained model in eval mode, with ``embed_queries``, ``embed_items`` and
    ``rank(query, items=None, k=10)``.

    :param checkpoint: a ``last.ckpt`` / ``best.ckpt`` written by ``boxlib train``, or a
        run directory (its ``best.ckpt`` if present, else ``last.ckpt``).
    """
    from boxlib.train import CheckpointError, load_checkpoint
    from boxlib.train.config import Config
    from boxlib.train.run import build_dataset, build_model

    path = os.fspath(checkpoint)
    if os.path.isdir(path):
        candidates = [os.path.join(path, name) for name in ("best.ckpt", "last.ckpt")]
        found = [c for c in candidates if os.path.exists(c)]
        if not found:
            raise CheckpointError(f"{path}: a run directory with neither best.ckpt nor last.ckpt")
        path = found[0]
    state = load_checkpoint(path, required=("model", "config"))
    try:
        config = Config.from_dict(state["config"])
    except ValueError as exc:
        raise CheckpointError(f"{path}: the stored configuration is not valid here: {exc}") from None
    model = build_model(config, build_dataset(config))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path}: the weights do not fit model '{config.model.name}' as installed now "
            f"(was the model or its plugin changed?): {str(exc).splitlines()[0]}"
        ) from None
    return model.to(map_location).eval()
