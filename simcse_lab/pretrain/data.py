"""The pre-training data: a WordPiece vocabulary, the corpus tokenised once, length-bucketed masked batches."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import torch

from ..errors import SimCSELabError
from ..models.batches import TokenizedColumn, collate
from ..training.mlm import mask_tokens
from .config import PretrainConfig


def train_wordpiece(sentences: list[str], vocab_size: int, workdir: Path):
    """A lower-cased WordPiece vocabulary trained on `sentences`, returned as a `BertTokenizerFast`."""
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertTokenizerFast

    wordpiece = BertWordPieceTokenizer(lowercase=True, clean_text=True, handle_chinese_chars=True)
    wordpiece.train_from_iterator(
        sentences, vocab_size=vocab_size, min_frequency=2, limit_alphabet=1000, wordpieces_prefix="##",
        special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], show_progress=False,
    )
    workdir.mkdir(parents=True, exist_ok=True)
    wordpiece.save_model(str(workdir))  # writes workdir/vocab.txt
    return BertTokenizerFast.from_pretrained(str(workdir), do_lower_case=True, model_max_length=512)


def tokenizer_from_vocab_file(vocab_file: Path, workdir: Path):
    """A lower-cased `BertTokenizerFast` over a vocab.txt (loaded from a folder: portable across transformers 4/5)."""
    from transformers import BertTokenizerFast

    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(vocab_file, workdir / "vocab.txt")
    return BertTokenizerFast.from_pretrained(str(workdir), do_lower_case=True, model_max_length=512)


def load_tokenizer(config: PretrainConfig, sentences: list[str], workdir: Path):
    """The tokenizer the config asks for: given vocab.txt / dir, the init checkpoint's, or a trained one."""
    from transformers import AutoTokenizer

    if config.vocab:
        path = Path(config.vocab).expanduser()
        if path.is_file():
            return tokenizer_from_vocab_file(path, workdir)
        if path.is_dir():
            return AutoTokenizer.from_pretrained(str(path))
        raise SimCSELabError(f"vocab {path} is neither a vocab.txt file nor a tokenizer directory")
    if config.init_from:
        return AutoTokenizer.from_pretrained(config.init_from)
    return train_wordpiece(sentences, config.vocab_size, workdir)


def length_bucketed_batches(lengths, batch_size: int, chunk_batches: int, rng: random.Random):
    """One epoch of batches (lists of indices) with similar lengths inside a batch, in random order."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * chunk_batches
    batches = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start:start + chunk], key=lengths.__getitem__)
        batches += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def endless_batches(lengths, config: PretrainConfig, rng: random.Random):
    """Length-bucketed batches, epoch after epoch, each epoch freshly shuffled."""
    while True:
        yield from length_bucketed_batches(lengths, config.per_device_train_batch_size,
                                           config.bucket_chunk_batches, rng)


def masked_batch(column: TokenizedColumn, rows, tokenizer, mlm_probability: float, generator: torch.Generator):
    """A training batch on the host: corrupted ids, attention mask, flat masked positions and their targets."""
    ids, attention = collate([column], np.asarray(rows))  # (B, T) cut at the batch's longest sentence
    special = torch.isin(ids, torch.tensor(tokenizer.all_special_ids))
    corrupted, selected = mask_tokens(ids, special, len(tokenizer), tokenizer.mask_token_id,
                                      mlm_probability, generator)
    if not selected.any() and not special.all():  # a batch of one-word sentences may draw none; predict one
        row, col = divmod(int(torch.nonzero(~special.flatten())[0]), ids.shape[1])
        selected[row, col] = True
    flat_positions = selected.flatten().nonzero().squeeze(1)  # (M,)
    return corrupted, attention, flat_positions, ids.flatten()[flat_positions]
