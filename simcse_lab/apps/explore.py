"""`simcse-lab explore`: a model's embedding geometry on one self-contained page, several models side by side,
and, for a model simcse_lab trained, how training moved its embeddings.

    from simcse_lab.apps.explore import explore
    result = explore(["outputs/unsup-simcse", simcse_lab.DEFAULT_MODEL])   # writes explore.html
    print(result.path, result.timings)

The page is one HTML file (plotly.js inlined once; it needs no network) with:
- the headline numbers of each model on a fixed sample that the page names: STS-B dev (its 1,500 pairs,
  scored as the trainer's dev evaluation and `evaluate_sts(encode, ["stsb"], "dev")` score them) when the data is there, else the shown sentences;
  with two or more models, a table of their differences;
- the training replay of each model that has geometry snapshots (`simcse_lab.training.snapshots`): the
  sphere at every evaluation step under a slider, beside the alignment/uniformity trajectory (Figure 2);
- the singular spectrum, the random-pair cosine histogram and the cosine-by-gold-bin violins;
- each model's sentences on the unit sphere, the cosine matrix of example sentences, and a corpus map
  (PCA, or UMAP) on which a click, or a search, lists a sentence's nearest neighbours in every model.
Every figure is built by `simcse_lab.apps.viz`; this module encodes, measures and lays out the page.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.sts import load_sts, read_stsb, read_stsb_genres
from ..errors import SimCSELabError
from ..evaluation.report import headline_numbers
from ..evaluation.sts import EVAL_BATCH_SIZE, EVAL_MAX_LENGTH, ScoredPairs, normalized, pair_cosines
from ..paths import resolve_data_dir
from ..training.snapshots import Replay, load_replay
from .examples import example_sentences, matrix_examples

__all__ = ["explore", "read_sentences", "default_corpus", "Corpus", "ExploreResult", "ModelView", "numbers_html"]

MAX_SENTENCES = 5000  # sentences shown (sphere, map, neighbours); more are sampled down, with a fixed seed
HEADLINE_MAX_SENTENCES = 3000  # without STS-B dev the numbers use at most this many of the shown sentences
NEIGHBOURS = 8  # nearest neighbours listed for a clicked sentence
OVERLAP_K = 10  # the differences table: how many of each sentence's 10 nearest two models share
MATRIX_ROWS = 16
MAX_CATEGORIES = 15  # colour categories; the rarer ones become "other"
SENTENCE_COLUMNS = ("sentence", "text", "sent", "sent0", "sentence1", "s1")
COLOUR_COLUMNS = ("label", "labels", "category", "class", "topic", "genre")
SAMPLE_SEED = 0


# ---------------------------------------------------------------------- sentences
@dataclass
class Corpus:
    """The sentences a page shows, and what colours them (categories or numbers, or nothing)."""

    sentences: list[str]
    source: str  # said on the page
    groups: list[str] | None = None
    values: list[float] | None = None
    colour_by: str | None = None
    details: list[str] | None = None  # extra hover text per sentence (a CSV's other columns)
    user_given: bool = False

    def hover(self) -> list[str]:
        if not self.details:
            return list(self.sentences)
        return [f"{s} · {d}" if d else s for s, d in zip(self.sentences, self.details)]

    def sample(self, limit: int | None) -> "Corpus":
        """At most `limit` sentences: a fixed-seed random subset in the original order, the source saying so."""
        n = len(self.sentences)
        if not limit or n <= limit:
            return self
        keep = np.sort(np.random.default_rng(SAMPLE_SEED).choice(n, size=limit, replace=False))

        def pick(items):
            return None if items is None else [items[i] for i in keep]

        return Corpus(pick(self.sentences), f"{self.source}; a random {limit:,} of its {n:,} (seed {SAMPLE_SEED})", pick(self.groups),
                      pick(self.values), self.colour_by, pick(self.details), self.user_given)


def read_sentences(path, colour: str | None = None) -> Corpus:
    """A .txt file (one sentence a line) or a .csv / .tsv with a header row: the sentence column is the first of
    SENTENCE_COLUMNS present (else the first column); `colour` (default: the first of COLOUR_COLUMNS present)
    colours the points, numbers on a scale and anything else by category; the other columns show on hover."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise SimCSELabError(f"cannot read --sentences {path}: no such file; pass a .txt (one sentence a line) or a .csv with a header row")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise SimCSELabError(f"--sentences {path} is not UTF-8 text (a bad byte at position {error.start}); save it as UTF-8") from None
    except OSError as error:
        raise SimCSELabError(f"cannot read --sentences {path} ({error.strerror}); check the path and its permissions") from None
    if path.suffix.lower() in (".csv", ".tsv"):
        corpus = read_table(text, path, colour)
    else:
        if colour:
            raise SimCSELabError(f"--color {colour!r} needs a CSV with that column; {path} is read as plain text, one sentence a line")
        corpus = Corpus([line for line in (" ".join(raw.split()) for raw in text.splitlines()) if line], path.name, user_given=True)
    if len(corpus.sentences) < 2:
        raise SimCSELabError(f"--sentences {path} holds {len(corpus.sentences)} sentence(s); explore needs at least 2 "
                             "(a .txt: one a line; a .csv: a header row, then one row each)")
    return corpus


