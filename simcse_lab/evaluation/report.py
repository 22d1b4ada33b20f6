"""The anisotropy report of one encoder (`simcse-lab diagnose`, notebooks 01-03).

Measured on STS-B: the average cosine and the singular spectrum over the distinct test-set sentences
(no labels are used), and, on the dev set, Spearman, alignment (pairs with gold >= 4) and uniformity
(distinct sentences), scored as `evaluate_sts` and the trainer score them.
"""

from __future__ import annotations

from ..data.sts import load_sts
from ..geometry import average_cosine, singular_spectrum
from .sts import EncodeFn, ScoredPairs, normalized, pair_geometry, score_pairs

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
