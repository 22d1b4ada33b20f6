"""`SimCSE`: the official `simcse` package's tool (`simcse/tool.py`), on simcse_lab's encoder.

    from simcse_lab import SimCSE                      # was: from simcse import SimCSE
    model = SimCSE("princeton-nlp/sup-simcse-bert-base-uncased")   # or simcse_lab.DEFAULT_MODEL, any saved model
    model.similarity("A woman is reading.", "A man is playing a guitar.")   # float
    model.build_index(sentences)                       # a list, or the path of a file of sentences (one per line)
    model.search("A woman is making a photo.")         # [(sentence, score), ...], top 5 with cosine >= 0.6

Every call of the official tool works with the same arguments, positionally too, and returns the same
types and shapes: `encode` a torch tensor (or numpy with return_numpy=True), (D,) for one string (or (1, D)
with keepdim=True) and (N, D) for a list; `similarity` a float for two strings, (M,) for one query against
M keys, (N, M) for lists (so (N, 1) for a list against one key); `search` a list of (sentence, score) for
one query, a list of such lists for a list of queries, best first, at most top_k, each score >= threshold.
As in the official tool, faiss is used whenever it can be imported (`use_faiss=None`; pip install faiss-cpu),
IndexFlatIP (exact) or, with `faiss_fast=True`, IndexIVFFlat with `num_cells` cells of which
`num_cells_in_search` are probed; without faiss, search is exact. Embeddings are L2-normalised, so the
inner product is the cosine.

Where it differs, and why:
- `pooler=None` takes the pooler the checkpoint records (simcse_lab.models.loading): an official SimCSE
  checkpoint gets the official choice ("unsup" in its name: cls_before_pooler, else cls), a simcse_lab or
  sentence-transformers directory its saved pooling, and any other model `avg`, where the official tool
  uses `cls` (BERT's pooler_output, a poor sentence embedding without SimCSE training). Pass pooler="cls"
  for the official behaviour: it reads the checkpoint's own pooler_output, as the official tool does.
- Scores in search results are Python floats on both paths (the official faiss path gives numpy.float32
  scalars of the same value), and faiss's -1 ids (top_k larger than the index) are never returned.
- `add_to_index` before any `build_index` builds the index (the official tool fails on its missing index).
- The list form of `search` honours threshold and top_k (the PyPI 0.4 release's brute-force path dropped
  them, the repository's current code does not), and faiss_fast uses the inner product (0.4 used L2).
"""

from __future__ import annotations

import logging
import os
from typing import Sequence

import numpy as np
import torch

from ..errors import SimCSELabError
from ..models.device import pick_device
from ..models.encoder import SimCSEEncoder

logger = logging.getLogger(__name__)


def import_faiss():
    """The faiss module, or None when it cannot be imported (the official tool's test: IndexFlatIP exists)."""
    try:
        import faiss  # noqa: PLC0415
    except ImportError:
        return None
    return faiss if hasattr(faiss, "IndexFlatIP") else None


def faiss_available() -> bool:
    return import_faiss() is not None


def read_sentence_file(path: str | os.PathLike) -> list[str]:
    """The lines of a file, each with its trailing whitespace removed, as the official tool reads them."""
    try:
        with open(path, encoding="utf8") as handle:
            return [line.rstrip() for line in handle]
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as error:
        raise SimCSELabError(f"cannot read {str(path)!r} ({error.strerror}): a string given to build_index/add_to_index is the path "
                             "of a file of sentences, one per line (as in the official tool); pass a list to index sentences") from None


def sentences_from(sentences_or_file_path) -> list[str]:
    if isinstance(sentences_or_file_path, (str, os.PathLike)):
        return read_sentence_file(sentences_or_file_path)
    return list(sentences_or_file_path)