def read_table(text: str, path: Path, colour: str | None) -> Corpus:
    first = text.split("\n", 1)[0]
    delimiter = "\t" if path.suffix.lower() == ".tsv" else max(",;\t|", key=first.count)
    try:
        rows = [row for row in csv.reader(io.StringIO(text), delimiter=delimiter) if any(cell.strip() for cell in row)]
    except csv.Error as error:
        raise SimCSELabError(f"--sentences {path} is not a readable CSV ({error}); quote fields that hold the delimiter") from None
    if not rows:
        raise SimCSELabError(f"--sentences {path} is empty; a .csv needs a header row, then one row per sentence")
    header = [name.strip() for name in rows[0]]
    lower = [name.lower() for name in header]
    sentence_column = next((lower.index(name) for name in SENTENCE_COLUMNS if name in lower), 0)
    if colour is not None:
        if colour.lower() not in lower:
            raise SimCSELabError(f"--color {colour!r} is not a column of {path}; its columns are: {', '.join(header)}")
        colour_column = lower.index(colour.lower())
    else:
        colour_column = next((lower.index(name) for name in COLOUR_COLUMNS if name in lower and lower.index(name) != sentence_column), None)
    others = [i for i in range(len(header)) if i not in (sentence_column, colour_column)][:3]

    def cell(row, i):
        return " ".join(row[i].split()) if i is not None and i < len(row) else ""

    body = [row for row in rows[1:] if cell(row, sentence_column)]
    corpus = Corpus([cell(row, sentence_column) for row in body], path.name, user_given=True)
    if others:
        corpus.details = [" · ".join(f"{header[i]}: {cell(row, i)}" for i in others if cell(row, i)) for row in body]
    if colour_column is not None:
        corpus.colour_by = header[colour_column]
        corpus.groups, corpus.values = colours([cell(row, colour_column) for row in body])
    return corpus


def colours(raw: list[str]) -> tuple[list[str] | None, list[float] | None]:
    """(categories, None), or (None, numbers) for a column of more than 12 distinct numbers."""
    try:
        numbers = [float(v) for v in raw]
        if len(set(numbers)) > 12 and all(np.isfinite(numbers)):
            return None, numbers
    except ValueError:
        pass
    common = {name for name, _ in Counter(v or "(none)" for v in raw).most_common(MAX_CATEGORIES)}
    return [v or "(none)" if (v or "(none)") in common else "other" for v in raw], None


def stsb_dev_file(data_dir=None) -> Path | None:
    """The local STS-B dev file, or None (explore never downloads)."""
    root = resolve_data_dir(data_dir)
    path = root / "sts" / "STSBenchmark" / "sts-dev.csv" if root else None
    return path if path is not None and path.is_file() else None


def default_corpus(data_dir=None, max_pairs: int | None = None) -> Corpus:
    """STS-B dev's distinct sentences (of its first max_pairs pairs) coloured by genre when the data is there, else the
    built-in examples by topic."""
    path = stsb_dev_file(data_dir)
    if path is None:
        return Corpus(example_sentences(), "the built-in example sentences (no STS-B dev data: set SIMCSE_LAB_DATA)",
                      groups=example_sentences(groups=True), colour_by="topic")
    genre = {}
    for (s1, s2, _), g in list(zip(read_stsb(path), read_stsb_genres(path)))[:max_pairs]:
        for s in (s1, s2):
            if s:
                genre.setdefault(s, g.removeprefix("main-"))
    pairs = f"its first {max_pairs:,} pairs' " if max_pairs else ""
    return Corpus(list(genre), f"STS-B dev ({pairs}{len(genre):,} distinct sentences)", groups=list(genre.values()), colour_by="genre")


