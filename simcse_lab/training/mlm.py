"""BERT's masking and the auxiliary MLM objective of SimCSE (`--do_mlm --mlm_weight 0.1`, the paper's Appendix / Table E.1).

The official code adds lambda * MLM loss on a masked copy of the first sentences, through a freshly
initialised BERT LM head whose decoder is tied to the input embeddings. It helps transfer tasks and
slightly hurts STS. Loss is computed on masked positions only (same value as the full-vocabulary
pass with labels = -100 elsewhere, much cheaper). `mask_tokens` is BERT's corruption, shared with the
default encoder's MLM pre-training (simcse_lab.pretrain).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn



def mask_tokens(input_ids: torch.Tensor, special_mask: torch.Tensor, vocab_size: int, mask_token_id: int,
                mlm_probability: float = 0.15, generator: torch.Generator | None = None):
    """BERT's corruption: select `mlm_probability` of the non-special tokens; 80% [MASK], 10% random, 10% kept.

    `input_ids` (B, T); `special_mask` (B, T) bool, True for [CLS]/[SEP]/[PAD] (never selected).
    Returns `(corrupted_ids, selected)`: `corrupted_ids` (B, T) and `selected` (B, T) bool, the positions
    whose original token is to be predicted. Random replacements are uniform over the vocabulary, as in BERT.
    """
    probs = torch.full(input_ids.shape, mlm_probability)
    probs.masked_fill_(special_mask, 0.0)
    selected = torch.bernoulli(probs, generator=generator).bool()  # (B, T)
    draw = torch.rand(input_ids.shape, generator=generator)  # one draw decides mask / random / keep
    to_mask = selected & (draw < 0.8)
    to_random = selected & (draw >= 0.8) & (draw < 0.9)
    corrupted = input_ids.clone()
    corrupted[to_mask] = mask_token_id
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator)
    corrupted[to_random] = random_ids[to_random]
    return corrupted, selected


class AuxiliaryMLM(nn.Module):
    """BERT-style LM head (dense + GELU + LayerNorm + tied decoder) and the masked-position loss."""

    def __init__(self, encoder, mlm_probability: float = 0.15):
        super().__init__()
        hidden = encoder.hidden_size
        eps = getattr(encoder.backbone.config, "layer_norm_eps", 1e-12)
        self.transform = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.LayerNorm(hidden, eps=eps))
        self.embeddings = encoder.backbone.get_input_embeddings()  # tied decoder weights (V, H)
        self.bias = nn.Parameter(torch.zeros(self.embeddings.weight.shape[0]))
        self.special_ids = torch.tensor(sorted(set(encoder.tokenizer.all_special_ids)))
        self.mask_token_id = encoder.tokenizer.mask_token_id
        self.mlm_probability = mlm_probability
        self.backbone = [encoder.backbone]  # in a list: the backbone's parameters are the encoder's, not this head's

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        cpu_ids = input_ids.cpu()
        special = torch.isin(cpu_ids, self.special_ids) | (attention_mask.cpu() == 0)
        corrupted, selected = mask_tokens(cpu_ids, special, self.bias.shape[0], self.mask_token_id, self.mlm_probability)
        if not selected.any():
            return input_ids.new_zeros((), dtype=torch.float)
        hidden = self.backbone[0](input_ids=corrupted.to(input_ids.device), attention_mask=attention_mask).last_hidden_state
        positions = selected.flatten().nonzero().squeeze(1).to(input_ids.device)
        states = self.transform(hidden.reshape(-1, hidden.shape[-1]).index_select(0, positions))  # (M, H)
        logits = states @ self.embeddings.weight.T + self.bias  # (M, V)
        return F.cross_entropy(logits.float(), cpu_ids.flatten()[selected.flatten()].to(input_ids.device))
