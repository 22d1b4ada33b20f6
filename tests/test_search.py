"""The SimCSE tool against the official `simcse/tool.py` semantics, written from its source and documentation.

The reference embeddings are computed here with plain transformers, as the official tool computes them
(AutoModel, padding=True, truncation at max_length, pooler_output for cls, the [CLS] state for
cls_before_pooler, rows divided by their norm), and the reference similarities with scikit-learn's
cosine_similarity, which the official tool calls. The official package itself is not imported.
"""

import logging
import shutil

import numpy as np
import pytest
import torch
from sklearn.metrics.pairwise import cosine_similarity
from transformers import AutoModel, AutoTokenizer

from simcse_lab import SimCSE
from simcse_lab.apps import search as search_module
from simcse_lab.errors import SimCSELabError

CORPUS = ["a man plays the guitar", "a woman reads a book", "the dog runs in the park", "two men are eating food",
          "a child sings", "the red car is on the road"]
QUERIES = ["a man plays a guitar", "a girl reads"]


def official_encode(tokenizer, model, sentences, pooler="cls", normalize=True, max_length=128, batch_size=64) -> torch.Tensor:
    """The official tool's encode, written out: (N, D) float32 on the CPU."""
    out = []
    with torch.no_grad():
        for start in range(0, len(sentences), batch_size):
            inputs = tokenizer(sentences[start : start + batch_size], padding=True, truncation=True, max_length=max_length,
                               return_tensors="pt")
            outputs = model(**inputs, return_dict=True)
            z = outputs.pooler_output if pooler == "cls" else outputs.last_hidden_state[:, 0]
            out.append(z / z.norm(dim=1, keepdim=True) if normalize else z)
    return torch.cat(out)


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return SimCSE(str(tiny_model_dir), "cpu", pooler="cls")


@pytest.fixture(scope="module")
def reference(tiny_model_dir):
    tokenizer, backbone = AutoTokenizer.from_pretrained(tiny_model_dir), AutoModel.from_pretrained(tiny_model_dir).eval()
    return lambda sentences, **kw: official_encode(tokenizer, backbone, sentences, **kw)


def test_constructor_takes_the_official_arguments_positionally(tiny_model_dir, tmp_path):
    tool = SimCSE(str(tiny_model_dir), "cpu", 7, 3, "cls_before_pooler")
    assert (tool.device, tool.num_cells, tool.num_cells_in_search, tool.pooler) == ("cpu", 7, 3, "cls_before_pooler")
    assert (tool.index, tool.is_faiss_index) == (None, False)
    # the official default pooler: "unsup" in the name -> cls_before_pooler, else cls (for official checkpoints)
    for name, pooler in (("unsup-simcse-tiny", "cls_before_pooler"), ("sup-simcse-tiny", "cls")):
        shutil.copytree(tiny_model_dir, tmp_path / name)
        assert SimCSE(str(tmp_path / name), "cpu").pooler == pooler
    assert SimCSE(str(tiny_model_dir), device="cpu").pooler == "avg"  # the documented difference: a model that records no pooler


def test_encode_returns_the_official_types_shapes_and_values(model, reference):
    expected = reference(CORPUS)
    one = model.encode(CORPUS[0])
    assert isinstance(one, torch.Tensor) and one.dtype == torch.float32 and one.shape == (32,)
    torch.testing.assert_close(one, expected[0], rtol=1e-4, atol=1e-5)
    assert model.encode(CORPUS[0], keepdim=True).shape == (1, 32)
    many = model.encode(CORPUS, return_numpy=True)
    assert isinstance(many, np.ndarray) and many.dtype == np.float32 and many.shape == (6, 32)
    np.testing.assert_allclose(many, expected.numpy(), rtol=1e-4, atol=1e-5)
    # every parameter positionally: sentence, device, return_numpy, normalize_to_unit, keepdim, batch_size, max_length
    raw = model.encode(CORPUS, "cpu", True, False, False, 2, 4)
    np.testing.assert_allclose(raw, reference(CORPUS, normalize=False, max_length=4).numpy(), rtol=1e-4, atol=1e-5)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    assert model.encode(CORPUS[0], device="cpu", return_numpy=True, keepdim=True, batch_size=1, max_length=8).shape == (1, 32)