# ---------------------------------------------------------------------- models and numbers
@dataclass
class Sample:
    """What the headline numbers are measured on."""

    sentences: list[str]
    pairs: ScoredPairs | None
    description: str


def headline_sample(corpus: Corpus, data_dir=None, max_pairs: int | None = None) -> Sample:
    path = stsb_dev_file(data_dir)
    if path is not None:
        pairs = ScoredPairs.from_pairs(load_sts("stsb", "dev", path.parents[2])[:max_pairs])
        return Sample(pairs.sentences, pairs, f"STS-B dev: {len(pairs):,} pairs, {len(pairs.sentences):,} distinct sentences")
    shown = corpus.sample(HEADLINE_MAX_SENTENCES)
    what = "the shown sentences" if shown is corpus else f"a random {len(shown.sentences):,} of the shown sentences (seed {SAMPLE_SEED})"
    return Sample(shown.sentences, None, f"{what}: {len(shown.sentences):,} sentences (no STS-B dev data, so no Spearman or alignment)")


@dataclass
class ModelView:
    """One model's measurements for the page."""

    name: str
    source: str
    pooler: str
    pooler_reason: str
    dim: int
    numbers: dict
    sample_embeddings: np.ndarray  # (S, D), the headline sample
    corpus_embeddings: np.ndarray  # (N, D), the shown sentences
    matrix_embeddings: np.ndarray  # (M, D)
    replay: Replay | None = None
    neighbours: np.ndarray | None = None  # (N, NEIGHBOURS) int
    neighbour_cosines: np.ndarray | None = None
    map_coords: np.ndarray | None = None  # (N, 2)


@dataclass
class ExploreResult:
    path: Path | None
    views: list[ModelView]
    corpus: Corpus
    sample: Sample
    figures: dict  # id -> plotly Figure, in page order
    timings: dict[str, float] = field(default_factory=dict)
    size: int = 0  # bytes of the page

    @property
    def numbers_html(self) -> str:
        return numbers_html(self.views, self.sample)


class Stopwatch:
    def __init__(self):
        self.timings: dict[str, float] = {}

    def add(self, stage: str, started: float) -> None:
        self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - started


def load_model(model, pooler: str | None):
    """(encoder, source): a model directory, hub id, sentence-transformers folder, official checkpoint, or an encoder."""
    if hasattr(model, "encode") and hasattr(model, "pooler"):
        return model, str(getattr(model, "name_or_path", "") or type(model).__name__)
    from ..models.encoder import SimCSEEncoder  # noqa: PLC0415  (torch and transformers load only here)

    return SimCSEEncoder.from_pretrained(str(model), pooler=pooler), str(model)


def display_name(source: str, pooler: str) -> str:
    parts = Path(source.rstrip("/")).parts
    return f"{'/'.join(parts[-2:]) or source} ({pooler})"


def measure(encoder, source: str, corpus: Corpus, matrix: list[str], sample: Sample, clock: Stopwatch, progress: bool) -> ModelView:
    """Encode the sample, the shown sentences and the matrix rows (each distinct sentence once) and measure."""
    name = display_name(source, encoder.pooler)

    def encode(sentences: list[str]) -> np.ndarray:
        if progress:
            print(f"encoding {len(sentences):,} sentences with {name}", file=sys.stderr, flush=True)
        # the batches and length of `simcse-lab evaluate` and the trainer's dev evaluation: the same Spearman
        return encoder.encode(sentences, batch_size=EVAL_BATCH_SIZE, max_length=EVAL_MAX_LENGTH, show_progress=progress).numpy()

    started = time.perf_counter()
    sample_embeddings = encode(sample.sentences)  # alone, as evaluate_sts encodes them: the same batches, the same numbers
    row = {s: i for i, s in enumerate(sample.sentences)}
    missing = [s for s in dict.fromkeys([*corpus.sentences, *matrix]) if s not in row]
    extra = encode(missing) if missing else np.zeros((0, sample_embeddings.shape[1]), dtype=np.float32)
    row.update({s: len(sample.sentences) + i for i, s in enumerate(missing)})
    everything = np.concatenate([sample_embeddings, extra])
    clock.add("encode", started)

    started = time.perf_counter()
    numbers = headline_numbers(sample_embeddings, sample.pairs)
    clock.add("numbers", started)
    source_path = Path(source).expanduser()
    replay = load_replay(source_path) if source_path.is_dir() else None
    return ModelView(name, source, encoder.pooler, getattr(encoder, "pooler_reason", ""), int(sample_embeddings.shape[1]), numbers,
                     sample_embeddings, everything[[row[s] for s in corpus.sentences]], everything[[row[s] for s in matrix]], replay)


