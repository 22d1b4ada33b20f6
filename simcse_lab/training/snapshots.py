"""Geometry snapshots: how training moves a fixed probe set of sentences (`simcse-lab explore`'s replay).

At the start of a run (step 0: the raw encoder) and at every STS-B dev evaluation, `GeometrySnapshots`
keeps the embeddings of a fixed probe set, in fp16, with the headline numbers measured on it
(`simcse_lab.evaluation.report.headline_numbers`: Spearman over the probe's pairs, alignment of its
gold >= 4 pairs, uniformity, average cosine, directions above 0.1). The probe is up to `size`
sentences of STS-B dev, both sides of pairs drawn at random with a fixed seed, so it carries its own
gold scores. At an evaluation step the embeddings are those the dev evaluation has just computed, so
a snapshot costs no forward pass; step 0 encodes the probe once.

Plotted against each other, alignment and uniformity trace the paper's Figure 2 (Gao et al., 2021;
Wang & Isola, 2020) from the raw encoder's point; the embeddings let `explore` replay the sphere.

    output_dir/geometry_snapshots/
        probe.json     the probe: sentences, pairs (left, right, gold), its source
        steps.json     one record per snapshot: step, the numbers, the embeddings file (or null)
        step-<N>.npy   (P, D) float16 embeddings of the probe at step N

A long run keeps every snapshot's numbers but at most SNAPSHOT_BYTES of embeddings: evenly spaced
evaluation steps, always the last one and step 0.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import SimCSELabError
from ..evaluation.dev import DevEvaluator
from ..evaluation.report import headline_numbers
from ..evaluation.sts import ScoredPairs
from .checkpoint import atomic_write_text

SNAPSHOT_DIR = "geometry_snapshots"
PROBE_FILE, STEPS_FILE = "probe.json", "steps.json"
SNAPSHOT_BYTES = 8 * 2**20  # embeddings kept per run: 32 snapshots of 512 x 256 in fp16, 10 of 512 x 768
PROBE_SEED = 0


def choose_probe(pairs: ScoredPairs, size: int, seed: int = PROBE_SEED) -> tuple[ScoredPairs, np.ndarray]:
    """Pairs drawn at random (fixed seed) until their sentences would pass `size`: the probe, and the row of each
    probe sentence in pairs.sentences (where the dev evaluation's embeddings hold it)."""
    chosen, sentences = [], set()
    for i in np.random.default_rng(seed).permutation(len(pairs)):
        pair = (pairs.sentences[pairs.left[i]], pairs.sentences[pairs.right[i]])
        if len(sentences | set(pair)) > size:
            break
        sentences.update(pair)
        chosen.append((*pair, float(pairs.gold[i])))
    probe = ScoredPairs.from_pairs(chosen)
    row = {s: i for i, s in enumerate(pairs.sentences)}
    return probe, np.array([row[s] for s in probe.sentences], dtype=np.int64)


def frame_steps(max_steps: int, eval_steps: int, limit: int) -> set[int]:
    """The evaluation steps whose embeddings are kept: all of them, or `limit` evenly spaced ones with the last."""
    evaluations = sorted(set(range(eval_steps, max_steps + 1, eval_steps)) | {max_steps}) if eval_steps > 0 else []
    if len(evaluations) <= limit:
        return set(evaluations)
    picks = np.unique(np.linspace(0, len(evaluations) - 1, max(limit, 1)).round().astype(int))
    return {evaluations[i] for i in picks}


class GeometrySnapshots:
    """A trainer callback (see the module docstring); `listeners` get `on_snapshot(state, records)` after each one."""

    def __init__(self, evaluator: DevEvaluator, encoder, directory: Path, size: int = 512, listeners: Sequence = ()):
        self.evaluator, self.encoder, self.directory, self.listeners = evaluator, encoder, Path(directory), list(listeners)
        self.probe, self.rows = choose_probe(evaluator.pairs, size)
        self.records: list[dict] = []
        self.frames: set[int] = set()

    def on_train_begin(self, state) -> None:
        probe_bytes = len(self.probe.sentences) * self.encoder.output_dim * 2
        self.frames = frame_steps(state.max_steps, state.config.eval_steps, max(1, SNAPSHOT_BYTES // probe_bytes - 1))
        if state.step == 0:  # a fresh run (an overwritten output_dir may hold an old one's snapshots)
            self.clear()
            self.write_probe()
            embeddings = self.encoder.encode(self.probe.sentences, batch_size=self.evaluator.batch_size,
                                             max_length=self.evaluator.max_length, show_progress=False)
            self.record(state, embeddings)
            return
        # resumed: keep what was recorded up to the checkpoint; the steps after it are evaluated again
        self.records = [r for r in read_records(self.directory) if r["step"] <= state.step]
        for path in self.directory.glob("step-*.npy"):
            if int(path.stem.split("-")[1]) > state.step:
                path.unlink()
        if self.records:
            self.write_records()

    def on_evaluate(self, state, record: dict) -> None:
        if not self.records:  # resumed from a run without snapshots: no probe, no step 0 to compare with
            return
        if state.step == 0:  # eval_at_start: on_train_begin recorded this very encoder already
            return
        self.record(state, as_numpy(self.evaluator.embeddings)[self.rows])

    def record(self, state, embeddings) -> None:
        embeddings = as_numpy(embeddings)
        numbers = headline_numbers(embeddings, self.probe, task="stsb (dev) probe", strict=False)
        name = None
        if state.step == 0 or state.step in self.frames:
            name = f"step-{state.step}.npy"
            write_npy(self.directory / name, embeddings.astype(np.float16))
        self.records = [r for r in self.records if r["step"] != state.step] + [{"step": state.step, **numbers, "embeddings": name}]
        self.write_records()
        for listener in self.listeners:
            handler = getattr(listener, "on_snapshot", None)
            if handler is not None:
                handler(state, list(self.records))

    def clear(self) -> None:
        self.records = []
        if self.directory.is_dir():
            for path in [*self.directory.glob("step-*.npy"), self.directory / STEPS_FILE, self.directory / PROBE_FILE]:
                path.unlink(missing_ok=True)

    def write_probe(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        probe = {"source": "STS-B dev", "seed": PROBE_SEED, "sentences": self.probe.sentences, "left": self.probe.left.tolist(),
                 "right": self.probe.right.tolist(), "gold": self.probe.gold.tolist()}
        atomic_write_text(self.directory / PROBE_FILE, json.dumps(probe) + "\n")

    def write_records(self) -> None:
        atomic_write_text(self.directory / STEPS_FILE, json.dumps(self.records, indent=1) + "\n")


def with_geometry_snapshots(config, callbacks: Sequence, evaluator: DevEvaluator | None, encoder, output_dir: Path) -> list:
    """The trainer's callbacks, with a GeometrySnapshots recorder first when config.geometry_snapshots is on (and
    there is a dev evaluation to take embeddings from); the others hear of each snapshot through on_snapshot."""
    size = getattr(config, "geometry_snapshots", 0)
    if not size or evaluator is None:
        return list(callbacks)
    return [GeometrySnapshots(evaluator, encoder, Path(output_dir) / SNAPSHOT_DIR, size, listeners=callbacks), *callbacks]


def as_numpy(embeddings) -> np.ndarray:
    return embeddings.detach().cpu().numpy() if hasattr(embeddings, "detach") else np.asarray(embeddings)


def write_npy(path: Path, array: np.ndarray) -> None:
    temporary = path.with_name(f".tmp-{path.name}")
    with open(temporary, "wb") as handle:
        np.save(handle, array)
    os.replace(temporary, path)


def read_records(directory: Path) -> list[dict]:
    path = Path(directory) / STEPS_FILE
    return json.loads(path.read_text()) if path.is_file() else []


# ---------------------------------------------------------------------- reading them back
@dataclass
class Replay:
    """A run's snapshots: the probe, one record per snapshot (step order), and their embeddings on demand."""

    directory: Path
    probe: ScoredPairs
    records: list[dict]

    @property
    def frames(self) -> list[dict]:
        """The records whose embeddings were kept."""
        return [r for r in self.records if r.get("embeddings")]

    def embeddings(self, record: dict) -> np.ndarray:
        """(P, D) float32 embeddings of the probe at that record's step."""
        return np.load(self.directory / record["embeddings"]).astype(np.float32)


def load_replay(path) -> Replay | None:
    """The snapshots of a training output_dir (or of the snapshot folder itself); None when it has none."""
    path = Path(path).expanduser()
    directory = path if (path / STEPS_FILE).is_file() else path / SNAPSHOT_DIR
    if not (directory / STEPS_FILE).is_file() or not (directory / PROBE_FILE).is_file():
        return None
    try:
        probe = json.loads((directory / PROBE_FILE).read_text())
        records = sorted(read_records(directory), key=lambda r: r["step"])
        pairs = ScoredPairs(probe["sentences"], np.array(probe["left"], dtype=np.int64), np.array(probe["right"], dtype=np.int64),
                            np.array(probe["gold"], dtype=np.float64))
    except (OSError, ValueError, KeyError) as error:
        raise SimCSELabError(f"the geometry snapshots in {directory} cannot be read ({type(error).__name__}: {error}); "
                             "delete that folder to explore the model without its training replay") from None
    return Replay(directory, pairs, records) if records else None