def test_similarity_shapes_types_and_values_match_the_official_tool(model, reference):
    q, k = reference(QUERIES).numpy(), reference(CORPUS[:3]).numpy()
    expected = cosine_similarity(q, k)  # what the official similarity returns: (N, M) float32
    got = model.similarity(QUERIES, CORPUS[:3])
    assert isinstance(got, np.ndarray) and got.shape == (2, 3) and got.dtype == expected.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    single = model.similarity(QUERIES[0], CORPUS[0])
    assert isinstance(single, float) and single == pytest.approx(float(expected[0, 0]), abs=1e-5)
    assert model.similarity(QUERIES[0], CORPUS[:3]).shape == (3,)
    against_one = model.similarity(QUERIES, CORPUS[0], "cpu")  # device positionally
    assert against_one.shape == (2, 1)
    np.testing.assert_allclose(against_one[:, 0], expected[:, 0], rtol=1e-4, atol=1e-5)
    # precomputed keys: (M, D) or (D,), any scale (cosine_similarity normalises them)
    vectors = model.encode(CORPUS[:3], return_numpy=True, normalize_to_unit=False)
    np.testing.assert_allclose(model.similarity(QUERIES, vectors, device="cpu"), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.similarity(QUERIES, 3.0 * vectors[1]), expected[:, 1:2], rtol=1e-4, atol=1e-5)
    assert isinstance(model.similarity(QUERIES[0], vectors[1]), float)
    np.testing.assert_allclose(model.similarity(QUERIES, torch.from_numpy(vectors)), expected, rtol=1e-4, atol=1e-5)


def official_search(query_vec, index_vecs, sentences, threshold, top_k):
    """The official brute-force search, written out: scores as Python floats, >= threshold, stable sort, top_k."""
    scores = cosine_similarity(query_vec.reshape(1, -1), index_vecs)[0].tolist()
    kept = sorted([(i, s) for i, s in enumerate(scores) if s >= threshold], key=lambda x: x[1], reverse=True)[:top_k]
    return [(sentences[i], s) for i, s in kept]


def assert_same_results(got, expected):
    assert [s for s, _ in got] == [s for s, _ in expected]
    np.testing.assert_allclose([v for _, v in got], [v for _, v in expected], rtol=1e-4, atol=1e-5)


def test_exact_search_matches_the_official_ranking_threshold_and_top_k(model, reference):
    model.build_index(CORPUS, use_faiss=False)
    assert model.is_faiss_index is False and model.index["sentences"] == CORPUS
    index_vecs, q = reference(CORPUS).numpy(), reference(QUERIES).numpy()
    for threshold, top_k in ((-1.0, 3), (-1.0, 10), (0.0, 2), (1.01, 5)):
        got = model.search(QUERIES[0], threshold=threshold, top_k=top_k)
        assert_same_results(got, official_search(q[0], index_vecs, CORPUS, threshold, top_k))
        assert all(type(score) is float for _, score in got)
    # a list of queries: a list of lists, threshold and top_k honoured (the PyPI 0.4 release dropped them here)
    both = model.search(QUERIES, "cpu", -1.0, 2)  # every parameter positionally
    assert len(both) == 2 and [len(r) for r in both] == [2, 2]
    for row, query in zip(both, q):
        assert_same_results(row, official_search(query, index_vecs, CORPUS, -1.0, 2))
    # the threshold is inclusive: a result's own score keeps it, the next float above drops it
    best_sentence, best_score = model.search(QUERIES[0], threshold=-1.0, top_k=1)[0]
    assert model.search(QUERIES[0], threshold=best_score, top_k=1) == [(best_sentence, best_score)]
    assert model.search(QUERIES[0], threshold=float(np.nextafter(best_score, 2.0)), top_k=1) == []


