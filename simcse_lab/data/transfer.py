"""SentEval's seven transfer tasks (the SimCSE paper's Table 7), read as SentEval reads them.

Local layout under `data_dir` (default $SIMCSE_LAB_DATA), SentEval's data/downstream folders under `transfer/`:

    transfer/MR/rt-polarity.{pos,neg}          MR    10,662 sentences, 2 classes, k-fold
    transfer/CR/custrev.{pos,neg}              CR     3,775 sentences, 2 classes, k-fold
    transfer/SUBJ/subj.{objective,subjective}  SUBJ  10,000 sentences, 2 classes, k-fold
    transfer/MPQA/mpqa.{pos,neg}               MPQA  10,606 phrases,   2 classes, k-fold
    transfer/SST/binary/sentiment-{train,dev,test}        SST-2 67,349 / 872 / 1,821, 2 classes
    transfer/TREC/{train_5500,TREC_10}.label   TREC   5,452 / 500 questions, 6 coarse classes
    transfer/MRPC/msr_paraphrase_{train,test}.txt         MRPC  4,076 / 1,725 sentence pairs, 2 classes

What SentEval does is kept, because it decides the folds: each line is split on whitespace and joined back
with single spaces (its batcher's `' '.join`), blank lines of CR and MPQA stay as empty sentences, the files
are read as latin-1 (MR, CR, SUBJ, MPQA, TREC) or utf-8 (SST, MRPC), and every split is sorted by word
count, then label (MRPC: words of A, of B, then label), a stable sort, before any fold is drawn.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SimCSELabError, unknown_choice
from ..paths import DATA_ENV_VAR, resolve_data_dir

TRANSFER_TASKS = ("mr", "cr", "subj", "mpqa", "sst2", "trec", "mrpc")  # the official evaluation.py's order
TRANSFER_DISPLAY_NAMES = {"mr": "MR", "cr": "CR", "subj": "SUBJ", "mpqa": "MPQA", "sst2": "SST2", "trec": "TREC", "mrpc": "MRPC"}
# The two files of each k-fold task, the first labelled 1 (SentEval's BinaryClassifierEval(pos, neg)).
BINARY_FILES = {
    "mr": ("MR", "rt-polarity.pos", "rt-polarity.neg"),
    "cr": ("CR", "custrev.pos", "custrev.neg"),
    "subj": ("SUBJ", "subj.objective", "subj.subjective"),
    "mpqa": ("MPQA", "mpqa.pos", "mpqa.neg"),
}
TREC_CLASSES = {"ABBR": 0, "DESC": 1, "ENTY": 2, "HUM": 3, "LOC": 4, "NUM": 5}
HOW_TO_GET_TRANSFER_DATA = (
    f"Put SentEval's transfer data (its data/get_transfer_data.bash downloads data/downstream/MR, CR, ...) in a folder "
    f"named transfer/ inside the data directory, and point {DATA_ENV_VAR} (or --data_dir) at that data directory"
)


@dataclass(frozen=True)
class Split:
    """One split of a task: sentences (and, for MRPC, their partners) with integer labels, in SentEval's order."""

    text: list[str]
    labels: np.ndarray  # (N,) int64
    text_b: list[str] | None = None  # MRPC's second sentences

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class TransferTask:
    """A task's splits: "all" for the k-fold tasks (MR, CR, SUBJ, MPQA), else "train"/"test" (and "dev" for SST-2)."""

    name: str
    splits: dict[str, Split]
    num_classes: int
    files: tuple[str, ...]  # the data files read, relative to the data directory


def check_transfer_task(task: str) -> str:
    if task not in TRANSFER_TASKS:
        raise unknown_choice("transfer task", task, TRANSFER_TASKS)
    return task


