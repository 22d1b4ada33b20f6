"""Shared fixtures: a tiny random BERT built offline, and the local data directory."""

from __future__ import annotations

import os
import string
from pathlib import Path

import pytest
import torch

DATA_DIR = os.environ.get("SIMCSE_LAB_DATA")
if DATA_DIR:  # absolute, so subprocesses and kernels started in other folders find it too
    DATA_DIR = os.environ["SIMCSE_LAB_DATA"] = str(Path(DATA_DIR).expanduser().resolve())

WORDS = (
    "a an the man woman child dog cat plays playing guitar piano sings is are was on in with and "
    "of to runs running eats food ball park red blue big small happy sad car road street house "
    "two three people men women girl boy water music sun day night table chair book reads"
).split()


def tiny_vocab() -> list[str]:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    return specials + WORDS + chars + ["##" + c for c in string.ascii_lowercase]


def build_tiny_bert(directory: Path, seed: int = 0, layers: int = 2, hidden: int = 32) -> Path:
    from transformers import BertConfig, BertModel, BertTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    vocab_file = directory / "vocab.txt"
    vocab_file.write_text("\n".join(tiny_vocab()) + "\n")
    # from a folder holding vocab.txt: the constructor's argument name differs between transformers 4 and 5
    tokenizer = BertTokenizerFast.from_pretrained(str(directory), do_lower_case=True, model_max_length=64)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tiny_vocab()), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=2 * hidden, max_position_embeddings=64)
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture
def data_dir() -> Path:
    if not DATA_DIR or not Path(DATA_DIR).is_dir():
        pytest.skip("set SIMCSE_LAB_DATA to the data directory (for example ../shared/data) to run data tests")
    return Path(DATA_DIR)


@pytest.fixture
def one_thread():
    """One intra-op thread for the test (restored after): exact-resume comparisons and timings on shared cores."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
