"""STS evaluation in SentEval's protocol, for any encode function.

The score of a task is the Spearman correlation (x100) between the cosine similarity of each pair's
two embeddings and the gold score. For STS12-16 this is SentEval's "all" setting, the one the SimCSE
paper reports: the subsets are concatenated and one Spearman is computed over all pairs (not the
mean of per-subset scores). STS-B and SICK-R use the requested split. "avg" is the mean over tasks.

`encode` is any callable from a list of str to an (N, D) array or tensor, so simcse_lab encoders,
sentence-transformers models and hand-written baselines are all measured the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from scipy.stats import spearmanr

from .data import ALL7, TASK_DISPLAY_NAMES, check_task, load_sts
from .geometry import as_float64, l2_normalize

EncodeFn = Callable[[list[str]], "np.ndarray"]


def pair_cosine_scores(encode: EncodeFn, pairs: Sequence[tuple[str, str, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Cosine of each pair's embeddings and the gold scores, both (N,)."""
    embeddings = encode_unique(encode, [s for pair in pairs for s in pair[:2]])
    a = np.stack([embeddings[p[0]] for p in pairs])
    b = np.stack([embeddings[p[1]] for p in pairs])
    return (a * b).sum(-1), np.array([p[2] for p in pairs], dtype=np.float64)


def encode_unique(encode: EncodeFn, sentences: Sequence[str]) -> dict[str, np.ndarray]:
    """Encode each distinct sentence once; returns sentence -> L2-normalised float64 vector."""
    unique = list(dict.fromkeys(sentences))
    vectors = l2_normalize(as_float64(encode(unique), "encoded sentences")).numpy()
    return dict(zip(unique, vectors))


def evaluate_sts(
    encode: EncodeFn,
    tasks: Sequence[str] = ALL7,
    split: str = "test",
    data_dir=None,
    max_pairs: int | None = None,
) -> dict[str, float]:
    """Spearman x100 per task plus "avg". split applies to stsb and sickr ("dev" or "test").

    max_pairs: score only the first N pairs of each task (smoke runs; None = all, the real protocol).

    STS12-16 have only test data; with split="dev" they are skipped (SimCSE's dev mode reports
    STS-B dev and SICK-R dev only).
    """
    tasks = [check_task(t) for t in tasks]
    per_task_pairs = {}
    for task in tasks:
        task_split = split if task in ("stsb", "sickr") else "test"
        if split != "test" and task_split == "test":
            continue
        per_task_pairs[task] = load_sts(task, task_split, data_dir)[:max_pairs]
    # One encode call over every distinct sentence of every task: fewer, fuller batches.
    embeddings = encode_unique(encode, [s for pairs in per_task_pairs.values() for p in pairs for s in p[:2]])
    results = {}
    for task, pairs in per_task_pairs.items():
        cosines = np.array([embeddings[p[0]] @ embeddings[p[1]] for p in pairs])
        gold = np.array([p[2] for p in pairs])
        results[task] = float(spearmanr(cosines, gold).correlation * 100)
    results["avg"] = float(np.mean(list(results.values()))) if results else float("nan")
    return results


def format_results_table(results: dict[str, float], title: str | None = None) -> str:
    """The official evaluation.py table: one header row of task names, one row of scores."""
    names = [TASK_DISPLAY_NAMES.get(t, t) for t in results if t != "avg"] + ["Avg."]
    values = [f"{results[t]:.2f}" for t in results if t != "avg"] + [f"{results.get('avg', float('nan')):.2f}"]
    widths = [max(len(n), len(v)) + 2 for n, v in zip(names, values)]
    rule = "+" + "+".join("-" * w for w in widths) + "+"
    header = "|" + "|".join(n.center(w) for n, w in zip(names, widths)) + "|"
    row = "|" + "|".join(v.center(w) for v, w in zip(values, widths)) + "|"
    lines = ([f"------ {title} ------"] if title else []) + [rule, header, rule, row, rule]
    return "\n".join(lines)


def format_comparison_table(rows: dict[str, dict[str, float]]) -> str:
    """Several models' results, one row each (markdown-style, for notebooks and notes)."""
    tasks = list(dict.fromkeys(t for r in rows.values() for t in r))
    header = "| model | " + " | ".join(TASK_DISPLAY_NAMES.get(t, "Avg." if t == "avg" else t) for t in tasks) + " |"
    lines = [header, "|" + "---|" * (len(tasks) + 1)]
    for name, result in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{result[t]:.2f}" if t in result else "-" for t in tasks) + " |")
    return "\n".join(lines)


def save_results(results: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path
