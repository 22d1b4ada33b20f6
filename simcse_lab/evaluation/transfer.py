"""SentEval's transfer tasks (MR, CR, SUBJ, MPQA, SST-2, TREC, MRPC) in its protocol, for any encode function.

A logistic-regression probe (`simcse_lab.evaluation.probe`, SentEval's PyTorch classifier with nhid=0) is
trained on frozen sentence embeddings, exactly as SentEval's `tools/validation.py` arranges the fits:
- MR, CR, SUBJ, MPQA (`InnerKFoldClassifier`): k outer stratified folds; inside each outer training part, k inner
  folds choose the L2 penalty (the best mean inner validation accuracy); a final fit on the outer training part
  (5% held out for early stopping) is scored on the outer test fold. acc = mean over outer folds; devacc = mean of
  the chosen penalties' inner accuracies.
- TREC and MRPC (`KFoldClassifier`): k stratified folds of the training set choose the penalty (devacc = its mean
  fold accuracy); a final fit on the whole training set (5% held out) is scored on the test set. MRPC's features are
  SentEval's [|u - v|, u * v] of the two sentences' embeddings; its F1 is reported too.
- SST-2 (`SplitClassifier`): each penalty is fitted on train and validated on dev (devacc = the best); the chosen
  fit is scored on test. (SentEval refits it with the same seeds and data, which gives the same model.)
Folds are scikit-learn's StratifiedKFold(k, shuffle=True, random_state=1111), SentEval's; the L2 grid is
SentEval's PyTorch one, 1e-5, 1e-4, 1e-3, 1e-2; every score is rounded as SentEval rounds it (x100, 2 decimals).

Settings (the official SimCSE evaluation.py): `test` = 10 folds, Adam, batch 64, tenacity 5, epoch size 4;
`fasttest` and `dev` = 5 folds, RMSprop, batch 128, tenacity 3, epoch size 2. `dev` reports devacc only and
never fits on, or scores, a test fold or test set.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold
from tqdm.auto import tqdm

from ..data.transfer import TRANSFER_DISPLAY_NAMES, TRANSFER_TASKS, TransferTask, check_transfer_task, load_transfer_task
from ..errors import unknown_choice
from .probe import Fit, ProbeSettings, fit_probes

EncodeFn = Callable[[list[str]], "np.ndarray"]

L2_REGS = tuple(10.0**t for t in range(-5, -1))  # SentEval's grid for its PyTorch classifier
SEED = 1111  # SentEval's seed: folds, permutations and initial weights
FAST = ProbeSettings(optim="rmsprop", batch_size=128, tenacity=3, epoch_size=2)
FULL = ProbeSettings(optim="adam", batch_size=64, tenacity=5, epoch_size=4)
MODES = {"test": (10, FULL), "fasttest": (5, FAST), "dev": (5, FAST)}  # mode -> (k folds, classifier)
KFOLD_TASKS = ("mr", "cr", "subj", "mpqa")


def transfer_settings(mode: str) -> dict:
    """The protocol of a mode, as recorded with the results."""
    if mode not in MODES:
        raise unknown_choice("transfer mode", mode, MODES)
    kfold, probe = MODES[mode]
    return {"mode": mode, "kfold": kfold, "classifier": {"nhid": 0, "optim": probe.optim, "batch_size": probe.batch_size,
            "tenacity": probe.tenacity, "epoch_size": probe.epoch_size, "max_epoch": probe.max_epoch},
            "l2_grid": list(L2_REGS), "seed": SEED, "probe": "SentEval's PyTorch logistic regression (usepytorch=True)",
            "reported": "devacc (validation accuracy) only" if mode == "dev" else "acc (test accuracy) and devacc"}


def evaluate_transfer(encode: EncodeFn, tasks: Sequence[str] = TRANSFER_TASKS, mode: str = "test", data_dir=None,
                      show_progress: bool = True) -> dict[str, dict]:
    """Each task's SentEval result: {"devacc", "acc" (not in dev mode), "ndev", "ntest", "l2reg", "seconds", ...}.

    `encode` maps a list of sentences to their (N, D) embeddings, used as they are (SentEval's batcher output)."""
    kfold, settings = MODES[transfer_settings(mode)["mode"]]
    with_test = mode != "dev"
    results = {}
    for task in tqdm([check_transfer_task(t) for t in tasks], desc="transfer", disable=not show_progress, leave=False):
        started = time.perf_counter()
        data = load_transfer_task(task, data_dir)
        if task in KFOLD_TASKS:
            split = data.splits["all"]
            result = inner_kfold(embed(encode, split.text), split.labels, data.num_classes, kfold, settings, with_test)
        elif task == "sst2":
            result = split_classifier(data, encode, settings, with_test)
        else:
            result = kfold_classifier(data, encode, kfold, settings, with_test)
        results[task] = {**result, "seconds": round(time.perf_counter() - started, 1)}
    return results


def embed(encode: EncodeFn, sentences: list[str]) -> np.ndarray:
    """(N, D) float32 embeddings, each distinct sentence encoded once."""
    distinct = list(dict.fromkeys(sentences))
    row = {s: i for i, s in enumerate(distinct)}
    vectors = np.asarray(encode(distinct), dtype=np.float32)
    return vectors[[row[s] for s in sentences]]


def folds(labels: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=SEED).split(np.zeros(len(labels)), labels))


