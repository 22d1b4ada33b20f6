"""Figures of an embedding space: pure builders that return `plotly.graph_objects.Figure`.

Every function takes embeddings (torch tensor or numpy array, (N, D)) or numbers derived from them
and returns a new figure; nothing is displayed or cached here. `simcse_lab.widgets` wraps these in
interactive apps. What the figures show, and where it comes from:

- `sphere_figure`: sentences on the unit sphere. Contrastive learning spreads embeddings over the
  hypersphere (Wang & Isola, 2020); raw BERT packs them into a narrow cone (Ethayarajh, 2019). The
  default projection is *uncentred* so that a cone stays visible as a cap on the sphere.
- `similarity_heatmap`: the cosine matrix of a few sentences.
- `spectrum_figure`: normalised singular values (SimCSE, Appendix F).
- `gold_bin_figure`: cosine distribution per gold-score bin of STS pairs (SimCSE, Appendix G).
- `alignment_uniformity_figure`: the l_align / l_uniform plane (SimCSE, Figures 2 and 3).
- `training_curves`: loss, STS-B dev, alignment and uniformity against the training step.
- `cosine_histogram`: cosines of random pairs, the anisotropy picture.
- `replay_figure`: a training run's geometry snapshots, the sphere at each step beside the
  alignment/uniformity trajectory (SimCSE, Figure 2), under one step slider.

Scatter-type figures draw at most `MAX_POINTS` points (a fixed-seed random subset, in the original
order) and say so in the title, so a browser never has to lay out 100k markers.
"""

from __future__ import annotations

import textwrap
from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .. import geometry
from ..errors import SimCSELabError, unknown_choice

__all__ = [
    "MAX_POINTS", "MAX_HEATMAP_ROWS", "PROJECTIONS", "project", "subsample", "shorten", "message_figure",
    "sphere_figure", "map_figure", "similarity_heatmap", "spectrum_figure", "gold_bin_figure",
    "alignment_uniformity_figure", "training_curves", "cosine_histogram", "ablation_figure", "projection_share",
    "replay_figure",
]

MAX_POINTS = 3000  # scatter points drawn before subsampling kicks in
MAX_HEATMAP_ROWS = 150  # an N x N heatmap with readable labels stops being useful well before 3000
PROJECTIONS = ("pca", "umap")
QUALITATIVE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
               "#bcbd22", "#17becf")
SPECTRUM_FLOOR = 1e-12  # relative singular values below this are round-off (the matrix is rank deficient)
DIVERGING = "RdBu_r"  # blue = -1, white = 0, red = +1
FONT = dict(family="Inter, Helvetica, Arial, sans-serif", size=13)


# ---------------------------------------------------------------------- helpers
def as_numpy(embeddings, name: str = "embeddings") -> np.ndarray:
    """(N, D) float64 numpy array, with SimCSELabError for bad shapes or NaN (via geometry.as_float64)."""
    return geometry.as_float64(embeddings, name).numpy()


def check_labels(labels, n: int, name: str = "labels") -> list[str]:
    """n strings: the given labels, or '#0', '#1', ... when labels is None."""
    if labels is None:
        return [f"#{i}" for i in range(n)]
    labels = [str(label) for label in labels]
    if len(labels) != n:
        raise SimCSELabError(f"got {len(labels)} {name} for {n} embeddings; pass one per row")
    return labels


def subsample(n: int, max_points: int = MAX_POINTS, seed: int = 0) -> tuple[np.ndarray, str | None]:
    """Indices of at most max_points of n items (sorted, so order is kept) and a notice, or None."""
    if n <= max_points:
        return np.arange(n), None
    keep = np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))
    return keep, f"showing a random {max_points:,} of {n:,} points"


def shorten(text: str, width: int = 40, line: int | None = None) -> str:
    """Cut text to `width` characters with an ellipsis; optionally wrap it at `line` with <br>."""
    text = " ".join(str(text).split())
    if len(text) > width:
        text = text[: width - 1].rstrip() + "…"
    if line:
        text = "<br>".join(textwrap.wrap(text, line)) or text
    return text


def hover_text(text: str, line: int = 60) -> str:
    return "<br>".join(textwrap.wrap(" ".join(str(text).split()), line)) or "(empty)"


def with_notice(title: str | None, notice: str | None) -> str:
    if not notice:
        return title or ""
    return f"{title}<br><sup>{notice}</sup>" if title else f"<sup>{notice}</sup>"


def base_layout(fig: go.Figure, title: str | None = None, **kwargs) -> go.Figure:
    fig.update_layout(title=dict(text=title or "", x=0.02, xanchor="left"), font=FONT, template="plotly_white",
                      margin=dict(l=50, r=20, t=70 if title else 30, b=50), **kwargs)
    return fig


def message_figure(text: str, height: int = 220) -> go.Figure:
    """An empty figure that shows one message (for 'nothing to plot yet')."""
    fig = go.Figure()
    fig.add_annotation(text=text, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font=dict(size=15))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return base_layout(fig, height=height)


