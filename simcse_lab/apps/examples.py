"""Sentences to look at: the built-in examples (eight topics, with paraphrase pairs) and STS-B dev's sentences.

No plotting or widget library is needed here, so `simcse-lab explore` and the notebook apps share them.
"""

from __future__ import annotations

__all__ = ["EXAMPLE_SENTENCES", "example_sentences", "matrix_examples", "stsb_dev_sentences"]

EXAMPLE_SENTENCES: tuple[tuple[str, str], ...] = (
    ("animals", "A dog is running through the park."),
    ("animals", "A puppy runs across the grass."),
    ("animals", "The cat is sleeping on the sofa."),
    ("animals", "A kitten naps on a couch."),
    ("animals", "Two horses are grazing in a field."),
    ("animals", "A bird is singing in the tree."),
    ("music", "A man is playing the guitar."),
    ("music", "Someone strums an acoustic guitar."),
    ("music", "A woman is playing the piano."),
    ("music", "The orchestra performed a symphony last night."),
    ("music", "A girl is singing a song on stage."),
    ("music", "The band released a new album."),
    ("food", "A woman is slicing an onion."),
    ("food", "Someone is cutting vegetables in the kitchen."),
    ("food", "A man is eating a bowl of noodles."),
    ("food", "The chef is frying eggs in a pan."),
    ("food", "Fresh bread is baking in the oven."),
    ("food", "They ordered pizza for dinner."),
    ("sports", "A football player kicks the ball."),
    ("sports", "The team scored a goal in the final minute."),
    ("sports", "A tennis player serves the ball."),
    ("sports", "Two men are playing basketball."),
    ("sports", "A cyclist rides up a steep hill."),
    ("sports", "The runner crossed the finish line first."),
    ("weather", "It is raining heavily in the city."),
    ("weather", "A storm is coming this afternoon."),
    ("weather", "The sun is shining and the sky is clear."),
    ("weather", "Snow covered the mountains overnight."),
    ("weather", "Strong winds knocked down trees."),
    ("weather", "It will be hot and sunny tomorrow."),
    ("technology", "The new phone has a better camera."),
    ("technology", "She is writing code on her laptop."),
    ("technology", "The computer crashed during the update."),
    ("technology", "Researchers trained a large language model."),
    ("technology", "The website is down for maintenance."),
    ("finance", "The stock market fell sharply today."),
    ("finance", "Shares rose after the earnings report."),
    ("finance", "The central bank raised interest rates."),
    ("finance", "He opened a savings account at the bank."),
    ("finance", "Inflation is higher than expected this year."),
)


def example_sentences(groups: bool = False) -> list[str]:
    """The 40 built-in sentences (8 topics, with paraphrase pairs), or their topic labels."""
    return [group if groups else sentence for group, sentence in EXAMPLE_SENTENCES]


def stsb_dev_sentences(data_dir=None, limit: int | None = None) -> list[str] | None:
    """Unique sentences of STS-B dev (both sides, file order), or None if no local data folder has it.

    The data folder is the argument, else $SIMCSE_LAB_DATA; nothing is downloaded (the caller falls
    back to `example_sentences`). STS-B dev is an evaluation split: fine for looking at, never for training.
    """
    from ..data.sts import read_stsb  # noqa: PLC0415
    from ..paths import resolve_data_dir  # noqa: PLC0415

    root = resolve_data_dir(data_dir)
    path = root / "sts" / "STSBenchmark" / "sts-dev.csv" if root else None
    if path is None or not path.is_file():
        return None
    sentences = dict.fromkeys(s for s1, s2, _ in read_stsb(path) for s in (s1, s2) if s)
    return list(sentences)[:limit] if limit else list(sentences)


def matrix_examples() -> tuple[list[str], list[str]]:
    """The first two sentences of each topic (most are paraphrases or near ones) and their topics: 16 rows for a
    similarity matrix, where a good encoder shows eight bright 2 x 2 blocks on the diagonal."""
    seen: dict[str, int] = {}
    chosen = []
    for group, sentence in EXAMPLE_SENTENCES:
        if seen.get(group, 0) < 2:
            seen[group] = seen.get(group, 0) + 1
            chosen.append((group, sentence))
    return [s for _, s in chosen], [g for g, _ in chosen]
