"""evaluate_sts equals scipy on synthetic data; the table prints like the official evaluation.py."""

import numpy as np
import pytest
from scipy.stats import spearmanr

from simcse_lab.data import load_sts
from simcse_lab.evaluate import evaluate_sts, format_results_table


def hashing_encoder(dim=16):
    """A deterministic bag-of-characters encoder: any callable list[str] -> (N, D) works."""
    def encode(sentences):
        out = np.zeros((len(sentences), dim))
        for i, s in enumerate(sentences):
            for ch in s:
                out[i, ord(ch) % dim] += 1.0
        return out + 0.01
    return encode


def test_evaluate_sts_equals_scipy_on_the_concatenated_pairs(data_dir):
    encode = hashing_encoder()
    results = evaluate_sts(encode, tasks=["sts13", "stsb"], data_dir=data_dir)
    for task in ("sts13", "stsb"):
        pairs = load_sts(task, "test", data_dir)
        a, b = encode([p[0] for p in pairs]), encode([p[1] for p in pairs])
        cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        assert results[task] == pytest.approx(spearmanr(cos, [p[2] for p in pairs])[0] * 100, abs=1e-3)  # float rounding can break ties differently
    assert results["avg"] == pytest.approx((results["sts13"] + results["stsb"]) / 2)


def test_dev_split_uses_stsb_and_sickr_only(data_dir):
    results = evaluate_sts(hashing_encoder(), split="dev", data_dir=data_dir)
    assert set(results) == {"stsb", "sickr", "avg"}


def test_results_table_format():
    table = format_results_table({"sts12": 68.4, "stsb": 76.85, "avg": 72.625})
    lines = table.splitlines()
    assert lines[1] == "| STS12 | STSBenchmark |  Avg. |"
    assert lines[3] == "| 68.40 |    76.85     | 72.62 |"
    assert lines[0] == lines[2] == lines[4] == "+-------+--------------+-------+"


def test_word_overlap_scorer_against_a_hand_computed_jaccard(data_dir):
    """evaluate_similarity with the word-overlap baseline: Jaccard of lower-cased word sets, computed here by hand
    with python sets and str.split on the punctuation-stripped text, then scipy's Spearman."""
    import re

    from scipy.stats import spearmanr

    from simcse_lab.data import load_sts
    from simcse_lab.evaluate import evaluate_similarity
    from simcse_lab.evaluation.baselines import word_overlap

    assert word_overlap(["A man's guitar.", "", "x"], ["a MAN plays guitar", "", "y"]).tolist() == [3 / 5, 0.0, 0.0]
    pairs = load_sts("stsb", "dev", data_dir)[:300]

    def hand(a, b):
        a, b = (set(re.sub(r"[^a-z0-9]+", " ", s.lower()).split()) for s in (a, b))
        return len(a & b) / len(a | b) if a | b else 0.0

    expected = spearmanr([hand(a, b) for a, b, _ in pairs], [g for _, _, g in pairs]).correlation * 100
    result = evaluate_similarity(word_overlap, tasks=["stsb"], split="dev", data_dir=data_dir, max_pairs=300)
    assert result["stsb"] == pytest.approx(expected, abs=1e-9) and result["avg"] == result["stsb"]
