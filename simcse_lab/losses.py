"""SimCSE's contrastive objectives, as pure functions of embeddings.

Both losses are InfoNCE with cosine similarity and a temperature t (Gao et al., 2021, eqs. 1 and 5):

    l_i = -log  exp(cos(h_i, h_i+)/t) / sum_j [ exp(cos(h_i, h_j+)/t) + exp(cos(h_i, h_j-)/t) ]

Unsupervised SimCSE: h_i and h_i+ are the same sentence encoded twice with different dropout masks;
the other sentences in the batch are the negatives. Supervised SimCSE: h_i+ is an entailment
hypothesis and h_j- are contradiction hypotheses (hard negatives), again with in-batch negatives.

Parameterisation. One parameter, the temperature t (paper default 0.05). sentence-transformers'
MultipleNegativesRankingLoss uses a scale s on the same cosine logits instead: s = 1/t, so its
default scale=20 is exactly t=0.05.

Hard-negative weight. As in the official code, w is added to the logit cos(h_i, h_i-)/t *after*
dividing by t, which multiplies exp(.) of that term by alpha = e^w (so w = log alpha; the paper's
Table 7 finds alpha = 1, i.e. w = 0, best). Only the hard negative paired with sentence i gets w.

Inputs are raw (un-normalised) embeddings; the cosine is computed inside, in fp32 even under bf16/fp16
autocast: positives and hard negatives differ in the second or third decimal of their cosines, which
bf16's 8-bit mantissa rounds away, and 1/t = 20 then magnifies the rounding. Labels are i (the
diagonal), and the result is the mean cross-entropy over the batch.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F


def cosine_logits(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """cos(a_i, b_j) / t for all i, j, in fp32 (see the module docstring). a: (B, D), b: (M, D) -> (B, M)."""
    device_type = a.device.type
    exact = (torch.autocast(device_type, enabled=False) if device_type in ("cpu", "cuda") and torch.is_autocast_enabled(device_type)
             else contextlib.nullcontext())
    with exact:
        return F.normalize(a.float(), dim=-1) @ F.normalize(b.float(), dim=-1).T / temperature


def simcse_logits(
    z1: torch.Tensor,
    z2: torch.Tensor,
    z3: torch.Tensor | None = None,
    temperature: float = 0.05,
    hard_negative_weight: float = 0.0,
) -> torch.Tensor:
    """The logit matrix [cos(z1_i, z2_j)/t | cos(z1_i, z3_j)/t + w*[i==j]]. (B, B) or (B, 2B)."""
    logits = cosine_logits(z1, z2, temperature)  # (B, B); the diagonal holds the positives
    if z3 is None:
        return logits
    hard = cosine_logits(z1, z3, temperature)  # (B, B); hard[i, i] is sentence i's own hard negative
    if hard_negative_weight:
        hard = hard + hard_negative_weight * torch.eye(hard.shape[0], device=hard.device, dtype=hard.dtype)
    return torch.cat([logits, hard], dim=1)  # (B, 2B)


def unsup_simcse_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.05) -> torch.Tensor:
    """Unsupervised SimCSE loss. z1, z2: (B, D), two dropout views of the same B sentences."""
    logits = simcse_logits(z1, z2, temperature=temperature)
    labels = torch.arange(logits.shape[0], device=logits.device)
    return F.cross_entropy(logits.float(), labels)


def sup_simcse_loss(
    z1: torch.Tensor,
    z2: torch.Tensor,
    z3: torch.Tensor,
    temperature: float = 0.05,
    hard_negative_weight: float = 0.0,
) -> torch.Tensor:
    """Supervised SimCSE loss. z1: premises, z2: entailments, z3: contradictions, each (B, D)."""
    logits = simcse_logits(z1, z2, z3, temperature, hard_negative_weight)
    labels = torch.arange(logits.shape[0], device=logits.device)
    return F.cross_entropy(logits.float(), labels)