def percent(accuracy: float) -> float:
    return round(100 * accuracy, 2)


def choose_l2(fold_accuracies: list[list[float]]) -> tuple[int, float]:
    """SentEval's choice: per penalty the mean fold accuracy, x100 rounded to 2 decimals; the first best wins."""
    scores = [round(100 * float(np.mean(a)), 2) for a in fold_accuracies]
    best = int(np.argmax(scores))
    return best, scores[best]


def inner_kfold(x: np.ndarray, y: np.ndarray, num_classes: int, k: int, settings: ProbeSettings, with_test: bool = True) -> dict:
    """SentEval's InnerKFoldClassifier (MR, CR, SUBJ, MPQA): see the module docstring."""
    outer = folds(y, k)
    # every inner fit of every outer fold at once: (outer fold, penalty, inner fold)
    inner = [[(train[a], train[b]) for a, b in folds(y[train], k)] for train, _ in outer]
    fits = [Fit(tr, reg, valid=va) for f in range(k) for reg in L2_REGS for tr, va in inner[f]]
    fitted = iter(fit_probes(x, y, fits, num_classes, settings))
    chosen, dev_scores = [], []
    for _ in range(k):
        accuracies = [[next(fitted).valid_accuracy for _ in range(k)] for _ in L2_REGS]
        best, score = choose_l2(accuracies)
        chosen.append(L2_REGS[best])
        dev_scores.append(score)
    result = {"devacc": round(float(np.mean(dev_scores)), 2), "ndev": len(y), "ntest": len(y), "l2reg": chosen}
    if with_test:
        finals = fit_probes(x, y, [Fit(train, reg) for (train, _), reg in zip(outer, chosen)], num_classes, settings)
        test_scores = [percent(probe.accuracy(torch_rows(x, test), y[test])) for probe, (_, test) in zip(finals, outer)]
        result["acc"] = round(float(np.mean(test_scores)), 2)
        result["fold_acc"] = test_scores
    return result


