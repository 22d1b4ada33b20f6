"""token_matrix (the Rust tokenizer in threads) against the tokenizer's own call, sentence by sentence."""

import numpy as np
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from simcse_lab.models import tokenization
from simcse_lab.paths import DEFAULT_MODEL
from simcse_lab.models.tokenization import padded_matrix, token_matrix

SENTENCES = [
    "A man plays the guitar.", "two", "", "   ", "The dog runs in the park, and the man plays the guitar with a red car " * 4,
    "[SEP] a [PAD] b [MASK]", "Café naïve résumé ÅNGSTRÖM", "中文 字符 and émojis 🙂🙃", "tab\there\nnewline\u0000control",
    "a-b_c/d:e;f(g)h", "reads " * 40,
]


def own_call(tokenizer, sentences, max_length):
    return tokenizer(list(sentences), truncation=True, max_length=max_length)["input_ids"]


def assert_matches_own_call(tokenizer, sentences, max_length, **kwargs):
    ids, lengths = token_matrix(tokenizer, sentences, max_length, **kwargs)
    assert ids.shape == (len(sentences), max_length) and ids.dtype == lengths.dtype == np.int32
    for row, expected in enumerate(own_call(tokenizer, sentences, max_length)):
        assert lengths[row] == len(expected), sentences[row]
        assert ids[row, : len(expected)].tolist() == expected, sentences[row]
        assert (ids[row, len(expected):] == (tokenizer.pad_token_id or 0)).all()


@pytest.fixture(scope="module")
def default_tokenizer():
    return AutoTokenizer.from_pretrained(DEFAULT_MODEL)  # the embedded default's WordPiece (bert-base-uncased vocab)


@pytest.fixture
def small_pieces(monkeypatch):
    monkeypatch.setattr(tokenization, "PIECE", 3)  # several pieces in several threads, seams included


def test_default_tokenizer_gives_its_own_calls_ids_in_threads(default_tokenizer, small_pieces):
    for max_length in (4, 16, 64):
        assert_matches_own_call(default_tokenizer, SENTENCES, max_length, threads=3)
        assert_matches_own_call(default_tokenizer, SENTENCES, max_length, threads=1)


def test_real_sentences_match(default_tokenizer, data_dir):
    lines = (data_dir / "wiki" / "wiki1m_head.txt").read_text(encoding="utf-8").splitlines()[:3000]
    assert_matches_own_call(default_tokenizer, lines, 32, threads=2)


@pytest.mark.parametrize("setting", ["truncation_side left", "split_special_tokens", "no pad token"])
def test_tokenizer_settings_are_followed(tiny_model_dir, small_pieces, setting):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    if setting == "truncation_side left":
        tokenizer.truncation_side = "left"
    elif setting == "split_special_tokens":
        tokenizer.split_special_tokens = True
    else:
        tokenizer.pad_token = None
    assert_matches_own_call(tokenizer, SENTENCES, 8, threads=2)


def test_byte_level_bpe_tokenizer(small_pieces):
    rust = Tokenizer(models.BPE(unk_token=None))
    rust.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    rust.train_from_iterator(SENTENCES * 3, trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "</s>", "<pad>"],
                                                                 initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    rust.post_processor = processors.RobertaProcessing(("</s>", 1), ("<s>", 0))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=rust, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    assert_matches_own_call(tokenizer, SENTENCES, 12, threads=2)


class PythonTokenizer:
    """A tokenizer without a Rust backend (is_fast False), as slow tokenizers are."""

    is_fast = False

    def __init__(self, tokenizer):
        self.inner, self.pad_token_id = tokenizer, tokenizer.pad_token_id

    def __call__(self, *args, **kwargs):
        return self.inner(*args, **kwargs)


def test_slow_tokenizer_takes_its_own_call(tiny_model_dir):
    tokenizer = PythonTokenizer(AutoTokenizer.from_pretrained(tiny_model_dir))
    assert tokenization.truncating_rust_tokenizer(tokenizer, 8) is None
    assert_matches_own_call(tokenizer, SENTENCES, 8)


def test_a_tokenizer_with_python_side_steps_takes_its_own_call(tiny_model_dir, small_pieces):
    """Its Rust backend alone would give other ids; the agreement check on the first sentences sees it."""

    class Shouting(type(AutoTokenizer.from_pretrained(tiny_model_dir))):
        def __call__(self, text, *args, **kwargs):  # __call__: transformers 4.x and 5.x route lists to other helpers
            text = [t.upper().replace("A", "B") for t in text] if isinstance(text, list) else text.upper().replace("A", "B")
            return super().__call__(text, *args, **kwargs)

    tokenizer = Shouting.from_pretrained(tiny_model_dir)
    rust_ids = [e.ids for e in tokenization.truncating_rust_tokenizer(tokenizer, 8).encode_batch(SENTENCES[:2])]
    assert rust_ids != own_call(tokenizer, SENTENCES[:2], 8)  # so the check below has something to catch
    assert_matches_own_call(tokenizer, SENTENCES, 8, threads=2)


def test_the_rust_copy_is_set_up_apart_from_the_callers_tokenizer(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.backend_tokenizer.enable_padding(pad_id=0, length=20)
    before = (tokenizer.backend_tokenizer.truncation, tokenizer.backend_tokenizer.padding)
    rust = tokenization.truncating_rust_tokenizer(tokenizer, 5)
    assert (rust.truncation["max_length"], rust.padding) == (5, None)
    assert (tokenizer.backend_tokenizer.truncation, tokenizer.backend_tokenizer.padding) == before


def test_no_sentences_give_an_empty_matrix(default_tokenizer):
    ids, lengths = token_matrix(default_tokenizer, [], 8)
    assert ids.shape == (0, 8) and lengths.shape == (0,)


def test_padded_matrix_refuses_rows_longer_than_its_width():
    ids, lengths = padded_matrix([[5, 6], [], [7]], 3, pad_id=9)
    assert ids.tolist() == [[5, 6, 9], [9, 9, 9], [7, 9, 9]] and lengths.tolist() == [2, 0, 1]
    with pytest.raises(ValueError, match="4 tokens"):
        padded_matrix([[1, 2, 3, 4]], 3, pad_id=0)


def test_thread_count_setting(monkeypatch):
    monkeypatch.setenv("SIMCSE_LAB_TOKENIZER_THREADS", "3")
    assert tokenization.tokenizer_threads() == 3
    monkeypatch.delenv("SIMCSE_LAB_TOKENIZER_THREADS")
    assert tokenization.tokenizer_threads() >= 1
