"""Words for numbers: the notebooks' takeaways are sentences formatted from the run's own results, so they
cannot say "rises" where the cell shows a fall. These helpers choose the verb, the comparison and the
adjective from the values; the notebooks keep the story.
"""

from __future__ import annotations

import math
from typing import Mapping


def change(before: float, after: float, digits: int = 2) -> str:
    """"rises from 0.43 to 0.61", "falls from ...", or "stays at 0.43" when the two print alike."""
    a, b = f"{before:.{digits}f}", f"{after:.{digits}f}"
    if a == b:
        return f"stays at {a}"
    return f"{'rises' if after > before else 'falls'} from {a} to {b}"


def compared(value: float, reference: float, digits: int = 1, higher: str = "above", lower: str = "below") -> str:
    """"2.3 points above" / "0.4 points below" / "level with" (a difference that prints as 0)."""
    difference = value - reference
    if f"{abs(difference):.{digits}f}" == f"{0:.{digits}f}":
        return "level with"
    return f"{abs(difference):.{digits}f} points {higher if difference > 0 else lower}"


def how_closely(correlation: float) -> str:
    """An adverb for a rank correlation: closely (>= 0.8), largely (>= 0.6), partly (>= 0.3), hardly."""
    if correlation >= 0.8:
        return "closely"
    if correlation >= 0.6:
        return "largely"
    if correlation >= 0.3:
        return "partly"
    return "hardly"


def all_or_some(flags: list[bool], all_word: str = "both", none_word: str = "neither", some_word: str = "one of them") -> str:
    """Which of several outcomes held: "both" / "neither" / "one of them" (or the words given)."""
    if all(flags):
        return all_word
    if not any(flags):
        return none_word
    return some_word


def ablation_reading(ours: Mapping[str, float], raw: float, paper: Mapping[str, float] | None = None,
                     raw_label: str = "the raw encoder") -> str:
    """One sentence on an ablation table, from its own numbers: this run's highest and lowest setting, how many
    settings ended below the raw encoder, and whether the paper's best setting is this run's best."""
    scores = {name: value for name, value in ours.items() if value is not None and math.isfinite(value)}
    if not scores:
        return "This run measured none of these settings."
    best, worst = max(scores, key=scores.get), min(scores, key=scores.get)
    text = f"In this run {best} scores highest ({scores[best]:.2f})"
    if len(scores) > 1:
        text += f" and {worst} lowest ({scores[worst]:.2f}), {scores[best] - scores[worst]:.1f} points apart"
    below = sum(value < raw for value in scores.values())
    text += f"; {below} of {len(scores)} {'setting' if len(scores) == 1 else 'settings'} ended below {raw_label} ({raw:.2f})."
    if paper:
        paper_best = max(paper, key=paper.get)
        text += (f" The paper's best, {paper_best}, is this run's best too." if paper_best == best else
                 f" The paper's best, {paper_best}, was not run here." if paper_best not in scores else f" The paper's best is {paper_best}.")
    return text