def test_exact_search_keeps_the_index_order_among_equal_scores(model):
    sentences = ["a dog", "a cat", "a dog", "a dog"]
    model.build_index(sentences, use_faiss=False)
    got = model.search("a dog", threshold=-1.0, top_k=4)
    # the three copies of "a dog" tie; a stable sort keeps them in index order, as the official sorted() does
    assert [s for s, _ in got[:3]] == ["a dog"] * 3 and got[3][0] == "a cat"
    assert got[0][1] == got[1][1] == got[2][1]


def test_build_index_reads_a_file_path_line_by_line(model, tmp_path):
    path = tmp_path / "sentences.txt"
    path.write_text("a man plays the guitar  \na woman reads a book\n\nthe dog runs in the park\n")
    model.build_index(str(path), use_faiss=False)
    # the official tool's reading: every line, trailing whitespace removed (an empty line is an empty sentence)
    assert model.index["sentences"] == ["a man plays the guitar", "a woman reads a book", "", "the dog runs in the park"]
    assert model.index["index"].shape == (4, 32)
    assert model.search("a man plays the guitar", threshold=0.99, top_k=1)[0][0] == "a man plays the guitar"
    model.build_index(path, use_faiss=False)  # a pathlib.Path too
    assert len(model.index["sentences"]) == 4
    with pytest.raises(SimCSELabError, match="path of a file of sentences"):
        model.build_index("a sentence, not a file")


def test_add_to_index_extends_it_as_if_built_at_once(model, tmp_path, reference, monkeypatch):
    monkeypatch.setattr(search_module, "import_faiss", lambda: None)  # the exact index (faiss's: test_faiss_search...)
    fresh = SimCSE(model.encoder)
    fresh.add_to_index(CORPUS[:2], device="cpu", batch_size=1)  # no index yet: it is built
    path = tmp_path / "more.txt"
    path.write_text("\n".join(CORPUS[2:]) + "\n")
    fresh.add_to_index(str(path))
    assert fresh.index["sentences"] == CORPUS
    np.testing.assert_allclose(fresh.index["index"], reference(CORPUS).numpy(), rtol=1e-4, atol=1e-5)


def test_use_faiss_falls_back_to_exact_search_with_a_warning_when_faiss_is_missing(model, monkeypatch, caplog):
    monkeypatch.setattr(search_module, "import_faiss", lambda: None)
    model.build_index(CORPUS)  # use_faiss=None: faiss if it imports
    assert model.is_faiss_index is False
    with caplog.at_level(logging.WARNING, logger=search_module.__name__):
        model.build_index(CORPUS, use_faiss=True)
    assert model.is_faiss_index is False and "faiss" in caplog.text


@pytest.mark.parametrize("faiss_fast", [False, True])
def test_faiss_search_gives_the_exact_results(model, faiss_fast, reference):
    pytest.importorskip("faiss")
    index_vecs, q = reference(CORPUS).numpy(), reference(QUERIES).numpy()
    model.num_cells, model.num_cells_in_search = 2, 2  # every cell probed: IVF search is exact
    model.build_index(CORPUS, faiss_fast=faiss_fast)  # use_faiss=None: faiss, since it imports
    assert model.is_faiss_index is True
    assert type(model.index["index"]).__name__ == ("IndexIVFFlat" if faiss_fast else "IndexFlatIP")
    got = model.search(QUERIES, threshold=-1.0, top_k=10)  # top_k beyond the index: faiss's -1 ids are not returned
    for row, query in zip(got, q):
        assert_same_results(row, official_search(query, index_vecs, CORPUS, -1.0, 10))
        assert all(type(score) is float for _, score in row)
    assert_same_results(model.search(QUERIES[0], "cpu", 0.0, 2), official_search(q[0], index_vecs, CORPUS, 0.0, 2))
    model.add_to_index(["a man plays the guitar loudly"])
    assert model.index["index"].ntotal == 7 and model.index["sentences"][-1] == "a man plays the guitar loudly"
    model.num_cells, model.num_cells_in_search = 100, 10
