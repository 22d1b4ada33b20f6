"""`SimCSE`: the official `simcse/tool.py` convenience, on simcse_lab's encoder.

    from simcse_lab import SimCSE
    model = SimCSE(simcse_lab.DEFAULT_MODEL)            # or "princeton-nlp/sup-simcse-bert-base-uncased"
    model.similarity("A woman is reading.", "A man is playing a guitar.")   # float
    model.build_index(sentences)
    model.search("A woman is making a photo.", top_k=5, threshold=0.6)     # [(sentence, score), ...]

Search is exact cosine similarity with torch, or faiss's inner-product index when faiss is installed
(`use_faiss=None` picks it automatically for large indexes). Embeddings are L2-normalised, so the inner
product is the cosine.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..models.encoder import SimCSEEncoder
from ..errors import SimCSELabError

FAISS_MIN_SIZE = 10_000  # below this, exact torch search is as fast and needs no extra package


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


class SimCSE:
    """Encode, compare and search sentences with any encoder simcse_lab loads."""

    def __init__(self, model_name_or_path: str | SimCSEEncoder, pooler: str | None = None, device: str | None = None,
                 batch_size: int = 64, max_length: int = 128):
        self.encoder = (model_name_or_path if isinstance(model_name_or_path, SimCSEEncoder)
                        else SimCSEEncoder.from_pretrained(model_name_or_path, pooler=pooler, device=device))
        self.batch_size, self.max_length = batch_size, max_length
        self.index_sentences: list[str] = []
        self.index_embeddings: torch.Tensor | None = None
        self.faiss_index = None

    def encode(self, sentences: str | Sequence[str], normalize: bool = True) -> torch.Tensor:
        """(D,) for one string, (N, D) for a list; L2-normalised by default."""
        embeddings = self.encoder.encode(sentences, batch_size=self.batch_size, max_length=self.max_length, normalize=normalize)
        return embeddings[0] if isinstance(sentences, str) else embeddings

    def similarity(self, queries: str | Sequence[str], keys: str | Sequence[str]) -> float | np.ndarray:
        """Cosine similarity: a float for two strings, else a (len(queries), len(keys)) array."""
        a = self.encoder.encode(queries, batch_size=self.batch_size, max_length=self.max_length, normalize=True)
        b = self.encoder.encode(keys, batch_size=self.batch_size, max_length=self.max_length, normalize=True)
        scores = (a @ b.T).numpy()
        if isinstance(queries, str) and isinstance(keys, str):
            return float(scores[0, 0])
        if isinstance(queries, str):
            return scores[0]
        if isinstance(keys, str):
            return scores[:, 0]
        return scores

    def build_index(self, sentences: Sequence[str], use_faiss: bool | None = None) -> None:
        """Embed and index sentences for search (faiss IndexFlatIP when available and large)."""
        sentences = list(sentences)
        self.index_sentences = sentences
        self.index_embeddings = self.encoder.encode(sentences, batch_size=self.batch_size, max_length=self.max_length,
                                                    normalize=True)
        if use_faiss is None:
            use_faiss = faiss_available() and len(sentences) >= FAISS_MIN_SIZE
        self.faiss_index = None
        if use_faiss:
            if not faiss_available():
                raise SimCSELabError("use_faiss=True but faiss is not installed; pip install faiss-cpu, or use exact search")
            import faiss  # noqa: PLC0415

            self.faiss_index = faiss.IndexFlatIP(self.index_embeddings.shape[1])
            self.faiss_index.add(self.index_embeddings.numpy().astype(np.float32))

    def search(self, queries: str | Sequence[str], top_k: int = 5, threshold: float = 0.6):
        """The top_k indexed sentences with cosine >= threshold: [(sentence, score)] per query."""
        if self.index_embeddings is None:
            raise SimCSELabError("build_index(sentences) first")
        single = isinstance(queries, str)
        q = self.encoder.encode(queries, batch_size=self.batch_size, max_length=self.max_length, normalize=True)
        k = min(top_k, len(self.index_sentences))
        if k == 0 or q.shape[0] == 0:
            return [] if single else [[] for _ in range(q.shape[0])]
        if self.faiss_index is not None:
            scores, ids = self.faiss_index.search(q.numpy().astype(np.float32), k)
        else:
            top = torch.topk(q @ self.index_embeddings.T, k, dim=1)
            scores, ids = top.values.numpy(), top.indices.numpy()
        results = [[(self.index_sentences[i], float(s)) for s, i in zip(row_scores, row_ids) if s >= threshold]
                   for row_scores, row_ids in zip(scores, ids)]
        return results[0] if single else results