# ---------------------------------------------------------------------- projections
def project(embeddings, dim: int = 3, method: str = "pca", center: bool = False, seed: int = 0) -> np.ndarray:
    """(N, D) -> (N, dim) coordinates for plotting.

    pca: the top-`dim` right singular vectors of the L2-normalised embeddings. Uncentred by default
    (center=False), so a shared dominant direction (anisotropy) is kept and shows as a cluster.
    umap: UMAP with cosine input metric (McInnes et al., 2018). For dim=3 the output lives on a
    sphere directly (output_metric='haversine'); for dim=2 it is the usual plane. Fewer than 5
    points fall back to PCA, which needs no neighbourhood graph.
    """
    if method not in PROJECTIONS:
        raise unknown_choice("projection", method, PROJECTIONS)
    x = geometry.l2_normalize(geometry.as_float64(embeddings)).numpy()
    n = x.shape[0]
    if n == 0:
        return np.zeros((0, dim))
    if method == "umap" and n >= 5:
        return umap_projection(x, dim, seed)
    if center:
        x = x - x.mean(0, keepdims=True)
    _, _, vt = np.linalg.svd(x, full_matrices=False)  # vt: (min(N, D), D)
    coords = x @ vt[:dim].T  # (N, <=dim)
    # SVD signs are arbitrary; fix them so the mass lies on the positive side of each axis.
    coords *= np.where(coords.sum(0) < 0, -1.0, 1.0)
    if coords.shape[1] < dim:  # fewer points or dimensions than axes: pad with zeros
        coords = np.hstack([coords, np.zeros((n, dim - coords.shape[1]))])
    return coords


def projection_share(embeddings, dim: int = 3, center: bool = False) -> float:
    """How much of the L2-normalised embeddings `project(..., method="pca")` keeps: the share of their squared
    norm (uncentred; variance when centred) in the top-`dim` singular directions. A sphere drawn from 10% of it
    hides most of the geometry; say so beside the picture."""
    x = geometry.l2_normalize(geometry.as_float64(embeddings)).numpy()
    if center:
        x = x - x.mean(0, keepdims=True)
    s2 = np.linalg.svd(x, compute_uv=False) ** 2
    return float(s2[:dim].sum() / s2.sum()) if s2.sum() > 0 else 0.0


def umap_projection(x: np.ndarray, dim: int, seed: int) -> np.ndarray:
    import umap  # noqa: PLC0415  (slow import, optional dependency)

    n = x.shape[0]
    options = dict(n_neighbors=max(2, min(15, n - 1)), metric="cosine", random_state=seed,
                   init="spectral" if n > 50 else "random")
    if dim == 3:
        theta_phi = umap.UMAP(n_components=2, output_metric="haversine", **options).fit_transform(x)  # (N, 2)
        theta, phi = theta_phi[:, 0], theta_phi[:, 1]
        # umap's haversine convention (see its "embedding to non-Euclidean spaces" docs).
        return np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], axis=1)
    return umap.UMAP(n_components=dim, **options).fit_transform(x).astype(np.float64)


def to_sphere(points: np.ndarray) -> np.ndarray:
    """Rows scaled to unit norm; an all-zero row (no signal in the top axes) goes to the north pole."""
    points = np.asarray(points, dtype=np.float64)
    norms = np.linalg.norm(points, axis=1, keepdims=True)
    out = points / np.where(norms > 1e-12, norms, 1.0)
    out[norms[:, 0] <= 1e-12] = (0.0, 0.0, 1.0)
    return out


