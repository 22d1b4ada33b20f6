"""STS evaluation in SentEval's protocol, for any encode function: the one STS scoring path.

The score of a task is the Spearman correlation (x100) between the cosine similarity of each pair's
two embeddings and the gold score. For STS12-16 this is SentEval's "all" setting, the one the SimCSE
paper reports: the subsets are concatenated and one Spearman is computed over all pairs (not the
mean of per-subset scores). STS-B and SICK-R use the requested split. "avg" is the mean over tasks.

`encode` is any callable from a list of str to an (N, D) array or tensor, so simcse_lab encoders,
sentence-transformers models and hand-written baselines are all measured the same way.

`sts_report` gives the same scores with SentEval's other two aggregates of STS12-16 ("mean", "wmean") and the
per-subset scores; `evaluate_sts` returns the scores alone.

`evaluate_sts`, the trainer's STS-B dev evaluation (`simcse_lab.evaluation.dev`) and `simcse-lab
diagnose` (`simcse_lab.evaluation.report`) all score through `ScoredPairs` and `score_pairs` here,
so the best dev score of a run is what `simcse-lab evaluate --mode dev` reports for its model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from scipy.stats import spearmanr

from ..data.sts import ALL7, SPLITS, TASK_DISPLAY_NAMES, check_task, load_sts, load_sts_subsets
from ..errors import SimCSELabError, unknown_choice, write_error
from ..geometry import alignment, as_float64, average_cosine, l2_normalize, uniformity

EncodeFn = Callable[[list[str]], "np.ndarray"]
SimilarityFn = Callable[[list[str], list[str]], "np.ndarray"]

# Tokens kept per sentence when an STS sentence is encoded for scoring, in training (STS-B dev) and in
# `simcse-lab evaluate`: longer than any STS-B dev sentence (58 tokens at most with the default encoder's
# tokenizer), as SentEval's batcher does not truncate; training's max_seq_length of 32 would cut 8% of them.
EVAL_MAX_LENGTH = 128
EVAL_BATCH_SIZE = 128  # the same batches everywhere, so dev scores agree to the last digit
POSITIVE_GOLD = 4.0  # pairs with gold >= 4 are the positives of alignment (the paper's Figures 2 and 3)


@dataclass(frozen=True)
class ScoredPairs:
    """A task's scored pairs over its distinct sentences: pair i is (sentences[left[i]], sentences[right[i]])."""

    sentences: list[str]
    left: np.ndarray  # (N,) int
    right: np.ndarray  # (N,) int
    gold: np.ndarray  # (N,) float64

    @classmethod
    def from_pairs(cls, pairs: Sequence[tuple[str, str, float]]) -> "ScoredPairs":
        sentences = list(dict.fromkeys(s for pair in pairs for s in pair[:2]))
        index = {s: i for i, s in enumerate(sentences)}
        return cls(sentences, np.array([index[p[0]] for p in pairs], dtype=np.int64),
                   np.array([index[p[1]] for p in pairs], dtype=np.int64), np.array([p[2] for p in pairs], dtype=np.float64))

    def __len__(self) -> int:
        return len(self.gold)


def normalized(embeddings, name: str = "encoded sentences") -> np.ndarray:
    """(N, D) float64, unit rows: every score below is computed from these."""
    return l2_normalize(as_float64(embeddings, name)).numpy()


def pair_cosines(unit: np.ndarray, pairs: ScoredPairs) -> np.ndarray:
    """(N,) cosine of each pair, from unit embeddings of pairs.sentences (in that order)."""
    return (unit[pairs.left] * unit[pairs.right]).sum(-1)


def spearman_x100(cosines: np.ndarray, gold: np.ndarray, task: str = "STS") -> float:
    """Spearman x100, or an error that says why it cannot be computed (SentEval would print NaN)."""
    if len(gold) < 2:
        raise SimCSELabError(f"{task}: {len(gold)} scored pair(s); a Spearman correlation needs at least 2")
    if not np.isfinite(gold).all():
        raise SimCSELabError(f"{task}: {int((~np.isfinite(gold)).sum())} gold score(s) are NaN or inf; the data file is damaged")
    if np.ptp(gold) == 0:
        raise SimCSELabError(f"{task}: every gold score is {gold[0]:g}, so no correlation can be computed; the data file is damaged")
    if np.ptp(cosines) == 0:
        raise SimCSELabError(f"{task}: the encoder gives every pair the same cosine ({cosines[0]:.4f}), so no correlation "
                             "can be computed; the model is broken (collapsed or untrained embeddings)")
    return float(spearmanr(cosines, gold).correlation * 100)


