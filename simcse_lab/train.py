"""The SimCSE trainer: short, model-agnostic, callback-driven, resumable.

    from simcse_lab.train import TrainConfig, train
    result = train(TrainConfig(train_file="wiki.txt", output_dir="out", max_steps=600, pooler_type="avg"))

What it does per step (unsupervised): one forward pass over [x; x] (the duplicate-in-batch trick,
so the two copies get independent dropout masks), split into z1, z2, InfoNCE. Supervised: one pass
over [premise; entailment; contradiction]. SBERT: one pass over [s1; s2] and the softmax head.

Design for speed: the training file is tokenised once into a padded int32 matrix; a batch is a
slice of it cut at the batch's longest sentence; the loss is accumulated on the device and read
back only at logging steps (no host sync per step on a GPU). Evaluation uses STS-B dev,
pre-tokenised once.

Design for safety: every `save_steps` a checkpoint-<step>/ holds the model (safetensors), the
optimiser, scheduler, grad scaler, all RNG states, the data order position, the step, the best dev
score and the history, written atomically (simcse_lab.checkpoint). `resume_from_checkpoint="auto"`
continues from the newest one and ends with the same weights as an uninterrupted run.

Where results land: checkpoints in output_dir/checkpoint-<step>/; at the end output_dir itself holds
the best model by STS-B dev (or the final one when no evaluation ran), metrics.json and history.json.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from . import checkpoint as ckpt
from .augment import AUGMENTATIONS
from .batches import epoch_order
from .data import load_sts, load_training_file
from .dev_evaluation import DevEvaluator
from .distributed import DistributedContext
from .encoder import BERT_FORWARDS, SimCSEEncoder
from .errors import SimCSELabError, unknown_choice
from .objectives import SBERTObjective, build_objective, objective_name
from .paths import DEFAULT_MODEL
from .pooling import check_pooler

OBJECTIVES = ("auto", "simcse", "sbert")
ON_NONFINITE = ("stop", "skip")
# torch.compile's modes. reduce-overhead replays each compiled graph as a CUDA graph (one per batch width, so at
# most four at max_seq_length 32): the kernel launches of a step cost one replay, which is what a small batch on a
# GPU is bound by. On a CPU it compiles as default.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")  # the modes that replay CUDA graphs on a GPU


@dataclass
class TrainConfig:
    """Training settings. Names follow the official SimCSE train.py flags."""

    model_name_or_path: str = DEFAULT_MODEL  # HF hub id or local dir; the embedded default works offline
    train_file: str = ""  # .txt = unsupervised; .csv with sent0,sent1[,hard_neg] = supervised; sent0,sent1,label = SBERT
    output_dir: str = "outputs/simcse"  # checkpoints go in output_dir/checkpoint-<step>/, the best model in output_dir
    objective: str = "auto"  # auto (from the file) | simcse | sbert
    pooler_type: str | None = None  # cls | cls_before_pooler | avg | avg_top2 | avg_first_last; None = cls (SimCSE, official) or avg (SBERT)
    mlp_only_train: bool = False  # use the MLP head in training only (paper: unsupervised setting)
    temp: float = 0.05  # InfoNCE temperature (sentence-transformers scale = 1/temp)
    hard_negative_weight: float = 0.0  # log(alpha) added to each sentence's own hard-negative logit
    max_seq_length: int = 32  # longer sentences are truncated (paper: 32)
    per_device_train_batch_size: int = 64  # sentences per step per device (paper: 64 unsup, 512 sup)
    gradient_cache_chunk_size: int = 0  # 0 = off; else embed in chunks of this many sentences (cached loss: big batches in fixed memory)
    learning_rate: float = 3e-5  # paper: 3e-5 unsup BERT-base, 5e-5 sup
    num_train_epochs: float = 1.0  # used when max_steps <= 0
    max_steps: int = -1  # > 0 overrides num_train_epochs
    warmup_ratio: float = 0.0  # fraction of steps with linear warm-up (official: 0)
    weight_decay: float = 0.0  # AdamW weight decay (HF Trainer default)
    max_grad_norm: float = 1.0  # gradient clipping (HF Trainer default)
    eval_steps: int = 125  # evaluate on STS-B dev every N steps (0 = never); official: 125
    save_steps: int = 0  # checkpoint every N steps (0 = at every evaluation)
    save_total_limit: int = 2  # keep this many newest checkpoints (0 = all)
    logging_steps: int = 10  # record the mean loss every N steps
    seed: int = 42  # seeds python, numpy, torch and the data order
    bf16: bool = False  # bf16 autocast (CUDA, or CPUs with bf16 support: about 1.3x faster than fp32 on this 2-core CPU)
    fp16: bool = False  # fp16 autocast + grad scaling (CUDA only)
    torch_compile: bool = False  # torch.compile the encoder (dynamic=False; batch widths padded to a multiple of 8)
    torch_compile_mode: str = "default"  # with torch_compile: default | reduce-overhead (CUDA graphs) | max-autotune | max-autotune-no-cudagraphs
    bert_forward: str = "auto"  # auto (simcse_lab's own BERT forward on the CPU) | own (on every device: no host syncs on a GPU) | transformers
    do_mlm: bool = False  # auxiliary MLM loss (paper: Appendix, hurts STS slightly)
    mlm_weight: float = 0.1  # lambda of the auxiliary MLM loss
    dropout: float | None = None  # override every dropout probability of the encoder (paper Table 3)
    augmentation: str = "none"  # unsup only: none | crop | word_deletion | delete_one_word (paper Table 1)
    augmentation_ratio: float = 0.1  # crop / deletion ratio for the augmentations above
    resume_from_checkpoint: str | None = None  # a checkpoint dir, or "auto" for the newest in output_dir
    overwrite_output_dir: bool = False  # allow an output_dir that already holds files
    data_dir: str | None = None  # where STS-B dev is read; default $SIMCSE_LAB_DATA, else the hub
    device: str = "auto"  # auto | cpu | cuda | cuda:1 | mps
    on_nonfinite: str = "stop"  # what a NaN/inf loss does: stop (keep the last good checkpoint) or skip the batch
    max_train_samples: int | None = None  # use only the first N rows of the train file (quick runs)
    eval_max_pairs: int | None = None  # evaluate on the first N STS-B dev pairs only (smoke runs)
    show_progress: bool = True  # tqdm progress bar

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise unknown_choice("objective", self.objective, OBJECTIVES)
        if self.on_nonfinite not in ON_NONFINITE:
            raise unknown_choice("on_nonfinite mode", self.on_nonfinite, ON_NONFINITE)
        if self.per_device_train_batch_size < 2:
            raise SimCSELabError("per_device_train_batch_size must be at least 2: contrastive learning needs in-batch negatives")
        if self.bf16 and self.fp16:
            raise SimCSELabError("choose one of bf16 and fp16")
        if self.gradient_cache_chunk_size < 0:
            raise SimCSELabError("gradient_cache_chunk_size must be 0 (off) or a positive number of sentences")
        if self.gradient_cache_chunk_size and self.do_mlm:
            raise SimCSELabError("gradient_cache_chunk_size does not combine with do_mlm; turn one of them off")
        # checked here, not when the model loads, so a typo fails before output_dir is created
        if self.pooler_type is not None:
            check_pooler(self.pooler_type)
        if self.augmentation not in AUGMENTATIONS:
            raise unknown_choice("augmentation", self.augmentation, AUGMENTATIONS)
        if self.bert_forward not in BERT_FORWARDS:
            raise unknown_choice("bert_forward", self.bert_forward, BERT_FORWARDS)
        if self.torch_compile_mode not in COMPILE_MODES:
            raise unknown_choice("torch_compile_mode", self.torch_compile_mode, COMPILE_MODES)
        if self.torch_compile_mode != "default" and not self.torch_compile:
            raise SimCSELabError(f"torch_compile_mode {self.torch_compile_mode!r} needs torch_compile on (--torch_compile)")

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Build from a dict (a JSON/YAML recipe); unknown keys fail loudly."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SimCSELabError(f"unknown training setting(s) {unknown}; valid settings are: {', '.join(sorted(known))}")
        return cls(**values)


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


@dataclass
class TrainResult:
    output_dir: str
    best_score: float | None  # best STS-B dev Spearman x100, None when no evaluation ran
    best_step: int | None
    steps: int
    history: list[dict]
    metrics_path: str
    seconds: float


# ---------------------------------------------------------------------- the trainer
def train(config: TrainConfig, callbacks: Sequence[Any] = ()) -> TrainResult:
    """Train, evaluate on STS-B dev, keep the best; see the module docstring."""
    started = time.time()
    data = load_training_file(config.train_file)  # first: a bad file fails before anything is written
    if config.max_train_samples:
        data.rows = data.rows[: config.max_train_samples]
    output_dir = Path(config.output_dir)
    resume_path = prepare_output_dir(config, output_dir)
    dist = DistributedContext.from_environment(config.device)
    device = dist.device
    seed_everything(config.seed)

    source = resume_path or config.model_name_or_path
    pooler = config.pooler_type or ("avg" if objective_name(config, data) == "sbert" else "cls")
    encoder = SimCSEEncoder.from_pretrained(source, pooler=pooler, mlp_only_train=config.mlp_only_train,
                                            device=device, dropout=config.dropout)
    encoder.bert_forward = config.bert_forward
    freeze_unused_backbone_pooler(encoder)
    objective = build_objective(config, data, encoder)
    columns = objective.tokenize(encoder.tokenizer, data, min(config.max_seq_length, encoder.max_tokens))
    num_rows = len(columns[0])
    global_batch = config.per_device_train_batch_size * dist.world_size
    batches_per_epoch = num_rows // global_batch
    if batches_per_epoch == 0:
        raise SimCSELabError(f"the training file has {num_rows} rows, fewer than one batch of {global_batch}; "
                             "lower per_device_train_batch_size or add data")
    max_steps = config.max_steps if config.max_steps > 0 else math.ceil(config.num_train_epochs * batches_per_epoch)

    # dict keyed by id: a head tied to the input embeddings must not put them in the optimiser twice
    parameters = list({id(p): p for p in [*encoder.parameters(), *objective.parameters()] if p.requires_grad}.values())
    # fused AdamW (one kernel, CUDA; CPU from torch 2.4), the HF Trainer's default too: 5x faster than the loop on CPU
    fused = device.type == "cuda" or (device.type == "cpu" and tuple(map(int, torch.__version__.split(".")[:2])) >= (2, 4))
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay, eps=1e-8,
                                  **({"fused": True} if fused else {}))
    warmup = int(config.warmup_ratio * max_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: linear_schedule(s, warmup, max_steps))
    scaler = torch.amp.GradScaler("cuda", enabled=config.fp16 and device.type == "cuda")
    autocast = make_autocast(config, device)
    objective.scale_loss = scaler.scale
    model = dist.wrap(encoder)
    if config.torch_compile:
        model = torch.compile(model, dynamic=False, mode=config.torch_compile_mode)

    output_dir.mkdir(parents=True, exist_ok=True)  # only now: a bad setting, model or train file leaves nothing behind
    state = TrainState(config=config, max_steps=max_steps)
    if resume_path is not None:
        restore_checkpoint(resume_path, state, optimizer, scheduler, scaler, objective)
    evaluator = DevEvaluator(encoder, config) if config.eval_steps > 0 and dist.is_main and has_dev_data(config) else None
    save_steps = config.save_steps or config.eval_steps
    cuda_graphs = config.torch_compile and config.torch_compile_mode in CUDA_GRAPH_MODES
    sync_every = 1 if (device.type != "cuda" or config.on_nonfinite == "skip") else max(config.logging_steps, 1)

    notify(callbacks, "on_train_begin", state)
    progress = tqdm(total=max_steps, initial=state.step, desc="train", disable=not (config.show_progress and dist.is_main))
    loss_sum = torch.tensor(float(state.unlogged_loss[0]), device=device)
    loss_count, nonfinite_seen = int(state.unlogged_loss[1]), torch.zeros((), dtype=torch.bool, device=device)
    encoder.train()
    try:
        while state.step < max_steps:
            order = epoch_order(num_rows, config.seed, state.epoch)
            while state.batch_in_epoch < batches_per_epoch and state.step < max_steps:
                if cuda_graphs:  # the compiled graphs' outputs of the previous step may be overwritten from here on
                    torch.compiler.cudagraph_mark_step_begin()
                start = state.batch_in_epoch * global_batch + dist.rank * config.per_device_train_batch_size
                rows = order[start : start + config.per_device_train_batch_size]
                with autocast():
                    loss = objective.loss(model, columns, rows, data, device, dist)
                finite = torch.isfinite(loss.detach())
                if config.on_nonfinite == "skip" and not bool(finite):
                    state.skipped_nonfinite += 1
                    optimizer.zero_grad(set_to_none=True)
                else:
                    if not getattr(objective, "backward_inside", False):
                        scaler.scale(loss).backward()
                    if config.max_grad_norm and config.max_grad_norm > 0:
                        scaler.unscale_(optimizer)
                        torch.nn.utils.clip_grad_norm_(parameters, config.max_grad_norm)
                    scaler.step(optimizer)
                    scaler.update()
                    optimizer.zero_grad(set_to_none=True)
                    loss_sum += torch.where(finite, loss.detach().float(), torch.zeros_like(loss_sum))
                    loss_count += 1
                    nonfinite_seen |= ~finite
                scheduler.step()
                state.step += 1
                state.batch_in_epoch += 1
                progress.update(1)
                if state.step % sync_every == 0 and bool(nonfinite_seen):
                    raise NonFiniteLoss(state.step)
                record = {}
                if state.step % config.logging_steps == 0 or state.step == max_steps:
                    record.update(step=state.step, loss=float(loss_sum) / max(loss_count, 1), lr=scheduler.get_last_lr()[0], epoch=state.epoch)
                    loss_sum.zero_()
                    loss_count = 0
                    progress.set_postfix(loss=f"{record['loss']:.4f}")
                    notify(callbacks, "on_log", state, record)
                if evaluator is not None and (state.step % config.eval_steps == 0 or state.step == max_steps):
                    if bool(nonfinite_seen):
                        raise NonFiniteLoss(state.step)
                    scores = evaluator(encoder, autocast)
                    record.update(step=state.step, **scores)
                    if scores["stsb_dev"] > state.best_score:
                        state.best_score, state.best_step = scores["stsb_dev"], state.step
                        if dist.is_main:
                            save_best_model(encoder, output_dir, config, state)
                    progress.set_postfix(loss=record.get("loss"), dev=f"{scores['stsb_dev']:.2f}")
                    notify(callbacks, "on_evaluate", state, record)
                if record:
                    state.history.append(record)
                if save_steps > 0 and state.step % save_steps == 0 and state.step < max_steps and dist.is_main:
                    if bool(nonfinite_seen):
                        raise NonFiniteLoss(state.step)
                    state.unlogged_loss = (float(loss_sum), loss_count)
                    path = save_checkpoint(output_dir, encoder, optimizer, scheduler, scaler, objective, state, config)
                    notify(callbacks, "on_save", state, path)
                dist.barrier_if_saving(save_steps, state.step)
            if state.batch_in_epoch >= batches_per_epoch:
                state.epoch += 1
                state.batch_in_epoch = 0
    except NonFiniteLoss as error:
        raise SimCSELabError(
            f"the loss became NaN/inf by step {error.step}; training stopped and the last good checkpoint in {output_dir} "
            "is kept. Lower the learning rate, use fp32 or bf16 instead of fp16, or pass on_nonfinite='skip' "
            "(--on_nonfinite skip) to skip such batches") from None
    except torch.cuda.OutOfMemoryError:
        raise SimCSELabError(
            f"the GPU ran out of memory at batch size {config.per_device_train_batch_size}, max_seq_length {config.max_seq_length}. "
            "Use a smaller --per_device_train_batch_size, a shorter --max_seq_length, or bf16") from None
    finally:
        progress.close()

    result = finish(encoder, objective, output_dir, config, state, started, dist)
    notify(callbacks, "on_train_end", state)
    dist.close()
    return result


class NonFiniteLoss(Exception):
    def __init__(self, step: int):
        super().__init__(step)
        self.step = step


# ---------------------------------------------------------------------- pieces
def linear_schedule(step: int, warmup: int, total: int) -> float:
    """HF's get_linear_schedule_with_warmup: 0 -> 1 over warm-up, then 1 -> 0 at `total`."""
    if step < warmup:
        return step / max(1, warmup)
    return max(0.0, (total - step) / max(1, total - warmup))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_autocast(config: TrainConfig, device: torch.device):
    if config.bf16:
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    if config.fp16:
        if device.type != "cuda":
            raise SimCSELabError("fp16 needs a CUDA GPU; on CPU use --bf16")
        return lambda: torch.autocast("cuda", dtype=torch.float16)
    return lambda: torch.autocast(device.type, enabled=False)


