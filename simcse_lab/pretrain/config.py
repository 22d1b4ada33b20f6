"""The settings of one MLM pre-training run, and what it produced."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field, fields

from ..errors import SimCSELabError
from ..paths import DATA_ENV_VAR
from ..settings import Bounds, add_dataclass_arguments, check_fields

BOUNDS = {
    "vocab_size": Bounds(10), "num_hidden_layers": Bounds(1), "hidden_size": Bounds(1), "num_attention_heads": Bounds(1),
    "intermediate_size": Bounds(1), "max_position_embeddings": Bounds(2), "max_seq_length": Bounds(2),
    "mlm_probability": Bounds(0, 1, low_open=True), "heldout_sentences": Bounds(0), "bucket_chunk_batches": Bounds(1),
    "per_device_train_batch_size": Bounds(1), "learning_rate": Bounds(0, low_open=True), "weight_decay": Bounds(0),
    "adam_beta2": Bounds(0, 1, high_open=True), "warmup_ratio": Bounds(0, 1, high_open=True), "max_grad_norm": Bounds(0),
    "max_steps": Bounds(1), "time_budget_s": Bounds(0, low_open=True), "seed": Bounds(0, 2**32 - 1),
    "num_threads": Bounds(1), "log_every": Bounds(1),
}


@dataclass
class PretrainConfig:
    """Everything one pre-training run depends on; `pretrain_log.json` records it."""

    output_dir: str = "data/models/bert-mini-mlm"  # where the checkpoint, log and card are written
    data_dir: str | None = None  # data folder; None reads $SIMCSE_LAB_DATA
    # Tokenizer
    vocab: str | None = None  # vocab.txt or tokenizer dir to use as is; None trains WordPiece on the corpus
    vocab_size: int = 8192  # size of the trained WordPiece vocabulary (ignored with vocab/init_from)
    # Model
    init_from: str | None = None  # HF checkpoint dir to continue from; None builds a fresh BERT
    num_hidden_layers: int = 4  # transformer layers of a fresh model
    hidden_size: int = 256  # width of a fresh model
    num_attention_heads: int = 4  # attention heads (hidden_size / heads = 64 per head)
    intermediate_size: int = 1024  # feed-forward width, 4x hidden as in BERT
    max_position_embeddings: int = 512  # position table, kept BERT-sized so longer inputs still encode
    # Data
    max_seq_length: int = 64  # tokens per sentence incl. [CLS]/[SEP]; longer ones are truncated
    mlm_probability: float = 0.15  # fraction of real tokens selected for prediction
    heldout_sentences: int = 1000  # sentences kept out of training to measure a held-out MLM loss
    bucket_chunk_batches: int = 64  # batches per length-sorted chunk (larger: less padding, less random)
    # Optimisation
    per_device_train_batch_size: int = 256  # sentences per step
    learning_rate: float = 1e-3  # peak learning rate (from scratch; use ~1e-4 when continuing)
    weight_decay: float = 0.01  # AdamW decay, not applied to biases and LayerNorm weights
    adam_beta2: float = 0.98  # RoBERTa's value, steadier than 0.999 at a high learning rate
    warmup_ratio: float = 0.06  # fraction of the schedule spent warming up linearly
    max_grad_norm: float = 1.0  # gradient clipping
    max_steps: int | None = 2000  # optimiser steps; None (or 0) runs on the time budget alone
    time_budget_s: float | None = None  # wall-clock limit of the training loop; None: no limit
    # Runtime
    seed: int = 42  # seeds data order, masking and initialisation
    bf16: bool | None = None  # bf16 autocast; None: on for CUDA and for CPUs with native bf16
    device: str = "auto"  # 'auto' (CUDA if available), 'cpu', 'cuda', ...
    num_threads: int | None = None  # torch CPU threads; None keeps torch's default
    log_every: int = 50  # steps per logged (window-averaged) loss
    progress: bool = True  # show a tqdm progress bar

    def __post_init__(self):
        if self.max_steps == 0:
            self.max_steps = None
        check_fields(self, BOUNDS, "pre-training setting")
        if not self.max_steps and not self.time_budget_s:
            raise SimCSELabError("set max_steps and/or time_budget_s, otherwise pre-training never stops")
        if self.hidden_size % self.num_attention_heads:
            raise SimCSELabError(f"hidden_size {self.hidden_size} must be a multiple of num_attention_heads {self.num_attention_heads}")


@dataclass
class PretrainResult:
    """What a run produced; the same numbers are in `pretrain_log.json`."""

    output_dir: str
    steps: int
    epochs: float
    tokens_seen: int
    wall_time_s: float
    final_loss: float  # training MLM loss averaged over the last log window
    heldout_loss: float | None  # MLM loss on the held-out sentences (fixed masking seed)
    stopped_by: str  # 'max_steps' or 'time_budget'
    loss_curve: list = field(default_factory=list)




def add_pretrain_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Flags of `simcse-lab pretrain`: one per `PretrainConfig` field, generated from it."""
    add_dataclass_arguments(parser, PretrainConfig)
    return parser


def config_from_args(args: argparse.Namespace) -> PretrainConfig:
    """The `PretrainConfig` of parsed `add_pretrain_arguments` flags (unset data_dir reads $SIMCSE_LAB_DATA)."""
    names = {f.name for f in fields(PretrainConfig)}
    values = {k: v for k, v in vars(args).items() if k in names}
    if values.get("data_dir") is None and os.environ.get(DATA_ENV_VAR):
        values["data_dir"] = os.environ[DATA_ENV_VAR]
    return PretrainConfig(**values)
