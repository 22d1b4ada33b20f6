"""The course runner's pieces, and the small library helpers the notebooks rely on (fast, no kernel)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from simcse_lab.commands import course
from simcse_lab.apps import viz
from simcse_lab.errors import SimCSELabError
from simcse_lab.evaluate import evaluate_sts
from simcse_lab.data import load_sts
from simcse_lab.data.nli import load_nli_pairs, write_nli_csv


def test_notebook_selection_by_name_stem_or_number():
    assert [p.name for p in course.notebook_paths(["02"])] == ["02_unsupervised_simcse.ipynb"]
    assert [p.name for p in course.notebook_paths(["03_supervised_simcse", "01_anisotropy.ipynb"])] == [
        "03_supervised_simcse.ipynb", "01_anisotropy.ipynb"]
    assert [p.name for p in course.notebook_paths()] == list(course.NOTEBOOKS)
    with pytest.raises(SimCSELabError, match="01_anisotropy.ipynb"):
        course.notebook_paths(["99_nothing"])


def test_unknown_mode_and_figure_format_fail_before_running(tmp_path):
    with pytest.raises(SimCSELabError, match="smoke"):
        course.run_course(tmp_path, mode="fast")
    with pytest.raises(SimCSELabError, match="png"):
        course.run_course(tmp_path, mode="smoke", figures="gif")
    assert not any(tmp_path.iterdir())


def test_environment_sets_exactly_one_mode(tmp_path, monkeypatch):
    monkeypatch.setenv("SIMCSE_LAB_QUICK", "1")
    smoke = course.course_environment("smoke", tmp_path)
    assert smoke["SIMCSE_LAB_SMOKE"] == "1" and "SIMCSE_LAB_QUICK" not in smoke
    full = course.course_environment("full", tmp_path)
    assert "SIMCSE_LAB_SMOKE" not in full and "SIMCSE_LAB_QUICK" not in full
    assert full["SIMCSE_LAB_OUTPUT"] == str(tmp_path / "outputs")


def test_figure_names_are_numbered_slugs():
    figure = viz.message_figure("x").update_layout(title_text="Cosine by gold bin<br><sup>pairs per bin: 3</sup>")
    assert course.figure_name(3, figure) == "03-cosine-by-gold-bin"


def test_evaluate_max_pairs_scores_the_first_pairs_like_a_hand_computation(data_dir):
    rng = np.random.default_rng(0)
    vectors: dict[str, np.ndarray] = {}

    def encode(sentences):
        return np.stack([vectors.setdefault(s, rng.normal(size=8)) for s in sentences])

    result = evaluate_sts(encode, tasks=("stsb",), split="dev", data_dir=data_dir, max_pairs=50)
    pairs = load_sts("stsb", "dev", data_dir)[:50]
    cosine = [vectors[a] @ vectors[b] / np.linalg.norm(vectors[a]) / np.linalg.norm(vectors[b]) for a, b, _ in pairs]
    expected = spearmanr(cosine, [g for _, _, g in pairs]).correlation * 100
    assert result["stsb"] == pytest.approx(expected, abs=1e-9)


def test_write_nli_csv_round_trips(tmp_path):
    pairs = [("A man sleeps.", "A person rests.", 0), ("A, b \"quoted\"", "c", 2), ("x", "y", 1)]
    path = write_nli_csv(pairs, tmp_path / "sub" / "pairs.csv")
    assert path.read_text().splitlines()[0] == "sent0,sent1,label"
    assert load_nli_pairs(path) == pairs


def test_ablation_figure_leaves_missing_settings_empty():
    figure = viz.ablation_figure({"paper": {"a": 1.0, "b": 2.0}, "ours": {"b": 0.5}})
    assert list(figure.data[0].x) == ["a", "b"]
    ours = figure.data[1]
    assert np.isnan(ours.y[0]) and ours.y[1] == 0.5
    with pytest.raises(SimCSELabError):
        viz.ablation_figure({})


def test_measured_times_line_reads_the_recorded_runs(tmp_path):
    for name in course.NOTEBOOKS:
        (tmp_path / name).write_text("{}")
    assert "not measured yet" in course.measured_times("02", tmp_path / "timings.json")
    runs = [course.NotebookRun("02_unsupervised_simcse.ipynb", 75.4, tmp_path / "x"), course.NotebookRun("01_anisotropy.ipynb", 400, tmp_path / "y")]
    course.record(runs, "smoke", tmp_path)
    course.record(runs[:1], "quick", tmp_path)
    line = course.measured_times("02", tmp_path / "timings.json")
    assert "smoke mode 75 s" in line and "quick mode 75 s" in line and "CPU cores" in line
    assert "smoke mode 7 min" in course.measured_times("01_anisotropy", tmp_path / "timings.json")


@pytest.mark.parametrize("kaleido_fails", ["once", "always"])
def test_a_figure_kaleido_skipped_is_retried_then_written_as_html(tmp_path, monkeypatch, capsys, kaleido_fails):
    """kaleido returns a failed figure instead of raising it: the file is just missing after the call."""
    import plotly.graph_objects as go
    import plotly.io as pio

    figures = [go.Figure(layout_title_text=f"figure {k}") for k in range(3)]
    monkeypatch.setattr(course, "notebook_figures", lambda notebook: list(figures))
    calls = []

    def write_images(figs, paths, scale=1):
        calls.append(len(paths))
        for fig, path in zip(figs, paths):
            if fig is figures[1] and (kaleido_fails == "always" or len(calls) == 1):
                continue  # the one kaleido dropped
            path.write_bytes(b"image")

    monkeypatch.setattr(pio, "write_images", write_images)
    paths, kind = course.export_figures(None, tmp_path, ("png",))
    assert kind == "png" and calls == [3, 1] and all(path.is_file() for path in paths)
    assert [p.suffix for p in paths] == ([".png"] * 3 if kaleido_fails == "once" else [".png", ".html", ".png"])
    said = capsys.readouterr().out
    assert ("kaleido wrote no png twice; wrote 02-figure-1.html instead" in said) == (kaleido_fails == "always")