def freeze_unused_backbone_pooler(encoder: SimCSEEncoder) -> None:
    """The HF pooler (BERT's) is not part of SimCSE's forward; freezing it keeps DDP and AdamW clean."""
    pooler = getattr(encoder.backbone, "pooler", None)
    if pooler is not None:
        for parameter in pooler.parameters():
            parameter.requires_grad_(False)


def has_dev_data(config: TrainConfig) -> bool:
    try:
        load_sts("stsb", "dev", config.data_dir)
        return True
    except SimCSELabError as error:
        warnings.warn(f"no STS-B dev data, so no evaluation or best-checkpoint selection: {error}", stacklevel=2)
        return False


def notify(callbacks, event: str, state: TrainState, *args) -> None:
    for callback in callbacks:
        handler = getattr(callback, event, None)
        if handler is not None:
            handler(state, *args)


def prepare_output_dir(config: TrainConfig, output_dir: Path) -> Path | None:
    """Refuse to clobber results; find the checkpoint to resume from."""
    if output_dir.exists() and not output_dir.is_dir():
        raise SimCSELabError(f"output_dir {output_dir} exists and is a file; choose another --output_dir")
    ckpt.remove_stale_temporaries(output_dir) if output_dir.is_dir() else None
    resume = ckpt.resolve_resume(config.resume_from_checkpoint, output_dir)
    if resume is None and output_dir.is_dir() and any(output_dir.iterdir()):
        if not config.overwrite_output_dir and config.resume_from_checkpoint == "auto":
            raise SimCSELabError(f"--resume_from_checkpoint auto found no complete checkpoint-<step> in {output_dir} (the run "
                                 "stopped before its first save) and the directory is not empty; pass --overwrite_output_dir "
                                 "to start again there, or choose another --output_dir")
        if not config.overwrite_output_dir:
            raise SimCSELabError(f"output_dir {output_dir} already exists and is not empty; pass --overwrite_output_dir to "
                                 "train into it anyway, --resume_from_checkpoint auto to continue, or choose another --output_dir")
        for old in ckpt.list_checkpoints(output_dir) + [output_dir / "best_model"]:
            shutil.rmtree(old, ignore_errors=True)
    return resume


