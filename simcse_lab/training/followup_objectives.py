"""SimCSE's follow-ups as plug-ins of the SimCSE objective: each changes one piece of a training step.

    --method    what it changes        how (where the piece lives)
    esimcse     positive, negatives    word repetition makes the positive (augment.word_repetition); a momentum
                                       encoder's queue adds negatives (MomentumEncoder, EmbeddingQueue, losses_followup)
    mixcse      negatives              hard negatives mixed from a positive and a negative (losses_followup.mixcse_loss)
    arccse      loss                   an angular margin on the positive (losses_followup.arccse_loss)
    promptbert  pooler, positives      a template's [MASK] state; two templates make the two views; template
                                       denoising (models.prompt, models.pooling)

Everything else is SimCSE's: the trainer, the data order, the optimiser, the dev evaluation, the temperature.
A plug-in is an nn.Module, so what it holds (the momentum encoder and its queue, PromptBERT's training head)
is saved in checkpoints with the objective and restored on resume. `SimCSEObjective.loss` hands a step to
the plug-in when it has one (simcse_lab.training.objectives); the plug-in uses the objective's columns,
device, distributed context and temperature. All of them train on unsupervised data (a .txt file).
"""

from __future__ import annotations

import copy
import random
from typing import Iterable

import numpy as np
import torch
from torch import nn

from ..augment import repetition_count_limit, word_repetition
from ..errors import SimCSELabError
from ..losses import unsup_simcse_loss
from ..losses_followup import arccse_loss, esimcse_loss, mixcse_loss
from ..models.batches import TokenizedColumn, collate
from ..models.pooling import MLPHead
from ..models.prompt import PromptTemplate, position_offset

METHODS = ("simcse", "esimcse", "mixcse", "arccse", "promptbert")  # TrainConfig.method


class FollowUp(nn.Module):
    """A follow-up method's step: `loss(objective, model, rows)` for the SimCSEObjective that owns it."""

    def loss(self, objective, model: nn.Module, rows: np.ndarray) -> torch.Tensor:
        raise NotImplementedError


def embed_local(objective, model: nn.Module, ids: torch.Tensor, mask: torch.Tensor,
                position_ids: torch.Tensor | None = None) -> torch.Tensor:
    """This rank's embeddings of a host batch (moved to the device, packed on a GPU when that pays): (rows, D)."""
    token_positions = objective.host_token_positions(mask)
    ids, mask = objective.to_device(ids, mask)
    if position_ids is not None:
        position_ids = position_ids.to(objective.device, non_blocking=True)
    return model(ids, mask, token_positions=token_positions, position_ids=position_ids)


def embed(objective, model: nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
    """One forward over a host batch of two stacked views -> each view's (global batch, D) embeddings."""
    return [objective.dist.gather(v) for v in embed_local(objective, model, ids, mask).chunk(2)]


# ---------------------------------------------------------------------- ESimCSE
def ema_update(targets: Iterable[torch.Tensor], sources: Iterable[torch.Tensor], momentum: float) -> None:
    """theta_m <- momentum * theta_m + (1 - momentum) * theta, in place, for each (target, source) pair."""
    targets, sources = list(targets), [s.detach() for s in sources]
    with torch.no_grad():
        torch._foreach_mul_(targets, momentum)
        torch._foreach_add_(targets, sources, alpha=1.0 - momentum)


class MomentumEncoder(nn.Module):
    """ESimCSE's momentum encoder (Wu et al., COLING 2022, Sec. 3.2; MoCo's, He et al. 2020): a copy of the
    encoder whose parameters follow the trained ones slowly, theta_m <- lambda theta_m + (1 - lambda) theta
    (lambda = 0.995 in the official run.sh), and that gradients never reach (its parameters are frozen).

    It embeds without dropout (the official code switches the model to eval mode for it) but with the pooler
    used in training: the MLP head of the cls pooler stays on even when mlp_only_train drops it at inference,
    as the official momentum branch applies `cls.mlp`. The official code keeps a copy of the backbone only
    and shares the MLP with the trained model; here the copy is the whole encoder, MLP included."""

    def __init__(self, encoder: nn.Module, momentum: float):
        super().__init__()
        self.encoder = copy.deepcopy(encoder).requires_grad_(False)
        self.encoder.mlp_only_train = False
        self.momentum = momentum

    def update(self, online: nn.Module) -> None:
        ema_update(self.encoder.parameters(), online.parameters(), self.momentum)

    @torch.no_grad()
    def embed(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        self.encoder.eval()
        return self.encoder(ids, mask)


class EmbeddingQueue(nn.Module):
    """The last `size` embeddings pushed (a ring buffer), as constants: ESimCSE's queue of negatives."""

    def __init__(self, size: int, dim: int):
        super().__init__()
        self.register_buffer("embeddings", torch.zeros(size, dim))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))  # rows filled so far, at most size
        self.register_buffer("cursor", torch.zeros((), dtype=torch.long))  # where the next row goes
        self.full = False  # known on the host once the queue has filled (no device read after that)

    def negatives(self) -> torch.Tensor:
        """(M, D) the rows filled so far (their order does not matter to the loss)."""
        if not self.full:
            filled = int(self.count)  # a host sync, only until the queue has filled once
            self.full = filled == self.embeddings.shape[0]
            return self.embeddings[:filled]
        return self.embeddings

    @torch.no_grad()
    def push(self, z: torch.Tensor) -> None:
        size = self.embeddings.shape[0]
        if size == 0:
            return
        z = z.detach()[-size:]
        slots = (self.cursor + torch.arange(len(z), device=z.device)) % size
        self.embeddings[slots] = z.to(self.embeddings.dtype)
        self.cursor.copy_((self.cursor + len(z)) % size)
        self.count.copy_((self.count + len(z)).clamp(max=size))


