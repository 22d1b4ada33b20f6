"""The trainer's STS-B dev evaluation: the same scoring as `evaluate_sts`, plus the geometry it tracks."""

from __future__ import annotations

from ..data.sts import load_sts
from .sts import EVAL_BATCH_SIZE, EVAL_MAX_LENGTH, ScoredPairs, normalized, pair_geometry, score_pairs


class DevEvaluator:
    """STS-B dev Spearman plus alignment (gold >= 4 pairs), uniformity and average cosine.

    The encoder embeds the distinct dev sentences with `encode` (eval mode, its own precision), in the
    batches `simcse-lab evaluate` uses, so a run's best dev score is what evaluate reports for its model.
    """

    def __init__(self, pairs: ScoredPairs, batch_size: int = EVAL_BATCH_SIZE, max_length: int = EVAL_MAX_LENGTH):
        self.pairs, self.batch_size, self.max_length = pairs, batch_size, max_length
        self.embeddings = None  # the last call's (N, D), of pairs.sentences: geometry snapshots take theirs from it

    @classmethod
    def stsb_dev(cls, data_dir=None, max_pairs: int | None = None) -> "DevEvaluator":
        return cls(ScoredPairs.from_pairs(load_sts("stsb", "dev", data_dir)[:max_pairs]))

    def __call__(self, encoder) -> dict[str, float]:
        embeddings = encoder.encode(self.pairs.sentences, batch_size=self.batch_size, max_length=self.max_length,
                                    show_progress=False)
        self.embeddings = embeddings
        return {"stsb_dev": score_pairs(normalized(embeddings), self.pairs, "stsb (dev)"), **pair_geometry(embeddings, self.pairs)}