def kfold_classifier(data: TransferTask, encode: EncodeFn, k: int, settings: ProbeSettings, with_test: bool = True) -> dict:
    """SentEval's KFoldClassifier (TREC; MRPC with pair features): see the module docstring."""
    train, test = data.splits["train"], data.splits["test"]
    if train.text_b is None:
        x_train, x_test = embed(encode, train.text), embed(encode, test.text)
    else:
        vectors = [embed(encode, s) for s in (train.text, train.text_b, test.text, test.text_b)]
        x_train, x_test = pair_features(*vectors[:2]), pair_features(*vectors[2:])
    x, y = np.concatenate([x_train, x_test]), np.concatenate([train.labels, test.labels])
    train_rows, test_rows = np.arange(len(train)), len(train) + np.arange(len(test))
    cv = folds(train.labels, k)
    fitted = iter(fit_probes(x, y, [Fit(a, reg, valid=b) for reg in L2_REGS for a, b in cv], data.num_classes, settings))
    best, score = choose_l2([[next(fitted).valid_accuracy for _ in cv] for _ in L2_REGS])
    result = {"devacc": score, "ndev": len(train), "ntest": len(test), "l2reg": L2_REGS[best]}
    if with_test:
        (final,) = fit_probes(x, y, [Fit(train_rows, L2_REGS[best])], data.num_classes, settings)
        predicted = final.predict(torch_rows(x, test_rows))
        result["acc"] = percent(float((predicted == test.labels).mean()))
        if data.name == "mrpc":
            result["f1"] = percent(f1_score(test.labels, predicted))  # SentEval's MRPC F1
    return result


def split_classifier(data: TransferTask, encode: EncodeFn, settings: ProbeSettings, with_test: bool = True) -> dict:
    """SentEval's SplitClassifier (SST-2): see the module docstring."""
    parts = [data.splits[key] for key in ("train", "dev", "test")]
    x = np.concatenate([embed(encode, part.text) for part in parts])
    y = np.concatenate([part.labels for part in parts])
    offsets = np.cumsum([0] + [len(part) for part in parts])
    train_rows, dev_rows, test_rows = (np.arange(offsets[i], offsets[i + 1]) for i in range(3))
    fitted = fit_probes(x, y, [Fit(train_rows, reg, valid=dev_rows) for reg in L2_REGS], data.num_classes, settings)
    best, score = choose_l2([[probe.valid_accuracy] for probe in fitted])
    result = {"devacc": score, "ndev": len(dev_rows), "ntest": len(test_rows), "l2reg": L2_REGS[best]}
    if with_test:
        result["acc"] = percent(fitted[best].accuracy(torch_rows(x, test_rows), y[test_rows]))
    return result


def pair_features(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """SentEval's MRPC features: [|u - v|, u * v], (N, 2D)."""
    return np.concatenate([np.abs(u - v), u * v], axis=1)


def torch_rows(x: np.ndarray, rows: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(x[rows])


def average(results: dict[str, dict], key: str) -> float | None:
    values = [r[key] for r in results.values() if key in r]
    return round(float(np.mean(values)), 2) if values and len(values) == len(results) else None


# ---------------------------------------------------------------------- pre-training overlap
def pretraining_overlap(model_name_or_path, hops: int = 5) -> dict | None:
    """Which transfer tasks' sentences the encoder saw in MLM pre-training, read from a `pretrain_log.json`
    (simcse_lab.pretrain writes one) in the model directory or in the model it was trained from (its
    simcse_config.json's recipe), following up to `hops` such links. None when nothing says so."""
    path = Path(str(model_name_or_path))
    for _ in range(hops):
        if not path.is_dir():
            return None
        log = path / "pretrain_log.json"
        if log.is_file():
            sources = json.loads(log.read_text()).get("corpus", {}).get("sources", {})
            files = [str(s.get("file", "")) for s in sources.values()]
            seen = [TRANSFER_DISPLAY_NAMES[t] for t in TRANSFER_TASKS if any(folder_of(t) in f for f in files)]
            return {"tasks": seen, "source": str(log)} if seen else None
        config = path / "simcse_config.json"
        parent = json.loads(config.read_text()).get("training", {}).get("recipe", {}).get("model_name_or_path") if config.is_file() else None
        if not parent:
            return None
        path = Path(parent)
    return None


def folder_of(task: str) -> str:
    return {"sst2": "transfer/SST/", "trec": "transfer/TREC/", "mrpc": "transfer/MRPC/"}.get(task, f"transfer/{TRANSFER_DISPLAY_NAMES[task]}/")