def repeated_column(column: TokenizedColumn, dup_rate: float, rng: random.Random, width: int, pad_id: int = 0) -> TokenizedColumn:
    """Word repetition of every row of a tokenised column ([first] sentence [last] rows): the sentence's tokens
    repeated (augment.word_repetition), the special tokens kept once, rows cut at `width` tokens."""
    ids = np.full((len(column), width), pad_id, dtype=column.ids.dtype)
    lengths = np.zeros(len(column), dtype=np.int32)
    for i, (row, length) in enumerate(zip(column.ids, column.lengths)):
        tokens = [row[0], *word_repetition(row[1 : length - 1], dup_rate, rng), row[length - 1]]
        if len(tokens) > width:
            tokens = tokens[: width - 1] + tokens[-1:]
        ids[i, : len(tokens)], lengths[i] = tokens, len(tokens)
    return TokenizedColumn(ids, lengths)


def widened(column: TokenizedColumn, width: int, pad_id: int = 0) -> TokenizedColumn:
    """The same rows in a matrix `width` wide (padded on the right with pad_id)."""
    extra = width - column.ids.shape[1]
    return column if extra <= 0 else TokenizedColumn(np.pad(column.ids, ((0, 0), (0, extra)), constant_values=pad_id), column.lengths)


class ESimCSE(FollowUp):
    """ESimCSE (Wu, Gao, Zang, Han, Wang & Hu, COLING 2022, "ESimCSE: Enhanced Sample Building Method for
    Contrastive Learning of Unsupervised Sentence Embedding"). Two changes to SimCSE:

    1. The positive x+ is x with some subword tokens repeated (`augment.word_repetition`, dup_rate 0.32 for
       BERT-base), so a positive pair no longer shares its length; dropout still applies to both views.
    2. M extra negatives: the momentum encoder's embeddings of the sentences x of the previous batches, kept in
       a queue (queue_size 160 = 2.5 x batch 64 and momentum 0.995 in the official run.sh for BERT-base):

           l_i = -log e^{cos(h_i, h_i+)/t} / ( sum_j e^{cos(h_i, h_j+)/t} + sum_m e^{cos(h_i, h_m)/t} )

    Each step, as in the official code (caskcsg/sentemb, ESimCSE/esimcse/models.py and trainers.py): the
    online forward, the momentum update (with the parameters before this step's optimiser update), the loss
    with the queue as it was, then this batch's sentences, momentum-encoded, enter the queue.
    """

    def __init__(self, encoder: nn.Module, columns: list[TokenizedColumn], dup_rate: float, queue_size: int,
                 momentum: float, seed: int):
        super().__init__()
        self.dup_rate, self.seed, self.pad_id = dup_rate, seed, encoder.tokenizer.pad_token_id or 0
        self.momentum = MomentumEncoder(encoder, momentum)
        self.queue = EmbeddingQueue(queue_size, encoder.hidden_size)
        width = columns[0].ids.shape[1]  # rows at most max_seq_length tokens; repetition adds at most this many more
        self.width = min(encoder.max_tokens, width + repetition_count_limit(max(width - 2, 0), dup_rate))

    def batch(self, objective, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(2B, T) on the host: the sentences, then their word-repeated copies (drawn from the rows and the seed,
        so a resumed run repeats the same tokens)."""
        column = objective.columns[0].select(rows)
        rng = random.Random(self.seed * 1_000_003 + int(rows[0]))
        repeated = repeated_column(column, self.dup_rate, rng, self.width, self.pad_id)
        return collate([widened(column, self.width, self.pad_id), repeated], np.arange(len(rows)), objective.pad_multiple)

    def loss(self, objective, model, rows):
        ids, mask = self.batch(objective, rows)
        z1, z2 = embed(objective, model, ids, mask)
        self.momentum.update(objective.encoder[0])
        loss = esimcse_loss(z1, z2, self.queue.negatives(), objective.temperature)
        sentences, sentence_mask = objective.to_device(ids[: len(rows)], mask[: len(rows)])
        self.queue.push(objective.dist.gather(self.momentum.embed(sentences, sentence_mask)))
        return loss


# ---------------------------------------------------------------------- MixCSE, ArcCSE
class MixCSE(FollowUp):
    """MixCSE (Zhang, Zhang, Mensah, Liu & Mao, AAAI 2022, "Unsupervised Sentence Representation via Contrastive
    Learning with Mixing Negatives"): SimCSE's views and in-batch negatives, plus hard negatives mixed from a
    positive and a negative, l h+ + (1 - l) h-, with a stop-gradient (losses_followup.mixcse_logits; l = 0.2 for
    BERT-base, as the official run_unsup_example.sh)."""

    def __init__(self, mix_lambda: float):
        super().__init__()
        self.mix_lambda = mix_lambda

    def loss(self, objective, model, rows):
        z1, z2 = embed(objective, model, *objective.batch(rows))
        return mixcse_loss(z1, z2, self.mix_lambda, objective.temperature)


class ArcCSE(FollowUp):
    """ArcCSE's pairwise objective ArcCon (Zhang, Zhu, Wang, Xu, Li & Zhao, ACL 2022, "A Contrastive Framework
    for Learning Sentence Representations from Pairwise and Triple-wise Perspective in Angular Space"): SimCSE's
    views and negatives, with an additive angular margin m on the positive, cos(theta + m)
    (losses_followup.arccon_logits; m = 10 degrees).

    Only this half of ArcCSE is here. Its triple-wise half (entailment triplets made by masking spans of
    different lengths, with a triplet loss in angular space) is not: the official code could not be read for
    this module, and what was readable of the method did not pin down how the spans are chosen. A run of
    --method arccse is therefore "ArcCon", not the paper's full ArcCSE; the notebook labels it so."""

    def __init__(self, margin_degrees: float):
        super().__init__()
        self.margin_degrees = margin_degrees

    def loss(self, objective, model, rows):
        z1, z2 = embed(objective, model, *objective.batch(rows))
        return arccse_loss(z1, z2, self.margin_degrees, objective.temperature)


# ---------------------------------------------------------------------- PromptBERT
class PromptBERT(FollowUp):
    """PromptBERT's unsupervised objective (Jiang, Jiao, Huang, Zhang, Wang, Zhuang, Wei, Huang, Deng & Zhang,
    EMNLP 2022, "PromptBERT: Improving BERT Sentence Embeddings with Prompts"):

    - the sentence embedding is the [MASK] state of a template (the encoder's "mask" pooler);
    - the two views of a sentence are two *templates* (prompt_template, prompt_template2), each with dropout;
    - template denoising: each view's [MASK] state minus the [MASK] state of its template alone, with the
      same position ids (models.prompt.PromptTemplate.template_only): h_i - h_i^t and h'_i - h'^t_i;
    - InfoNCE on those, through an MLP head (Linear + tanh) used in training only (the official unsup
      recipe's --mlp_only_train).

    As in the official code (kongds/Prompt-BERT, prompt_bert/models.py and train.py): each sentence is
    tokenised alone and cut at max_seq_length tokens before the template is added; the template-only
    states are computed in the same training forward (dropout on, gradients flowing through them); at
    inference the embedding is the first template's plain [MASK] state. One difference: the official code
    selects its checkpoint on STS-B dev scored with denoised embeddings; here dev is scored as test is, with
    the plain [MASK] state (the embedding the saved model gives).
    """

    def __init__(self, encoder: nn.Module, sentences: list[str], templates: tuple[str, str], max_length: int, denoise: bool):
        super().__init__()
        tokenizer = encoder.tokenizer
        self.templates = [PromptTemplate.from_text(text, tokenizer) for text in templates]
        sentence_tokens = TokenizedColumn.from_sentences(tokenizer, sentences, max_length + 2)  # max_length tokens + [CLS], [SEP]
        self.views = [template.apply(sentence_tokens, encoder.max_tokens) for template in self.templates]
        self.first_id, self.last_id = tokenizer("")["input_ids"]  # [CLS], [SEP] (RoBERTa: <s>, </s>)
        self.denoise = denoise
        self.offset = position_offset(encoder.backbone) if denoise else 0
        self.head = MLPHead(encoder.hidden_size)
        nn.init.normal_(self.head.dense.weight, std=getattr(encoder.backbone.config, "initializer_range", 0.02))
        nn.init.zeros_(self.head.dense.bias)
        encoder.prompt = self.templates[0]  # what the encoder embeds with: dev evaluation, the saved model

    def batch(self, rows: np.ndarray, pad_multiple: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, list[np.ndarray]]:
        """The host batch: ids, mask and position ids of [view 1; view 2; the template-only rows], and for each
        view the row of its template-only state (one per template and sentence length in the batch)."""
        ids, mask = collate(self.views, rows, pad_multiple)  # (2B, T)
        if not self.denoise:
            return ids, mask, None, []
        pieces, index, start = [], [], 2 * len(rows)
        for template, view in zip(self.templates, self.views):
            lengths, inverse = np.unique(template.sentence_lengths(view.select(rows)), return_inverse=True)
            pieces.append(template.template_only(lengths, self.first_id, self.last_id, self.offset))
            index.append(start + inverse.reshape(-1))
            start += len(lengths)
        width = max(ids.shape[1], *(piece[0].shape[1] for piece in pieces))
        positions = torch.arange(width).repeat(len(ids), 1) + self.offset  # the backbone's own numbering for the views
        parts = [(ids, mask, positions[:, : ids.shape[1]]), *pieces]
        ids, mask, positions = (torch.cat([nn.functional.pad(part[k], (0, width - part[k].shape[1])) for part in parts])
                                for k in range(3))
        return ids, mask, positions, index

    def embed_views(self, objective, model, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Each view's (denoised) [MASK] states, before the training head and before gathering: (B, D) twice."""
        ids, mask, positions, index = self.batch(rows, objective.pad_multiple)
        states = embed_local(objective, model, ids, mask, positions)  # (2B + U, D) [MASK] states
        views = states[: 2 * len(rows)].chunk(2)
        if not self.denoise:
            return views
        return tuple(view - states[torch.from_numpy(rows_of).to(states.device)] for view, rows_of in zip(views, index))

    def loss(self, objective, model, rows):
        h1, h2 = (objective.dist.gather(self.head(view)) for view in self.embed_views(objective, model, rows))
        return unsup_simcse_loss(h1, h2, objective.temperature)



# ---------------------------------------------------------------------- building
def build_method(config, data, encoder: nn.Module, columns: list[TokenizedColumn]) -> FollowUp | None:
    """The plug-in a TrainConfig's method asks for (None for plain SimCSE), checked against the training data."""
    if config.method == "simcse":
        return None
    if data.mode != "unsup":
        raise SimCSELabError(f"--method {config.method} trains on unsupervised data here (a .txt file, one sentence a line); "
                             f"{config.train_file} is a {data.mode} file")
    if config.method == "esimcse":
        return ESimCSE(encoder, columns, config.dup_rate, config.queue_size, config.momentum, config.seed)
    if config.method == "mixcse":
        return MixCSE(config.mix_lambda)
    if config.method == "arccse":
        return ArcCSE(config.arc_margin)
    sentences = [row[0] for row in data.rows]
    return PromptBERT(encoder, sentences, (config.prompt_template, config.prompt_template2), config.max_seq_length,
                      config.template_denoising)
