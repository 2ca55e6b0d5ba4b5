"""The training loop on the toy model: reproducibility, resume, non-finite losses, early
stopping, metrics files, precision and callbacks."""

from __future__ import annotations

import csv
import inspect
import io

import pytest
import torch
from train_toy import ToyScorer, toy_points

from boxlib.train import (
    EVENTS,
    CheckpointError,
    ConfigError,
    NonFiniteLossError,
    RunExistsError,
    load_checkpoint,
    main_train,
    train,
)
from boxlib.train.callbacks import ProgressBar
from boxlib.train.loggers import CSVLogger
from boxlib.train.trainer import Trainer


class Crash(Exception):
    pass


class CrashAt:
    """Simulates a killed run: raises after the given step (and its checkpoint)."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, step):
        if step == self.step:
            raise Crash(step)


class Recorder:
    def __init__(self):
        self.events = []

    def __getattr__(self, name):
        if name not in EVENTS:
            raise AttributeError(name)

        def record(**kwargs):
            self.events.append((name, kwargs.get("step")))

        record.__signature__ = inspect.Signature([inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)])
        return record


def weights(path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


def read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# -- reproducibility and resume -----------------------------------------------------------
def test_a_seed_gives_identical_runs(make_config):
    settings = ("model.dropout=0.3", "scheduler.name=cosine")
    a = train(make_config(*settings, output="a"))
    b = train(make_config(*settings, output="b"))
    c = train(make_config(*settings, "seed=1", output="c"))
    assert [step for step, _ in a.losses] == list(range(1, 13))
    assert a.losses == b.losses
    assert a.losses != c.losses
    wa, wb = weights(a.last_checkpoint), weights(b.last_checkpoint)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.parametrize("every", [5, 3], ids=["resume-at-epoch-end", "resume-mid-epoch"])
def test_resume_continues_the_uninterrupted_loss_curve_exactly(make_config, every):
    # dropout and a warm-up + cosine schedule: resume must restore the RNG and scheduler too
    settings = (
        "model.dropout=0.3",
        "scheduler.name=cosine",
        "scheduler.warmup_steps=3",
        f"trainer.checkpoint_every_n_steps={every}",
    )
    full = train(make_config(*settings, output="full"))

    cfg = make_config(*settings, output="split")
    with pytest.raises(Crash):
        train(cfg, callbacks=[CrashAt(7)])
    saved = load_checkpoint(cfg.path / "last.ckpt")["trainer"]["global_step"]
    assert saved == (5 if every == 5 else 6)
    with pytest.raises(RunExistsError, match="continue it with --resume"):
        train(cfg)
    resumed = train(cfg, resume=True)

    assert resumed.losses == full.losses[saved:]
    wf, wr = weights(full.last_checkpoint), weights(resumed.last_checkpoint)
    assert all(torch.equal(wf[k], wr[k]) for k in wf)
    # the metrics file holds each step once: rows the crashed run logged after its checkpoint were replaced
    rows = read_csv(cfg.path / "metrics.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, 13))
    assert [float(r["train/loss"]) for r in rows] == [loss for _, loss in full.losses]


def test_resume_from_an_explicit_checkpoint_and_errors(make_config, tmp_path, capsys):
    cfg = make_config("trainer.max_steps=5")
    train(cfg)
    longer = make_config("trainer.max_steps=8")
    with pytest.warns(UserWarning, match=r"changed settings: trainer.max_steps: 5 → 8"):
        result = train(longer, resume=cfg.path / "last.ckpt")
    assert result.state.global_step == 8 and [s for s, _ in result.losses] == [6, 7, 8]
    with pytest.raises(CheckpointError, match="cannot resume: checkpoint not found: .*nowhere.ckpt"):
        train(cfg, resume=tmp_path / "nowhere.ckpt")
    (cfg.path / "last.ckpt").write_bytes(b"\x00" * 10)
    config_file = tmp_path / "cfg.yaml"
    config_file.write_text(
        f"output_dir: {cfg.output_dir}\nmodel: {{name: toy_scorer}}\ndata: {{name: toy_points}}\n"
        "trainer: {max_steps: 5, progress: false}\n"
    )
    assert main_train(config_file, resume=True) == 1
    assert f"checkpoint {cfg.path / 'last.ckpt'} is" in capsys.readouterr().err


def test_checkpoint_contents(make_config):
    result = train(make_config("validation.every_n_steps=4", "validation.monitor=accuracy"))
    ckpt = load_checkpoint(result.last_checkpoint)
    assert ckpt["trainer"]["global_step"] == 12 and ckpt["trainer"]["epoch"] == 2
    assert set(ckpt["versions"]) >= {"boxlib", "torch", "python", "lightning_fabric"}
    assert ckpt["config"]["trainer"]["batch_size"] == 8 and ckpt["config"]["model"] == {"name": "toy_scorer"}
    assert len(ckpt["rng"]) == 1 and set(ckpt["rng"][0]) >= {"python", "numpy", "torch"}
    assert isinstance(ckpt["sampler"]["generator"], torch.Tensor)
    assert ckpt["components"]["model"]["name"] == "toy_scorer"
    assert {"state", "param_groups"} <= set(ckpt["optimizer"]) and ckpt["scheduler"]["last_epoch"] == 12
    assert (result.last_checkpoint.parent / "config.yaml").read_text().startswith("output_dir:")
    assert load_checkpoint(result.best_checkpoint)["trainer"]["global_step"] == result.state.best_step


# -- non-finite losses --------------------------------------------------------------------
def test_nonfinite_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(make_config, capsys):
    cfg = make_config("model.nan_at=[7]")
    with pytest.raises(
        NonFiniteLossError, match=r"non-finite loss \(nan\) at step 7 .*last good checkpoint is .*last.ckpt"
    ):
        train(cfg)
    ckpt = load_checkpoint(cfg.path / "last.ckpt")
    assert ckpt["trainer"]["global_step"] == 5
    assert all(torch.isfinite(t).all() for t in ckpt["model"].values())
    assert [int(r["step"]) for r in read_csv(cfg.path / "metrics.csv")] == [1, 2, 3, 4, 5, 6]


def test_nonfinite_loss_is_skipped_when_configured(make_config):
    with pytest.warns(RuntimeWarning, match=r"skipping a batch with a non-finite loss \(nan\) at step 3"):
        result = train(make_config("model.nan_at=[3, 4]", "trainer.on_nonfinite=skip"))
    assert result.state.global_step == 12 and result.state.skipped_batches == 2
    assert [s for s, _ in result.losses] == list(range(1, 13))
    assert all(torch.isfinite(t).all() for t in weights(result.last_checkpoint).values())
    with pytest.warns(RuntimeWarning), pytest.raises(NonFiniteLossError, match="3 such batches in a row"):
        train(
            make_config(
                "model.nan_at=[2, 3, 4]", "trainer.on_nonfinite=skip", "trainer.max_consecutive_skips=2", output="b"
            )
        )


# -- validation, early stopping and metrics -----------------------------------------------
@pytest.mark.parametrize(
    ("mode", "scores", "best_step"), [("max", [0.1, 0.5, 0.4, 0.3, 0.9], 4), ("min", [0.5, 0.1, 0.2, 0.3, 0.0], 4)]
)
def test_early_stopping_on_a_metric(make_config, mode, scores, best_step):
    cfg = make_config(
        f"model.eval_scores={scores}",
        "validation.every_n_steps=2",
        "validation.monitor=score",
        f"validation.mode={mode}",
        "validation.patience=2",
        "trainer.max_steps=100",
    )
    result = train(cfg)
    assert result.status == "early stop" and result.state.global_step == 8
    assert result.state.best_step == best_step and result.state.best_score == scores[1]
    assert load_checkpoint(result.best_checkpoint)["trainer"]["global_step"] == best_step
    assert load_checkpoint(result.last_checkpoint)["trainer"]["global_step"] == 8


def test_metrics_are_written_to_csv(make_config):
    cfg = make_config("validation.every_n_steps=4", "trainer.log_every_n_steps=2")
    train(cfg)
    rows = read_csv(cfg.path / "metrics.csv")
    assert list(rows[0]) == ["step", "train/loss", "train/lr", "train/examples_per_s", "train/epoch", "valid/accuracy"]
    train_rows = [r for r in rows if r["train/loss"]]
    valid_rows = [r for r in rows if r["valid/accuracy"]]
    assert [int(r["step"]) for r in train_rows] == [2, 4, 6, 8, 10, 12]
    assert [int(r["step"]) for r in valid_rows] == [4, 8, 12]
    assert all(float(r["train/examples_per_s"]) > 0 for r in train_rows)


def test_monitor_must_be_a_metric_evaluate_returns(make_config):
    with pytest.raises(
        ConfigError, match=r"validation.monitor is 'mrr', but ToyScorer.evaluate\('valid'\) returned 'accuracy'"
    ):
        train(make_config("validation.every_n_steps=2", "validation.monitor=mrr"))


# -- precision, callbacks, contract ---------------------------------------------------------
def test_double_precision_trains_in_float64(make_config):
    result = train(make_config("trainer.precision=64-true", "trainer.max_steps=3"))
    assert all(t.dtype == torch.float64 for t in weights(result.last_checkpoint).values())


def test_bf16_mixed_precision_runs(make_config):
    result = train(make_config("trainer.precision=bf16-mixed", "trainer.max_steps=3"))
    assert len(result.losses) == 3 and all(torch.isfinite(torch.tensor(loss)) for _, loss in result.losses)


def test_events_fire_in_order_and_bundled_callbacks_use_only_known_events(make_config):
    for callback in (ProgressBar, CSVLogger):
        hooks = {name for name in dir(callback) if name.startswith("on_")}
        assert hooks <= EVENTS, hooks - EVENTS
    recorder = Recorder()
    train(make_config("trainer.max_steps=5", "validation.every_n_steps=5"), callbacks=[recorder])
    names = [name for name, _ in recorder.events]
    assert names[0] == "on_train_start" and names[-1] == "on_train_end"
    assert names.count("on_train_batch_end") == 5 and names.count("on_log") == 5
    assert names[-5:-1] == ["on_log", "on_validation_end", "on_checkpoint", "on_train_batch_end"]


def test_progress_bar_shows_step_loss_and_throughput(make_config):
    stream = io.StringIO()
    train(make_config("trainer.max_steps=4", "validation.every_n_steps=2"), callbacks=[ProgressBar(stream)])
    text = stream.getvalue()
    assert "training ToyScorer (49 parameters) on 40 examples: cpu x1, 32-true, 4 steps of 8 examples" in text
    assert "step 4/4 (100%) epoch 0 | loss " in text and " ex/s | " in text
    assert "valid at step 2: accuracy " in text
    assert text.rstrip().splitlines()[-1].startswith("finished at step 4 after ")


def test_the_model_contract_is_checked(make_config):
    class NoLoss(ToyScorer):
        training_loss = None

    class NoEvaluate(ToyScorer):
        evaluate = None

    cfg = make_config("validation.every_n_steps=2")
    with pytest.raises(TypeError, match="NoLoss cannot be trained: it has no training_loss"):
        Trainer(None, cfg, NoLoss(toy_points()))
    with pytest.raises(ConfigError, match="NoEvaluate has no evaluate"):
        Trainer(None, cfg, NoEvaluate(toy_points()))


def test_loader_workers_and_gradient_clipping_keep_the_run_identical(make_config):
    plain = train(make_config("trainer.grad_clip=0.5", output="a"))
    workers = train(make_config("trainer.grad_clip=0.5", "trainer.num_workers=2", output="b"))
    assert workers.losses == plain.losses
    unclipped = train(make_config(output="c"))
    assert unclipped.losses[1:] != plain.losses[1:]