def training_summary(config: TrainConfig, state: TrainState) -> dict:
    return {"recipe": {k: v for k, v in dataclasses.asdict(config).items() if k not in ("show_progress",)},
            "best_stsb_dev": None if state.best_step < 0 else state.best_score, "best_step": None if state.best_step < 0 else state.best_step,
            "steps": state.step}


def save_best_model(encoder: SimCSEEncoder, output_dir: Path, config: TrainConfig, state: TrainState) -> None:
    with ckpt.atomic_directory(output_dir / "best_model") as temporary:
        encoder.save_pretrained(temporary, training=training_summary(config, state), max_seq_length=config.max_seq_length)


def save_checkpoint(output_dir, encoder, optimizer, scheduler, scaler, objective, state: TrainState, config: TrainConfig) -> Path:
    final = output_dir / f"checkpoint-{state.step}"
    with ckpt.atomic_directory(final) as temporary:
        encoder.save_pretrained(temporary, training=training_summary(config, state), max_seq_length=config.max_seq_length)
        rng_tensors, rng_plain = ckpt.capture_rng_state()
        tensors = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                   "objective": objective.state_dict(), "rng": rng_tensors}
        plain = {"step": state.step, "epoch": state.epoch, "batch_in_epoch": state.batch_in_epoch, "best_score": state.best_score,
                 "best_step": state.best_step, "skipped_nonfinite": state.skipped_nonfinite, "history": state.history,
                 "unlogged_loss": list(state.unlogged_loss),
                 "rng": rng_plain, "config": training_summary(config, state)["recipe"]}
        ckpt.save_training_state(temporary, tensors, plain)
    ckpt.rotate_checkpoints(output_dir, config.save_total_limit)
    return final


