"""Widget apps driven from Python: set values, call handlers, check the figures and state."""

from __future__ import annotations

import json
from types import SimpleNamespace

import ipywidgets
import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from simcse_lab.apps import widgets
from simcse_lab.errors import SimCSELabError, SimCSELabTypeError


class BagOfWords:
    """A transparent encoder: sentence -> word-count vector over a fixed vocabulary; records calls."""

    def __init__(self):
        self.vocab = {}
        self.calls = []

    def __call__(self, sentences):
        self.calls.append(list(sentences))
        out = np.zeros((len(sentences), 64))
        for i, s in enumerate(sentences):
            for word in s.lower().strip(".").split():
                out[i, self.vocab.setdefault(word, len(self.vocab) % 63)] += 1.0
            out[i, 63] = 0.1  # no all-zero rows
        return torch.from_numpy(out)


def numpy_cosine(x):
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    return unit @ unit.T


SENTENCES = ["a dog runs in the park", "a puppy runs in the park", "the stock market fell", "shares fell today"]


def test_resolve_encoder_accepts_callable_encoder_and_path(tiny_model_dir):
    encode, _ = widgets.resolve_encoder(BagOfWords())
    assert encode(["a b", "c"]).shape == (2, 64)
    encode, name = widgets.resolve_encoder(str(tiny_model_dir))
    vectors = encode(["a man plays guitar", "a dog"])
    assert vectors.shape == (2, 32) and vectors.dtype == np.float32 and name == f"{tiny_model_dir.parent.name}/{tiny_model_dir.name}"
    with pytest.raises(SimCSELabTypeError, match="encode callable"):
        widgets.resolve_encoder(42)
    with pytest.raises(SimCSELabError, match="returned shape"):
        widgets.resolve_encoder(lambda s: np.ones((1, 3)))[0](["a", "b"])


def test_similarity_explorer_heatmap_follows_the_textarea():
    encoder = BagOfWords()
    app = widgets.SimilarityExplorer(encoder, SENTENCES[:3])
    assert isinstance(app, ipywidgets.VBox) and isinstance(app.figure, go.Figure) and not isinstance(app.figure, go.FigureWidget)
    heat = app.figure.data[0]
    reference = numpy_cosine(encoder(SENTENCES[:3]).numpy())
    np.testing.assert_allclose(np.asarray(heat.z), reference, atol=1e-6)
    assert list(app.figure.layout.yaxis.ticktext) == SENTENCES[:3]

    app.text.value += "\n" + SENTENCES[3]  # the observer redraws
    assert np.asarray(app.figure.data[0].z).shape == (4, 4)
    assert list(app.figure.layout.yaxis.ticktext) == SENTENCES
    np.testing.assert_allclose(app.similarity, numpy_cosine(encoder(SENTENCES).numpy()), atol=1e-6)
    # nearest neighbour of the dog sentence is the puppy sentence, and it is listed
    assert widgets.nearest_neighbors(app.similarity, 1)[0][0][0] == 1
    assert "a puppy runs in the park" in app.neighbours.value


def test_similarity_explorer_reencodes_only_the_edited_line():
    encoder = BagOfWords()
    app = widgets.SimilarityExplorer(encoder, SENTENCES)
    assert app.embed.encoded == 4
    lines = app.text.value.splitlines()
    lines[2] = "the stock market rose"
    app.text.value = "\n".join(lines)
    assert app.embed.encoded == 5 and encoder.calls[-1] == ["the stock market rose"]
    app.button.click()  # nothing changed: nothing is encoded
    assert app.embed.encoded == 5
    assert app.figure.layout.yaxis.ticktext[2] == "the stock market rose"


@pytest.mark.parametrize("text", ["", "only one sentence", "\n  \n"])
def test_similarity_explorer_needs_two_sentences(text):
    app = widgets.SimilarityExplorer(BagOfWords(), SENTENCES)
    app.text.value = text
    assert app.plot.children == (app.message,)
    assert "at least two sentences" in app.message.value
    app.text.value = "\n".join(SENTENCES[:2])
    assert app.plot.children == (app.output,) and np.asarray(app.figure.data[0].z).shape == (2, 2)


