"""Training objectives: SimCSE InfoNCE (unsupervised, pairs, triplets) and SBERT's NLI classifier.

Each objective tokenises the training file into columns once (`tokenize`) and computes one batch's
loss from row indices (`loss`); the trainer owns the optimiser, schedule and checkpoints.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import torch
from torch import nn

from .batches import TokenizedColumn, collate
from .bert_forward import host_packing_pays, real_token_positions
from .data import TrainingData
from .encoder import SimCSEEncoder
from .errors import SimCSELabError
from .gradcache import cached_backward, split_batch
from .losses import sup_simcse_loss, unsup_simcse_loss

if TYPE_CHECKING:
    from .train import TrainConfig


class SimCSEObjective(nn.Module):
    """Unsupervised (k=2 copies of one column), pairs (k=2) or triplets (k=3) InfoNCE."""

    def __init__(self, config: TrainConfig, mode: str, mlm_head: nn.Module | None = None):
        super().__init__()
        self.config, self.mode = config, mode
        self.mlm_head = mlm_head
        self.scale_loss = None  # the trainer sets GradScaler.scale: the cached loss runs its own backward

    @property
    def backward_inside(self) -> bool:
        """True when `loss` has already run the backward (the cached loss); the trainer must not."""
        return self.config.gradient_cache_chunk_size > 0

    def tokenize(self, tokenizer, data: TrainingData, max_length: int) -> list[TokenizedColumn]:
        width = len(data.rows[0])
        columns = [TokenizedColumn.from_sentences(tokenizer, [row[i] for row in data.rows], max_length) for i in range(width)]
        if self.mode == "unsup":
            return [columns[0], columns[0]]  # the same sentence twice: two dropout masks in one pass
        return columns

    def loss(self, model, columns, rows, data, device, dist) -> torch.Tensor:
        if self.mode == "unsup" and self.config.augmentation != "none":
            ids, mask = augmented_batch(model, columns[0], rows, data, self.config)
        else:
            ids, mask = collate(columns, rows, 8 if self.config.torch_compile else 1)
        if self.backward_inside:  # chunks are cut on the host: no device sync
            chunks = [(i.to(device, non_blocking=True), m.to(device, non_blocking=True))
                      for i, m in split_batch(ids, mask, self.config.gradient_cache_chunk_size, 8 if self.config.torch_compile else 1)]
            return cached_backward(model, chunks, lambda z: self.contrastive_loss(z, len(columns), dist), self.scale_loss)
        positions = host_token_positions(model, mask, device)
        ids, mask = ids.to(device, non_blocking=True), mask.to(device, non_blocking=True)
        loss = self.contrastive_loss(model(ids, mask, token_positions=positions), len(columns), dist)
        if self.mlm_head is not None:
            loss = loss + self.config.mlm_weight * self.mlm_head(model, ids[: len(rows)], mask[: len(rows)])
        return loss

    def contrastive_loss(self, z: torch.Tensor, k: int, dist) -> torch.Tensor:
        """z: (k*B, D), the k views stacked -> InfoNCE over the global batch."""
        views = [dist.gather(v) for v in z.chunk(k)]  # each (world*B, D)
        if len(views) == 2:
            return unsup_simcse_loss(views[0], views[1], self.config.temp)
        return sup_simcse_loss(views[0], views[1], views[2], self.config.temp, self.config.hard_negative_weight)


class SBERTObjective(nn.Module):
    """SBERT's classification objective: softmax over (u, v, |u - v|) with NLI labels."""

    def __init__(self, config: TrainConfig, hidden_size: int):
        super().__init__()
        from .sbert import SBERTHead  # noqa: PLC0415

        self.config = config
        self.head = SBERTHead(hidden_size)

    def tokenize(self, tokenizer, data: TrainingData, max_length: int) -> list[TokenizedColumn]:
        self.labels = torch.tensor([row[2] for row in data.rows], dtype=torch.long)
        return [TokenizedColumn.from_sentences(tokenizer, [row[i] for row in data.rows], max_length) for i in (0, 1)]

    def loss(self, model, columns, rows, data, device, dist) -> torch.Tensor:
        from .sbert import sbert_classification_loss  # noqa: PLC0415

        ids, mask = collate(columns, rows)
        z = model(ids.to(device), mask.to(device))
        u, v = z.chunk(2)
        return sbert_classification_loss(u, v, self.labels[torch.from_numpy(rows)].to(device), self.head)


def host_token_positions(model, mask: torch.Tensor, device: torch.device) -> torch.Tensor | None:
    """The packed layout of a GPU batch, found on the host and sent along (see SimCSEEncoder.forward), when
    the encoder runs its own forward there and the batch is big and padded enough to gain from packing."""
    encoder = model.module if hasattr(model, "module") else model
    if device.type == "cpu" or not isinstance(encoder, SimCSEEncoder) or not encoder.runs_own_forward(device):
        return None
    if not host_packing_pays(mask):
        return None
    return real_token_positions(mask).to(device, non_blocking=True)


def objective_name(config: TrainConfig, data: TrainingData) -> str:
    """simcse or sbert: the config's choice, or in auto mode what the training file holds."""
    if config.objective == "auto":
        return "sbert" if data.mode == "sbert" else "simcse"
    return config.objective


def build_objective(config: TrainConfig, data: TrainingData, encoder: SimCSEEncoder) -> nn.Module:
    objective = objective_name(config, data)
    if objective == "sbert":
        if data.mode != "sbert":
            raise SimCSELabError(f"the SBERT objective needs a CSV with columns sent0,sent1,label; {config.train_file} is a {data.mode} file")
        return SBERTObjective(config, encoder.hidden_size).to(encoder.device)
    if data.mode == "sbert":
        raise SimCSELabError("a sent0,sent1,label file trains SBERT; pass --objective sbert (or auto), not simcse")
    if config.augmentation != "none" and data.mode != "unsup":
        raise SimCSELabError("text augmentations apply to unsupervised training (a .txt file) only")
    mlm_head = None
    if config.do_mlm:
        from .mlm import AuxiliaryMLM  # noqa: PLC0415

        mlm_head = AuxiliaryMLM(encoder)
    return SimCSEObjective(config, data.mode, mlm_head).to(encoder.device)


def augmented_batch(model, column: TokenizedColumn, rows, data: TrainingData, config: TrainConfig):
    """Unsup with a text augmentation (paper Table 1): view 1 = the sentence, view 2 = its augmented copy."""
    from .augment import augment  # noqa: PLC0415

    encoder = model.module if hasattr(model, "module") else model
    originals = [data.rows[i][0] for i in rows]
    rng = random.Random(config.seed * 1_000_003 + int(rows[0]))
    views = originals + [augment(s, config.augmentation, config.augmentation_ratio, rng) for s in originals]
    encoded = encoder.tokenizer(views, padding=True, truncation=True, max_length=config.max_seq_length, return_tensors="pt")
    return encoded["input_ids"], encoded["attention_mask"]
