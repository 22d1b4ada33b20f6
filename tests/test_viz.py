"""Figure builders: the numbers in the figures against independent numpy references."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from simcse_lab.apps import viz
from simcse_lab.errors import SimCSELabError


@pytest.fixture
def cloud():
    return np.random.default_rng(0).normal(size=(30, 16))


def numpy_cosine(x):
    unit = x / np.sqrt((x * x).sum(axis=1, keepdims=True))
    return unit @ unit.T


def scatter_points(fig, kind):
    """All (x, y[, z]) points of the traces of one type, in trace order."""
    traces = [t for t in fig.data if t.type == kind]
    cols = ("x", "y", "z") if kind == "scatter3d" else ("x", "y")
    return np.concatenate([np.column_stack([np.asarray(getattr(t, c), dtype=float) for c in cols]) for t in traces])


def test_sphere_points_have_unit_norm_and_hover_text(cloud):
    labels = [f"sentence {i}" for i in range(len(cloud))]
    fig = viz.sphere_figure(cloud, labels, groups=["a", "b", "c"] * 10)
    assert isinstance(fig, go.Figure)
    assert [t.type for t in fig.data] == ["surface", "scatter3d", "scatter3d", "scatter3d"]
    points = scatter_points(fig, "scatter3d")
    assert points.shape == (30, 3)
    np.testing.assert_allclose(np.linalg.norm(points, axis=1), 1.0, atol=1e-12)
    assert [t.name for t in fig.data[1:]] == ["a", "b", "c"]
    assert list(fig.data[1].text) == [f"sentence {i}" for i in range(0, 30, 3)]
    assert list(fig.data[1].customdata) == list(range(0, 30, 3))  # rows map back to sentences


def test_sphere_pca_is_the_uncentred_top3_subspace(cloud):
    # Independent reference: eigenvectors of X^T X of the normalised rows (not an SVD).
    unit = cloud / np.linalg.norm(cloud, axis=1, keepdims=True)
    _, vectors = np.linalg.eigh(unit.T @ unit)
    reference = unit @ vectors[:, ::-1][:, :3]
    coords = viz.project(cloud, 3, "pca")
    np.testing.assert_allclose(np.abs(coords), np.abs(reference), atol=1e-9)  # equal up to axis signs


def test_sphere_handles_fewer_points_than_axes():
    fig = viz.sphere_figure(np.array([[1.0, 0.0], [0.0, 2.0]]), ["a", "b"])
    np.testing.assert_allclose(np.linalg.norm(scatter_points(fig, "scatter3d"), axis=1), 1.0)


def test_heatmap_z_is_the_cosine_matrix_with_labels_in_order(cloud):
    x = cloud[:7]
    labels = ["first", "second", "a much longer sentence that will certainly be shortened on the axis", "4", "5", "6", "4"]
    fig = viz.similarity_heatmap(x, labels)
    heat = fig.data[0]
    np.testing.assert_allclose(np.asarray(heat.z), numpy_cosine(x), atol=1e-12)
    assert (heat.zmin, heat.zmax) == (-1.0, 1.0)
    assert list(fig.layout.yaxis.tickvals) == list(range(7))
    ticks = list(fig.layout.yaxis.ticktext)
    assert ticks[:2] == ["first", "second"] and ticks[3:] == ["4", "5", "6", "4"]  # order kept, duplicates kept
    assert ticks[2].endswith("…") and len(ticks[2]) == 40
    assert fig.layout.yaxis.autorange == "reversed"  # row 0 on top, like the matrix
    assert heat.customdata[2][0][0].startswith("a much longer sentence")  # hover shows the full sentence


def test_heatmap_rejects_bad_shapes_and_label_counts(cloud):
    with pytest.raises(SimCSELabError, match="2-D"):
        viz.similarity_heatmap(np.ones(5), None)
    with pytest.raises(SimCSELabError, match="3 labels for 30"):
        viz.similarity_heatmap(cloud, ["a", "b", "c"])
    with pytest.raises(SimCSELabError, match="NaN"):
        viz.sphere_figure(np.full((3, 4), np.nan))
    with pytest.raises(SimCSELabError, match="valid projections are: pca, umap"):
        viz.sphere_figure(cloud, method="tsne")


def test_subsampling_keeps_order_and_says_so():
    x = np.random.default_rng(1).normal(size=(3500, 4))
    fig = viz.map_figure(x, [str(i) for i in range(3500)])
    rows = np.asarray(fig.data[0].customdata)
    assert rows.size == viz.MAX_POINTS and np.all(np.diff(rows) > 0)
    assert "showing a random 3,000 of 3,500 points" in fig.layout.title.text
    small = viz.map_figure(x[:100])
    assert "showing" not in small.layout.title.text
    heat = viz.similarity_heatmap(x[:200])
    assert np.asarray(heat.data[0].z).shape == (viz.MAX_HEATMAP_ROWS,) * 2 and "of 200" in heat.layout.title.text


def test_map_highlights_index_the_full_corpus(cloud):
    fig = viz.map_figure(cloud, highlight=[3, 5], selected=7)
    coords = viz.project(cloud, 2, "pca", center=True)
    near, chosen = fig.data[-2], fig.data[-1]
    np.testing.assert_allclose(np.column_stack([near.x, near.y]), coords[[3, 5]])
    np.testing.assert_allclose([chosen.x[0], chosen.y[0]], coords[7])


def test_spectrum_matches_numpy_svd(cloud):
    fig = viz.spectrum_figure({"model": cloud, "given": np.array([1.0, 0.5, 0.1])})
    s = np.linalg.svd(cloud, compute_uv=False)
    np.testing.assert_allclose(np.asarray(fig.data[0].y), s / s[0], atol=1e-12)
    assert list(fig.data[1].y) == [1.0, 0.5, 0.1] and list(fig.data[1].x) == [1, 2, 3]
    assert fig.layout.yaxis.type == "log"
    assert viz.spectrum_figure({"m": cloud}, log_y=False).layout.yaxis.type != "log"
    with pytest.raises(SimCSELabError, match="spectrum_figure: 'bad' must be .N, D. embeddings or a 1-D spectrum; got shape .2, 2, 2."):
        viz.spectrum_figure({"bad": np.ones((2, 2, 2))})
    with pytest.raises(SimCSELabError, match="cosine_histogram: 'bad' must be .N, D. embeddings or 1-D cosines"):
        viz.cosine_histogram({"fine": cloud, "bad": np.ones((2, 2, 2))})
    for figure in (viz.spectrum_figure, viz.cosine_histogram):
        with pytest.raises(SimCSELabError, match=f"{figure.__name__} needs at least one model"):
            figure({})


def test_gold_bin_figure_groups_by_gold_bin():
    gold = np.array([0.2, 0.9, 1.5, 3.3, 4.0, 5.0, 4.6])
    cosines = np.array([0.1, 0.2, 0.3, 0.6, 0.8, 0.95, 0.9])
    fig = viz.gold_bin_figure(cosines, gold)
    violin = fig.data[0]
    by_bin = {}
    for label, value in zip(violin.x, violin.y):
        by_bin.setdefault(label, []).append(value)
    assert by_bin == {"0–1": [0.1, 0.2], "1–2": [0.3], "3–4": [0.6], "4–5": [0.8, 0.95, 0.9]}
    assert viz.gold_bin_figure({"a": cosines, "b": cosines}, gold, kind="box").data[1].type == "box"


def test_alignment_uniformity_points_and_trajectories():
    history = [{"step": 0, "loss": 3.0}, {"step": 10, "alignment": 0.1, "uniformity": -1.0},
               {"step": 20, "alignment": 0.2, "uniformity": -2.5}]
    fig = viz.alignment_uniformity_figure([{"name": "bert", "alignment": 0.15, "uniformity": -1.2, "stsb": 50.0},
                                           {"name": "simcse", "alignment": 0.22, "uniformity": -2.6, "stsb": 76.0}],
                                          color_by="stsb", trajectories={"run": history})
    path, models = fig.data
    assert list(path.x) == [-1.0, -2.5] and list(path.y) == [0.1, 0.2] and list(path.customdata) == [10, 20]
    assert list(models.text) == ["bert", "simcse"] and list(models.marker.color) == [50.0, 76.0]
    assert len(fig.layout.annotations) == 1  # the arrow on the last step
    fig = viz.alignment_uniformity_figure({"m": (0.3, -2.0)})
    assert (fig.data[0].y[0], fig.data[0].x[0]) == (0.3, -2.0)
    with pytest.raises(SimCSELabError, match="no value"):
        viz.alignment_uniformity_figure({"m": (0.3, -2.0)}, color_by={"other": 1.0})


def test_training_curves_use_only_records_with_each_key():
    history = [{"step": 1, "loss": 2.0, "lr": 1e-4}, {"step": 2, "loss": 1.5},
               {"step": 2, "stsb_dev": 60.0, "alignment": 0.3, "uniformity": -2.0, "avg_cosine": 0.2}]
    fig = viz.training_curves(history)
    assert [t.name for t in fig.data] == ["loss", "stsb_dev", "alignment", "uniformity"]
    assert list(fig.data[0].x) == [1, 2] and list(fig.data[0].y) == [2.0, 1.5]
    assert list(fig.data[1].x) == [2] and list(fig.data[1].y) == [60.0]
    assert len(viz.training_curves([]).data) == 4  # empty history still has its four traces


def test_cosine_histogram_from_cosines_and_embeddings(cloud):
    fig = viz.cosine_histogram({"given": np.array([0.5, 0.7]), "drawn": cloud}, num_pairs=100)
    assert fig.data[0].name == "given (mean 0.60)"
    drawn = np.asarray(fig.data[1].x)
    assert drawn.shape == (100,) and np.all(np.abs(drawn) <= 1) and drawn.std() > 0
    # every drawn cosine is a real off-diagonal entry of the cosine matrix
    off_diagonal = numpy_cosine(cloud)[~np.eye(30, dtype=bool)]
    assert np.all(np.min(np.abs(drawn[:, None] - off_diagonal[None, :]), axis=1) < 1e-12)


def test_training_curves_mark_the_step_zero_reference_and_log_the_loss():
    history = [{"step": 0, "stsb_dev": 66.8, "alignment": 0.2, "uniformity": -2.0},
               {"step": 10, "loss": 0.5}, {"step": 20, "loss": 0.01, "stsb_dev": 63.0, "alignment": 0.3, "uniformity": -3.0}]
    figure = viz.training_curves(history)
    lines = sorted(shape.y0 for shape in figure.layout.shapes)
    assert lines == sorted([66.8, 0.2, -2.0])  # one per evaluation panel, at its step-0 value; none on the loss panel
    assert figure.layout.yaxis.type == "log" and list(figure.data[1].x) == [0, 20]
    assert viz.training_curves(history[1:]).layout.shapes == ()  # no step-0 record, no reference


def test_ablation_baseline_is_a_bar_and_a_line_and_slope_chart_keeps_gaps():
    figure = viz.ablation_figure({"ours": {"a": 60.0, "b": 61.0}}, baseline=("raw encoder", 66.8))
    assert list(figure.data[0].x) == ["raw encoder"] and figure.data[0].y[0] == 66.8
    assert [shape.y0 for shape in figure.layout.shapes] == [66.8]
    slope = viz.slope_chart({"paper": [56.7, 76.25, 81.57], "ours": [54.4, None, 60.0]}, ["raw", "unsup", "sup"])
    assert np.isnan(slope.data[1].y[1]) and slope.data[0].y[2] == 81.57
    with pytest.raises(SimCSELabError):
        viz.slope_chart({"x": [1.0]}, ["raw", "sup"])


def test_projection_share_is_the_top_singular_mass_and_the_sphere_states_it():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 8))
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = np.linalg.svd(unit, compute_uv=False)
    assert viz.projection_share(x, 3) == pytest.approx((s[:3] ** 2).sum() / (s ** 2).sum())
    assert viz.projection_share(x[:, :3], 3) == pytest.approx(1.0)
    title = viz.sphere_figure(x, [str(i) for i in range(50)]).layout.title.text
    assert f"keep {viz.projection_share(x, 3):.0%}" in title


def test_projection_share_is_what_the_sphere_projection_keeps(cloud):
    kept = (viz.project(cloud, 3, "pca") ** 2).sum(1).mean()  # each unit row keeps |its top-3 coordinates|^2
    assert viz.projection_share(cloud, 3) == pytest.approx(kept, rel=1e-9)
    assert viz.projection_share(cloud, cloud.shape[1]) == pytest.approx(1.0) and 0 < viz.projection_share(cloud, 1) < viz.projection_share(cloud, 3)
