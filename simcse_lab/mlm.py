"""The auxiliary MLM objective of SimCSE (`--do_mlm --mlm_weight 0.1`, the paper's Appendix / Table E.1).

The official code adds lambda * MLM loss on a masked copy of the first sentences, through a freshly
initialised BERT LM head whose decoder is tied to the input embeddings. It helps transfer tasks and
slightly hurts STS. Loss is computed on masked positions only (same value as the full-vocabulary
pass with labels = -100 elsewhere, much cheaper).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .pretrain import mask_tokens


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

    def forward(self, model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        encoder = model.module if hasattr(model, "module") else model
        cpu_ids = input_ids.cpu()
        special = torch.isin(cpu_ids, self.special_ids) | (attention_mask.cpu() == 0)
        corrupted, selected = mask_tokens(cpu_ids, special, self.bias.shape[0], self.mask_token_id, self.mlm_probability)
        if not selected.any():
            return input_ids.new_zeros((), dtype=torch.float)
        hidden = encoder.backbone(input_ids=corrupted.to(input_ids.device), attention_mask=attention_mask).last_hidden_state
        positions = selected.flatten().nonzero().squeeze(1).to(input_ids.device)
        states = self.transform(hidden.reshape(-1, hidden.shape[-1]).index_select(0, positions))  # (M, H)
        logits = states @ self.embeddings.weight.T + self.bias  # (M, V)
        return F.cross_entropy(logits.float(), cpu_ids.flatten()[selected.flatten()].to(input_ids.device))
