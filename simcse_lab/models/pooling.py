"""Sentence poolers: how token states become one sentence vector (SimCSE's `pooler_type`).

The closed set, with the official meanings:
- cls               [CLS] state of the last layer, then the MLP head Linear(h, h) + tanh. With
                    mlp_only_train the head is used in training only (the paper's unsup. setting).
- cls_before_pooler [CLS] state of the last layer, no head.
- avg               mean of the last layer over real (non-padding) tokens.
- avg_top2          mean over tokens of the average of the last two layers.
- avg_first_last    mean over tokens of the average of the first and last layers, where "first" is
                    hidden_states[1] (the first Transformer layer's output). The official code first
                    used hidden_states[0], the embedding layer, and later corrected it.
and PromptBERT's (Jiang et al., EMNLP 2022), which needs a prompt template (simcse_lab.models.prompt):
- mask              the last-layer state of the template's [MASK] token; the encoder applies its
                    template (`SimCSEEncoder.prompt`) to every sentence it embeds.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import unknown_choice

POOLERS = ("cls", "cls_before_pooler", "avg", "avg_top2", "avg_first_last")  # the official SimCSE poolers
PROMPT_POOLERS = ("mask",)  # PromptBERT's: read the [MASK] token of a template
NEEDS_ALL_LAYERS = ("avg_top2", "avg_first_last")
FIRST_TOKEN_POOLERS = ("cls", "cls_before_pooler")  # read the last layer at position 0 only


def check_pooler(pooler: str) -> str:
    if pooler not in POOLERS + PROMPT_POOLERS:
        raise unknown_choice("pooler", pooler, POOLERS + PROMPT_POOLERS)
    return pooler


def masked_mean(states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean over real tokens. states (B, T, H), attention_mask (B, T) -> (B, H)."""
    mask = attention_mask.unsqueeze(-1).to(states.dtype)  # (B, T, 1)
    return (states * mask).sum(1) / mask.sum(1).clamp_min(1.0)


def pool(pooler: str, hidden_states: tuple[torch.Tensor, ...], attention_mask: torch.Tensor,
         after_mask: int | None = None) -> torch.Tensor:
    """Pool one batch. hidden_states: the model's per-layer states, [0] = embeddings, [-1] = last.

    For cls/cls_before_pooler/avg/mask only hidden_states[-1] is read, so a 1-tuple suffices. after_mask (mask
    pooler): how many tokens of each templated row follow its [MASK] (`PromptTemplate.after_mask`).
    """
    last = hidden_states[-1]  # (B, T, H)
    if pooler == "mask":
        if after_mask is None:
            raise ValueError("the mask pooler needs after_mask, the position of the [MASK] token from the end of each row")
        positions = attention_mask.sum(1) - 1 - after_mask  # (B,): right padding, so the row's end is its length
        return last[torch.arange(last.shape[0], device=last.device), positions]
    if pooler in FIRST_TOKEN_POOLERS:
        return last[:, 0]
    if pooler == "avg":
        return masked_mean(last, attention_mask)
    if pooler == "avg_top2":
        return masked_mean((hidden_states[-1] + hidden_states[-2]) / 2.0, attention_mask)
    if pooler == "avg_first_last":
        return masked_mean((hidden_states[1] + hidden_states[-1]) / 2.0, attention_mask)
    raise unknown_choice("pooler", pooler, POOLERS + PROMPT_POOLERS)


class MLPHead(nn.Module):
    """SimCSE's MLP over the [CLS] state: Linear(h, h) + tanh (the official `MLPLayer`)."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.activation = nn.Tanh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(x))
