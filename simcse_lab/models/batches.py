"""Pre-tokenised training data: each column tokenised once into a padded matrix; batches are slices of it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from .tokenization import token_matrix


@dataclass
class TokenizedColumn:
    """Sentences tokenised once: a padded (N, max_len) int32 matrix and the true lengths."""

    ids: np.ndarray
    lengths: np.ndarray

    @classmethod
    def from_sentences(cls, tokenizer, sentences: Sequence[str], max_length: int, threads: int | None = None) -> "TokenizedColumn":
        """Tokenise (truncating at max_length tokens, in `threads` threads: None = every core) into a right-padded
        matrix; see simcse_lab.tokenization."""
        return cls(*token_matrix(tokenizer, sentences, max_length, threads))

    def __len__(self) -> int:
        return len(self.lengths)

    def select(self, rows: np.ndarray) -> "TokenizedColumn":
        """The column of these rows only, in this order."""
        return TokenizedColumn(self.ids[rows], self.lengths[rows])


def tokenized_slabs(tokenizer, sentences: Sequence[str], slab: int, max_length: int, prefetch: bool = False,
                    transform: Callable[[TokenizedColumn], TokenizedColumn] | None = None) -> Iterator[tuple[int, TokenizedColumn]]:
    """(start, column) for each slab of `slab` sentences. prefetch: the next slab is tokenised in a background
    thread while the caller works on this one (for a GPU, which then never waits on the tokenizer).
    transform: applied to each tokenised slab (a prompt template: simcse_lab.models.prompt)."""
    starts = range(0, len(sentences), slab)

    def tokenize(start: int) -> TokenizedColumn:
        column = TokenizedColumn.from_sentences(tokenizer, sentences[start : start + slab], max_length)
        return column if transform is None else transform(column)

    if not prefetch:
        for start in starts:
            yield start, tokenize(start)
        return
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(tokenize, starts[0]) if starts else None
        for index, start in enumerate(starts):
            column = pending.result()
            if index + 1 < len(starts):
                pending = pool.submit(tokenize, starts[index + 1])
            yield start, column


def collate(columns: Sequence[TokenizedColumn], rows: np.ndarray, multiple: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack the same rows of k columns into one (k*B, T) batch cut at its longest sentence.

    multiple > 1 rounds the width up to a multiple (at most the padded matrix's width), so that a
    compiled model with static shapes sees only a few widths.
    """
    width = max(int(column.lengths[rows].max()) for column in columns)
    width = min(-(-width // multiple) * multiple, min(column.ids.shape[1] for column in columns))
    ids = np.concatenate([column.ids[rows, :width] for column in columns])  # (k*B, T)
    lengths = np.concatenate([column.lengths[rows] for column in columns])  # (k*B,)
    mask = np.arange(width)[None, :] < lengths[:, None]
    return torch.from_numpy(ids.astype(np.int64)), torch.from_numpy(mask.astype(np.int64))
