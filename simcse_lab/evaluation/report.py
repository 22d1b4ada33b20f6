"""The anisotropy report of one encoder (`simcse-lab diagnose`, notebooks 01-03), and the headline
numbers of a set of embeddings (`simcse-lab explore`, the trainer's geometry snapshots).

Measured on STS-B: the average cosine and the singular spectrum over the distinct test-set sentences
(no labels are used), and, on the dev set, Spearman, alignment (pairs with gold >= 4) and uniformity
(distinct sentences), scored as `evaluate_sts` and the trainer score them.
"""

from __future__ import annotations

from ..data.sts import load_sts
from ..errors import SimCSELabError
from ..geometry import alignment, as_float64, average_cosine, singular_spectrum, uniformity
from .sts import POSITIVE_GOLD, EncodeFn, ScoredPairs, normalized, pair_geometry, score_pairs

SPECTRUM_FLOOR = 0.1  # "directions that matter": normalised singular values above this


def encoder_report(encode: EncodeFn, data_dir=None, max_pairs: int | None = None) -> dict:
    """The diagnostics of one encode function (list[str] -> (N, D)); max_pairs: first N pairs only (smoke runs)."""
    test_sentences = ScoredPairs.from_pairs(load_sts("stsb", "test", data_dir)[:max_pairs]).sentences
    test_embeddings = encode(test_sentences)
    dev = ScoredPairs.from_pairs(load_sts("stsb", "dev", data_dir)[:max_pairs])
    dev_embeddings = encode(dev.sentences)
    spectrum = singular_spectrum(test_embeddings).numpy()
    geometry = pair_geometry(dev_embeddings, dev)
    return {
        "num_sentences": len(test_sentences),
        "average_cosine": average_cosine(test_embeddings),
        "spectrum_top10": [round(float(v), 4) for v in spectrum[:10]],
        "spectrum": spectrum.tolist(),
        "directions_above_0.1": int((spectrum > SPECTRUM_FLOOR).sum()),
        "stsb_dev_spearman": score_pairs(normalized(dev_embeddings), dev, "stsb (dev)"),
        "alignment": geometry["alignment"],
        "uniformity": geometry["uniformity"],
    }


def headline_numbers(embeddings, pairs: ScoredPairs | None = None, task: str = "stsb (dev)", strict: bool = True) -> dict:
    """The numbers an embedding space is summed up by, for embeddings (N, D) of pairs.sentences, or of any
    N sentences when pairs is None (then without Spearman and alignment):

    spearman (x100, `score_pairs`), alignment (gold >= 4 pairs), uniformity and average cosine (all
    distinct pairs of the N), directions_above_0.1 (normalised singular values above SPECTRUM_FLOOR,
    uncentred), and the sample they were measured on (num_sentences, num_pairs). strict=False: a Spearman that
    cannot be computed (every gold score or every cosine equal) is None instead of an error."""
    x = as_float64(embeddings)
    spectrum = singular_spectrum(x).numpy()
    numbers = {"num_sentences": int(x.shape[0]), "num_pairs": None, "spearman": None, "alignment": None}
    if pairs is not None:
        if len(pairs.sentences) != x.shape[0]:
            raise SimCSELabError(f"got {x.shape[0]} embeddings for the {len(pairs.sentences)} sentences of the pairs; pass one per sentence")
        positive = pairs.gold >= POSITIVE_GOLD
        try:
            spearman = score_pairs(normalized(x), pairs, task)
        except SimCSELabError:
            if strict:
                raise
            spearman = None
        numbers.update(num_pairs=len(pairs), spearman=spearman,
                       alignment=alignment(x[pairs.left[positive]], x[pairs.right[positive]]) if positive.any() else None)
    numbers.update({"average_cosine": average_cosine(x), "uniformity": uniformity(x),
                    "directions_above_0.1": int((spectrum > SPECTRUM_FLOOR).sum())})
    return numbers