def sphere_surface(resolution: int = 40) -> go.Surface:
    u, v = np.meshgrid(np.linspace(0, 2 * np.pi, resolution), np.linspace(0, np.pi, resolution // 2))
    return go.Surface(x=np.cos(u) * np.sin(v), y=np.sin(u) * np.sin(v), z=np.cos(v), opacity=0.12,
                      colorscale=[[0, "#9aa5b1"], [1, "#9aa5b1"]], showscale=False, hoverinfo="skip",
                      name="unit sphere", lighting=dict(ambient=1.0, diffuse=0.0, specular=0.0))


def group_traces(coords: np.ndarray, labels: list[str], rows: np.ndarray, groups, values, make_trace, marker: dict) -> list:
    """One trace per group (categorical legend), or one trace with a colour bar for `values`.

    rows: the original row index of each point; it becomes the trace's customdata, so a click
    handler can map a clicked point back to its sentence.
    """
    if values is not None:
        values = np.asarray(values, dtype=np.float64)
        return [make_trace(coords, labels, rows, name="", marker=dict(marker, color=values, colorscale="Viridis", showscale=True,
                                                                       colorbar=dict(thickness=12, len=0.6)))]
    if groups is None:
        return [make_trace(coords, labels, rows, name="sentences", marker=dict(marker, color=QUALITATIVE[0]))]
    groups = [str(g) for g in groups]
    traces = []
    for k, group in enumerate(dict.fromkeys(groups)):  # first-seen order
        idx = [i for i, g in enumerate(groups) if g == group]
        traces.append(make_trace(coords[idx], [labels[i] for i in idx], rows[idx], name=group,
                                 marker=dict(marker, color=QUALITATIVE[k % len(QUALITATIVE)])))
    return traces


def prepare_points(embeddings, labels, groups, values, coords, dim, method, max_points):
    """Validate, subsample and project; returns (coords, labels, rows, groups, values, notice)."""
    x = as_numpy(embeddings)
    n = x.shape[0]
    labels = check_labels(labels, n)
    if groups is not None and len(groups) != n:
        raise SimCSELabError(f"got {len(groups)} groups for {n} embeddings; pass one per row")
    if values is not None and len(values) != n:
        raise SimCSELabError(f"got {len(values)} colour values for {n} embeddings; pass one per row")
    if coords is not None:
        coords = np.asarray(coords, dtype=np.float64)
        if coords.shape != (n, dim):
            raise SimCSELabError(f"coords must have shape ({n}, {dim}); got {coords.shape}")
    keep, notice = subsample(n, max_points)
    x = x[keep]
    coords = project(x, dim, method) if coords is None else coords[keep]
    labels = [labels[i] for i in keep]
    groups = None if groups is None else [groups[i] for i in keep]
    values = None if values is None else np.asarray(values, dtype=np.float64)[keep]
    return coords, labels, keep, groups, values, notice


# ---------------------------------------------------------------------- figures
def sphere_figure(embeddings, labels: Sequence[str] | None = None, groups: Sequence | None = None, method: str = "pca",
                  values: Sequence[float] | None = None, coords=None, title: str | None = None,
                  max_points: int = MAX_POINTS, height: int = 520) -> go.Figure:
    """Embeddings projected to 3-D (see `project`) and scaled onto the unit sphere.

    groups: one category per row (one colour and legend entry each); values: one number per row for
    a continuous colour scale instead. coords: precomputed (N, 3) projection (skips `project`).
    Hovering a point shows its label (the sentence).
    """
    share = projection_share(embeddings) if method == "pca" and coords is None else None
    coords, labels, rows, groups, values, notice = prepare_points(embeddings, labels, groups, values, coords, 3, method, max_points)
    points = to_sphere(coords)
    if share is not None:  # the picture is a renormalised 3-D shadow of a D-dimensional cloud: say how much it keeps
        notice = "; ".join(filter(None, [notice, f"the 3 PCA axes keep {share:.0%} of the squared norm, then each point is rescaled onto the sphere"]))

    def make_trace(p, text, row, name, marker):
        return go.Scatter3d(x=p[:, 0], y=p[:, 1], z=p[:, 2], mode="markers", name=name, marker=marker, customdata=row,
                            text=[hover_text(t) for t in text], hovertemplate="%{text}<extra>%{fullData.name}</extra>")

    fig = go.Figure([sphere_surface()] + group_traces(points, labels, rows, groups, values, make_trace,
                                                      dict(size=5, opacity=0.9, line=dict(width=0.5, color="white"))))
    axis = dict(range=[-1.05, 1.05], visible=False)
    base_layout(fig, with_notice(title or f"Sentences on the unit sphere ({method.upper()})", notice), height=height,
                scene=dict(xaxis=axis, yaxis=axis, zaxis=axis, aspectmode="cube",
                           camera=dict(eye=dict(x=1.15, y=1.15, z=0.75))),
                legend=dict(itemsizing="constant", yanchor="top", y=0.98, x=0.01, bgcolor="rgba(255,255,255,0.7)"))
    fig.update_layout(margin=dict(l=0, r=0, b=0))
    return fig


def map_figure(embeddings, labels: Sequence[str] | None = None, groups: Sequence | None = None, method: str = "pca",
               values: Sequence[float] | None = None, coords=None, highlight: Sequence[int] = (), selected: int | None = None,
               title: str | None = None, max_points: int = MAX_POINTS, height: int = 560) -> go.Figure:
    """A 2-D map of the embeddings (PCA or UMAP) with hover text.

    highlight: row indices drawn as large rings on top (for example the neighbours of a selection);
    selected: one row drawn as a star. Both index the full embeddings, not the subsample.
    """
    # Centred: on a flat map we want neighbourhoods, not the shared direction the sphere shows.
    all_coords = project(embeddings, 2, method, center=True) if coords is None else np.asarray(coords, dtype=np.float64)
    all_labels = check_labels(labels, all_coords.shape[0])
    coords, labels, rows, groups, values, notice = prepare_points(embeddings, all_labels, groups, values, all_coords, 2, method, max_points)

    def make_trace(p, text, row, name, marker):
        return go.Scattergl(x=p[:, 0], y=p[:, 1], mode="markers", name=name, marker=marker, customdata=row,
                            text=[hover_text(t) for t in text], hovertemplate="%{text}<extra>%{fullData.name}</extra>")

    traces = group_traces(coords, labels, rows, groups, values, make_trace, dict(size=6, opacity=0.75))
    highlight = [int(i) for i in highlight]
    traces.append(go.Scatter(x=all_coords[highlight, 0], y=all_coords[highlight, 1], mode="markers", name="neighbours",
                             marker=dict(size=13, color="rgba(0,0,0,0)", line=dict(width=2, color="#d62728")),
                             text=[hover_text(all_labels[i]) for i in highlight],
                             hovertemplate="%{text}<extra>neighbour</extra>", visible=bool(highlight) or "legendonly"))
    chosen = [] if selected is None else [int(selected)]
    traces.append(go.Scatter(x=all_coords[chosen, 0], y=all_coords[chosen, 1], mode="markers", name="selected",
                             marker=dict(size=18, symbol="star", color="#ffd700", line=dict(width=1.5, color="black")),
                             text=[hover_text(all_labels[i]) for i in chosen],
                             hovertemplate="%{text}<extra>selected</extra>", visible=bool(chosen) or "legendonly"))
    fig = go.Figure(traces)
    axis_name = "UMAP" if method == "umap" else "PC"
    base_layout(fig, with_notice(title or f"Corpus map ({method.upper()})", notice), height=height,
                xaxis_title=f"{axis_name} 1", yaxis_title=f"{axis_name} 2", hovermode="closest",
                legend=dict(itemsizing="constant"))
    return fig


def similarity_heatmap(embeddings, labels: Sequence[str] | None = None, title: str | None = None, label_width: int = 40,
                       annotate: bool | None = None, max_rows: int = MAX_HEATMAP_ROWS, x_labels: bool = True,
                       height: int | None = None, square: bool = True) -> go.Figure:
    """The cosine matrix as a heatmap: row i / column j is cos(e_i, e_j), colour range fixed to [-1, 1].

    Axes are integer positions labelled with the shortened sentences, in input order (duplicates
    stay separate rows); hovering shows both sentences in full. Cells show their values when there
    are at most 12 sentences (annotate=None). x_labels=False leaves the columns unlabelled (the
    matrix is symmetric, the rows name them) and square=False lets cells be taller than wide; both
    suit narrow layouts.
    """
    x = as_numpy(embeddings)
    labels = check_labels(labels, x.shape[0])
    keep, notice = subsample(x.shape[0], max_rows)
    x, labels = x[keep], [labels[i] for i in keep]
    n = x.shape[0]
    z = geometry.cosine_matrix(x).numpy()  # (n, n)
    ticks = [shorten(label, label_width) for label in labels]
    full = [hover_text(label, 50) for label in labels]
    customdata = np.array([[[full[i], full[j]] for j in range(n)] for i in range(n)], dtype=object).reshape(n, n, 2)
    annotate = n <= 12 if annotate is None else annotate
    fig = go.Figure(go.Heatmap(
        z=z, x=list(range(n)), y=list(range(n)), zmin=-1.0, zmax=1.0, zmid=0.0, colorscale=DIVERGING,
        customdata=customdata, hovertemplate="%{customdata[0]}<br>vs<br>%{customdata[1]}<br><b>cos = %{z:.3f}</b><extra></extra>",
        texttemplate="%{z:.2f}" if annotate else None, textfont=dict(size=11),
        colorbar=dict(title=dict(text="cosine"), thickness=12, tickvals=[-1, -0.5, 0, 0.5, 1]),
    ))
    height = height or min(900, 220 + 26 * n) + (120 if x_labels else 0)
    base_layout(fig, with_notice(title or "Cosine similarity", notice), height=height)
    fig.update_xaxes(tickmode="array", tickvals=list(range(n)), ticktext=ticks, tickangle=-40, showgrid=False,
                     automargin=True, constrain="domain", showticklabels=x_labels)
    fig.update_yaxes(tickmode="array", tickvals=list(range(n)), ticktext=ticks, autorange="reversed", showgrid=False,
                     automargin=True, constrain="domain", **({"scaleanchor": "x"} if square else {}))
    return fig


def per_model_arrays(by_model: Mapping[str, object], figure: str, computed: str):
    """(colour index, name, array) per model for a figure that takes (N, D) embeddings or an already computed
    1-D value per model; anything else is refused in one line naming the model."""
    if not by_model:
        raise SimCSELabError(f"{figure} needs at least one model: {{name: embeddings or {computed}}}")
    for k, (name, value) in enumerate(by_model.items()):
        array = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value, dtype=np.float64)
        if array.ndim not in (1, 2):
            raise SimCSELabError(f"{figure}: {name!r} must be (N, D) embeddings or {computed}; got shape {array.shape}")
        yield k, name, array


def spectrum_figure(spectra: Mapping[str, object], log_y: bool = True, center: bool = False, top: int | None = None,
                    title: str | None = None) -> go.Figure:
    """Normalised singular values per model (SimCSE, Appendix F).

    spectra: {model name: (N, D) embeddings, or an already computed 1-D spectrum}. Embeddings go
    through `geometry.singular_spectrum` (uncentred unless center=True). A steep fall-off means a
    few directions dominate; contrastive training flattens the curve.
    """
    fig = go.Figure()
    for k, name, array in per_model_arrays(spectra, "spectrum_figure", "a 1-D spectrum"):
        s = geometry.singular_spectrum(array, center=center).numpy() if array.ndim == 2 else array.astype(np.float64)
        if top is not None:
            s = s[:top]
        if log_y:  # values below float64 round-off are zeros (rank deficiency), not a spectrum: leave gaps
            s = np.where(s > SPECTRUM_FLOOR, s, np.nan)
        fig.add_trace(go.Scatter(x=np.arange(1, s.size + 1), y=s, mode="lines", name=str(name),
                                 line=dict(width=2.5, color=QUALITATIVE[k % len(QUALITATIVE)]),
                                 hovertemplate="index %{x}: %{y:.3g}<extra>%{fullData.name}</extra>"))
    base_layout(fig, title or "Singular value spectrum (normalised)", height=380,
                xaxis_title="index (largest first)", yaxis_title="singular value / largest",
                legend=dict(yanchor="bottom", y=0.02, xanchor="left", x=0.02, bgcolor="rgba(255,255,255,0.8)"))
    if log_y:
        shown = np.concatenate([np.asarray(t.y, dtype=np.float64) for t in fig.data])
        shown = shown[np.isfinite(shown) & (shown > 0)]
        decades = np.log10(shown.max() / shown.min()) if shown.size else 0.0
        # a label per power of ten once the curve spans one; plotly's default adds a label to each minor tick
        fig.update_yaxes(type="log", exponentformat="power", **({"dtick": 1} if decades >= 1 else {}))
    return fig


def gold_bin_figure(cosines, gold, edges: Sequence[float] = (0, 1, 2, 3, 4, 5.0001), kind: str = "violin",
                    title: str | None = None) -> go.Figure:
    """Cosine distribution of STS pairs grouped by gold score (SimCSE, Appendix G).

    cosines: 1-D pair cosines, or {model name: 1-D cosines} to compare models bin by bin (all
    aligned with `gold`). kind: 'violin' or 'box'. Well-separated bins = the embedding ranks pairs
    like people do; all bins squeezed near 1 = anisotropy.
    """
    if kind not in ("violin", "box"):
        raise unknown_choice("kind", kind, ("violin", "box"))
    by_model = dict(cosines) if isinstance(cosines, Mapping) else {"cosine": cosines}
    fig = go.Figure()
    for k, (name, values) in enumerate(by_model.items()):
        bins = geometry.cosine_by_gold_bin(np.asarray(values, dtype=np.float64), gold, edges)
        x, y = [], []
        for b in bins:
            label = f"{b.low:g}–{b.high:g}"
            x += [label] * b.count
            y += b.cosines.tolist()
        trace = go.Violin if kind == "violin" else go.Box
        extra = dict(box_visible=True, meanline_visible=True, points=False, spanmode="hard") if kind == "violin" else dict(boxmean=True)
        fig.add_trace(trace(x=x, y=y, name=str(name), line=dict(color=QUALITATIVE[k % len(QUALITATIVE)]),
                            showlegend=len(by_model) > 1, **extra))
    counts = ", ".join(f"{b.low:g}–{b.high:g}: {b.count}" for b in bins)
    base_layout(fig, with_notice(title or "Cosine by gold-score bin", f"pairs per bin: {counts}"), height=420,
                xaxis_title="gold similarity score", yaxis_title="cosine similarity",
                **({"violinmode": "group"} if kind == "violin" else {"boxmode": "group"}))
    return fig


def alignment_uniformity_figure(points, color_by: str | Mapping[str, float] | None = None,
                                trajectories: Mapping[str, Sequence] | None = None, title: str | None = None,
                                color_title: str | None = None) -> go.Figure:
    """Models in the alignment/uniformity plane (SimCSE, Figures 2 and 3); lower-left is better.

    points: {name: (alignment, uniformity)} or a list of records {"name", "alignment", "uniformity", ...}.
    color_by: a record key (e.g. "stsb") or {name: value} for a colour scale, as in Figure 3;
    color_title names that scale (default: the key, or "value").
    trajectories: {name: [(alignment, uniformity), ...] or [history records]} drawn as lines with an
    arrow at the last point, as in Figure 2 (one point per evaluation step).
    x is l_uniform, y is l_align, as in the paper.
    """
    records = point_records(points)
    fig = go.Figure()
    for k, (name, path) in enumerate((trajectories or {}).items()):
        align, unif, steps = trajectory_arrays(path)
        if align.size == 0:
            continue
        color = QUALITATIVE[k % len(QUALITATIVE)]
        fig.add_trace(go.Scatter(x=unif, y=align, mode="lines+markers", name=str(name), line=dict(color=color, width=2),
                                 marker=dict(size=6), customdata=steps,
                                 hovertemplate="step %{customdata}<br>uniformity %{x:.3f}<br>alignment %{y:.3f}<extra>%{fullData.name}</extra>"))
        if align.size >= 2:
            fig.add_annotation(x=unif[-1], y=align[-1], ax=unif[-2], ay=align[-2], xref="x", yref="y", axref="x", ayref="y",
                               showarrow=True, arrowhead=3, arrowsize=1.5, arrowwidth=2, arrowcolor=color, text="")
    if records:
        names = [r["name"] for r in records]
        marker = dict(size=13, line=dict(width=1, color="black"))
        if color_by is not None:
            values = [color_by.get(n) if isinstance(color_by, Mapping) else r.get(color_by) for n, r in zip(names, records)]
            if any(v is None for v in values):
                missing = [n for n, v in zip(names, values) if v is None]
                raise SimCSELabError(f"color_by has no value for {missing}; give every point one")
            label = color_title or (color_by if isinstance(color_by, str) else "value")
            marker.update(color=values, colorscale="Viridis", showscale=True, colorbar=dict(title=dict(text=label), thickness=12))
        else:
            marker.update(color="#444")
        fig.add_trace(go.Scatter(x=[r["uniformity"] for r in records], y=[r["alignment"] for r in records],
                                 mode="markers+text", text=names, textposition=label_positions(records), name="models",
                                 marker=marker, showlegend=False,
                                 hovertemplate="%{text}<br>uniformity %{x:.3f}<br>alignment %{y:.3f}<extra></extra>"))
    if not fig.data:
        raise SimCSELabError("alignment_uniformity_figure needs points or trajectories to draw")
    base_layout(fig, title or "Alignment vs uniformity (lower is better for both)", height=460,
                xaxis_title="l_uniform", yaxis_title="l_align")
    return fig


def label_positions(records: list[dict]) -> list[str]:
    """Text above or below each point, alternating along uniformity, so neighbours' labels do not overlap."""
    order = sorted(range(len(records)), key=lambda i: (records[i]["uniformity"], records[i]["alignment"]))
    positions = [""] * len(records)
    for rank, i in enumerate(order):
        positions[i] = "top center" if rank % 2 == 0 else "bottom center"
    return positions


def point_records(points) -> list[dict]:
    if points is None:
        return []
    if isinstance(points, Mapping):
        out = []
        for name, value in points.items():
            if isinstance(value, Mapping):
                out.append({"name": str(name), **value})
            elif len(value) == 2:
                out.append({"name": str(name), "alignment": float(value[0]), "uniformity": float(value[1])})
            else:
                raise SimCSELabError(f"point {name!r} must be (alignment, uniformity); got {value!r}")
        return out
    out = []
    for i, record in enumerate(points):
        if not isinstance(record, Mapping) or "alignment" not in record or "uniformity" not in record:
            raise SimCSELabError(f"point {i} must be a dict with 'alignment' and 'uniformity'; got {record!r}")
        out.append({"name": str(record.get("name", i)), **{k: v for k, v in record.items() if k != "name"}})
    return out


def trajectory_arrays(path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(alignment, uniformity, step) arrays from [(a, u), ...] or [records]; records without both keys are skipped."""
    align, unif, steps = [], [], []
    for i, item in enumerate(path):
        if isinstance(item, Mapping):
            if "alignment" in item and "uniformity" in item:
                align.append(item["alignment"])
                unif.append(item["uniformity"])
                steps.append(item.get("step", i))
        else:
            align.append(item[0])
            unif.append(item[1])
            steps.append(i)
    return np.asarray(align, dtype=np.float64), np.asarray(unif, dtype=np.float64), np.asarray(steps)


TRAINING_PANELS = (("loss", "training loss"), ("stsb_dev", "STS-B dev (Spearman × 100)"),
                   ("alignment", "alignment (lower is better)"), ("uniformity", "uniformity (lower is better)"))


def training_curves(history: Sequence[Mapping], max_steps: int | None = None, title: str | None = None,
                    log_loss: bool = True) -> go.Figure:
    """2x2 panels of loss, STS-B dev, alignment and uniformity against the step.

    history: records like {"step": 100, "loss": 1.2, "stsb_dev": 61.2, ...}; a record contributes to
    each panel whose key it has (eval keys appear on eval steps only). Always four traces, in
    TRAINING_PANELS order, so a live widget can update them in place. A step-0 record (the raw
    encoder, `TrainConfig.eval_at_start`) also draws a dashed reference line on each evaluation panel:
    where training started. log_loss: the loss on a log scale (InfoNCE falls by orders of magnitude).
    """
    fig = make_subplots(rows=2, cols=2, subplot_titles=[label for _, label in TRAINING_PANELS],
                        horizontal_spacing=0.1, vertical_spacing=0.16)
    for k, (key, label) in enumerate(TRAINING_PANELS):
        steps, values = curve(history, key)
        fig.add_trace(go.Scatter(x=steps, y=values, name=key, mode="lines" if key == "loss" else "lines+markers",
                                 line=dict(color=QUALITATIVE[k], width=2), showlegend=False,
                                 hovertemplate="step %{x}: %{y:.4g}<extra>" + key + "</extra>"),
                      row=k // 2 + 1, col=k % 2 + 1)
    add_start_lines(fig, history)
    if log_loss:
        fig.update_yaxes(type="log", exponentformat="power", row=1, col=1)
    if max_steps:
        fig.update_xaxes(range=[0, max_steps])
    fig.update_xaxes(title_text="step", row=2)
    base_layout(fig, title or "Training", height=520)
    return fig


def add_start_lines(fig: go.Figure, history: Sequence[Mapping]) -> None:
    """Dashed lines at the step-0 values of the evaluation panels ("raw encoder"), if history has a step-0 record.
    Axes are named directly (x2, y2, ...), not by subplot row and column: a FigureWidget made from the figure has
    no subplot grid."""
    start = next((r for r in history if r.get("step") == 0), None)
    for k, (key, _) in enumerate(TRAINING_PANELS):
        if start is None or start.get(key) is None or key == "loss":
            continue
        suffix = str(k + 1) if k else ""
        fig.add_shape(type="line", xref=f"x{suffix} domain", yref=f"y{suffix}", x0=0, x1=1, y0=start[key], y1=start[key],
                      line=dict(color="#888", dash="dash", width=1))
        fig.add_annotation(xref=f"x{suffix} domain", yref=f"y{suffix}", x=1, y=start[key], xanchor="right", yanchor="top",
                           text=f"raw encoder {start[key]:.3g}", showarrow=False, font=dict(size=10, color="#666"))


def curve(history: Sequence[Mapping], key: str) -> tuple[list, list]:
    points = [(r.get("step", i), r[key]) for i, r in enumerate(history) if r.get(key) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def cosine_histogram(cosines_by_model: Mapping[str, object], num_pairs: int = 5000, bins: int = 60, seed: int = 0,
                     title: str | None = None) -> go.Figure:
    """Overlaid densities of random-pair cosines per model (anisotropy: a peak near 1 is bad).

    Values may be 1-D cosines, or (N, D) embeddings, from which `num_pairs` random pairs of distinct
    rows are drawn (geometry.random_pairs). The legend shows each model's mean cosine.
    """
    fig = go.Figure()
    for k, name, array in per_model_arrays(cosines_by_model, "cosine_histogram", "1-D cosines"):
        if array.ndim == 2:
            i, j = geometry.random_pairs(array.shape[0], num_pairs, seed)
            cos = geometry.pair_cosines(array[i.numpy()], array[j.numpy()]).numpy()
        else:
            cos = array.astype(np.float64)
        fig.add_trace(go.Histogram(x=cos, name=f"{name} (mean {cos.mean():.2f})", histnorm="probability density",
                                   xbins=dict(start=-1, end=1, size=2 / bins), opacity=0.55,
                                   marker_color=QUALITATIVE[k % len(QUALITATIVE)]))
    base_layout(fig, title or "Cosine similarity of random sentence pairs", height=380, barmode="overlay",
                xaxis_title="cosine", yaxis_title="density", legend=dict(yanchor="top", y=0.98, x=0.01))
    fig.update_xaxes(range=[-1, 1])
    return fig


def ablation_figure(results: Mapping[str, Mapping[str, float]], title: str | None = None,
                    yaxis_title: str = "STS-B dev (Spearman × 100)", baseline: tuple[str, float] | None = None) -> go.Figure:
    """Grouped bars: one group per setting, one colour per source, e.g.
    {"paper, BERT-base": {"p=0.1": 82.5, ...}, "ours": {"p=0.1": 61.0, ...}}. A setting a source
    lacks is left empty (no bar), never drawn as 0.

    baseline: (label, score), e.g. ("raw encoder", 66.8): a grey bar of its own at the left and a dashed line
    across the chart, so every setting can be read against where training started.
    """
    if not results:
        raise SimCSELabError("ablation_figure needs at least one source: {name: {setting: score}}")
    settings = list(dict.fromkeys(k for scores in results.values() for k in scores))
    fig = go.Figure()
    if baseline is not None:
        label, value = baseline
        fig.add_trace(go.Bar(x=[label], y=[value], name=label, marker_color="#9e9e9e", text=[f"{value:.1f}"],
                             textposition="outside", hovertemplate="%{x}: %{y:.2f}<extra></extra>"))
        fig.add_hline(y=value, line=dict(color="#777", dash="dash", width=1))
    for k, (name, scores) in enumerate(results.items()):
        values = [scores.get(s) for s in settings]
        fig.add_trace(go.Bar(x=settings, y=[np.nan if v is None else v for v in values], name=str(name),
                             marker_color=QUALITATIVE[k % len(QUALITATIVE)],
                             text=["" if v is None else f"{v:.1f}" for v in values], textposition="outside",
                             hovertemplate="%{x}: %{y:.2f}<extra>%{fullData.name}</extra>"))
    base_layout(fig, title or "Ablation", height=400, barmode="group", yaxis_title=yaxis_title,
                legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0.0))
    return fig


def slope_chart(series: Mapping[str, Sequence[float]], stages: Sequence[str], title: str | None = None,
                yaxis_title: str = "STS average (Spearman × 100)") -> go.Figure:
    """One line per source across the same stages, e.g. raw -> unsup. SimCSE -> sup. SimCSE for the paper's
    BERT-base and for this run: the slopes (what each stage adds) are comparable even where the levels are not.
    A missing value (None / NaN) leaves a gap."""
    if not series:
        raise SimCSELabError("slope_chart needs at least one series: {name: [value per stage]}")
    fig = go.Figure()
    for k, (name, values) in enumerate(series.items()):
        if len(values) != len(stages):
            raise SimCSELabError(f"series {name!r} has {len(values)} values for {len(stages)} stages")
        y = [np.nan if v is None else float(v) for v in values]
        fig.add_trace(go.Scatter(x=list(stages), y=y, name=str(name), mode="lines+markers+text",
                                 line=dict(color=QUALITATIVE[k % len(QUALITATIVE)], width=3), marker=dict(size=10),
                                 text=["" if np.isnan(v) else f"{v:.1f}" for v in y], textposition="top center",
                                 hovertemplate="%{x}: %{y:.2f}<extra>%{fullData.name}</extra>"))
    base_layout(fig, title or "What each stage adds", height=420, yaxis_title=yaxis_title,
                legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0.0))
    return fig


def replay_figure(frames: Sequence[tuple[Mapping, object]], records: Sequence[Mapping], labels: Sequence[str] | None = None,
                  title: str | None = None, height: int = 660) -> go.Figure:
    """A training run replayed: its probe sentences on the unit sphere at each kept snapshot (left) and the
    alignment/uniformity trajectory of every snapshot (right, SimCSE Figure 2, lower-left is better), with a
    step slider (and play button) that moves the sphere and the marker on the trajectory together.

    frames: [(record, (P, D) embeddings)] in step order; records: every snapshot record ({"step",
    "alignment", "uniformity", ...}, simcse_lab.training.snapshots), the first normally the raw encoder at
    step 0. Each frame is that step's own uncentred PCA (as `sphere_figure`), turned by the rotation that
    best matches the frame before (orthogonal Procrustes), so the slider shows the points moving, not the
    axes flipping; the title gives the share of variance the three axes keep. Colour: each point's cosine
    to its step's mean direction (a cone is all red; spread-out embeddings mix red and blue).
    """
    if not frames:
        raise SimCSELabError("replay_figure needs at least one frame: [(record, embeddings)]")
    labels = check_labels(labels, as_numpy(frames[0][1]).shape[0], "labels")
    spheres, colours, shares, previous = [], [], [], None
    for _, embeddings in frames:
        x = geometry.l2_normalize(geometry.as_float64(embeddings)).numpy()  # (P, D)
        coords = project(x, 3, "pca")  # (P, 3)
        if previous is not None:
            u, _, vt = np.linalg.svd(coords.T @ previous)  # the rotation R minimising |coords R - previous|
            coords = coords @ (u @ vt)
        previous = coords
        spheres.append(to_sphere(coords))
        mean = x.mean(0)
        colours.append(x @ (mean / max(np.linalg.norm(mean), 1e-12)))
        shares.append(projection_share(x, 3))
    align, unif, steps = trajectory_arrays([r for r in records if r.get("alignment") is not None and r.get("uniformity") is not None])

    def frame_title(k: int) -> str:
        record = frames[k][0]
        numbers = [f"{name} {record[key]:{spec}}" for key, name, spec in
                   (("spearman", "Spearman", ".1f"), ("alignment", "alignment", ".3f"), ("uniformity", "uniformity", ".3f"))
                   if record.get(key) is not None]
        step = record.get("step", k)
        return with_notice(title or "Training replay", f"step {step}{' (raw encoder)' if step == 0 else ''} · PCA keeps "
                           f"{100 * shares[k]:.0f}% of the variance · " + " · ".join(numbers))

    def points(k: int) -> go.Scatter3d:
        p = spheres[k]
        return go.Scatter3d(x=p[:, 0], y=p[:, 1], z=p[:, 2], marker=dict(color=colours[k]))

    def current(k: int) -> go.Scatter:
        record = frames[k][0]
        return go.Scatter(x=[record.get("uniformity")], y=[record.get("alignment")])

    fig = make_subplots(rows=1, cols=2, specs=[[{"type": "scene"}, {"type": "xy"}]], column_widths=[0.55, 0.45],
                        horizontal_spacing=0.08)
    fig.add_trace(sphere_surface(), row=1, col=1)
    first = spheres[0]
    fig.add_trace(go.Scatter3d(x=first[:, 0], y=first[:, 1], z=first[:, 2], mode="markers", name="probe sentences", showlegend=False,
                               text=[hover_text(t) for t in labels], hovertemplate="%{text}<extra></extra>",
                               marker=dict(size=3.5, color=colours[0], colorscale=DIVERGING, cmin=-1, cmax=1, opacity=0.9,
                                           colorbar=dict(title=dict(text="cosine to the mean direction", side="top"), orientation="h",
                                                         thickness=10, len=0.3, x=0.27, xanchor="center", y=-0.02, yanchor="top"))),
                  row=1, col=1)
    fig.add_trace(go.Scatter(x=unif, y=align, mode="lines+markers", name="trajectory", customdata=steps, showlegend=False,
                             line=dict(color=QUALITATIVE[0], width=2), marker=dict(size=6),
                             hovertemplate="step %{customdata}<br>uniformity %{x:.3f}<br>alignment %{y:.3f}<extra></extra>"),
                  row=1, col=2)
    raw = [i for i, s in enumerate(steps) if s == 0]
    fig.add_trace(go.Scatter(x=unif[raw], y=align[raw], mode="markers+text", text=["raw (step 0)"] * len(raw), textposition="top center",
                             name="raw encoder", showlegend=False, marker=dict(size=11, color="#444", symbol="diamond"),
                             hovertemplate="raw encoder<br>uniformity %{x:.3f}<br>alignment %{y:.3f}<extra></extra>"), row=1, col=2)
    start = current(0)
    fig.add_trace(go.Scatter(x=start.x, y=start.y, mode="markers", name="this step", showlegend=False, hoverinfo="skip",
                             marker=dict(size=18, color="rgba(0,0,0,0)", line=dict(width=3, color="#d62728"))), row=1, col=2)
    fig.frames = [go.Frame(name=str(frames[k][0].get("step", k)), data=[points(k), current(k)], traces=[1, 4],
                           layout=dict(title=dict(text=frame_title(k)))) for k in range(len(frames))]
    animate = dict(mode="immediate", frame=dict(duration=0, redraw=True), transition=dict(duration=0))
    slider = dict(active=0, x=0.14, len=0.86, y=-0.12, yanchor="top", pad=dict(t=30, b=10), currentvalue=dict(prefix="step ", visible=True),
                  steps=[dict(method="animate", label=f.name, args=[[f.name], animate]) for f in fig.frames])
    play = dict(type="buttons", direction="left", x=0.0, y=-0.12, xanchor="left", yanchor="top", pad=dict(t=40), showactive=False,
                buttons=[dict(label="▶ play", method="animate", args=[None, dict(animate, frame=dict(duration=700, redraw=True), fromcurrent=True)]),
                         dict(label="❚❚ pause", method="animate", args=[[None], animate])])
    axis = dict(range=[-1.05, 1.05], visible=False)
    base_layout(fig, frame_title(0), height=height, sliders=[slider], updatemenus=[play],
                scene=dict(xaxis=axis, yaxis=axis, zaxis=axis, aspectmode="cube", camera=dict(eye=dict(x=1.15, y=1.15, z=0.75))),
                xaxis_title="l_uniform", yaxis_title="l_align")
    fig.update_layout(margin=dict(l=10, r=20, t=90, b=150))
    return fig