def load_transfer_task(task: str, data_dir: str | os.PathLike | None = None) -> TransferTask:
    """One transfer task from the local copy (there is no hub fallback: SentEval's files are the protocol)."""
    check_transfer_task(task)
    root = resolve_data_dir(data_dir)
    if root is None:
        raise SimCSELabError(f"{TRANSFER_DISPLAY_NAMES[task]}: no data directory. {HOW_TO_GET_TRANSFER_DATA}")
    folder = root / "transfer"
    if task in BINARY_FILES:
        name, positive, negative = BINARY_FILES[task]
        pos = read_lines(folder / name / positive, task, "latin-1", splitlines=True)
        neg = read_lines(folder / name / negative, task, "latin-1", splitlines=True)
        split = sorted_split([words(s) for s in pos + neg], [1] * len(pos) + [0] * len(neg))
        return TransferTask(task, {"all": split}, 2, (f"transfer/{name}/{positive}", f"transfer/{name}/{negative}"))
    if task == "sst2":
        names = {"train": "sentiment-train", "dev": "sentiment-dev", "test": "sentiment-test"}
        splits = {key: read_sst(folder / "SST" / "binary" / file, task) for key, file in names.items()}
        return TransferTask(task, splits, 2, tuple(f"transfer/SST/binary/{file}" for file in names.values()))
    if task == "trec":
        files = {"train": "train_5500.label", "test": "TREC_10.label"}
        splits = {key: read_trec(folder / "TREC" / file, task) for key, file in files.items()}
        return TransferTask(task, splits, len(TREC_CLASSES), tuple(f"transfer/TREC/{file}" for file in files.values()))
    files = {"train": "msr_paraphrase_train.txt", "test": "msr_paraphrase_test.txt"}
    splits = {key: read_mrpc(folder / "MRPC" / file, task) for key, file in files.items()}
    return TransferTask(task, splits, 2, tuple(f"transfer/MRPC/{file}" for file in files.values()))


def read_lines(path: Path, task: str, encoding: str, splitlines: bool = False) -> list[str]:
    """The file's lines as SentEval reads them: `read().splitlines()` for MR/CR/SUBJ/MPQA (which also breaks at
    latin-1's \\x85 and the other Unicode line separators), `for line in f` for SST, TREC and MRPC."""
    if not path.is_file():
        raise SimCSELabError(f"{TRANSFER_DISPLAY_NAMES[task]}: missing data file {path}. {HOW_TO_GET_TRANSFER_DATA}")
    with open(path, encoding=encoding) as handle:
        return handle.read().splitlines() if splitlines else list(handle)


def words(line: str) -> list[str]:
    return line.split()


def sorted_split(tokens: list[list[str]], labels: list[int], tokens_b: list[list[str]] | None = None) -> Split:
    """SentEval's "sort to reduce padding" (it also fixes which sentence lands in which fold)."""
    if tokens_b is None:
        order = sorted(range(len(tokens)), key=lambda i: (len(tokens[i]), labels[i]))
    else:
        order = sorted(range(len(tokens)), key=lambda i: (len(tokens[i]), len(tokens_b[i]), labels[i]))
    return Split([" ".join(tokens[i]) for i in order], np.array([labels[i] for i in order], dtype=np.int64),
                 None if tokens_b is None else [" ".join(tokens_b[i]) for i in order])


def read_sst(path: Path, task: str) -> Split:
    tokens, labels = [], []
    for line in read_lines(path, task, "utf-8"):
        fields = line.strip().split("\t")
        tokens.append(words(fields[0]))
        labels.append(int(fields[1]))
    return sorted_split(tokens, labels)


def read_trec(path: Path, task: str) -> Split:
    tokens, labels = [], []
    for line in read_lines(path, task, "latin-1"):
        target, sample = line.strip().split(":", 1)
        if target not in TREC_CLASSES:
            raise SimCSELabError(f"TREC: unknown class {target!r} in {path}; the file is damaged")
        tokens.append(words(sample.split(" ", 1)[1]))  # drop the fine-grained label ("manner How did ...")
        labels.append(TREC_CLASSES[target])
    return sorted_split(tokens, labels)


def read_mrpc(path: Path, task: str) -> Split:
    tokens_a, tokens_b, labels = [], [], []
    for line in read_lines(path, task, "utf-8")[1:]:  # header: Quality, #1 ID, #2 ID, #1 String, #2 String
        fields = line.strip().split("\t")
        tokens_a.append(words(fields[3]))
        tokens_b.append(words(fields[4]))
        labels.append(int(fields[0]))
    return sorted_split(tokens_a, labels, tokens_b)