class SimCSE:
    """Encode, compare and search sentences: the official tool's API (module docstring) on any encoder simcse_lab loads.

    model_name_or_path: a hub id, a model directory, or a SimCSEEncoder. device: where encoding runs (None: cuda
    if available, else cpu, as officially). num_cells / num_cells_in_search: faiss_fast's IVF cells and probes.
    pooler: one of simcse_lab.POOLERS; None = the checkpoint's own (module docstring).
    """

    def __init__(self, model_name_or_path: str | os.PathLike | SimCSEEncoder, device: str | None = None, num_cells: int = 100,
                 num_cells_in_search: int = 10, pooler: str | None = None):
        if isinstance(model_name_or_path, SimCSEEncoder):
            if pooler is not None:
                raise SimCSELabError("pooler= applies when SimCSE loads a model; set encoder.pooler on a SimCSEEncoder you pass yourself")
            self.encoder = model_name_or_path if device is None else model_name_or_path.to(pick_device(device))
        else:
            self.encoder = SimCSEEncoder.from_pretrained(model_name_or_path, pooler=pooler, device=device)
        self.device = str(self.encoder.device)  # "cuda:0" or "cpu"; a call's device= runs that call elsewhere
        self.num_cells, self.num_cells_in_search = num_cells, num_cells_in_search
        self.index: dict | None = None  # {"sentences": [...], "index": (N, D) array or a faiss index}, as officially
        self.is_faiss_index = False

    @property
    def pooler(self) -> str:
        return self.encoder.pooler

    @property
    def tokenizer(self):
        return self.encoder.tokenizer

    @property
    def model(self):
        """The Hugging Face backbone (the official tool's `model`, an AutoModel)."""
        return self.encoder.backbone

    # ------------------------------------------------------------------ embeddings
    def encode(self, sentence: str | Sequence[str], device: str | None = None, return_numpy: bool = False,
               normalize_to_unit: bool = True, keepdim: bool = False, batch_size: int = 64,
               max_length: int = 128) -> np.ndarray | torch.Tensor:
        """Embeddings on the CPU: (D,) for one string ((1, D) with keepdim), (N, D) for a list; a float32 torch
        tensor, or a numpy array with return_numpy. normalize_to_unit: L2-normalised rows."""
        embeddings = self.encoder.encode(sentence, batch_size=batch_size, max_length=max_length, normalize=normalize_to_unit,
                                         device=device)
        if isinstance(sentence, str) and not keepdim:
            embeddings = embeddings[0]
        return embeddings.numpy() if return_numpy else embeddings

    def similarity(self, queries: str | Sequence[str], keys: str | Sequence[str] | np.ndarray | torch.Tensor,
                   device: str | None = None) -> float | np.ndarray:
        """Cosine similarities, float32: (N, M) for N queries and M keys; one query gives (M,), one query and one
        key a float. keys may be precomputed vectors, (M, D) or one (D,), normalised or not."""
        query_vecs = self.encode(queries, device=device, return_numpy=True)  # (N, D) or (D,)
        if isinstance(keys, (np.ndarray, torch.Tensor)):
            key_vecs = np.asarray(keys.detach().cpu() if isinstance(keys, torch.Tensor) else keys, dtype=np.float32)
        else:
            key_vecs = self.encode(keys, device=device, return_numpy=True)  # (M, D) or (D,)
        single_query, single_key = query_vecs.ndim == 1, key_vecs.ndim == 1
        scores = unit_rows(query_vecs.reshape(1, -1) if single_query else query_vecs) @ unit_rows(
            key_vecs.reshape(1, -1) if single_key else key_vecs).T  # (N, M)
        if single_query:
            return float(scores[0, 0]) if single_key else scores[0]
        return scores

    # ------------------------------------------------------------------ index and search
    def build_index(self, sentences_or_file_path: str | os.PathLike | Sequence[str], use_faiss: bool | None = None,
                    faiss_fast: bool = False, device: str | None = None, batch_size: int = 64) -> None:
        """Embed and index sentences (a list, or the path of a file with one per line) for `search`. use_faiss None
        or True: faiss whenever it imports (a warning and exact search otherwise), False: exact search."""
        faiss = import_faiss() if use_faiss is None or use_faiss else None
        if use_faiss and faiss is None:
            logger.warning("faiss could not be imported (pip install faiss-cpu); searching exactly, without it")
        sentences = sentences_from(sentences_or_file_path)
        embeddings = self.encode(sentences, device=device, batch_size=batch_size, normalize_to_unit=True, return_numpy=True)
        self.index = {"sentences": sentences}
        if faiss is None:
            self.index["index"], self.is_faiss_index = embeddings, False
            return
        dim, cells = embeddings.shape[1], min(self.num_cells, len(sentences))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, cells, faiss.METRIC_INNER_PRODUCT) if faiss_fast else quantizer
        on_gpu = device == "cuda" or (self.device.startswith("cuda") and device != "cpu")
        if on_gpu and hasattr(faiss, "StandardGpuResources"):
            self.faiss_gpu_resources = faiss.StandardGpuResources()  # kept: the GPU index needs them alive
            self.faiss_gpu_resources.setTempMemory(20 * 1024**3)
            index = faiss.index_cpu_to_gpu(self.faiss_gpu_resources, 0, index)
        if faiss_fast:
            index.train(embeddings.astype(np.float32))
            index.nprobe = min(self.num_cells_in_search, len(sentences))
        index.add(embeddings.astype(np.float32))
        self.index["index"], self.is_faiss_index = index, True

    def add_to_index(self, sentences_or_file_path: str | os.PathLike | Sequence[str], device: str | None = None,
                     batch_size: int = 64) -> None:
        """Embed more sentences (a list or a file path) into the index; builds it if there is none yet."""
        if self.index is None:
            return self.build_index(sentences_or_file_path, device=device, batch_size=batch_size)
        sentences = sentences_from(sentences_or_file_path)
        embeddings = self.encode(sentences, device=device, batch_size=batch_size, normalize_to_unit=True, return_numpy=True)
        if self.is_faiss_index:
            self.index["index"].add(embeddings.astype(np.float32))
        else:
            self.index["index"] = np.concatenate((self.index["index"], embeddings))
        self.index["sentences"] += sentences

    def search(self, queries: str | Sequence[str], device: str | None = None, threshold: float = 0.6,
               top_k: int = 5) -> list[tuple[str, float]] | list[list[tuple[str, float]]]:
        """The top_k indexed sentences with cosine >= threshold, best first, as (sentence, score): a list for one
        query, a list of lists for a list of queries. Exact search keeps the index order among equal scores."""
        if self.index is None:
            raise SimCSELabError("search needs an index: call build_index(sentences or a file path) first")
        single = isinstance(queries, str)
        query_vecs = self.encode([queries] if single else list(queries), device=device, return_numpy=True)  # (Q, D)
        if self.is_faiss_index:
            k = min(top_k, self.index["index"].ntotal)
            if k <= 0 or len(query_vecs) == 0:
                results = [[] for _ in query_vecs]
            else:
                scores, ids = self.index["index"].search(query_vecs.astype(np.float32), k)
                results = [[(self.index["sentences"][i], float(s)) for i, s in zip(row_ids, row_scores) if i >= 0 and s >= threshold]
                           for row_ids, row_scores in zip(ids, scores)]
        else:
            scores = unit_rows(query_vecs) @ unit_rows(self.index["index"]).T  # (Q, M)
            results = [exact_top_k(row, self.index["sentences"], threshold, top_k) for row in scores]
        return results[0] if single else results


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, float32 (a zero row stays zero, where sklearn's cosine_similarity gives 0 too)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


def exact_top_k(scores: np.ndarray, sentences: list[str], threshold: float, top_k: int) -> list[tuple[str, float]]:
    """(sentence, score) with score >= threshold, best first, at most top_k; ties keep the index order (stable sort).
    The comparison is made on the scores as Python floats, as the official tool makes it (not in float32)."""
    scores = scores.astype(np.float64)
    kept = np.flatnonzero(scores >= threshold)
    best = kept[np.argsort(-scores[kept], kind="stable")][: max(top_k, 0)]
    return [(sentences[i], float(scores[i])) for i in best]


__all__ = ["SimCSE", "faiss_available", "read_sentence_file"]
