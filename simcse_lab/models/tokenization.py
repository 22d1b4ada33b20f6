"""Sentences to a padded token-id matrix, fast: the Rust tokenizer in parallel threads.

    ids, lengths = token_matrix(tokenizer, sentences, max_length=32)

gives what `tokenizer(sentences, truncation=True, max_length=32)` gives (same ids, same truncation),
as an (N, max_length) int32 matrix padded on the right with the pad id, and the (N,) true lengths.

Why not that call itself: for a fast (Rust) tokenizer it runs one `encode_batch` on one core unless
TOKENIZERS_PARALLELISM allows more, then converts every sentence's encoding into Python lists (ids,
type ids, attention mask) and pads them in Python. Here a copy of the Rust tokenizer, set to
truncate, runs `encode_batch_fast` (no character offsets) on slices of the batch in threads (it
releases the GIL), and only the ids come back to Python: about three times the sentences per second
on two cores (`python benchmarks/tokenize_speed.py`; figures in benchmarks/README.md). On a GPU
machine's many cores it keeps `encode` from waiting on the tokenizer. Slow (Python) tokenizers take the ordinary call, and so
does a batch whose first sentences come out differently (a tokenizer class with Python-side steps).
"""

from __future__ import annotations

import contextlib
import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np

__all__ = ["token_matrix", "tokenizer_threads"]

# Sentences per task: enough that a thread's start costs little, few enough that the Python lists of
# ids stay small (1M sentences in one list would take about a gigabyte).
PIECE = 2048
# The Rust path is checked against the tokenizer's own call on this many sentences of every batch: a
# tokenizer class that does more in Python (some do) then takes its own call for the whole batch.
AGREEMENT_SAMPLE = 32


def tokenizer_threads() -> int:
    """Threads to tokenise with: the cores this process may use (SIMCSE_LAB_TOKENIZER_THREADS overrides)."""
    configured = os.environ.get("SIMCSE_LAB_TOKENIZER_THREADS")
    if configured:
        return max(1, int(configured))
    available = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    return max(1, len(available))


def token_matrix(tokenizer, sentences: Sequence[str], max_length: int,
                 threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(N, max_length) int32 token ids, right-padded with the pad id (0 without one), and (N,) int32
    lengths: `tokenizer(sentences, truncation=True, max_length=max_length)`'s ids in a matrix."""
    sentences = list(sentences)
    pad_id = tokenizer.pad_token_id or 0
    if not sentences:
        return np.full((0, max_length), pad_id, dtype=np.int32), np.zeros(0, dtype=np.int32)
    rust = truncating_rust_tokenizer(tokenizer, max_length)
    encode = None if rust is None else getattr(rust, "encode_batch_fast", rust.encode_batch)  # tokenizers < 0.20: no _fast

    def rust_ids(part: list[str]) -> list[list[int]]:
        return [encoding.ids for encoding in encode(part, add_special_tokens=True)]

    def own_call_ids(part: list[str]) -> list[list[int]]:
        return tokenizer(part, truncation=True, max_length=max_length)["input_ids"]

    sample = sentences[:AGREEMENT_SAMPLE]
    ids_of = rust_ids if rust is not None and rust_ids(sample) == own_call_ids(sample) else own_call_ids
    ids = np.full((len(sentences), max_length), pad_id, dtype=np.int32)
    lengths = np.zeros(len(sentences), dtype=np.int32)
    starts = range(0, len(sentences), PIECE)

    def tokenize_piece(start: int) -> tuple[int, np.ndarray, np.ndarray]:
        return (start, *padded_matrix(ids_of(sentences[start : start + PIECE]), max_length, pad_id))

    threads = 1 if ids_of is own_call_ids else min(threads or tokenizer_threads(), len(starts))
    # no thread outlives the call (safe to fork afterwards); pieces bound the memory of Python lists
    with ThreadPoolExecutor(threads) if threads > 1 else contextlib.nullcontext() as pool:
        for start, piece_ids, piece_lengths in (pool.map if pool else map)(tokenize_piece, starts):
            ids[start : start + len(piece_lengths)] = piece_ids
            lengths[start : start + len(piece_lengths)] = piece_lengths
    return ids, lengths


def truncating_rust_tokenizer(tokenizer, max_length: int):
    """A copy of a fast tokenizer's Rust backend, set as `tokenizer(..., truncation=True,
    max_length=max_length)` sets it (the tokenizer itself is left as it was); None for a slow tokenizer."""
    backend = getattr(tokenizer, "backend_tokenizer", None) if getattr(tokenizer, "is_fast", False) else None
    if backend is None:
        return None
    from tokenizers import Tokenizer  # noqa: PLC0415

    rust = Tokenizer.from_str(backend.to_str())
    rust.no_padding()
    rust.enable_truncation(max_length, stride=0, strategy="longest_first", direction=tokenizer.truncation_side)
    rust.encode_special_tokens = bool(getattr(tokenizer, "split_special_tokens", False))
    return rust


def padded_matrix(token_lists: list[list[int]], width: int, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Lists of ids (each at most `width` long) -> (N, width) int32 right-padded with pad_id, and (N,) lengths."""
    lengths = np.fromiter(map(len, token_lists), dtype=np.int32, count=len(token_lists))
    if len(token_lists) and int(lengths.max()) > width:
        raise ValueError(f"a sentence has {int(lengths.max())} tokens, more than the matrix width {width}")
    ids = np.full((len(token_lists), width), pad_id, dtype=np.int32)
    flat = np.fromiter(itertools.chain.from_iterable(token_lists), dtype=np.int32, count=int(lengths.sum()))
    ids[np.arange(width)[None, :] < lengths[:, None]] = flat
    return ids, lengths
