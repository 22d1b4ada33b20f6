"""Property-based tests (hypothesis) of the training-file loaders and the encode API.

Loaders: for any text file / CSV, either the right rows come back or a SimCSELabError is raised,
never another exception. "Right" is computed from what hypothesis generated, not by re-reading
the file: lines split at \\n, \\r\\n and \\r (Python's universal newlines), stripped, blanks dropped;
CSV cells as written by `csv.writer`, stripped, all-blank rows dropped.

encode: any list of strings gives an (N, D) finite float32 tensor whose row i is the embedding of
sentence i encoded alone (so batching, length-sorting and padding do not leak into results); a list
with a non-string raises SimCSELabTypeError naming the first bad item.
"""

from __future__ import annotations

import csv
import re
import warnings
from pathlib import Path
from tempfile import TemporaryDirectory

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simcse_lab.data import load_training_file
from simcse_lab.models.encoder import SimCSEEncoder
from simcse_lab.errors import SimCSELabError, SimCSELabTypeError

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Any Unicode that can be written as UTF-8 (no lone surrogates), with the awkward characters made likely.
AWKWARD = st.sampled_from(["", " ", "\t", "\n", "\r", "\r\n", ",", '"', "'", "\x00", "\x0b", "\x0c", "\x1c", "\x85", "\u2028",
                           "\ufeff", "\u200b", "é", "字", "😀", "a", "the dog"])
TEXT = st.lists(st.one_of(st.text(st.characters(exclude_categories=("Cs",)), max_size=12), AWKWARD), max_size=6).map("".join)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Two shared cores: one intra-op thread is faster here and keeps timings stable."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def load_quietly(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_training_file(path)


# --------------------------------------------------------------------------- text files


def expected_sentences(text: str) -> list[str]:
    """Universal-newline lines of `text`, stripped, blanks dropped (the trailing newline ends a line, starts none)."""
    text = text.removeprefix("\ufeff")  # a leading byte-order mark is dropped (the loaders read utf-8-sig)
    parts = re.split(r"\r\n|\r|\n", text)
    if parts and parts[-1] == "":
        parts = parts[:-1]
    return [p.strip() for p in parts if p.strip()]


@SETTINGS
@given(lines=st.lists(TEXT, max_size=12), trailing_newline=st.booleans())
def test_text_loader_returns_the_right_sentences_or_a_clear_error(lines, trailing_newline):
    text = "\n".join(lines) + ("\n" if trailing_newline and lines else "")
    expected = expected_sentences(text)
    with TemporaryDirectory() as directory:
        path = Path(directory) / "train.txt"
        path.write_bytes(text.encode("utf-8"))
        try:
            data = load_quietly(path)
        except SimCSELabError as error:
            assert not expected, f"rejected a file with {len(expected)} sentences: {error}"
            return
    assert data.mode == "unsup"
    assert [row[0] for row in data.rows] == expected


@SETTINGS
@given(raw=st.binary(max_size=300), suffix=st.sampled_from([".txt", ".csv", ".tsv"]))
def test_loaders_on_arbitrary_bytes_never_raise_anything_else(raw, suffix):
    """Invalid UTF-8, NULs, stray quotes: rows or SimCSELabError, nothing else."""
    with TemporaryDirectory() as directory:
        path = Path(directory) / f"train{suffix}"
        path.write_bytes(raw)
        try:
            data = load_quietly(path)
        except SimCSELabError:
            return
    assert data.rows and all(all(isinstance(cell, str) and cell.strip() == cell and cell for cell in row) for row in data.rows)


# --------------------------------------------------------------------------- CSV files


@SETTINGS
@given(width=st.sampled_from([2, 3]), rows=st.lists(st.lists(TEXT, min_size=3, max_size=3), max_size=8))
def test_csv_loader_returns_the_right_rows_or_a_clear_error(width, rows):
    header = ["sent0", "sent1", "hard_neg"][:width]
    rows = [row[:width] for row in rows]
    kept = [tuple(cell.strip() for cell in row) for row in rows if any(cell.strip() for cell in row)]
    valid = bool(kept) and all(all(kept_row) for kept_row in kept)
    with TemporaryDirectory() as directory:
        path = Path(directory) / "train.csv"
        with open(path, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
        try:
            data = load_quietly(path)
        except SimCSELabError as error:
            assert not valid, f"rejected a valid CSV: {error}"
            return
    assert valid, "accepted a CSV with a blank cell or no rows"
    assert data.mode == ("pairs" if width == 2 else "triplets")
    assert data.rows == kept


# --------------------------------------------------------------------------- encode


@pytest.fixture(scope="module")
def encoder(tiny_model_dir) -> SimCSEEncoder:
    return SimCSEEncoder.from_pretrained(tiny_model_dir, pooler="avg", device="cpu")


SENTENCE = st.one_of(
    TEXT,
    st.just(""),
    st.text(st.characters(exclude_categories=("Cs",)), min_size=200, max_size=3000),  # far beyond max_length tokens
    st.lists(st.sampled_from(["the", "man", "plays", "guitar", "😀", "字", ","]), min_size=50, max_size=400).map(" ".join),
)


@SETTINGS
@given(sentences=st.lists(SENTENCE, max_size=7), batch_size=st.integers(1, 4))
def test_encode_shape_dtype_finiteness_and_order(encoder, sentences, batch_size):
    out = encoder.encode(sentences, batch_size=batch_size, max_length=24)
    assert out.shape == (len(sentences), encoder.hidden_size)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    for i, sentence in enumerate(sentences):
        alone = encoder.encode([sentence], max_length=24)[0]
        torch.testing.assert_close(out[i], alone, atol=1e-5, rtol=0, msg=f"row {i} is not sentence {i}'s embedding")


@SETTINGS
@given(items=st.lists(st.one_of(TEXT, st.integers(), st.none(), st.floats(allow_nan=True), st.binary(max_size=4),
                                st.lists(st.text(max_size=3), max_size=2)), max_size=6))
def test_encode_mixed_lists_fail_on_the_first_non_string(encoder, items):
    bad = [i for i, item in enumerate(items) if not isinstance(item, str)]
    if not bad:
        assert encoder.encode(items, max_length=16).shape == (len(items), encoder.hidden_size)
        return
    with pytest.raises(SimCSELabTypeError, match=f"item {bad[0]} is {type(items[bad[0]]).__name__}"):
        encoder.encode(items, max_length=16)