def nearest(embeddings: np.ndarray, k: int, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k nearest other rows by cosine, best first, and those cosines: (N, k) each."""
    unit = normalized(embeddings).astype(np.float32)
    n = unit.shape[0]
    k = min(k, n - 1)
    rows, cosines = np.zeros((n, k), dtype=np.int64), np.zeros((n, k), dtype=np.float32)
    for start in range(0, n, chunk):
        sim = unit[start : start + chunk] @ unit.T  # (c, N)
        sim[np.arange(sim.shape[0]), np.arange(start, start + sim.shape[0])] = -np.inf
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sim, top, 1), axis=1, kind="stable")
        rows[start : start + chunk] = np.take_along_axis(top, order, 1)
        cosines[start : start + chunk] = np.take_along_axis(sim, rows[start : start + chunk], 1)
    return rows, cosines


def neighbour_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Mean share of each row's neighbours (index sets, (N, k)) that two models have in common."""
    return float(np.mean([len(set(x) & set(y)) / max(len(x), 1) for x, y in zip(a, b)]))


# ---------------------------------------------------------------------- the page
def explore(models: Sequence, sentences=None, pooler: str | Sequence[str | None] | None = None, output="explore.html",
            map_method: str = "pca", data_dir=None, colour: str | None = None, matrix_rows: int = MATRIX_ROWS,
            max_sentences: int | None = MAX_SENTENCES, max_pairs: int | None = None, progress: bool = True) -> ExploreResult:
    """Measure each model on the same sentences and write the page (see the module docstring); output=None: no file.

    sentences: a path (see `read_sentences`), a list of str, a Corpus, or None (`default_corpus`).
    pooler: one for every model, or one per model (None: what each checkpoint says). max_pairs: the first N
    STS-B dev pairs only (quick runs; the page says how many)."""
    try:
        from . import viz  # noqa: PLC0415  (plotly: the notebooks extra)
    except ImportError as error:
        raise SimCSELabError(f"simcse-lab explore draws with plotly, which is not installed ({error.name}); "
                             "pip install 'simcse_lab[notebooks]' (or just plotly)") from None
    if map_method not in viz.PROJECTIONS:
        from ..errors import unknown_choice  # noqa: PLC0415

        raise unknown_choice("map projection", map_method, viz.PROJECTIONS)
    models = list(models)
    if not models:
        raise SimCSELabError("explore needs at least one model: a directory, a hub id, or simcse_lab.DEFAULT_MODEL")
    poolers = list(pooler) if isinstance(pooler, (list, tuple)) else [pooler]
    if len(poolers) == 1:
        poolers = poolers * len(models)
    if len(poolers) != len(models):
        raise SimCSELabError(f"got {len(poolers)} poolers for {len(models)} models; pass one for all or one per model")
    clock = Stopwatch()
    started = time.perf_counter()
    corpus = to_corpus(sentences, colour, data_dir, max_pairs).sample(max_sentences)
    matrix = (corpus.sentences if corpus.user_given else matrix_examples()[0])[:matrix_rows]
    sample = headline_sample(corpus, data_dir, max_pairs)
    clock.add("read sentences", started)

    started = time.perf_counter()
    loaded = [load_model(m, p) for m, p in zip(models, poolers)]  # all first: a model that cannot load fails before any encoding
    clock.add("load models", started)
    views = [measure(encoder, source, corpus, matrix, sample, clock, progress) for encoder, source in loaded]
    seen = Counter(v.name for v in views)
    for k, view in enumerate(views):
        if seen[view.name] > 1:
            view.name = f"{view.name} #{k + 1}"

    started = time.perf_counter()
    for view in views:
        view.neighbours, view.neighbour_cosines = nearest(view.corpus_embeddings, NEIGHBOURS)
        view.map_coords = viz.project(view.corpus_embeddings, 2, map_method, center=True)
    clock.add(f"map ({map_method.upper()}) and neighbours", started)

    started = time.perf_counter()
    figures = build_figures(viz, views, corpus, matrix, sample, map_method)
    clock.add("figures", started)
    result = ExploreResult(None, views, corpus, sample, figures, clock.timings)
    if output is not None:
        started = time.perf_counter()
        page = render_page(views, corpus, sample, figures, map_method)
        path = Path(output).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page, encoding="utf-8")
        result.path, result.size = path, path.stat().st_size
        clock.add("write page", started)
    return result


