"""Training objectives: SimCSE InfoNCE (unsupervised, pairs, triplets) and SBERT's NLI classifier.

An objective is built once, with what it uses: its training columns (the file tokenised once into
padded matrices), the device and the distributed context. A step is then

    loss = objective.loss(model, rows)      # rows: this rank's row indices of the batch
    objective.backward(loss, scale)         # scale: GradScaler.scale, or the identity

The base class owns `backward`; the cached loss (GradCache) overrides it, because its backward
re-runs the encoder chunk by chunk. The trainer owns the optimiser, schedule and checkpoints.
"""

from __future__ import annotations

import contextlib
import random
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..augment import TEXT_AUGMENTATIONS, augment
from ..data.training_files import TrainingData
from ..errors import SimCSELabError
from ..losses import sup_simcse_loss, unsup_simcse_loss
from ..models.batches import TokenizedColumn, collate
from ..models.bert_forward import host_packing_pays, real_token_positions
from ..models.device import training_autocast
from .followup_objectives import build_method
from .gradcache import CachedEmbeddings, split_batch
from .sbert import SBERTHead, sbert_classification_loss

Scale = Callable[[torch.Tensor], torch.Tensor]


def identity(loss: torch.Tensor) -> torch.Tensor:
    return loss


class Objective(nn.Module):
    """One batch's loss from row indices; `backward` runs its gradient (see the module docstring)."""

    def __init__(self, encoder, columns: list[TokenizedColumn], device: torch.device, dist):
        super().__init__()
        self.encoder = [encoder]  # in a list: the objective's parameters are its own, not the encoder's
        self.columns, self.device, self.dist = columns, device, dist

    @property
    def num_rows(self) -> int:
        return len(self.columns[0])

    def loss(self, model: nn.Module, rows: np.ndarray) -> torch.Tensor:
        raise NotImplementedError

    def backward(self, loss: torch.Tensor, scale: Scale = identity) -> None:
        scale(loss).backward()

    def to_device(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return ids.to(self.device, non_blocking=True), mask.to(self.device, non_blocking=True)


class SimCSEObjective(Objective):
    """Unsupervised (two views of one column), pairs (2 columns) or triplets (3 columns) InfoNCE.

    augmentation: for unsupervised training, the second view is a text-edited copy of each sentence
    (the paper's Table 1; simcse_lab.augment) instead of the same sentence again.
    shared_mask: unsupervised, both views are one forward pass (one dropout mask): Table 3's "fixed 0.1".
    pad_multiple: batch widths are rounded up to a multiple of it (static shapes for torch.compile).
    mlm_head / mlm_weight: the auxiliary MLM loss on the first view (simcse_lab.training.mlm).
    method: a follow-up of SimCSE (ESimCSE, MixCSE, ArcCSE, PromptBERT: simcse_lab.training.followup_objectives),
        which then computes each step's loss; None is SimCSE itself.
    """

    def __init__(self, encoder, columns, device, dist, mode: str, temperature: float = 0.05, hard_negative_weight: float = 0.0,
                 pad_multiple: int = 1, augmentation: tuple[str, float, list[str], int] | None = None,
                 shared_mask: bool = False, mlm_head: nn.Module | None = None, mlm_weight: float = 0.1,
                 method: nn.Module | None = None):
        super().__init__(encoder, columns, device, dist)
        self.mode, self.temperature, self.hard_negative_weight = mode, temperature, hard_negative_weight
        self.pad_multiple, self.augmentation, self.shared_mask = pad_multiple, augmentation, shared_mask
        self.mlm_head, self.mlm_weight = mlm_head, mlm_weight
        self.method = method

    @property
    def views(self) -> int:
        return 2 if self.mode == "unsup" else len(self.columns)

    def batch(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(k*B, T) ids and mask on the host: the k views of the rows stacked."""
        if self.mode == "unsup" and self.augmentation is not None:
            return self.augmented_batch(rows)
        if self.shared_mask:
            return collate(self.columns[:1], rows, self.pad_multiple)  # one view, used twice (contrastive_loss)
        columns = [self.columns[0], self.columns[0]] if self.mode == "unsup" else self.columns  # one pass, two dropout masks
        return collate(columns, rows, self.pad_multiple)

    def augmented_batch(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Unsup with a text augmentation (paper Table 1): view 1 = the sentence, view 2 = its augmented copy,
        tokenised as the training file was (same truncation and padding multiple)."""
        name, ratio, sentences, seed = self.augmentation
        rng = random.Random(seed * 1_000_003 + int(rows[0]))
        edited = [augment(sentences[i], name, ratio, rng) for i in rows]
        column = TokenizedColumn.from_sentences(self.encoder[0].tokenizer, edited, self.columns[0].ids.shape[1])
        return collate([self.columns[0].select(rows), column], np.arange(len(rows)), self.pad_multiple)

    def loss(self, model, rows) -> torch.Tensor:
        if self.method is not None:
            return self.method.loss(self, model, rows)
        ids, mask = self.batch(rows)
        positions = self.host_token_positions(mask)
        ids, mask = self.to_device(ids, mask)
        loss = self.contrastive_loss(model(ids, mask, token_positions=positions))
        if self.mlm_head is not None:
            loss = loss + self.mlm_weight * self.mlm_head(ids[: len(rows)], mask[: len(rows)])
        return loss

    def contrastive_loss(self, z: torch.Tensor) -> torch.Tensor:
        """z: (k*B, D), the k views stacked -> InfoNCE over the global batch."""
        if self.shared_mask:
            z = torch.cat([z, z])  # (2B, D): the positive of each sentence is its own embedding, mask and all
        views = [self.dist.gather(v) for v in z.chunk(self.views)]  # each (world*B, D)
        if len(views) == 2:
            return unsup_simcse_loss(views[0], views[1], self.temperature)
        return sup_simcse_loss(views[0], views[1], views[2], self.temperature, self.hard_negative_weight)

    def host_token_positions(self, mask: torch.Tensor) -> torch.Tensor | None:
        """The packed layout of a GPU batch, found on the host and sent along (see SimCSEEncoder.forward), when
        the encoder runs its own forward there and the batch is big and padded enough to gain from packing."""
        if self.device.type == "cpu" or not self.encoder[0].runs_own_forward(self.device) or not host_packing_pays(mask):
            return None
        return real_token_positions(mask).to(self.device, non_blocking=True)


class CachedSimCSEObjective(SimCSEObjective):
    """SimCSE with the cached loss (GradCache, simcse_lab.training.gradcache): the batch is embedded in chunks of
    `chunk_size` sentences without a graph, and `backward` re-embeds each chunk to backpropagate its share, under
    the step's autocast (`autocast`: the factory the trainer's forward runs in), so both passes agree."""

    def __init__(self, *args, chunk_size: int, autocast: Callable = contextlib.nullcontext, **kwargs):
        super().__init__(*args, **kwargs)
        self.chunk_size, self.autocast = chunk_size, autocast
        self.cache: CachedEmbeddings | None = None

    def loss(self, model, rows) -> torch.Tensor:
        ids, mask = self.batch(rows)
        chunks = [self.to_device(i, m) for i, m in split_batch(ids, mask, self.chunk_size, self.pad_multiple)]  # cut on the host
        self.cache = CachedEmbeddings.embed(model, chunks)
        return self.contrastive_loss(self.cache.z)

    def backward(self, loss: torch.Tensor, scale: Scale = identity) -> None:
        cache, self.cache = self.cache, None
        with self.autocast():
            cache.backward(scale(loss))


class SBERTObjective(Objective):
    """SBERT's classification objective: softmax over (u, v, |u - v|) with NLI labels."""

    def __init__(self, encoder, columns, device, dist, labels: torch.Tensor):
        super().__init__(encoder, columns, device, dist)
        self.head = SBERTHead(encoder.hidden_size)
        self.labels = labels

    def loss(self, model, rows) -> torch.Tensor:
        ids, mask = self.to_device(*collate(self.columns, rows))
        u, v = model(ids, mask).chunk(2)
        return sbert_classification_loss(u, v, self.labels[torch.from_numpy(rows)].to(self.device), self.head)


def objective_name(requested: str, data: TrainingData) -> str:
    """simcse or sbert: the requested one, or in auto mode what the training file holds."""
    if requested == "auto":
        return "sbert" if data.mode == "sbert" else "simcse"
    return requested


def check_objective_settings(config, data: TrainingData) -> None:
    """The settings that depend on what the training file holds, checked before any model loads."""
    if objective_name(config.objective, data) == "sbert":
        if data.mode != "sbert":
            raise SimCSELabError(f"the SBERT objective needs a CSV with columns sent0,sent1,label; {config.train_file} is a {data.mode} file")
        return
    if data.mode == "sbert":
        raise SimCSELabError("a sent0,sent1,label file trains SBERT; pass --objective sbert (or auto), not simcse")
    if config.augmentation != "none" and data.mode != "unsup":
        raise SimCSELabError("text augmentations apply to unsupervised training (a .txt file) only")
    if config.hard_negative_weight and data.mode != "triplets":
        raise SimCSELabError(f"hard_negative_weight needs hard negatives (a sent0,sent1,hard_neg CSV); {config.train_file} is a "
                             f"{data.mode} file")


def build_objective(config, data: TrainingData, encoder, device: torch.device, dist) -> Objective:
    """The objective a TrainConfig and a training file ask for, with the file tokenised into its columns."""
    check_objective_settings(config, data)
    max_length = min(config.max_seq_length, encoder.max_tokens)
    width = 2 if data.mode == "sbert" else len(data.rows[0])
    columns = [TokenizedColumn.from_sentences(encoder.tokenizer, [row[i] for row in data.rows], max_length,
                                              threads=config.preprocessing_num_workers) for i in range(width)]
    if objective_name(config.objective, data) == "sbert":
        labels = torch.tensor([row[2] for row in data.rows], dtype=torch.long)
        return SBERTObjective(encoder, columns, device, dist, labels).to(device)
    mlm_head = None
    if config.do_mlm:
        from .mlm import AuxiliaryMLM  # noqa: PLC0415

        mlm_head = AuxiliaryMLM(encoder, config.mlm_probability)
    augmentation = None
    if config.augmentation in TEXT_AUGMENTATIONS:
        augmentation = (config.augmentation, config.augmentation_ratio, [row[0] for row in data.rows], config.seed)
    options = dict(mode=data.mode, temperature=config.temp, hard_negative_weight=config.hard_negative_weight,
                   pad_multiple=max_length if config.pad_to_max_length else 8 if config.torch_compile else 1,
                   augmentation=augmentation, shared_mask=config.augmentation == "same_mask", mlm_head=mlm_head,
                   mlm_weight=config.mlm_weight, method=build_method(config, data, encoder, columns))
    if config.gradient_cache_chunk_size:
        return CachedSimCSEObjective(encoder, columns, device, dist, chunk_size=config.gradient_cache_chunk_size,
                                     autocast=training_autocast(device, config.bf16, config.fp16), **options).to(device)
    return SimCSEObjective(encoder, columns, device, dist, **options).to(device)
