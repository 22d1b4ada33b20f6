"""Positive pairs for contrastive learning: dropout (SimCSE) and the text augmentations it beat.

Dropout as augmentation (the paper's key idea). Encode a batch x twice in train mode and the two
passes see independent dropout masks, so h = f(x, mask1) and h+ = f(x, mask2) differ slightly: that
minimal perturbation is the positive pair. Both passes are done in ONE forward over the batch [x; x]
(the "duplicate-in-batch" trick of the official code): cheaper than two calls, same distribution.

Text augmentations (the paper's Table 1 comparison, STS-B dev, BERT-base):
    none (dropout only) 82.5 | crop 10% 77.8, 20% 71.4, 30% 63.6 | word deletion 10% 75.9,
    20% 72.2, 30% 68.2 | delete one word 75.9 (74.2 without dropout) | synonym replacement 77.4 |
    MLM 15% 62.2
Here each augmentation makes the second view from the first; dropout stays on, as in the paper.
Synonym replacement needs a thesaurus and MLM replacement a second model; they are left out.
"""

from __future__ import annotations

import random
from typing import Sequence

import torch

from .errors import unknown_choice

AUGMENTATIONS = ("none", "crop", "word_deletion", "delete_one_word")


def duplicate_batch(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[x; x]: (B, T) -> (2B, T). One forward pass then gives two dropout views of every sentence."""
    return torch.cat([input_ids, input_ids]), torch.cat([attention_mask, attention_mask])


def dropout_views(encoder, sentences: Sequence[str], max_length: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Two embeddings of each sentence from one train-mode pass over [x; x]: (z1, z2), each (B, D).

    In train mode z1 != z2 (different dropout masks); `encoder.eval()` makes them identical.
    """
    batch = encoder.tokenize(list(sentences), max_length=max_length).to(encoder.device)
    ids, mask = duplicate_batch(batch["input_ids"], batch["attention_mask"])
    z = encoder(ids, mask)  # (2B, D)
    return z.chunk(2)


def crop(sentence: str, ratio: float, rng: random.Random) -> str:
    """Keep a random contiguous span of (1 - ratio) of the words."""
    words = sentence.split()
    keep = max(1, round(len(words) * (1 - ratio)))
    start = rng.randint(0, len(words) - keep) if len(words) > keep else 0
    return " ".join(words[start : start + keep])


def word_deletion(sentence: str, ratio: float, rng: random.Random) -> str:
    """Delete each word with probability `ratio` (at least one word is kept)."""
    words = sentence.split()
    kept = [w for w in words if rng.random() >= ratio]
    return " ".join(kept) if kept else rng.choice(words) if words else sentence


def delete_one_word(sentence: str, ratio: float, rng: random.Random) -> str:
    """Delete one random word (ratio is ignored)."""
    words = sentence.split()
    if len(words) < 2:
        return sentence
    del words[rng.randrange(len(words))]
    return " ".join(words)


def augment(sentence: str, name: str, ratio: float, rng: random.Random) -> str:
    """Apply the named augmentation (see AUGMENTATIONS) to one sentence."""
    if name == "none":
        return sentence
    functions = {"crop": crop, "word_deletion": word_deletion, "delete_one_word": delete_one_word}
    if name not in functions:
        raise unknown_choice("augmentation", name, AUGMENTATIONS)
    return functions[name](sentence, ratio, rng)