def to_corpus(sentences, colour: str | None, data_dir=None, max_pairs: int | None = None) -> Corpus:
    if sentences is None:
        if colour:
            raise SimCSELabError("--color names a column of your --sentences CSV; pass --sentences too")
        return default_corpus(data_dir, max_pairs)
    if isinstance(sentences, Corpus):
        return sentences
    if isinstance(sentences, (str, os.PathLike)):
        return read_sentences(sentences, colour)
    items = [" ".join(str(s).split()) for s in sentences]
    items = [s for s in items if s]
    if len(items) < 2:
        raise SimCSELabError(f"explore needs at least 2 sentences; got {len(items)}")
    return Corpus(items, f"{len(items):,} given sentences", user_given=True)


def build_figures(viz, views: list[ModelView], corpus: Corpus, matrix: list[str], sample: Sample, map_method: str) -> dict:
    """Every figure of the page, keyed by the id of its place there, in page order."""
    figures = {}
    hover = corpus.hover()
    for k, view in enumerate(views):
        if view.replay is not None and view.replay.frames:
            frames = [(record, view.replay.embeddings(record)) for record in view.replay.frames]
            figures[f"replay-{k}"] = viz.replay_figure(frames, view.replay.records, view.replay.probe.sentences,
                                                       title=f"Training replay · {view.name}")
    replays = {v.name: v.replay.records for v in views if v.replay is not None}
    if len(replays) >= 2:
        figures["trajectories"] = viz.alignment_uniformity_figure(None, trajectories=replays,
                                                                  title="Alignment and uniformity during training (each run's probe sentences)")
    figures["spectrum"] = viz.spectrum_figure({v.name: v.sample_embeddings for v in views},
                                              title=f"Singular value spectrum (normalised)<br><sup>{sample.description}</sup>")
    figures["histogram"] = viz.cosine_histogram({v.name: v.sample_embeddings for v in views},
                                                title=f"Cosine similarity of 5,000 random sentence pairs<br><sup>{sample.description}</sup>")
    if sample.pairs is not None:
        cosines = {v.name: pair_cosines(normalized(v.sample_embeddings), sample.pairs) for v in views}
        figures["violins"] = viz.gold_bin_figure(cosines, sample.pairs.gold, title="Cosine by gold-score bin (STS-B dev)")
    for k, view in enumerate(views):
        share = viz.projection_share(view.corpus_embeddings, 3)
        figures[f"sphere-{k}"] = viz.sphere_figure(view.corpus_embeddings, hover, corpus.groups, values=corpus.values,
                                                   title=f"{view.name}<br><sup>uncentred PCA to 3-D, renormalised: keeps "
                                                         f"{100 * share:.0f}% of the variance</sup>", height=480)
    for k, view in enumerate(views):
        figures[f"matrix-{k}"] = viz.similarity_heatmap(view.matrix_embeddings, matrix, title=view.name, label_width=28,
                                                        x_labels=False, annotate=False, square=False,
                                                        height=max(420, 160 + 24 * len(matrix)))
    for k, view in enumerate(views):
        figures[f"map-{k}"] = viz.map_figure(view.corpus_embeddings, hover, corpus.groups, method=map_method, values=corpus.values,
                                             coords=view.map_coords, title=f"{view.name} · click a point", height=520)
    for fig in figures.values():
        fig.update_layout(autosize=True)
    return figures


NUMBER_ROWS = (  # key, label, format, how to read it
    ("spearman", "STS-B dev Spearman × 100", ".2f", "higher is better"),
    ("alignment", "alignment (gold ≥ 4 pairs)", ".3f", "lower is better"),
    ("uniformity", "uniformity", ".3f", "lower is better"),
    ("average_cosine", "average cosine", ".3f", "0 = isotropic, 1 = one direction"),
    ("directions_above_0.1", "directions above 0.1 of the spectrum", "d", "more = more of the space in use"),
)


