"""SBERT's classification objective on NLI: the supervised baseline SimCSE compares against.

Reimers & Gurevych (2019), "Sentence-BERT: Sentence Embeddings using Siamese BERT-Networks" (EMNLP).
Both sentences of an NLI pair go through the same encoder (a siamese network), giving u and v; a
linear softmax classifier reads their concatenation with the element-wise difference,

    o = softmax(W [u; v; |u - v|] + b),      W: (num_labels, 3D),

and the encoder is trained with cross-entropy against the gold label (entailment / neutral /
contradiction). The classifier is thrown away afterwards; only the encoder is kept, and similarity
is the cosine of u and v. SBERT found (u, v, |u - v|) the best of the combinations they tried, and
mean pooling ("avg" here, `DEFAULT_POOLER`) better than CLS, so avg is the default for this objective.

Why SimCSE compares with it. SBERT-NLI is strong on STS, but its objective never pushes unrelated
sentences apart in cosine: nothing in a 3-way classifier asks for a uniform spread, so its embeddings
stay anisotropic (high average cosine; see Gao et al. 2021, Sec. 5 and Fig. 2 on alignment /
uniformity). Supervised SimCSE uses the same NLI data as contrastive pairs (entailment = positive,
contradiction = hard negative), which improves uniformity as well.

Data: `simcse_lab.data.nli` (NLI pairs with labels).
"""


from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from ..data.nli import NLI_LABELS
from ..errors import SimCSELabError

__all__ = ["DEFAULT_POOLER", "SBERTHead", "sbert_features", "sbert_classification_loss"]

DEFAULT_POOLER = "avg"  # SBERT's mean pooling
HEAD_DIR = "sbert_head"


def sbert_features(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """[u; v; |u - v|]. u, v: (B, D) -> (B, 3D)."""
    return torch.cat([u, v, (u - v).abs()], dim=-1)


class SBERTHead(nn.Module):
    """The softmax classifier of SBERT: Linear(3D, num_labels) on (u, v, |u - v|)."""

    def __init__(self, dim: int, num_labels: int = len(NLI_LABELS)):
        super().__init__()
        self.dim, self.num_labels = int(dim), int(num_labels)
        self.linear = nn.Linear(3 * self.dim, self.num_labels)

    def forward(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_labels) for sentence embeddings u, v (B, D)."""
        if u.shape != v.shape or u.shape[-1] != self.dim:
            raise SimCSELabError(f"SBERTHead({self.dim}) needs u and v of shape (B, {self.dim}); got {tuple(u.shape)} and {tuple(v.shape)}")
        return self.linear(sbert_features(u, v))

    def save(self, directory: str | os.PathLike) -> Path:
        """Write directory/sbert_head/model.safetensors (the state_dict) and config.json."""
        target = Path(directory) / HEAD_DIR
        target.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}, str(target / "model.safetensors"))
        config = {"dim": self.dim, "num_labels": self.num_labels, "features": "u,v,|u-v|", "labels": list(NLI_LABELS)}
        (target / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        return target

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "SBERTHead":
        target = Path(directory) / HEAD_DIR
        for name in ("config.json", "model.safetensors"):
            if not (target / name).is_file():
                raise SimCSELabError(f"no SBERT head in {target}: {name} is missing")
        config = json.loads((target / "config.json").read_text())
        head = cls(config["dim"], config["num_labels"])
        head.load_state_dict(load_file(str(target / "model.safetensors")))
        return head


def sbert_classification_loss(u: torch.Tensor, v: torch.Tensor, labels: torch.Tensor, head: SBERTHead) -> torch.Tensor:
    """Mean softmax cross-entropy of head(u, v) against labels. u, v: (B, D); labels: (B,) ids."""
    logits = head(u, v)  # (B, num_labels)
    return F.cross_entropy(logits.float(), labels.to(logits.device).long())
