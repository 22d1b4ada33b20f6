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
"same_mask" is the dropout control of the paper's Table 3 ("fixed 0.1", 43.6): one mask for both views.
Synonym replacement needs a thesaurus and MLM replacement a second model; they are left out.

Word repetition (ESimCSE, Wu et al., COLING 2022, Sec. 3.1). Dropout views of one sentence have the same
length, and a Transformer sees the length through its position embeddings, so SimCSE's positives all
share their length. ESimCSE edits the positive so that it does not: repeat a few of its subword tokens in
place. `word_repetition` works on token ids (the paper's subword sequence x = {x_1, ..., x_N}), and
`simcse_lab.training.followup_objectives` applies it to the second view of `--method esimcse`.
"""

from __future__ import annotations

import random
from typing import Sequence, TypeVar

import torch

from .errors import SimCSELabError, unknown_choice

TEXT_AUGMENTATIONS = ("crop", "word_deletion", "delete_one_word")
# "same_mask" edits no text: both views share ONE dropout mask (the batch is encoded once and its embeddings used
# twice), the paper's "fixed 0.1" of Table 3: positives are identical, so nothing but the negatives is learned.
AUGMENTATIONS = ("none", *TEXT_AUGMENTATIONS, "same_mask")
Token = TypeVar("Token")


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


@torch.no_grad()
def dropout_task_difficulty(encoder, sentences: Sequence[str], batch_size: int = 64, max_length: int = 32,
                            temperature: float = 0.05) -> dict[str, float]:
    """How much the unsupervised SimCSE task still has to teach this encoder, measured before training.

    The sentences are cut into batches of `batch_size` (a trailing partial batch is dropped). For each batch,
    two dropout views (`dropout_views`, train mode) give: the cosine between a sentence's two views
    (`positive_cosine`), between it and the other sentences of the batch (`negative_cosine`), the largest
    of those (`hardest_negative_cosine`), and the InfoNCE loss at this temperature (`initial_loss`); each is
    averaged over the batches. A positive that already beats the hardest negative by many temperatures
    means a loss near zero: the contrastive task is solved at step 0, and what training still does is
    mostly spread sentences apart. The encoder's train/eval mode is restored afterwards.
    """
    from .losses import cosine_logits, unsup_simcse_loss  # noqa: PLC0415

    sentences = list(sentences)
    if batch_size < 2 or len(sentences) < batch_size:
        raise SimCSELabError(f"need at least one batch of >= 2 sentences: got {len(sentences)} sentences, batch_size {batch_size}; "
                             "pass more sentences or a smaller batch_size")
    was_training = encoder.training
    encoder.train()
    totals = {"positive_cosine": 0.0, "negative_cosine": 0.0, "hardest_negative_cosine": 0.0, "initial_loss": 0.0}
    num_batches = len(sentences) // batch_size
    try:
        for start in range(0, num_batches * batch_size, batch_size):
            z1, z2 = dropout_views(encoder, sentences[start : start + batch_size], max_length)
            cosines = cosine_logits(z1.float(), z2.float(), 1.0)  # (B, B): positives on the diagonal
            negatives = cosines[~torch.eye(batch_size, dtype=torch.bool, device=cosines.device)].view(batch_size, -1)
            totals["positive_cosine"] += float(cosines.diagonal().mean())
            totals["negative_cosine"] += float(negatives.mean())
            totals["hardest_negative_cosine"] += float(negatives.max(dim=1).values.mean())
            totals["initial_loss"] += float(unsup_simcse_loss(z1, z2, temperature))
    finally:
        encoder.train(was_training)
    return {name: total / num_batches for name, total in totals.items()}


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
    if name in ("none", "same_mask"):  # same_mask changes the forward pass, not the text
        return sentence
    functions = {"crop": crop, "word_deletion": word_deletion, "delete_one_word": delete_one_word}
    if name not in functions:
        raise unknown_choice("augmentation", name, AUGMENTATIONS)
    return functions[name](sentence, ratio, rng)


def repetition_count_limit(num_tokens: int, dup_rate: float) -> int:
    """The most tokens word repetition duplicates in a sequence of N tokens: max(2, int(dup_rate * N)) (ESimCSE,
    Sec. 3.1), and never more than N."""
    return min(num_tokens, max(2, int(dup_rate * num_tokens)))


def word_repetition(tokens: Sequence[Token], dup_rate: float, rng: random.Random) -> list[Token]:
    """ESimCSE's word repetition (Wu et al., COLING 2022, Sec. 3.1) of one subword sequence x = (x_1, ..., x_N):

        dup_len ~ Uniform{0, 1, ..., max(2, int(dup_rate * N))}
        dup_set = dup_len positions drawn uniformly without replacement
        x+      = x with every x_i, i in dup_set, written twice in place: (..., x_i, x_i, ...)

    dup_rate is the *largest* share of the tokens repeated (0.32 for BERT-base in the official run.sh; the share drawn is
    uniform up to it), so x+ is 0 to dup_len tokens longer than x and keeps x's order. Pass the sentence's
    tokens without the special tokens ([CLS], [SEP]), which the paper's subword sequence does not have. The
    official code (caskcsg/sentemb, ESimCSE/train.py, dup_type bpe) draws dup_len with
    `random.randrange(min(10, int(dup_rate * len)))`, len counting the special tokens: at most
    min(9, int(dup_rate * len) - 1) tokens, and none when int(dup_rate * len) is 0. This function follows the
    paper's bound instead, which repeats up to 2 tokens of any sentence.
    """
    tokens = list(tokens)
    dup_len = rng.randint(0, repetition_count_limit(len(tokens), dup_rate))
    repeated = set(rng.sample(range(len(tokens)), dup_len))
    out = []
    for i, token in enumerate(tokens):
        out.append(token)
        if i in repeated:
            out.append(token)
    return out
