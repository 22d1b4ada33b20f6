"""SBERT's classification objective and NLI loader.

References: the head written out block by block with einsum, the loss as -log softmax by hand, and
the label counts of the SNLI files as counted by `sort labels.dev | uniq -c`.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from simcse_lab.errors import SimCSELabError
from simcse_lab.data.nli import LABEL_TO_ID, NLI_LABELS, load_nli_pairs
from simcse_lab.training.sbert import SBERTHead, sbert_classification_loss, sbert_features


def random_batch(batch: int = 5, dim: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(batch, dim, generator=g, dtype=torch.float64)
    v = torch.randn(batch, dim, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 3, (batch,), generator=g)
    head = SBERTHead(dim).double()
    with torch.no_grad():
        head.linear.bias.copy_(torch.randn(3, generator=g, dtype=torch.float64))
    return u, v, labels, head


# ---------------------------------------------------------------------- head and loss
def test_label_ids_follow_hf_snli():
    assert NLI_LABELS == ("entailment", "neutral", "contradiction")
    assert LABEL_TO_ID == {"entailment": 0, "neutral": 1, "contradiction": 2}


def test_head_logits_match_block_computation():
    u, v, _, head = random_batch()
    weight, bias = head.linear.weight, head.linear.bias  # (3, 3D), (3,)
    w_u, w_v, w_d = weight[:, :4], weight[:, 4:8], weight[:, 8:]
    expected = (torch.einsum("bd,kd->bk", u, w_u) + torch.einsum("bd,kd->bk", v, w_v)
                + torch.einsum("bd,kd->bk", torch.sqrt((u - v) ** 2), w_d) + bias)
    assert torch.allclose(head(u, v), expected, atol=1e-12)
    assert sbert_features(u, v).shape == (5, 12)


def test_loss_is_mean_negative_log_softmax_of_the_gold_label():
    u, v, labels, head = random_batch()
    logits = head(u, v).detach()
    by_hand = []
    for row, label in zip(logits.tolist(), labels.tolist()):
        denominator = sum(math.exp(z) for z in row)
        by_hand.append(-math.log(math.exp(row[label]) / denominator))
    loss = sbert_classification_loss(u, v, labels, head)
    assert loss.item() == pytest.approx(sum(by_hand) / len(by_hand), abs=1e-6)
    loss.backward()
    assert head.linear.weight.grad is not None and head.linear.weight.grad.abs().sum() > 0


def test_head_rejects_mismatched_shapes():
    head = SBERTHead(4)
    with pytest.raises(SimCSELabError, match=r"\(B, 4\)"):
        head(torch.zeros(2, 4), torch.zeros(2, 5))


def test_head_save_load_round_trip(tmp_path):
    u, v, _, head = random_batch()
    head = head.float()
    target = head.save(tmp_path)
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "model.safetensors"]
    loaded = SBERTHead.load(tmp_path)
    assert torch.equal(loaded(u.float(), v.float()), head(u.float(), v.float()))
    with pytest.raises(SimCSELabError, match="model.safetensors is missing"):
        (target / "model.safetensors").unlink()
        SBERTHead.load(tmp_path)


# ---------------------------------------------------------------------- loader: CSV
def write(path, text: str):
    path.write_text(text, encoding="utf8")
    return path


def test_csv_with_text_and_integer_labels(tmp_path):
    path = write(tmp_path / "nli.csv", 'sent0,sent1,label\nA man plays.,"A man, playing.",entailment\n'
                 "A dog runs.,A cat sleeps.,2\nKids play.,Kids play outside.,Neutral\n")
    assert load_nli_pairs(path) == [("A man plays.", "A man, playing.", 0), ("A dog runs.", "A cat sleeps.", 2),
                                    ("Kids play.", "Kids play outside.", 1)]


def test_csv_column_order_and_extra_columns(tmp_path):
    path = write(tmp_path / "nli.tsv", "label\tid\tsent1\tsent0\ncontradiction\t7\tb\ta\n")
    assert load_nli_pairs(path) == [("a", "b", 2)]


def test_csv_skips_empty_rows_and_counts_them(tmp_path):
    path = write(tmp_path / "nli.csv", "sent0,sent1,label\na,b,0\n\n,,\nc,,1\nd,e,-\nf,g,1\n")
    with pytest.warns(UserWarning, match=r"skipped 3 row\(s\) with an empty field and 1 row\(s\) without a gold label"):
        assert load_nli_pairs(path) == [("a", "b", 0), ("f", "g", 1)]


@pytest.mark.parametrize("text, message", [
    ("sentence1,sentence2,gold\na,b,0\n", "expected a header with columns sent0,sent1,label; missing sent0, sent1, label"),
    ("sent0,sent1\na,b\n", "missing label"),
    ("sent0,sent1,hard_neg\na,b,c\n", "SimCSE triplet file"),
    ("", "found nothing"),
    ("sent0,sent1,label\na,b,maybe\n", r"line 2: unknown NLI label 'maybe'; valid labels are: entailment \(0\), neutral \(1\), contradiction \(2\)"),
    ("sent0,sent1,label\na,b,3\n", "unknown NLI label '3'"),
    ("sent0,sent1,label\na,b\n", "line 2: expected 3 columns"),
    ("sent0,sent1,label\n\n", "holds no labelled NLI pairs"),
])
def test_bad_csv_messages(tmp_path, text, message):
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(SimCSELabError, match=message), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_nli_pairs(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(SimCSELabError, match="nope.csv does not exist"):
        load_nli_pairs(tmp_path / "nope.csv")


def test_training_file_dispatches_label_csv_to_sbert(tmp_path):
    from simcse_lab.data import load_training_file

    data = load_training_file(write(tmp_path / "nli.csv", "sent0,sent1,label\na,b,neutral\n"))
    assert data.mode == "sbert" and data.rows == [("a", "b", 1)]


# ---------------------------------------------------------------------- loader: SentEval layout
def senteval(folder, split: str, s1: list[str], s2: list[str], labels: list[str]):
    folder.mkdir(exist_ok=True)
    for name, lines in (("s1", s1), ("s2", s2), ("labels", labels)):
        write(folder / f"{name}.{split}", "\n".join(lines) + "\n")
    return folder


def test_senteval_layout_splits_and_empty_lines(tmp_path):
    folder = senteval(tmp_path / "nli", "dev", ["a ", "", "c"], ["b", "x", "d"], ["neutral", "entailment", "contradiction"])
    senteval(folder, "test", ["e"], ["f"], ["entailment"])
    with pytest.warns(UserWarning, match=r"skipped 1 row\(s\) with an empty field"):
        assert load_nli_pairs(folder, split="dev") == [("a", "b", 1), ("c", "d", 2)]
    with pytest.warns(UserWarning):
        assert load_nli_pairs(folder) == [("a", "b", 1), ("c", "d", 2), ("e", "f", 0)]  # every split, train-dev-test order
    with pytest.raises(SimCSELabError, match=r"s1.train, s2.train, labels.train missing in .*\(split 'train'; splits present: dev, test\)"):
        load_nli_pairs(folder, split="train")


def test_senteval_layout_errors(tmp_path):
    folder = senteval(tmp_path / "nli", "dev", ["a", "c"], ["b"], ["neutral", "entailment"])
    with pytest.raises(SimCSELabError, match="have 2, 1 and 2 lines"):
        load_nli_pairs(folder)
    with pytest.raises(SimCSELabError, match="holds no SentEval NLI files"):
        load_nli_pairs((tmp_path / "empty").mkdir() or tmp_path / "empty")


def test_real_snli_dev_and_test(data_dir):
    folder = data_dir / "nli"
    dev, test = load_nli_pairs(folder, split="dev"), load_nli_pairs(folder, split="test")
    # The data README's counts: SentEval's SNLI drops SNLI's 158 / 176 pairs without a gold label.
    assert len(dev) == 9842 and len(test) == 9824
    assert len(load_nli_pairs(folder)) == 9842 + 9824
    # Label counts from `sort labels.dev | uniq -c`.
    counts = [sum(1 for _, _, label in dev if label == i) for i in range(3)]
    assert counts == [3329, 3235, 3278]
    assert dev[0] == ("Two women are embracing while holding to go packages .",
                      "The sisters are hugging goodbye while holding to go packages after just eating lunch .", 1)
    assert all(s1 and s2 and s1 == s1.strip() for s1, s2, _ in dev + test)