def restore_checkpoint(path: Path, state: TrainState, optimizer, scheduler, scaler, objective) -> None:
    tensors, plain = ckpt.load_training_state(path)
    optimizer.load_state_dict(tensors["optimizer"])
    scheduler.load_state_dict(tensors["scheduler"])
    scaler.load_state_dict(tensors["scaler"])
    objective.load_state_dict(tensors["objective"])
    for name in ("step", "epoch", "batch_in_epoch", "best_score", "best_step", "skipped_nonfinite", "history"):
        setattr(state, name, plain[name])
    state.unlogged_loss = tuple(plain.get("unlogged_loss", (0.0, 0)))
    ckpt.restore_rng_state(tensors["rng"], plain["rng"])


def finish(encoder, objective, output_dir: Path, config: TrainConfig, state: TrainState, started: float, dist) -> TrainResult:
    """Put the best model (or the final one) in output_dir with metrics.json and history.json.

    The SBERT head (final weights) is saved too, in output_dir/sbert_head/, for NLI classification."""
    metrics_path = output_dir / "metrics.json"
    if dist.is_main:
        best_dir = output_dir / "best_model"
        if best_dir.is_dir():
            for item in best_dir.iterdir():
                target = output_dir / item.name
                if target.is_dir():
                    shutil.rmtree(target)
                shutil.move(str(item), target)
            shutil.rmtree(best_dir)
        else:
            encoder.save_pretrained(output_dir, training=training_summary(config, state), max_seq_length=config.max_seq_length)
        if isinstance(objective, SBERTObjective):
            objective.head.save(output_dir)
        metrics = {**training_summary(config, state), "skipped_nonfinite": state.skipped_nonfinite,
                   "train_seconds": round(time.time() - started, 1), "final": state.history[-1] if state.history else {}}
        ckpt.atomic_write_text(metrics_path, json.dumps(metrics, indent=2) + "\n")
        ckpt.atomic_write_text(output_dir / "history.json", json.dumps(state.history, indent=1) + "\n")
    return TrainResult(
        output_dir=str(output_dir), best_score=None if state.best_step < 0 else state.best_score,
        best_step=None if state.best_step < 0 else state.best_step, steps=state.step, history=state.history,
        metrics_path=str(metrics_path), seconds=time.time() - started,
    )
