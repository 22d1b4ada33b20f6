"""Scorers that use no encoder at all: what an embedding has to beat.

`word_overlap` is the Jaccard similarity of the two sentences' sets of lower-cased words. On STS it is a
strong floor: many gold scores follow how many words a pair shares, so an encoder whose cosines mostly
track word overlap scores about what this does (notebooks 01-03 show it beside the encoders).
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

WORD = re.compile(r"[a-z0-9]+")


def words(sentence: str) -> frozenset[str]:
    """The set of lower-cased alphanumeric words ("A man's guitar." -> {a, man, s, guitar})."""
    return frozenset(WORD.findall(sentence.lower()))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a & b| / |a | b|, and 0 for two empty sets."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def word_overlap(lefts: Sequence[str], rights: Sequence[str]) -> np.ndarray:
    """(N,) Jaccard word overlap of each pair (lefts[i], rights[i]): a similarity for `evaluate_similarity`."""
    return np.array([jaccard(words(a), words(b)) for a, b in zip(lefts, rights)], dtype=np.float64)