def test_nearest_neighbors_against_a_hand_loop():
    sim = numpy_cosine(np.random.default_rng(0).normal(size=(6, 5)))
    got = widgets.nearest_neighbors(sim, k=2)
    for i in range(6):
        others = sorted((j for j in range(6) if j != i), key=lambda j: -sim[i, j])[:2]
        assert [j for j, _ in got[i]] == others
        assert [c for _, c in got[i]] == pytest.approx([sim[i, j] for j in others])


def test_sphere_explorer_dropdowns_redraw():
    groups = ["animals", "animals", "finance", "finance"]
    app = widgets.SphereExplorer(BagOfWords(), SENTENCES, groups)
    points = [t for t in app.figure.data if t.type == "scatter3d"]
    assert [t.name for t in points] == ["animals", "finance"]
    xyz = np.concatenate([np.column_stack([t.x, t.y, t.z]) for t in points])
    np.testing.assert_allclose(np.linalg.norm(xyz, axis=1), 1.0, atol=1e-9)
    app.colouring.value = "mean_cosine"
    (trace,) = [t for t in app.figure.data if t.type == "scatter3d"]
    unit = app.embeddings / np.linalg.norm(app.embeddings, axis=1, keepdims=True)
    mean = unit.mean(0) / np.linalg.norm(unit.mean(0))
    np.testing.assert_allclose(np.asarray(trace.marker.color), unit @ mean, atol=1e-6)
    assert "average cosine" in app.figure.layout.title.text
    assert widgets.SphereExplorer(BagOfWords(), ["just one"]).plot.children[0].value.count("two sentences") == 1


def test_corpus_map_search_and_select():
    corpus = SENTENCES + [f"filler sentence number {i}" for i in range(20)]
    app = widgets.CorpusMap(BagOfWords(), corpus, k=2)
    assert app.find("FELL") == [2, 3]
    app.matches.value = 2  # picking a match selects it
    assert app.selected == 2 and [j for j, _ in app.neighbour_rows][0] == 3
    coords = app._coords["pca"]
    np.testing.assert_allclose([app.figure.data[-1].x[0], app.figure.data[-1].y[0]], coords[2])
    assert "shares fell today" in app.neighbours.value
    # a click on a point selects the sentence stored in that point's customdata
    trace = app.figure.data[0]
    app._on_click(trace, SimpleNamespace(point_inds=[5]), None)
    assert app.selected == int(trace.customdata[5])
    with pytest.raises(SimCSELabError, match="no sentence 99"):
        app.select(99)


def test_model_compare_reports_both_models(tiny_model_dir):
    app = widgets.ModelCompare(BagOfWords(), str(tiny_model_dir), SENTENCES)
    assert len(app.spheres) == len(app.heatmaps) == 2
    for emb, stats, heat in zip(app.embeddings, app.stats, app.heatmaps):
        cos = numpy_cosine(emb.astype(np.float64))
        assert stats["avg_cosine"] == pytest.approx(cos[~np.eye(4, dtype=bool)].mean())
        np.testing.assert_allclose(np.asarray(heat.data[0].z), cos, atol=1e-9)
    assert len(app.spectrum.data) == 2


def test_training_dashboard_follows_the_callback_protocol():
    dash = widgets.TrainingDashboard(min_interval=0.0)
    state = SimpleNamespace(step=0, max_steps=100, history=[])
    dash.on_train_begin(state)
    for step in (10, 20, 30):
        state.step = step
        state.history.append({"step": step, "loss": 3.0 - step / 100, "lr": 1e-4})
        dash.on_log(state, state.history[-1])
    state.history.append({"step": 30, "stsb_dev": 61.5, "alignment": 0.31, "uniformity": -2.1, "avg_cosine": 0.2})
    dash.on_evaluate(state, state.history[-1])
    dash.on_train_end(state)
    loss, dev, align, unif = dash.figure.data
    assert list(loss.x) == [10, 20, 30] and list(loss.y) == pytest.approx([2.9, 2.8, 2.7])
    assert (list(dev.x), list(dev.y), list(align.y), list(unif.y)) == ([30], [61.5], [0.31], [-2.1])
    assert (dash.progress.value, dash.progress.max) == (30, 100)
    assert "STS-B dev 61.50" in dash.status.value and "done" in dash.status.value


