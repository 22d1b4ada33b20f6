"""The SimCSE convenience against a brute-force reference."""

import numpy as np
import pytest

from simcse_lab import SimCSE

CORPUS = ["a man plays the guitar", "a woman reads a book", "the dog runs in the park", "two men are eating food",
          "a child sings", "the red car is on the road"]


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return SimCSE(str(tiny_model_dir), pooler="avg", device="cpu")


def test_similarity_shapes_and_values(model):
    a = model.encoder.encode(CORPUS[:2]).numpy()
    b = model.encoder.encode(CORPUS[2:5]).numpy()
    expected = (a / np.linalg.norm(a, axis=1, keepdims=True)) @ (b / np.linalg.norm(b, axis=1, keepdims=True)).T
    np.testing.assert_allclose(model.similarity(CORPUS[:2], CORPUS[2:5]), expected, rtol=1e-5, atol=1e-6)
    assert model.similarity(CORPUS[0], CORPUS[2]) == pytest.approx(expected[0, 0], rel=1e-5)
    assert model.similarity(CORPUS[0], CORPUS[2:5]).shape == (3,)


def test_search_matches_brute_force_ranking(model):
    model.build_index(CORPUS, use_faiss=False)
    scores = dict(zip(CORPUS, model.similarity("a man plays a guitar", CORPUS)))
    got = model.search("a man plays a guitar", top_k=3, threshold=-1.0)
    # a random tiny model has near-ties, so compare scores, not the order of tied sentences
    np.testing.assert_allclose([v for _, v in got], sorted(scores.values(), reverse=True)[:3], rtol=1e-5)
    for sentence, value in got:
        assert value == pytest.approx(scores[sentence], rel=1e-5)
    assert model.search("a man plays a guitar", top_k=3, threshold=1.01) == []
    assert [len(r) for r in model.search(["a dog", "a car"], top_k=2, threshold=-1.0)] == [2, 2]
