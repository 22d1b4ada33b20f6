"""The SimCSE trainer: short, model-agnostic, callback-driven, resumable.

    from simcse_lab.train import TrainConfig, train
    result = train(TrainConfig(train_file="wiki.txt", output_dir="out", max_steps=600, pooler_type="avg"))

What it does per step (unsupervised): one forward pass over [x; x] (the duplicate-in-batch trick,
so the two copies get independent dropout masks), split into z1, z2, InfoNCE. Supervised: one pass
over [premise; entailment; contradiction]. SBERT: one pass over [s1; s2] and the softmax head
(simcse_lab.training.objectives).

Design for speed: the training file is tokenised once into a padded int32 matrix; a batch is a
slice of it cut at the batch's longest sentence; the loss is accumulated on the device and read
back only at logging steps (no host sync per step on a GPU).

Design for safety: every `save_steps` a checkpoint-<step>/ holds the model (safetensors), the
optimiser, scheduler, grad scaler, all RNG states, the data order position, the step, the best dev
score and the history, written atomically (simcse_lab.training.checkpoint). `resume_from_checkpoint="auto"`
continues from the newest one and ends with the same weights as an uninterrupted run.

Where results land: checkpoints in output_dir/checkpoint-<step>/; at the end output_dir itself holds
the best model by STS-B dev (or the final one when no evaluation ran), metrics.json and history.json.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.training_files import load_training_file
from ..errors import SimCSELabError, SimCSELabWarning
from ..evaluation.dev import DevEvaluator
from ..evaluation.sts import EVAL_MAX_LENGTH
from ..models.device import training_autocast
from ..models.encoder import SimCSEEncoder
from . import checkpoint as ckpt
from .config import CUDA_GRAPH_MODES, TrainConfig, check_precision_device
from .distributed import DistributedContext
from .objectives import Objective, SBERTObjective, build_objective, check_objective_settings, objective_name
from .run_dir import HISTORY_FILE, METRICS_FILE, RunDirectory, claim_output_dir, finish_publishing, publish_best_model
from .sampling import StepPlan
from .schedule import schedule_factor
from .snapshots import with_geometry_snapshots


@dataclass
class TrainState:
    """What callbacks see. history: one dict per logging/eval step."""

    config: TrainConfig
    step: int = 0
    max_steps: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_score: float = -math.inf
    best_step: int = -1
    skipped_nonfinite: int = 0
    unlogged_loss: tuple[float, int] = (0.0, 0)  # loss sum and count since the last log, saved so a resumed log is exact
    history: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        """The recipe and the best score so far: what metrics.json, checkpoints and model cards record."""
        return {"recipe": self.config.recipe(), "best_stsb_dev": None if self.best_step < 0 else self.best_score,
                "best_step": None if self.best_step < 0 else self.best_step, "steps": self.step}


@dataclass
class TrainResult:
    output_dir: str
    best_score: float | None  # best STS-B dev Spearman x100, None when no evaluation ran
    best_step: int | None
    steps: int
    history: list[dict]
    metrics_path: str
    seconds: float
    already_finished: bool = False  # the output directory held this run, finished: nothing was trained


# ---------------------------------------------------------------------- the trainer
def train(config: TrainConfig, callbacks: Sequence[Any] = ()) -> TrainResult:
    """Train, evaluate on STS-B dev, keep the best; see the module docstring. Every setting, the training file and
    the output directory are checked before the model loads; a finished run resumed is a no-op that says so."""
    started = time.time()
    check_precision_device(config)  # first: --fp16 on a machine without CUDA fails before the data and model load
    dist = DistributedContext.from_environment(config.device)  # a device this machine lacks fails next
    data = load_training_file(config.train_file)  # then the file: a bad one fails before anything is written
    if config.max_train_samples:
        data.rows = data.rows[: config.max_train_samples]
    check_objective_settings(config, data)
    with claim_output_dir(config, dist.is_main) as run:  # locked, accepted, compared with a resumed checkpoint
        if run.finished is not None:
            return finished_result(run, dist)
        return run_training(run, config, data, dist, callbacks, started)


def run_training(run: RunDirectory, config: TrainConfig, data, dist: DistributedContext, callbacks, started: float) -> TrainResult:
    """The run itself, in an output directory claimed for it (simcse_lab.training.run_dir)."""
    output_dir, resume_path = run.path, run.resume
    seed_everything(config.seed)

    encoder, objective = load_model_and_objective(config, data, resume_path, dist)
    plan = StepPlan(objective.num_rows, config.per_device_train_batch_size, dist.world_size, dist.rank,
                    config.gradient_accumulation_steps, config.dataloader_drop_last)
    batches_per_epoch = plan.steps_per_epoch  # optimiser steps
    if batches_per_epoch == 0:
        raise SimCSELabError(f"the training file has {objective.num_rows} rows, fewer than one batch of {plan.global_batch}; "
                             "lower per_device_train_batch_size, add data, or keep the incomplete batch (--dataloader_drop_last False)")
    max_steps = config.max_steps if config.max_steps > 0 else math.ceil(config.num_train_epochs * batches_per_epoch)

    step = TrainingStep(config, encoder, objective, dist, max_steps)
    run.open_for_writing()  # only now: a bad setting, model or train file leaves nothing behind
    state = TrainState(config=config, max_steps=max_steps)
    if resume_path is not None:
        restore_checkpoint(resume_path, state, step)
    evaluator = dev_evaluator(config, dist)
    callbacks = with_geometry_snapshots(config, callbacks, evaluator, encoder, output_dir)
    save_steps = config.save_steps or config.eval_steps

    notify(callbacks, "on_train_begin", state)
    if evaluator is not None and config.eval_at_start and state.step == 0:
        state.history.append({"step": 0, **evaluator(encoder)})  # where training starts: a reference, not a candidate
        notify(callbacks, "on_evaluate", state, state.history[-1])
    progress = tqdm(total=max_steps, initial=state.step, desc="train", disable=not (config.show_progress and dist.is_main))
    step.restore_loss(state.unlogged_loss)
    encoder.train()
    with stop_messages(config, output_dir), progress:
        while state.step < max_steps:
            order = epoch_order(objective.num_rows, config.seed, state.epoch)
            while state.batch_in_epoch < batches_per_epoch and state.step < max_steps:
                if not step.run(plan.rows(order, state.batch_in_epoch)):
                    state.skipped_nonfinite += 1
                state.step += 1
                state.batch_in_epoch += 1
                progress.update(1)
                log_now = due(state.step, config.logging_steps, max_steps)
                evaluate_now = evaluator is not None and due(state.step, config.eval_steps, max_steps)
                save_now = dist.is_main and due(state.step, save_steps) and state.step < max_steps
                if log_now or evaluate_now or save_now or due(state.step, step.sync_every):
                    step.check_finite(state.step)  # never log, select or save past a NaN loss
                record = {}
                if log_now:
                    record.update(step=state.step, loss=step.take_mean_loss(), lr=step.scheduler.get_last_lr()[0], epoch=state.epoch)
                    progress.set_postfix(loss=f"{record['loss']:.4f}")
                    notify(callbacks, "on_log", state, record)
                if evaluate_now:
                    scores = evaluator(encoder)
                    record.update(step=state.step, **scores)
                    if scores["stsb_dev"] > state.best_score:
                        state.best_score, state.best_step = scores["stsb_dev"], state.step
                        save_best_model(encoder, objective, output_dir, state)
                    progress.set_postfix(loss=record.get("loss"), dev=f"{scores['stsb_dev']:.2f}")
                    notify(callbacks, "on_evaluate", state, record)
                if record:
                    state.history.append(record)
                if save_now:
                    state.unlogged_loss = step.unlogged_loss()
                    notify(callbacks, "on_save", state, save_checkpoint(output_dir, encoder, step, state))
                dist.barrier_if_saving(save_steps, state.step)
            if state.batch_in_epoch >= batches_per_epoch:
                state.epoch, state.batch_in_epoch = state.epoch + 1, 0

    result = finish_run(encoder, objective, output_dir, state, started, dist)
    notify(callbacks, "on_train_end", state)
    dist.close()
    return result


class NonFiniteLoss(Exception):
    def __init__(self, step: int):
        super().__init__(step)
        self.step = step


@contextmanager
def stop_messages(config: TrainConfig, output_dir: Path):
    """A run that stops on a NaN loss or an out-of-memory GPU says so in one line, with what to change."""
    try:
        yield
    except NonFiniteLoss as error:
        kept = ckpt.list_checkpoints(output_dir)
        where = f"the last good checkpoint, {kept[-1]}, is kept" if kept else "no checkpoint had been saved yet"
        raise SimCSELabError(
            f"the loss became NaN/inf by step {error.step}; training stopped and {where}. Lower the learning rate, "
            "use fp32 or bf16 instead of fp16, or pass on_nonfinite='skip' (--on_nonfinite skip) to skip such batches") from None
    except torch.cuda.OutOfMemoryError:
        raise SimCSELabError(
            f"the GPU ran out of memory at batch size {config.per_device_train_batch_size}, max_seq_length {config.max_seq_length}. "
            "Use a smaller --per_device_train_batch_size, a shorter --max_seq_length, or bf16") from None


def load_model_and_objective(config: TrainConfig, data, resume_path: Path | None, dist: DistributedContext):
    """The encoder to train (from the checkpoint when resuming) and its objective, with the training file tokenised."""
    pooler = config.pooler_type or ("avg" if objective_name(config.objective, data) == "sbert" else "cls")
    # a new cls head, as the official cl_init (MLPLayer(config)), unless resuming: the checkpoint's head then
    encoder = SimCSEEncoder.from_pretrained(resume_path or config.model_name_or_path, pooler=pooler, mlp_only_train=config.mlp_only_train,
                                            device=dist.device, dropout=config.dropout, bert_forward=config.bert_forward,
                                            fresh_mlp=resume_path is None)
    freeze_unused_backbone_pooler(encoder)
    return encoder, build_objective(config, data, encoder, dist.device, dist)


class TrainingStep:
    """One optimiser step on a batch of rows, and the running loss: the optimiser, schedule, grad scaler and
    autocast of a run, built from its config."""

    def __init__(self, config: TrainConfig, encoder: SimCSEEncoder, objective: Objective, dist: DistributedContext, max_steps: int):
        device = dist.device
        self.config, self.objective, self.dist = config, objective, dist
        # dict keyed by id: a head tied to the input embeddings must not put them in the optimiser twice
        self.parameters = list({id(p): p for p in [*encoder.parameters(), *objective.parameters()] if p.requires_grad}.values())
        self.optimizer = build_optimizer(self.parameters, config, device, modules=(encoder, objective))
        warmup = config.warmup_steps or int(config.warmup_ratio * max_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: schedule_factor(config.lr_scheduler_type, s, warmup, max_steps))
        self.scaler = torch.amp.GradScaler("cuda", enabled=config.fp16 and device.type == "cuda")
        self.autocast = training_autocast(device, config.bf16, config.fp16)
        model = dist.wrap(encoder)
        self.ddp = model if hasattr(model, "no_sync") else None
        self.model = torch.compile(model, dynamic=False, mode=config.torch_compile_mode) if config.torch_compile else model
        self.cuda_graphs = config.torch_compile and config.torch_compile_mode in CUDA_GRAPH_MODES
        self.skip_nonfinite = config.on_nonfinite == "skip"
        # on a GPU a NaN check is a host sync: made at logging steps only (and before any evaluation or save)
        self.sync_every = 1 if (device.type != "cuda" or self.skip_nonfinite) else max(config.logging_steps, 1)
        self.loss_sum = torch.zeros((), device=device)
        self.loss_count = 0
        self.nonfinite_seen = torch.zeros((), dtype=torch.bool, device=device)

    def run(self, micro_batches: list[np.ndarray] | np.ndarray) -> bool:
        """One optimiser step on the mean loss of these micro-batches of rows, or on one array of rows (gradient
        accumulation: each micro-batch's loss has only its own in-batch negatives); False when it was skipped for a
        NaN/inf loss (on_nonfinite skip)."""
        if isinstance(micro_batches, np.ndarray):
            micro_batches = [micro_batches]
        total = None
        for index, rows in enumerate(micro_batches):
            if self.cuda_graphs:  # the compiled graphs' outputs of the previous pass may be overwritten from here on
                torch.compiler.cudagraph_mark_step_begin()
            last = index == len(micro_batches) - 1
            with contextlib.nullcontext() if last or self.ddp is None else self.ddp.no_sync():  # all-reduce once, at the last
                with self.autocast():
                    loss = self.objective.loss(self.model, rows)
                if self.skip_nonfinite and not self.dist.all_finite(loss):
                    self.optimizer.zero_grad(set_to_none=True)
                    self.scheduler.step()
                    return False
                self.objective.backward(loss if len(micro_batches) == 1 else loss / len(micro_batches), self.scaler.scale)
            total = loss.detach().clone() if total is None else total + loss.detach()
        loss = total if len(micro_batches) == 1 else total / len(micro_batches)
        if self.config.max_grad_norm > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.parameters, self.config.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        finite = torch.isfinite(loss.detach())
        self.loss_sum += torch.where(finite, loss.detach().float(), torch.zeros_like(self.loss_sum))
        self.loss_count += 1
        self.nonfinite_seen |= ~finite
        self.scheduler.step()
        return True

    def check_finite(self, step: int) -> None:
        if bool(self.nonfinite_seen):
            raise NonFiniteLoss(step)

    def take_mean_loss(self) -> float:
        """The mean loss since the last call (one host sync), and start a new window."""
        mean = float(self.loss_sum) / max(self.loss_count, 1)
        self.loss_sum.zero_()
        self.loss_count = 0
        return mean

    def unlogged_loss(self) -> tuple[float, int]:
        return float(self.loss_sum), self.loss_count

    def restore_loss(self, unlogged: tuple[float, int]) -> None:
        self.loss_sum.fill_(float(unlogged[0]))
        self.loss_count = int(unlogged[1])


# ---------------------------------------------------------------------- pieces
def due(step: int, every: int, last: int | None = None) -> bool:
    """Whether something done every `every` steps (0 = never) is due at `step`; `last`: also at the final step."""
    return every > 0 and (step % every == 0 or step == last)


def epoch_order(num_rows: int, seed: int, epoch: int) -> np.ndarray:
    """The data order of one epoch: a permutation that depends only on (seed, epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(num_rows)


def build_optimizer(parameters: list, config: TrainConfig, device: torch.device, modules: Sequence[torch.nn.Module] = ()) -> torch.optim.AdamW:
    """AdamW with the HF Trainer's settings: betas, epsilon, and weight decay on every parameter but the biases and
    LayerNorm weights (of `modules`; with weight_decay 0, one group, as that exclusion changes nothing)."""
    # fused AdamW (one kernel, CUDA and CPU), the HF Trainer's default too: 5x faster than the loop on a CPU
    fused = device.type in ("cuda", "cpu")
    groups = parameters
    if config.weight_decay > 0 and modules:
        exempt = {id(p) for root in modules for module in root.modules() for name, p in module.named_parameters(recurse=False)
                  if name == "bias" or isinstance(module, torch.nn.LayerNorm)}
        groups = [group for group in ({"params": [p for p in parameters if id(p) not in exempt]},
                                      {"params": [p for p in parameters if id(p) in exempt], "weight_decay": 0.0}) if group["params"]]
    return torch.optim.AdamW(groups, lr=config.learning_rate, weight_decay=config.weight_decay, eps=config.adam_epsilon,
                             betas=(config.adam_beta1, config.adam_beta2), **({"fused": True} if fused else {}))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def freeze_unused_backbone_pooler(encoder: SimCSEEncoder) -> None:
    """The HF pooler (BERT's) is not part of SimCSE's forward; freezing it keeps DDP and AdamW clean."""
    pooler = getattr(encoder.backbone, "pooler", None)
    if pooler is not None:
        for parameter in pooler.parameters():
            parameter.requires_grad_(False)


def dev_evaluator(config: TrainConfig, dist: DistributedContext) -> DevEvaluator | None:
    """STS-B dev, read once, on the main process; None (with a warning) when there is no dev data."""
    if config.eval_steps == 0 or not dist.is_main:
        return None
    try:
        return DevEvaluator.stsb_dev(config.data_dir, config.eval_max_pairs)
    except SimCSELabError as error:
        warnings.warn(f"no STS-B dev data, so no evaluation or best-checkpoint selection: {error}", stacklevel=3)
        return None


def notify(callbacks, event: str, state: TrainState, *args) -> None:
    for callback in callbacks:
        handler = getattr(callback, event, None)
        if handler is not None:
            handler(state, *args)


def save_model(encoder: SimCSEEncoder, objective: Objective, directory: Path, final: Path, state: TrainState) -> None:
    """The encoder (and the SBERT head, which belongs with the encoder it was trained with) into directory;
    final: where directory will live (its model card names that path)."""
    encoder.save_pretrained(directory, training=state.summary(), max_seq_length=state.config.max_seq_length, final_path=final,
                            eval_max_length=EVAL_MAX_LENGTH)  # the length DevEvaluator scores STS-B dev at
    if isinstance(objective, SBERTObjective):
        objective.head.save(directory)


def save_best_model(encoder, objective, output_dir: Path, state: TrainState) -> None:
    final = output_dir / "best_model"
    with ckpt.atomic_directory(final) as temporary:
        # the card names output_dir: finish_run moves these files there
        save_model(encoder, objective, temporary, output_dir, state)


def save_checkpoint(output_dir: Path, encoder: SimCSEEncoder, step: TrainingStep, state: TrainState) -> Path:
    final = output_dir / f"checkpoint-{state.step}"
    summary = state.summary()
    with ckpt.atomic_directory(final) as temporary:
        save_model(encoder, step.objective, temporary, final, state)
        rng_tensors, rng_plain = ckpt.capture_rng_state()
        tensors = {"optimizer": step.optimizer.state_dict(), "scheduler": step.scheduler.state_dict(), "scaler": step.scaler.state_dict(),
                   "objective": step.objective.state_dict(), "rng": rng_tensors}
        plain = {"step": state.step, "epoch": state.epoch, "batch_in_epoch": state.batch_in_epoch, "best_score": state.best_score,
                 "best_step": state.best_step, "skipped_nonfinite": state.skipped_nonfinite, "history": state.history,
                 "unlogged_loss": list(state.unlogged_loss), "rng": rng_plain, "config": summary["recipe"]}
        ckpt.save_training_state(temporary, tensors, plain)
    ckpt.rotate_checkpoints(output_dir, state.config.save_total_limit)
    return final


def restore_checkpoint(path: Path, state: TrainState, step: TrainingStep) -> None:
    tensors, plain = ckpt.load_training_state(path)
    step.optimizer.load_state_dict(tensors["optimizer"])
    step.scheduler.load_state_dict(tensors["scheduler"])
    step.scaler.load_state_dict(tensors["scaler"])
    step.objective.load_state_dict(tensors["objective"])
    for name in ("step", "epoch", "batch_in_epoch", "best_score", "best_step", "skipped_nonfinite", "history"):
        setattr(state, name, plain[name])
    state.unlogged_loss = tuple(plain.get("unlogged_loss", (0.0, 0)))
    ckpt.restore_rng_state(tensors["rng"], plain["rng"])


def finish_run(encoder, objective, output_dir: Path, state: TrainState, started: float, dist) -> TrainResult:
    """Put the best model (or the final one) in output_dir, then history.json, then metrics.json: written last, it
    marks the run finished. best_model/ is removed only after that, so a kill at any point loses nothing."""
    metrics_path = output_dir / METRICS_FILE
    if dist.is_main:
        if not publish_best_model(output_dir):
            if state.best_step >= 0:  # never put the final model where the best one belongs
                raise SimCSELabError(f"{output_dir / 'best_model'} (the best model, step {state.best_step}) is missing, so the "
                                     "final model was not saved in its place; the checkpoints are kept")
            with ckpt.files_into(output_dir) as staged:
                save_model(encoder, objective, staged, output_dir, state)
        metrics = {**state.summary(), "skipped_nonfinite": state.skipped_nonfinite,
                   "train_seconds": round(time.time() - started, 1), "final": state.history[-1] if state.history else {}}
        ckpt.atomic_write_text(output_dir / HISTORY_FILE, json.dumps(state.history, indent=1) + "\n")
        ckpt.atomic_write_text(metrics_path, json.dumps(metrics, indent=2) + "\n")
        finish_publishing(output_dir)
    return TrainResult(
        output_dir=str(output_dir), best_score=None if state.best_step < 0 else state.best_score,
        best_step=None if state.best_step < 0 else state.best_step, steps=state.step, history=state.history,
        metrics_path=str(metrics_path), seconds=time.time() - started,
    )


def finished_result(run: RunDirectory, dist: DistributedContext) -> TrainResult:
    """What train returns for a run that had already finished: its recorded result, with a line that says so."""
    metrics = run.finished
    history_path = run.path / HISTORY_FILE
    history = json.loads(history_path.read_text(encoding="utf8")) if history_path.is_file() else []
    if dist.is_main:
        warnings.warn(f"{run.path} holds a finished run ({metrics['steps']} steps, {METRICS_FILE}): nothing to do. To train "
                      "again, pass --overwrite_output_dir without --resume_from_checkpoint, or choose another --output_dir",
                      SimCSELabWarning, stacklevel=3)
    dist.close()
    return TrainResult(output_dir=str(run.path), best_score=metrics.get("best_stsb_dev"), best_step=metrics.get("best_step"),
                       steps=metrics["steps"], history=history, metrics_path=str(run.path / METRICS_FILE), seconds=0.0,
                       already_finished=True)
