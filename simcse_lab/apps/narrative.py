"""Words for numbers: the notebooks' takeaways are sentences formatted from the run's own results, so they
cannot say "rises" where the cell shows a fall. These helpers choose the verb, the comparison and the
adjective from the values; the notebooks keep the story.
"""

from __future__ import annotations


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
