"""The trainer's STS-B dev evaluation: sentences tokenised once, scored between training steps."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from .batches import TokenizedColumn, collate
from .data import EVAL_MAX_LENGTH, load_sts
from .encoder import SimCSEEncoder
from .geometry import alignment, average_cosine, uniformity

if TYPE_CHECKING:
    from .train import TrainConfig


class DevEvaluator:
    """STS-B dev Spearman plus alignment (gold >= 4 pairs), uniformity and average cosine."""

    def __init__(self, encoder: SimCSEEncoder, config: TrainConfig):
        pairs = load_sts("stsb", "dev", config.data_dir)
        if config.eval_max_pairs:
            pairs = pairs[: config.eval_max_pairs]
        self.sentences = list(dict.fromkeys(s for p in pairs for s in p[:2]))
        index = {s: i for i, s in enumerate(self.sentences)}
        self.left = np.array([index[p[0]] for p in pairs])
        self.right = np.array([index[p[1]] for p in pairs])
        self.gold = np.array([p[2] for p in pairs])
        order = np.argsort([-len(s) for s in self.sentences], kind="stable")
        self.order = order
        # whole sentences, as `simcse-lab evaluate` scores them, not cut at the training max_seq_length
        self.column = TokenizedColumn.from_sentences(encoder.tokenizer, [self.sentences[i] for i in order],
                                                     min(EVAL_MAX_LENGTH, encoder.max_tokens))

    @torch.no_grad()
    def __call__(self, encoder: SimCSEEncoder, autocast, batch_size: int = 256) -> dict[str, float]:
        from scipy.stats import spearmanr  # noqa: PLC0415

        was_training = encoder.training
        encoder.eval()
        chunks = []
        device = encoder.device
        with autocast():
            for start in range(0, len(self.column), batch_size):
                ids, mask = collate([self.column], np.arange(start, min(start + batch_size, len(self.column))))
                chunks.append(encoder(ids.to(device), mask.to(device)).float().cpu())
        encoder.train(was_training)
        embeddings = torch.empty(len(self.sentences), chunks[0].shape[1])
        embeddings[torch.from_numpy(self.order)] = torch.cat(chunks)
        normed = torch.nn.functional.normalize(embeddings.double(), dim=-1)
        cosines = (normed[self.left] * normed[self.right]).sum(-1).numpy()
        positive = self.gold >= 4.0
        return {
            "stsb_dev": float(spearmanr(cosines, self.gold).correlation * 100),
            "alignment": alignment(embeddings[self.left[positive]], embeddings[self.right[positive]]),
            "uniformity": uniformity(embeddings),
            "avg_cosine": average_cosine(embeddings),
        }
