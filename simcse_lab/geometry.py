"""Geometry of an embedding space: anisotropy, spectrum, alignment, uniformity, whitening.

References
- Ethayarajh (2019), "How Contextual are Contextualized Word Representations?": average cosine of
  random pairs as a measure of anisotropy.
- Gao et al. (2021), SimCSE, Appendix F (singular spectrum) and Appendix G (cosine by gold bin).
- Wang & Isola (2020), "Understanding Contrastive Representation Learning through Alignment and
  Uniformity on the Hypersphere": alignment and uniformity, both computed on L2-normalised embeddings.
- Su et al. (2021), "Whitening Sentence Representations for Better Semantics and Faster Retrieval"
  (BERT-whitening): x -> (x - mu) W with W = U diag(1/sqrt(s)) from the SVD of the covariance.

All functions take a torch tensor or a numpy array of shape (N, D) and compute in float64 on CPU,
so results do not depend on the device or dtype the embeddings came from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .errors import SimCSELabError


def as_float64(x, name: str = "embeddings") -> torch.Tensor:
    """(N, D) float64 CPU tensor; rejects NaN/inf with a message that says where they came from."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.asarray(x))
    elif not isinstance(x, torch.Tensor):
        x = torch.as_tensor(np.asarray(x, dtype=np.float64))
    x = x.detach().to("cpu", torch.float64)
    if x.ndim != 2:
        raise SimCSELabError(f"{name} must be a 2-D array (N, D); got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).any(dim=1).sum())
        raise SimCSELabError(
            f"{name} contain NaN or inf in {bad} of {x.shape[0]} rows; this usually means training "
            "diverged (lower the learning rate or use fp32) or the inputs were empty"
        )
    return x


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def cosine_matrix(x, y=None) -> torch.Tensor:
    """Cosine similarity of every row of x with every row of y (default: x). (N, M) float64."""
    a = l2_normalize(as_float64(x))
    b = a if y is None else l2_normalize(as_float64(y))
    return a @ b.T


def average_cosine(x, num_pairs: int | None = None, seed: int = 0) -> float:
    """Mean cosine similarity between distinct embeddings (anisotropy; 0 for an isotropic cloud).

    With num_pairs=None every unordered pair i<j is used (exact). Otherwise num_pairs random pairs
    of distinct indices are drawn, which is what "random pairs" means in the anisotropy literature.
    """
    x = l2_normalize(as_float64(x))
    n = x.shape[0]
    if n < 2:
        raise SimCSELabError("average_cosine needs at least 2 embeddings")
    if num_pairs is None:
        total = x.sum(0)
        # sum_{i != j} <x_i, x_j> = |sum x|^2 - sum |x_i|^2, and each |x_i| = 1.
        return float((total @ total - n) / (n * (n - 1)))
    i, j = random_pairs(n, num_pairs, seed)
    return float((x[i] * x[j]).sum(-1).mean())


def random_pairs(n: int, num_pairs: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """num_pairs index pairs (i, j) with i != j, drawn uniformly."""
    g = torch.Generator().manual_seed(seed)
    i = torch.randint(0, n, (num_pairs,), generator=g)
    offset = torch.randint(1, n, (num_pairs,), generator=g)  # j = i + offset (mod n) is never i
    return i, (i + offset) % n


def pair_cosines(x, y) -> torch.Tensor:
    """Row-wise cosine cos(x_i, y_i). (N,) float64."""
    return (l2_normalize(as_float64(x, "x")) * l2_normalize(as_float64(y, "y"))).sum(-1)


def singular_spectrum(x, center: bool = False) -> torch.Tensor:
    """Singular values of the embedding matrix, sorted, divided by the largest (so the first is 1).

    A few values near 1 and a fast fall-off means a few directions dominate (anisotropy); a flat
    spectrum means the embeddings use all directions. SimCSE's Appendix F plots this uncentred.
    """
    x = as_float64(x)
    if center:
        x = x - x.mean(0, keepdim=True)
    s = torch.linalg.svdvals(x)
    return s / s[0].clamp_min(1e-300)


def alignment(x, y, alpha: float = 2.0) -> float:
    """Wang & Isola alignment: E ||f(x) - f(y)||^alpha over positive pairs (lower is better).

    x[i] and y[i] are the two embeddings of the i-th positive pair; both are L2-normalised first.
    simcse_lab's STS-B convention: the positive pairs are the pairs with gold score >= 4
    (as in the SimCSE paper's Figure 2/3).
    """
    x, y = l2_normalize(as_float64(x, "x")), l2_normalize(as_float64(y, "y"))
    if x.shape != y.shape:
        raise SimCSELabError(f"alignment needs paired embeddings of equal shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    return float((x - y).norm(dim=1).pow(alpha).mean())


def uniformity(x, t: float = 2.0) -> float:
    """Wang & Isola uniformity: log E exp(-t ||f(x) - f(y)||^2) over distinct pairs (lower is better).

    Embeddings are L2-normalised first. Uses all unordered pairs i<j.
    """
    x = l2_normalize(as_float64(x))
    if x.shape[0] < 2:
        raise SimCSELabError("uniformity needs at least 2 embeddings")
    sq_dists = torch.pdist(x, p=2).pow(2)
    return float(torch.logsumexp(-t * sq_dists, dim=0) - np.log(sq_dists.numel()))


@dataclass
class Whitening:
    """BERT-whitening (Su et al., 2021): y = (x - mu) @ W, keeping the first k directions.

    fit() computes mu and the covariance C = cov(x); with the SVD C = U S U^T, W = U S^{-1/2}.
    After the transform the embeddings have zero mean and identity covariance (over the fit set),
    which removes the dominant directions that make raw BERT anisotropic.
    """

    mean: torch.Tensor  # (D,)
    kernel: torch.Tensor  # (D, k)

    @classmethod
    def fit(cls, x, k: int | None = None, eps: float = 1e-12) -> "Whitening":
        x = as_float64(x)
        mu = x.mean(0)
        cov = torch.cov((x - mu).T)
        u, s, _ = torch.linalg.svd(cov)
        kernel = u / s.clamp_min(eps).sqrt()
        if k is not None:
            if not 1 <= k <= kernel.shape[1]:
                raise SimCSELabError(f"whitening k must be in 1..{kernel.shape[1]}, got {k}")
            kernel = kernel[:, :k]
        return cls(mean=mu, kernel=kernel)

    def transform(self, x) -> torch.Tensor:
        """Whitened embeddings, float32 (N, k)."""
        return ((as_float64(x) - self.mean) @ self.kernel).float()

    __call__ = transform

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"mean": self.mean.contiguous(), "kernel": self.kernel.contiguous()}


@dataclass
class GoldBinStats:
    """Cosine statistics of the sentence pairs whose gold score falls in [low, high)."""

    low: float
    high: float
    count: int
    mean: float
    std: float
    cosines: np.ndarray


def cosine_by_gold_bin(cosines, gold, edges=(0, 1, 2, 3, 4, 5.0001)) -> list[GoldBinStats]:
    """Group pair cosines by gold similarity score (SimCSE Appendix G).

    A good embedding separates the bins: high-gold pairs have clearly higher cosine. An anisotropic
    one squeezes all bins into a narrow band near 1.
    """
    cos = np.asarray(cosines, dtype=np.float64).ravel()
    gold = np.asarray(gold, dtype=np.float64).ravel()
    if cos.shape != gold.shape:
        raise SimCSELabError(f"cosines and gold differ in length: {cos.size} vs {gold.size}")
    stats = []
    for low, high in zip(edges[:-1], edges[1:]):
        selected = cos[(gold >= low) & (gold < high)]
        stats.append(GoldBinStats(
            low=float(low), high=float(min(high, 5.0)), count=int(selected.size),
            mean=float(selected.mean()) if selected.size else float("nan"),
            std=float(selected.std()) if selected.size else float("nan"),
            cosines=selected,
        ))
    return stats