def score_pairs(unit: np.ndarray, pairs: ScoredPairs, task: str = "STS") -> float:
    """The task score (Spearman x100) from unit embeddings of pairs.sentences."""
    return spearman_x100(pair_cosines(unit, pairs), pairs.gold, task)


def pair_geometry(embeddings, pairs: ScoredPairs) -> dict[str, float]:
    """Alignment (pairs with gold >= 4), uniformity and average cosine (the distinct sentences)."""
    x = as_float64(embeddings)
    positive = pairs.gold >= POSITIVE_GOLD
    return {"alignment": alignment(x[pairs.left[positive]], x[pairs.right[positive]]) if positive.any() else float("nan"),
            "uniformity": uniformity(x), "avg_cosine": average_cosine(x)}


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
    STS-B dev and SICK-R dev only). `sts_report` gives the same scores with SentEval's other
    aggregates and the per-subset scores.
    """
    return sts_report(encode, tasks, split, data_dir, max_pairs)["scores"]


def sts_report(
    encode: EncodeFn,
    tasks: Sequence[str] = ALL7,
    split: str = "test",
    data_dir=None,
    max_pairs: int | None = None,
) -> dict:
    """`evaluate_sts`'s scores and how they were aggregated: {"split", "scores", "detail"}.

    scores: {task: Spearman x100, "avg"}, what `evaluate_sts` returns (STS12-16: SentEval's "all", SimCSE's setting).
    detail: per task {"all", "pairs"} and, for STS12-16, SentEval's other two aggregates of the same embeddings:
    "mean" (the per-subset Spearman averaged) and "wmean" (weighted by each subset's number of pairs), with
    "subsets": {name: {"spearman", "pairs"}}. The three differ by several points, which is why papers that
    report different ones disagree (BERT-flow and whitening results, for example).
    """
    per_task: dict[str, tuple[ScoredPairs, dict[str, ScoredPairs]]] = {}
    for task in tasks_with_split(tasks, split):
        subsets = None if task in SPLIT_TASKS else load_sts_subsets(task, data_dir)  # STS12-16: test only, in subsets
        pairs = [p for subset in subsets.values() for p in subset] if subsets else load_sts(task, split if task in SPLIT_TASKS else "test", data_dir)
        kept = subset_prefix(subsets, max_pairs) if subsets else {}
        per_task[task] = (ScoredPairs.from_pairs(pairs[:max_pairs]), {name: ScoredPairs.from_pairs(p) for name, p in kept.items()})
    # One encode call over every distinct sentence of every task: fewer, fuller batches.
    sentences = list(dict.fromkeys(s for pairs, _ in per_task.values() for s in pairs.sentences))
    unit = normalized(encode(sentences))
    row = {s: i for i, s in enumerate(sentences)}

    def score(pairs: ScoredPairs, name: str) -> float:
        return score_pairs(unit[[row[s] for s in pairs.sentences]], pairs, name)

    scores, detail = {}, {}
    for task, (pairs, subsets) in per_task.items():
        scores[task] = score(pairs, f"{task} ({split})")
        detail[task] = {"all": scores[task], "pairs": len(pairs)}
        if subsets:
            by_subset = {name: {"spearman": score(p, f"{task} {name}"), "pairs": len(p)} for name, p in subsets.items()}
            values = np.array([v["spearman"] for v in by_subset.values()])
            weights = np.array([v["pairs"] for v in by_subset.values()])
            detail[task].update(mean=float(values.mean()), wmean=float((values * weights).sum() / weights.sum()), subsets=by_subset)
    scores["avg"] = float(np.mean(list(scores.values())))
    return {"split": split, "scores": scores, "detail": detail}


def subset_prefix(subsets: dict[str, list], max_pairs: int | None) -> dict[str, list]:
    """The subsets cut to the first max_pairs pairs of their concatenation (smoke runs); those left with fewer
    than 2 pairs, which have no Spearman, are dropped."""
    if max_pairs is None:
        return subsets
    kept, left = {}, max_pairs
    for name, pairs in subsets.items():
        if left >= 2 and len(pairs[:left]) >= 2:
            kept[name] = pairs[:left]
        left -= len(pairs[:left])
    return kept


def evaluate_similarity(
    similarity: SimilarityFn,
    tasks: Sequence[str] = ALL7,
    split: str = "test",
    data_dir=None,
    max_pairs: int | None = None,
) -> dict[str, float]:
    """`evaluate_sts` for a scorer that is not a cosine of embeddings: similarity(lefts, rights) -> (N,) scores
    of the pairs (lefts[i], rights[i]), e.g. `simcse_lab.evaluation.baselines.word_overlap`. Same tasks, splits,
    Spearman and "avg" as evaluate_sts, so its rows sit in the same tables."""
    results = {}
    for task, pairs in task_pairs(tasks, split, data_dir, max_pairs).items():
        lefts = [pairs.sentences[i] for i in pairs.left]
        rights = [pairs.sentences[i] for i in pairs.right]
        scores = np.asarray(similarity(lefts, rights), dtype=np.float64).reshape(-1)
        if scores.shape != pairs.gold.shape:
            raise SimCSELabError(f"the similarity function gave {scores.size} scores for {len(pairs)} pairs of {task}")
        results[task] = spearman_x100(scores, pairs.gold, f"{task} ({split})")
    results["avg"] = float(np.mean(list(results.values())))
    return results


def task_pairs(tasks: Sequence[str], split: str, data_dir=None, max_pairs: int | None = None) -> dict[str, ScoredPairs]:
    """The scored pairs of each task in `split` (STS12-16: test only, so skipped for dev)."""
    return {task: ScoredPairs.from_pairs(load_sts(task, split if task in SPLIT_TASKS else "test", data_dir)[:max_pairs])
            for task in tasks_with_split(tasks, split)}


SPLIT_TASKS = ("stsb", "sickr")  # the tasks with train / dev / test splits; STS12-16 are test-only


def tasks_with_split(tasks: Sequence[str], split: str) -> list[str]:
    """The tasks evaluate_sts scores for this split: all for "test", STS-B and SICK-R for "dev" or "train" (STS12-16
    have only test data); none left is an error, so an average over nothing is never reported."""
    if split not in SPLITS:
        raise unknown_choice("split", split, SPLITS)
    tasks = [check_task(t) for t in tasks]
    kept = [t for t in tasks if split == "test" or t in SPLIT_TASKS]
    if not kept:
        raise SimCSELabError(f"no task of {', '.join(tasks)} has a {split} split (STS12-16 are test-only); "
                             "choose other tasks or --mode test")
    return kept


def pair_cosine_scores(encode: EncodeFn, pairs: Sequence[tuple[str, str, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Cosine of each pair's embeddings and the gold scores, both (N,)."""
    scored = ScoredPairs.from_pairs(pairs)
    return pair_cosines(normalized(encode(scored.sentences)), scored), scored.gold


def format_results_table(results: dict[str, float], title: str | None = None) -> str:
    """The official evaluation.py table: one header row of task names, one row of scores."""
    names = [TASK_DISPLAY_NAMES.get(t, t) for t in results if t != "avg"] + ["Avg."]
    values = [f"{results[t]:.2f}" for t in results if t != "avg"] + [f"{results['avg']:.2f}" if "avg" in results else "-"]
    return format_table(names, [values], title)


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]], title: str | None = None) -> str:
    """A prettytable-style box (what the official evaluation.py prints): a header row, then the rows."""
    widths = [max(len(str(cell)) for cell in column) + 2 for column in zip(header, *rows)]
    rule = "+" + "+".join("-" * w for w in widths) + "+"

    def line(cells) -> str:
        return "|" + "|".join(str(c).center(w) for c, w in zip(cells, widths)) + "|"

    lines = ([f"------ {title} ------"] if title else []) + [rule, line(header), rule] + [line(r) for r in rows] + [rule]
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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2) + "\n")
    except OSError as error:
        if (translated := write_error(error, path, "choose another --output")) is None:
            raise
        raise translated from None
    return path
