"""`simcse-lab explore`: the page's numbers against evaluate_sts, simcse_lab.geometry and numpy/scipy written out
by hand; its sentences files; its figures for one and several models; its one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from conftest import build_tiny_bert
from simcse_lab import SimCSEEncoder, geometry
from simcse_lab.apps import explore as explore_module
from simcse_lab.apps.explore import Corpus, explore, nearest, read_sentences
from simcse_lab.commands.cli import main
from simcse_lab.data.sts import load_sts
from simcse_lab.errors import SimCSELabError
from simcse_lab.evaluate import evaluate_sts
from simcse_lab.evaluation.sts import ScoredPairs
from simcse_lab.train import TrainConfig, train
from simcse_lab.training.snapshots import load_replay

PAIRS = 150  # STS-B dev pairs in these tests (the page says how many)


def page_json(path: Path, element: str) -> dict:
    text = path.read_text(encoding="utf-8")
    match = re.search(rf'<script type="application/json" id="{element}">(.*?)</script>', text, re.S)
    return json.loads(match.group(1))


def unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def stsb_page(tiny_model_dir, tmp_path_factory):
    """One page on the first PAIRS pairs of STS-B dev, showing 300 of its sentences."""
    from conftest import DATA_DIR

    if not DATA_DIR or not Path(DATA_DIR).is_dir():
        pytest.skip("set SIMCSE_LAB_DATA to the data directory (for example ../shared/data) to run data tests")
    page = tmp_path_factory.mktemp("stsb") / "page.html"
    return page, explore([tiny_model_dir], output=page, data_dir=DATA_DIR, max_pairs=PAIRS, max_sentences=300, progress=False)


@pytest.fixture(scope="module")
def second_model(tmp_path_factory):
    return build_tiny_bert(tmp_path_factory.mktemp("second") / "tiny-bert-b", seed=1)


def test_headline_numbers_are_evaluate_sts_and_geometry_on_the_same_sentences(tiny_model_dir, data_dir, stsb_page):
    page, result = stsb_page
    numbers = page_json(page, "explore-data")["models"][0]["numbers"]

    pairs = ScoredPairs.from_pairs(load_sts("stsb", "dev", data_dir)[:PAIRS])
    encoder = SimCSEEncoder.from_pretrained(tiny_model_dir)
    encode = lambda s: encoder.encode(s, batch_size=128, max_length=128)  # noqa: E731  (what `simcse-lab evaluate` runs)
    assert numbers["spearman"] == pytest.approx(evaluate_sts(encode, ["stsb"], "dev", data_dir, max_pairs=PAIRS)["stsb"], abs=1e-9)
    x = encode(pairs.sentences).numpy()
    positive = pairs.gold >= 4
    assert numbers["alignment"] == pytest.approx(geometry.alignment(x[pairs.left[positive]], x[pairs.right[positive]]), rel=1e-9)
    assert numbers["uniformity"] == pytest.approx(geometry.uniformity(x), rel=1e-9)
    assert numbers["average_cosine"] == pytest.approx(geometry.average_cosine(x), rel=1e-9)
    spectrum = geometry.singular_spectrum(x).numpy()
    assert numbers["directions_above_0.1"] == int((spectrum > 0.1).sum())

    # and the same numbers written out by hand
    u = unit(x)
    cos = (u[pairs.left] * u[pairs.right]).sum(1)
    assert numbers["spearman"] == pytest.approx(100 * spearmanr(cos, pairs.gold).correlation, abs=1e-6)
    assert numbers["alignment"] == pytest.approx((((u[pairs.left] - u[pairs.right]) ** 2).sum(1))[positive].mean(), rel=1e-6)
    i, j = np.triu_indices(len(u), 1)
    assert numbers["uniformity"] == pytest.approx(np.log(np.exp(-2 * ((u[i] - u[j]) ** 2).sum(1)).mean()), rel=1e-6)
    assert numbers["average_cosine"] == pytest.approx((u @ u.T)[i, j].mean(), rel=1e-6)
    singular = np.linalg.svd(x.astype(np.float64), compute_uv=False)
    assert numbers["directions_above_0.1"] == int((singular / singular[0] > 0.1).sum())
    assert numbers["num_pairs"] == PAIRS and numbers["num_sentences"] == len(pairs.sentences)

    # the table shows them, and says what they were measured on
    text = page.read_text(encoding="utf-8")
    assert f"STS-B dev: {PAIRS} pairs, {len(pairs.sentences)} distinct sentences" in text
    assert f"<td data-key='spearman'>{numbers['spearman']:.2f}</td>" in text
    assert f"<td data-key='uniformity'>{numbers['uniformity']:.3f}</td>" in text
    assert result.path == page and result.size == page.stat().st_size


def test_the_page_is_self_contained_and_holds_every_figure(stsb_page):
    page, _ = stsb_page
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"<(script|link)[^>]+(src|href)=", text), "the page must not load anything from elsewhere"
    from plotly.offline import get_plotlyjs

    assert text.count(get_plotlyjs()) == 1  # plotly.js inlined, once
    assert not re.search(r"https?://", text.replace(get_plotlyjs(), "")), "outside plotly.js the page names no address"
    figures = page_json(page, "explore-figures")
    assert {"spectrum", "histogram", "violins", "sphere-0", "matrix-0", "map-0"} <= set(figures)
    for key in figures:
        assert re.search(rf"id=['\"]{key}['\"]", text), f"figure {key} has no place on the page"
    sphere = figures["sphere-0"]
    assert "keeps" in sphere["layout"]["title"]["text"] and "of the variance" in sphere["layout"]["title"]["text"]
    data = page_json(page, "explore-data")
    n = len(data["sentences"])
    assert len(data["models"][0]["map"]) == n and len(data["models"][0]["neighbours"]) == n
    assert "None of these models has geometry snapshots" in text


def test_two_models_side_by_side_with_their_differences(tiny_model_dir, second_model, tmp_path):
    sentences = [f"a man is playing {w}" for w in ("guitar", "piano", "ball", "music")] + ["the cat sleeps", "a dog runs in the park",
                                                                                          "two women eat food", "the sun is red"]
    page = tmp_path / "two.html"
    result = explore([tiny_model_dir, second_model], sentences=sentences, output=page, data_dir=tmp_path / "no-data", progress=False)
    figures = page_json(page, "explore-figures")
    assert {"sphere-0", "sphere-1", "matrix-0", "matrix-1", "map-0", "map-1"} <= set(figures)
    assert "violins" not in figures  # no STS-B dev here: no gold scores
    a, b = (v.numbers for v in result.views)
    assert a["spearman"] is None and a["num_sentences"] == len(sentences)
    assert b["uniformity"] == pytest.approx(geometry.uniformity(SimCSEEncoder.from_pretrained(second_model).encode(sentences)), rel=1e-6)
    text = page.read_text(encoding="utf-8")
    assert "Differences from" in text and f"{b['uniformity'] - a['uniformity']:+.3f}" in text
    assert "no STS-B dev data" in text
    # the matrix shows the user's sentences, in order
    assert figures["matrix-0"]["layout"]["yaxis"]["ticktext"][:2] == sentences[:2]


def test_a_trained_output_dir_gets_its_training_replay(tiny_model_dir, data_dir, tmp_path):
    from simcse_lab.apps import viz

    train_file = tmp_path / "wiki.txt"
    train_file.write_text("\n".join((data_dir / "wiki/wiki1m_head.txt").read_text(encoding="utf8").splitlines()[:200]) + "\n")
    out = tmp_path / "run"
    train(TrainConfig(model_name_or_path=str(tiny_model_dir), train_file=str(train_file), output_dir=str(out), pooler_type="avg",
                      max_steps=4, eval_steps=2, per_device_train_batch_size=16, learning_rate=1e-3, eval_max_pairs=60,
                      geometry_snapshots=48, data_dir=str(data_dir), show_progress=False))
    page = tmp_path / "replay.html"
    result = explore([out, tiny_model_dir], output=page, data_dir=data_dir, max_pairs=PAIRS, max_sentences=200, progress=False)
    replay = load_replay(out)
    fig = result.figures["replay-0"]
    assert "replay-1" not in result.figures  # the raw encoder was not trained here
    assert [f.name for f in fig.frames] == ["0", "2", "4"] == [str(r["step"]) for r in replay.frames]
    assert [step["label"] for step in fig.layout.sliders[0].steps] == ["0", "2", "4"]
    trajectory, raw = fig.data[2], fig.data[3]
    np.testing.assert_allclose(trajectory.x, [r["uniformity"] for r in replay.records])
    np.testing.assert_allclose(trajectory.y, [r["alignment"] for r in replay.records])
    assert list(raw.x) == [replay.records[0]["uniformity"]] and "raw" in raw.text[0]
    for frame, record in zip(fig.frames, replay.frames):
        points = np.column_stack([frame.data[0].x, frame.data[0].y, frame.data[0].z])
        np.testing.assert_allclose(np.linalg.norm(points, axis=1), 1.0, atol=1e-9)
        # the frame is its step's own sphere turned by a rotation: every angle between two points is kept
        own = viz.to_sphere(viz.project(replay.embeddings(record), 3, "pca"))
        np.testing.assert_allclose(points @ points.T, own @ own.T, atol=1e-6)
        assert frame.data[1].x == (record["uniformity"],) and frame.data[1].y == (record["alignment"],)
    assert "id='replay-0'" in page.read_text(encoding="utf-8")


def test_nearest_neighbours_against_a_hand_loop():
    x = np.random.default_rng(3).normal(size=(40, 6))
    rows, cosines = nearest(x, 5, chunk=7)
    u = unit(x)
    for i in range(40):
        sims = [(float(u[i] @ u[j]), j) for j in range(40) if j != i]
        best = sorted(sims, key=lambda t: -t[0])[:5]
        assert list(rows[i]) == [j for _, j in best]
        np.testing.assert_allclose(cosines[i], [c for c, _ in best], atol=1e-5)


def test_sentences_from_txt_and_csv(tmp_path):
    txt = tmp_path / "mine.txt"
    txt.write_text("first sentence\n\n  second   sentence \nthird\n")
    assert read_sentences(txt).sentences == ["first sentence", "second sentence", "third"]

    csv_file = tmp_path / "mine.csv"
    csv_file.write_text('id,text,label,source\n1,"a dog, running",animal,web\n2,a cat,animal,book\n3,stocks fell,finance,\n')
    corpus = read_sentences(csv_file)
    assert corpus.sentences == ["a dog, running", "a cat", "stocks fell"]
    assert corpus.groups == ["animal", "animal", "finance"] and corpus.colour_by == "label"
    assert corpus.details == ["id: 1 · source: web", "id: 2 · source: book", "id: 3"]
    assert corpus.hover()[0] == "a dog, running · id: 1 · source: web"

    scores = tmp_path / "scores.tsv"
    scores.write_text("sentence\tscore\n" + "".join(f"s{i}\t{i / 7:.3f}\n" for i in range(20)))
    corpus = read_sentences(scores, colour="score")
    assert corpus.groups is None and corpus.values[3] == pytest.approx(3 / 7, abs=1e-3)  # many numbers: a colour scale


@pytest.mark.parametrize("content, colour, needle", [
    (None, None, "no such file"),
    (b"\xff\xfe\x00bad", None, "not UTF-8"),
    (b"only one\n", None, "at least 2"),
    (b"text,label\na,b\nc,d\n", "topic", "not a column"),
    (b"", None, "empty"),
])
def test_a_sentences_file_that_cannot_be_read_is_one_clear_error(tmp_path, content, colour, needle):
    path = tmp_path / ("s.csv" if content and b"," in content or content == b"" else "s.txt")
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SimCSELabError, match=needle):
        read_sentences(path, colour)


def test_cli_writes_the_page_and_prints_where_and_how_long(tiny_model_dir, tmp_path, capsys):
    sentences = tmp_path / "s.txt"
    sentences.write_text("a man plays guitar\na woman plays piano\nthe dog runs\nthe cat eats food\n")
    page = tmp_path / "out" / "page.html"
    assert main(["explore", str(tiny_model_dir), "--sentences", str(sentences), "--output", str(page), "--pooler", "cls_before_pooler",
                 "--data_dir", str(tmp_path / "none"), "--no_progress"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {page}" in out and "encode" in out and "write page" in out
    assert page_json(page, "explore-data")["models"][0]["pooler"] == "cls_before_pooler"


@pytest.mark.parametrize("args, needle", [
    (["/no/such/model"], "not a directory holding a saved model"),
    (["MODEL", "--sentences", "/no/such/file.txt"], "cannot read --sentences"),
    (["MODEL", "MODEL", "--pooler", "avg", "cls", "avg"], "3 poolers for 2 models"),
    (["MODEL", "--pooler", "mean"], "unknown pooler"),
])
def test_cli_errors_are_one_line(tiny_model_dir, tmp_path, capsys, args, needle):
    args = [str(tiny_model_dir) if a == "MODEL" else a for a in args]
    assert main(["explore", *args, "--output", str(tmp_path / "p.html"), "--no_progress", "--data_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "p.html").exists()


def test_the_default_sentences_are_stsb_dev_coloured_by_genre_or_the_examples(data_dir, tmp_path):
    corpus = explore_module.default_corpus(data_dir)
    pairs = ScoredPairs.from_pairs(load_sts("stsb", "dev", data_dir))
    assert corpus.sentences == pairs.sentences and set(corpus.groups) == {"captions", "forums", "news"}
    fallback = explore_module.default_corpus(tmp_path)
    assert len(fallback.sentences) == 40 and "built-in" in fallback.source
    sampled = Corpus([f"s{i}" for i in range(100)], "x").sample(10)
    assert len(sampled.sentences) == 10 and sampled.sentences == sorted(sampled.sentences, key=lambda s: int(s[1:]))
    assert "a random 10 of its 100" in sampled.source


@pytest.mark.slow  # umap's first call compiles with numba: tens of seconds
def test_the_corpus_map_can_be_umap(tiny_model_dir, tmp_path):
    from simcse_lab.apps.examples import example_sentences

    result = explore([tiny_model_dir], sentences=example_sentences(), output=tmp_path / "umap.html", map_method="umap", data_dir=tmp_path,
                     progress=False)
    assert result.views[0].map_coords.shape == (40, 2) and result.figures["map-0"].layout.xaxis.title.text == "UMAP 1"
    assert "Corpus map (UMAP)" in result.path.read_text(encoding="utf-8")
    with pytest.raises(SimCSELabError, match="unknown map projection"):
        explore([tiny_model_dir], sentences=example_sentences(), output=None, map_method="tsne", progress=False)
