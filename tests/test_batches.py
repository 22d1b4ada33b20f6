"""Pre-tokenised columns and batches against the tokenizer called one sentence at a time."""

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from simcse_lab.models import tokenization
from simcse_lab.models.batches import TokenizedColumn, collate, tokenized_slabs

SENTENCES = ["a man plays the guitar", "two", "the dog runs in the park and the man plays the guitar with a red car", "",
             "a small red car"]


@pytest.fixture(params=["right padding", "without pad token", "left padding"])
def tokenizer(request, tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    if request.param == "without pad token":  # padded with 0
        tokenizer.pad_token = None
    if request.param == "left padding":  # columns are right-padded whatever the tokenizer says
        tokenizer.padding_side = "left"
    return tokenizer


def test_column_holds_each_sentences_tokens_truncated_then_padding(tokenizer, monkeypatch):
    monkeypatch.setattr(tokenization, "PIECE", 2)  # pieces of 2 sentences in threads: the seams too
    column = TokenizedColumn.from_sentences(tokenizer, SENTENCES, max_length=8)
    assert column.ids.shape == (len(SENTENCES), 8) and column.ids.dtype == np.int32
    for row, sentence in enumerate(SENTENCES):
        expected = tokenizer(sentence, truncation=True, max_length=8)["input_ids"]
        assert column.lengths[row] == len(expected)
        assert column.ids[row, : len(expected)].tolist() == expected
        assert (column.ids[row, len(expected):] == (tokenizer.pad_token_id or 0)).all()


def test_collate_stacks_columns_and_cuts_at_the_longest_row(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    column = TokenizedColumn.from_sentences(tokenizer, SENTENCES, max_length=16)
    rows = np.array([1, 4])  # "two" (3 tokens) and "a small red car"
    ids, mask = collate([column, column], rows)
    width = int(column.lengths[rows].max())
    assert ids.shape == mask.shape == (4, width)
    assert torch.equal(ids[:2], ids[2:])
    assert mask.sum(1).tolist() == [int(column.lengths[r]) for r in rows] * 2
    padded, _ = collate([column], rows, multiple=8)
    assert padded.shape[1] == 8


@pytest.mark.parametrize("count", [0, 5, 7, 9])
def test_slabs_cover_the_sentences_in_order_with_or_without_prefetch(tiny_model_dir, count):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    sentences = [SENTENCES[i % len(SENTENCES)] + " a" * i for i in range(count)]
    whole = TokenizedColumn.from_sentences(tokenizer, sentences, max_length=12)
    for prefetch in (False, True):
        slabs = list(tokenized_slabs(tokenizer, sentences, 3, 12, prefetch=prefetch))
        assert [start for start, _ in slabs] == list(range(0, count, 3))
        if count:
            assert np.array_equal(np.concatenate([column.ids for _, column in slabs]), whole.ids)
            assert np.array_equal(np.concatenate([column.lengths for _, column in slabs]), whole.lengths)