def fmt(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def numbers_html(views: list[ModelView], sample: Sample) -> str:
    """The headline table (one column per model) and, for two or more models, the differences from the first."""
    head = "".join(f"<th>{html.escape(v.name)}</th>" for v in views)
    rows = []
    for key, label, spec, reading in NUMBER_ROWS:
        if all(v.numbers.get(key) is None for v in views):
            continue
        cells = "".join(f"<td data-key='{key}'>{fmt(v.numbers.get(key), spec)}"
                        + (f" <small>of {v.dim}</small>" if key == "directions_above_0.1" else "") + "</td>" for v in views)
        rows.append(f"<tr><th>{label}<br><small>{reading}</small></th>{cells}</tr>")
    rows.append("<tr><th>pooler</th>" + "".join(f"<td title='{html.escape(v.pooler_reason)}'>{v.pooler}</td>" for v in views) + "</tr>")
    out = (f"<table class='numbers' id='headline'><caption>Measured on {html.escape(sample.description)}</caption>"
           f"<tr><th></th>{head}</tr>{''.join(rows)}</table>")
    if len(views) < 2:
        return out
    first = views[0]
    head = "".join(f"<th>{html.escape(v.name)} − {html.escape(first.name)}</th>" for v in views[1:])
    rows = []
    for key, label, spec, _ in NUMBER_ROWS:
        if all(v.numbers.get(key) is None for v in views):
            continue
        cells = ""
        for v in views[1:]:
            a, b = first.numbers.get(key), v.numbers.get(key)
            cells += f"<td>{'–' if a is None or b is None else format(b - a, '+' + spec)}</td>"
        rows.append(f"<tr><th>{label}</th>{cells}</tr>")
    overlap = "".join(f"<td>{100 * neighbour_overlap(first.neighbours[:, :OVERLAP_K], v.neighbours[:, :OVERLAP_K]):.0f}%</td>"
                      if first.neighbours is not None and v.neighbours is not None else "<td>–</td>" for v in views[1:])
    rows.append(f"<tr><th>nearest neighbours in common<br><small>of each shown sentence's {min(OVERLAP_K, NEIGHBOURS)} nearest</small></th>{overlap}</tr>")
    return out + f"<table class='numbers' id='differences'><caption>Differences from {html.escape(first.name)}</caption><tr><th></th>{head}</tr>{''.join(rows)}</table>"


def script_json(value) -> str:
    """JSON that is safe inside a <script> element."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), allow_nan=False)
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def page_data(views: list[ModelView], corpus: Corpus, sample: Sample) -> dict:
    """What the page's script needs: the sentences, each model's map coordinates and neighbours, the numbers."""
    models = []
    for v in views:
        models.append({"name": v.name, "map": np.round(v.map_coords, 4).tolist(), "neighbours": v.neighbours.tolist(),
                       "cosines": np.round(v.neighbour_cosines.astype(np.float64), 3).tolist(),
                       "numbers": {k: (None if isinstance(x, float) and not np.isfinite(x) else x) for k, x in v.numbers.items()},
                       "pooler": v.pooler, "source": v.source, "dim": v.dim,
                       "replay_steps": [r["step"] for r in v.replay.records] if v.replay is not None else []})
    return {"sentences": corpus.sentences, "sample": sample.description, "models": models}


def render_page(views: list[ModelView], corpus: Corpus, sample: Sample, figures: dict, map_method: str) -> str:
    from plotly.offline import get_plotlyjs  # noqa: PLC0415

    def grid(prefix: str) -> str:
        cells = "".join(f"<div class='cell'><div class='plot' id='{prefix}-{k}'></div></div>" for k in range(len(views)) if f"{prefix}-{k}" in figures)
        return f"<div class='grid n{min(len(views), 3)}'>{cells}</div>"

    replay = ""
    if any(key.startswith("replay-") for key in figures):
        plots = "".join(f"<div class='plot wide' id='{key}'></div>" for key in figures if key.startswith("replay-"))
        if "trajectories" in figures:
            plots += "<div class='plot wide' id='trajectories'></div>"
        replay = ("<section id='replay'><h2>How training moved the embeddings</h2><p>The probe sentences (STS-B dev) at each "
                  "evaluation step, from the raw encoder at step 0: drag the slider or press play. Right: the same steps in the "
                  "alignment/uniformity plane (SimCSE, Figure 2; lower-left is better).</p>" + plots + "</section>")
    elif not any(v.replay for v in views):
        replay = ("<section id='replay'><h2>How training moved the embeddings</h2><p class='note'>None of these models has geometry "
                  "snapshots. Train one with <code>simcse-lab train</code> (they are on by default) and explore its output directory "
                  "to replay its training here.</p></section>")
    violins = "<div class='plot' id='violins'></div>" if "violins" in figures else ""
    colour = f", coloured by {html.escape(corpus.colour_by)}" if corpus.colour_by else ""
    names = " · ".join(html.escape(v.name) for v in views)
    figure_blob = "{" + ",".join(f"{json.dumps(key)}:{fig.to_json(validate=False)}" for key, fig in figures.items()) + "}"
    return PAGE.format(
        title=f"simcse-lab explore · {names}", names=names, version=html.escape(package_version()),
        corpus=html.escape(corpus.source) + colour, count=f"{len(corpus.sentences):,}", numbers=numbers_html(views, sample),
        replay=replay, violins=violins, spheres=grid("sphere"), matrices=grid("matrix"), maps=grid("map"),
        map_method=map_method.upper(), panels="".join(f"<div class='cell neighbours' id='neighbours-{k}'></div>" for k in range(len(views))),
        grid_class=f"n{min(len(views), 3)}", plotlyjs=get_plotlyjs(), figures=script_json(figure_blob),
        data=script_json(page_data(views, corpus, sample)), script=SCRIPT,
    )


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("simcse_lab")
    except PackageNotFoundError:
        return "(not installed)"


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: Inter, Helvetica, Arial, sans-serif; margin: 0 auto; max-width: 1500px; padding: 0 24px 60px; color: #222; }}
h1 {{ font-size: 22px; margin: 22px 0 4px; }} h2 {{ font-size: 18px; margin: 34px 0 6px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }}
p, .note {{ color: #444; font-size: 14px; max-width: 1100px; }} code {{ background: #f3f3f3; padding: 1px 4px; border-radius: 3px; }}
nav a {{ margin-right: 14px; font-size: 14px; }}
table.numbers {{ border-collapse: collapse; margin: 10px 24px 10px 0; display: inline-table; vertical-align: top; font-size: 14px; }}
table.numbers caption {{ text-align: left; color: #555; padding-bottom: 4px; }}
table.numbers th, table.numbers td {{ border: 1px solid #ddd; padding: 5px 10px; text-align: right; }}
table.numbers th:first-child {{ text-align: left; font-weight: 600; }} table.numbers small {{ color: #777; font-weight: 400; }}
.grid {{ display: grid; gap: 12px; }} .grid.n1 {{ grid-template-columns: 1fr; }} .grid.n2 {{ grid-template-columns: 1fr 1fr; }}
.grid.n3 {{ grid-template-columns: 1fr 1fr 1fr; }} .cell {{ min-width: 0; }}
.plot {{ min-height: 380px; }} .plot.wide {{ margin-bottom: 18px; }}
.row2 {{ display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }}
.neighbours {{ font-size: 13px; }} .neighbours ol {{ margin: 4px 0 0; padding-left: 22px; }} .neighbours b {{ display: block; }}
#search {{ width: 420px; padding: 5px 8px; font-size: 14px; }} #matches {{ font-size: 13px; margin: 6px 0; }}
#matches button {{ display: block; border: none; background: none; color: #1f5fa8; cursor: pointer; text-align: left; padding: 2px 0; }}
</style></head>
<body>
<h1>simcse-lab explore</h1>
<p>{names}<br><small>{count} sentences shown: {corpus} · simcse_lab {version} · the page works offline</small></p>
<nav><a href="#numbers">numbers</a><a href="#replay">training replay</a><a href="#anisotropy">anisotropy</a>
<a href="#sphere">sphere</a><a href="#matrix">similarity matrix</a><a href="#map">corpus map</a></nav>
<section id="numbers"><h2>Headline numbers</h2>{numbers}</section>
{replay}
<section id="anisotropy"><h2>Anisotropy</h2><p>Raw pre-trained encoders crowd sentences into a narrow cone: a spectrum that
falls steeply, random pairs with high cosines, and gold-score bins squeezed together. Contrastive training flattens the spectrum
and spreads the cosines while keeping the bins apart.</p>
<div class="row2"><div class="plot" id="spectrum"></div><div class="plot" id="histogram"></div></div>{violins}</section>
<section id="sphere"><h2>Sentences on the unit sphere</h2><p>Each model's shown sentences, projected to 3-D by uncentred
PCA and scaled back to unit length: a shared direction (anisotropy) shows as a cap. Drag to rotate, hover to read.</p>{spheres}</section>
<section id="matrix"><h2>Similarity matrix</h2>{matrices}</section>
<section id="map"><h2>Corpus map ({map_method})</h2><p>Hover to read a sentence; click one, or search, to list its nearest
neighbours (cosine, over all shown sentences) in every model at once.</p>
<input id="search" type="search" placeholder="search the sentences…" autocomplete="off"><div id="matches"></div>
{maps}<div class="grid {grid_class}">{panels}</div></section>
<script>{plotlyjs}</script>
<script type="application/json" id="explore-figures">{figures}</script>
<script type="application/json" id="explore-data">{data}</script>
<script>{script}</script>
</body></html>
"""

SCRIPT = r"""
(function () {
  'use strict';
  const timings = {script: performance.now()};  // ms since navigation: when each figure was drawn (benchmarks read it)
  const figures = JSON.parse(document.getElementById('explore-figures').textContent);
  const data = JSON.parse(document.getElementById('explore-data').textContent);
  timings.parsed = performance.now();
  const config = {responsive: true, displaylogo: false};
  const drawn = {};

  function draw(id) {
    if (drawn[id]) return drawn[id];
    const div = document.getElementById(id), spec = figures[id];
    if (!div || !spec) return Promise.resolve(null);
    const started = performance.now();
    drawn[id] = Plotly.newPlot(div, {data: spec.data, layout: spec.layout, frames: spec.frames || [], config: config}).then(function (gd) {
      if (id.indexOf('map-') === 0) gd.on('plotly_click', function (event) {
        const point = event.points && event.points[0];
        if (point && typeof point.customdata === 'number') select(point.customdata);
      });
      div.setAttribute('data-rendered', '1');
      timings[id] = [started, performance.now()];
      return gd;
    });
    return drawn[id];
  }

  function item(text) { const li = document.createElement('li'); li.textContent = text; return li; }

  function select(row) {
    data.models.forEach(function (model, k) {
      const near = model.neighbours[row], cos = model.cosines[row];
      const panel = document.getElementById('neighbours-' + k);
      panel.textContent = '';
      const head = document.createElement('b');
      head.textContent = model.name + ': nearest to “' + data.sentences[row] + '”';
      const list = document.createElement('ol');
      near.forEach(function (j, i) { list.appendChild(item((cos[i] >= 0 ? '+' : '') + cos[i].toFixed(3) + '  ' + data.sentences[j])); });
      panel.appendChild(head); panel.appendChild(list);
      draw('map-' + k).then(function (gd) {
        if (!gd) return;
        const n = gd.data.length;
        Plotly.restyle(gd, {x: [near.map(function (j) { return model.map[j][0]; })], y: [near.map(function (j) { return model.map[j][1]; })],
                            text: [near.map(function (j) { return data.sentences[j]; })], visible: [true]}, [n - 2]);
        Plotly.restyle(gd, {x: [[model.map[row][0]]], y: [[model.map[row][1]]], text: [[data.sentences[row]]], visible: [true]}, [n - 1]);
      });
    });
    document.body.setAttribute('data-selected', String(row));
  }

  const search = document.getElementById('search'), matches = document.getElementById('matches');
  search.addEventListener('input', function () {
    const query = search.value.trim().toLowerCase();
    matches.textContent = '';
    if (!query) return;
    let shown = 0;
    for (let i = 0; i < data.sentences.length && shown < 12; i++) {
      if (data.sentences[i].toLowerCase().indexOf(query) < 0) continue;
      const button = document.createElement('button');
      button.textContent = data.sentences[i];
      button.addEventListener('click', (function (row) { return function () { select(row); }; })(i));
      matches.appendChild(button);
      shown++;
    }
  });

  // Draw what is on screen first, then the rest, one figure at a time, so the page answers at once.
  const ids = Object.keys(figures);
  const observer = 'IntersectionObserver' in window ? new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) { if (entry.isIntersecting) draw(entry.target.id); });
  }, {rootMargin: '600px'}) : null;
  ids.forEach(function (id) { const div = document.getElementById(id); if (div && observer) observer.observe(div); });
  let next = 0;
  function drawRest() {
    while (next < ids.length && drawn[ids[next]]) next++;
    if (next < ids.length) { draw(ids[next]).then(function () { setTimeout(drawRest, 0); }); return; }
    Promise.all(ids.map(draw)).then(function () { document.body.setAttribute('data-all-rendered', '1'); });
  }
  window.addEventListener('load', function () { setTimeout(drawRest, 50); });
  window.simcseExplore = {select: select, draw: draw, figures: figures, data: data, timings: timings};
})();
"""