def test_training_dashboard_without_state_history_and_throttled():
    dash = widgets.TrainingDashboard(min_interval=3600)
    state = SimpleNamespace(step=1, max_steps=10)
    dash.on_log(state, {"step": 1, "loss": 1.0})  # first log draws
    dash.on_log(state, {"step": 2, "loss": 0.5})  # within min_interval: kept, not drawn
    assert len(dash.history) == 2 and list(dash.figure.data[0].y) == [1.0]
    dash.on_evaluate(state, {"step": 2, "stsb_dev": 50.0})  # evaluation always draws
    assert list(dash.figure.data[0].y) == [1.0, 0.5] and list(dash.figure.data[1].y) == [50.0]


def test_training_dashboard_hears_of_snapshots_and_replays_them(tmp_path):
    from simcse_lab.training.snapshots import SNAPSHOT_DIR

    dash = widgets.TrainingDashboard()
    state = SimpleNamespace(step=5, config=SimpleNamespace(output_dir=str(tmp_path)))
    records = [{"step": 0, "uniformity": -0.5, "alignment": 0.05, "num_sentences": 3, "embeddings": "step-0.npy"},
               {"step": 5, "uniformity": -1.25, "alignment": 0.2, "num_sentences": 3, "embeddings": "step-5.npy"}]
    dash.on_snapshot(state, records)
    assert "uniformity -0.500 → -1.250" in dash.geometry.value and "alignment 0.050 → 0.200" in dash.geometry.value
    assert not dash.replay().frames  # nothing saved yet: a message, not an error
    folder = tmp_path / SNAPSHOT_DIR
    folder.mkdir()
    (folder / "probe.json").write_text('{"sentences": ["a", "b", "c"], "left": [0], "right": [1], "gold": [4.0]}')
    (folder / "steps.json").write_text(json.dumps(records))
    rng = np.random.default_rng(0)
    for r in records:
        np.save(folder / r["embeddings"], rng.normal(size=(3, 5)).astype(np.float16))
    fig = dash.replay()
    assert [f.name for f in fig.frames] == ["0", "5"] and list(fig.data[2].x) == [-0.5, -1.25]


def test_example_and_stsb_sentences(data_dir):
    assert len(widgets.example_sentences()) == len(widgets.example_sentences(groups=True)) == 40
    sentences = widgets.stsb_dev_sentences(data_dir)
    assert sentences[:2] == ["a man with a hard hat is dancing .", "a man wearing a hard hat is dancing ."]
    assert len(sentences) == len(set(sentences)) and widgets.stsb_dev_sentences(data_dir, limit=5) == sentences[:5]
    assert widgets.stsb_dev_sentences(data_dir / "missing") is None


def test_training_dashboard_draws_the_raw_encoders_reference_lines_once():
    """A step-0 evaluation (the raw encoder) puts one dashed line on each evaluation panel of the live widget."""
    dash = widgets.TrainingDashboard()

    class State:
        step, max_steps = 0, 10
        history = [{"step": 0, "stsb_dev": 60.0, "alignment": 0.2, "uniformity": -2.0}]

    dash.on_evaluate(State, State.history[0])
    State.history = State.history + [{"step": 5, "stsb_dev": 61.0, "alignment": 0.3, "uniformity": -2.5}]
    dash.on_evaluate(State, State.history[-1])
    assert sorted(shape.y0 for shape in dash.figure.layout.shapes) == [-2.0, 0.2, 60.0]
