"""Training: one model-agnostic loop on Lightning Fabric, driven by a YAML config.

Running
=======

``boxlib train CONFIG.yaml [--set key=value ...] [--resume [CHECKPOINT]]`` (or
``python -m boxlib.train ...``, or :func:`main_train` / :func:`train` from Python). The
config schema is in :mod:`boxlib.train.config`. A run writes into ``output_dir``:
``last.ckpt`` (every ``trainer.checkpoint_every_n_steps`` and at the end), ``best.ckpt``
(whenever ``validation.monitor`` improves), ``metrics.csv``, ``config.yaml`` (the
resolved config) and ``tensorboard/`` when TensorBoard is installed.

Several processes: ``--set trainer.devices=2 --set trainer.strategy=ddp`` (add
``trainer.accelerator=cpu`` for gloo on CPU). Fabric starts the other processes by
re-running the command line. For several machines, start one command per machine with
``trainer.num_nodes`` set and ``MASTER_ADDR``, ``MASTER_PORT``, ``NODE_RANK`` in the
environment, or launch with ``torchrun``/SLURM, which Fabric detects. ``batch_size`` is
the global batch: each of W processes takes a contiguous ``batch_size / W`` share of the
same shuffled batch, so W processes train exactly like one (see
:class:`~boxlib.train.sampling.GlobalBatchSampler`). Resuming on several machines needs the
checkpoint on a shared file system.

The model contract
==================

The trainer never names a model. ``model: {name: ..., **kwargs}`` is built as
``registries["model"].create(name, dataset=dataset, **kwargs)`` with
``dataset = registries["dataset"].create(data.name, **data.kwargs)`` (for the built-in
datasets a :class:`boxlib.data.RetrievalDataset`). The result must be a
``torch.nn.Module`` with::

    def training_examples(self) -> Sequence[Any]
        # The training set: len() and integer indexing. Called once. The trainer owns
        # the order (shuffled per epoch from the seed) and the sharding over processes.

    def training_loss(self, batch) -> torch.Tensor
        # A scalar: the MEAN loss over the batch (so DDP's gradient averaging equals the
        # single-process gradient). ``batch`` is collate(examples), tensors already on the
        # model's device and, under 64-true / bf16-mixed, in the precision's dtype.

and optionally::

    def collate(self, examples: list[Any]) -> Any
        # Examples → batch (tensors, or any nesting of lists/tuples/dicts/dataclasses of
        # them; other values pass through). Default: torch.utils.data.default_collate.

    def evaluate(self, split: str) -> dict[str, float]
        # Metrics on a split of the dataset, e.g. {"mrr": .., "ndcg@10": ..}. Called every
        # validation.every_n_steps and at the end, on every process, in eval mode under
        # torch.no_grad() and the precision's autocast; rank 0's answer is used everywhere.
        # Create tensors on the device of the model's parameters.

Randomness: draw from torch's global generator (``generator=None``), e.g. negatives in
``training_loss`` or ``collate`` with ``num_workers: 0``. The trainer seeds it per process
and stores it in every checkpoint, so a resumed run continues the same stream; it also
restores Python's ``random`` and NumPy's global state. A model never moves tensors to a
device: Fabric places the parameters and the batches.

Reproducibility: on CPU a seed gives identical losses, and ``--resume`` continues with the
same loss curve as an uninterrupted run. A NaN/infinite loss (or gradient norm, with
``trainer.grad_clip``) stops training naming the step, or with ``on_nonfinite: skip``
drops the batch; no checkpoint with non-finite weights is ever written.
"""

from boxlib.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from boxlib.train.config import Config, ConfigError, apply_overrides, load_config
from boxlib.train.events import EVENTS
from boxlib.train.run import (
    RunExistsError,
    add_arguments,
    build_dataset,
    build_model,
    check_components,
    main,
    main_train,
    train,
)
from boxlib.train.trainer import FitResult, NonFiniteLossError, Trainer, TrainState

__all__ = [
    "EVENTS",
    "CheckpointError",
    "Config",
    "ConfigError",
    "FitResult",
    "NonFiniteLossError",
    "RunExistsError",
    "TrainState",
    "Trainer",
    "add_arguments",
    "apply_overrides",
    "build_dataset",
    "build_model",
    "check_components",
    "load_checkpoint",
    "load_config",
    "main",
    "main_train",
    "save_checkpoint",
    "train",
]
