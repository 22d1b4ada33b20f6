"""STS evaluation sets: SentEval's layout on disk, the MTEB copies on the hub.

Local first: every loader reads `data_dir`, which defaults to $SIMCSE_LAB_DATA. The layout is
SentEval's (what `../shared/data` and SentEval's download script produce):

    sts/STS12-en-test ... STS16-en-test/STS.input.<subset>.txt, STS.gs.<subset>.txt
    sts/STSBenchmark/sts-{train,dev,test}.csv
    sick/SICK_train.txt, SICK_trial.txt, SICK_test_annotated.txt

With no local copy, the loaders fall back to the Hugging Face hub (the MTEB copies of the same sets);
offline with nothing local they raise one error that says what to do.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import SimCSELabError, unknown_choice
from ..paths import DATA_ENV_VAR, resolve_data_dir
from .text import read_lines

STS_TASKS = ("sts12", "sts13", "sts14", "sts15", "sts16", "stsb", "sickr")
ALL7 = STS_TASKS
TASK_DISPLAY_NAMES = {
    "sts12": "STS12", "sts13": "STS13", "sts14": "STS14", "sts15": "STS15", "sts16": "STS16",
    "stsb": "STSBenchmark", "sickr": "SICKRelatedness",
}
# SentEval's subsets ("all" = their concatenation). STS13's SMT subset is not public, as in SentEval.
STS_SUBSETS = {
    "sts12": ("MSRpar", "MSRvid", "SMTeuroparl", "surprise.OnWN", "surprise.SMTnews"),
    "sts13": ("FNWN", "headlines", "OnWN"),
    "sts14": ("deft-forum", "deft-news", "headlines", "images", "OnWN", "tweet-news"),
    "sts15": ("answers-forums", "answers-students", "belief", "headlines", "images"),
    "sts16": ("answer-answer", "headlines", "plagiarism", "postediting", "question-question"),
}
SPLITS = ("train", "dev", "test")
SICK_FILES = {"train": "SICK_train.txt", "dev": "SICK_trial.txt", "test": "SICK_test_annotated.txt"}
# Hub copies used when there is no local data (the MTEB versions of the same test sets).
HUB_STS = {
    "sts12": "mteb/sts12-sts", "sts13": "mteb/sts13-sts", "sts14": "mteb/sts14-sts", "sts15": "mteb/sts15-sts",
    "sts16": "mteb/sts16-sts", "stsb": "mteb/stsbenchmark-sts", "sickr": "mteb/sickr-sts",
}
HUB_SPLITS = {"train": "train", "dev": "validation", "test": "test"}
HOW_TO_GET_DATA = (
    f"Point simcse_lab at a local copy with the {DATA_ENV_VAR} environment variable (or data_dir=...), laid out as "
    "SentEval's data/downstream folder (SentEval's get_transfer_data.bash downloads it), or connect to the internet "
    "so the Hugging Face hub copy can be downloaded."
)

Pair = tuple[str, str, float]


def check_task(task: str) -> str:
    if task not in STS_TASKS:
        raise unknown_choice("STS task", task, STS_TASKS)
    return task


def check_split(task: str, split: str) -> str:
    if split not in SPLITS:
        raise unknown_choice("split", split, SPLITS)
    if task in STS_SUBSETS and split != "test":
        raise SimCSELabError(f"{task} has only a test split (SentEval evaluates STS12-16 unsupervised); use split='test'")
    return split


def load_sts(task: str, split: str = "test", data_dir: str | os.PathLike | None = None) -> list[Pair]:
    """Scored sentence pairs (s1, s2, gold 0-5) of one STS task, in file order.

    STS12-16: the SentEval subsets concatenated (unscored pairs, with a blank gold line, skipped).
    Pair counts match SentEval: STS12 3108, STS13 1500, STS14 3750, STS15 3000, STS16 1186;
    STS-B 5749 / 1500 / 1379 and SICK 4500 / 500 / 4927 for train / dev / test.
    Whitespace inside sentences is normalised to single spaces, as SentEval's tokenise-then-join does.
    """
    check_split(check_task(task), split)
    root = resolve_data_dir(data_dir)
    if root is None:
        return load_sts_from_hub(task, split)
    if task in STS_SUBSETS:
        return [pair for subset in load_sts_subsets(task, root).values() for pair in subset]
    if task == "stsb":
        return read_stsb(require_file(root / "sts" / "STSBenchmark" / f"sts-{split}.csv", task))
    return read_sick(require_file(root / "sick" / SICK_FILES[split], task))


def load_sts_subsets(task: str, data_dir: str | os.PathLike | None = None) -> dict[str, list[Pair]] | None:
    """STS12-16's scored pairs per SentEval subset (their concatenation, in this order, is `load_sts(task)`);
    None for a task without subsets (STS-B, SICK-R) or when the data come from the hub, whose copies do not
    say which subset a pair belongs to."""
    check_task(task)
    root = resolve_data_dir(data_dir)
    if task not in STS_SUBSETS or root is None:
        return None
    folder = root / "sts" / f"{task.upper()}-en-test"
    return {subset: read_senteval_subset(folder, subset) for subset in STS_SUBSETS[task]}


def require_file(path: Path, task: str) -> Path:
    if not path.is_file():
        raise SimCSELabError(f"{task}: missing data file {path}. {HOW_TO_GET_DATA}")
    return path


def clean(sentence: str) -> str:
    return " ".join(sentence.split())


def gold_score(value: str, path: Path, line: int) -> float:
    """A gold similarity read from line `line` of path: a finite number, or an error naming the place."""
    try:
        score = float(value)
    except ValueError:
        score = None
    if score is None or score != score or score in (float("inf"), float("-inf")):
        raise SimCSELabError(f"{path}, line {line}: the gold score {value.strip()!r:.40} is not a number; the data file is "
                             f"damaged. {HOW_TO_GET_DATA}")
    return score


def tab_fields(line: str, path: Path, number: int, needed: int, layout: str) -> list[str]:
    fields = line.split("\t")
    if len(fields) < needed:
        delimited = " (it looks comma-delimited)" if "," in line and len(line.split(",")) >= needed else ""
        raise SimCSELabError(f"{path}, line {number}: {len(fields)} tab-separated field(s), expected {layout}{delimited}; the "
                             f"data file is damaged. {HOW_TO_GET_DATA}")
    return fields


def no_pairs(path: Path) -> SimCSELabError:
    return SimCSELabError(f"{path} holds no sentence pairs (it is empty); the data file is damaged. {HOW_TO_GET_DATA}")


def read_senteval_subset(folder: Path, subset: str) -> list[Pair]:
    input_path, gold_path = (require_file(folder / f"STS.{kind}.{subset}.txt", folder.name) for kind in ("input", "gs"))
    inputs, golds = read_lines(input_path, "STS file"), read_lines(gold_path, "STS file")
    if len(inputs) != len(golds):
        raise SimCSELabError(f"{folder.name}/{subset}: {len(inputs)} sentence pairs but {len(golds)} gold scores; the files are damaged")
    pairs = []
    for number, (line, gold) in enumerate(zip(inputs, golds), start=1):
        if gold.strip() == "":
            continue
        s1, s2 = tab_fields(line, input_path, number, 2, "2 (sentence1, sentence2)")[:2]
        pairs.append((clean(s1), clean(s2), gold_score(gold, gold_path, number)))
    return pairs


def read_stsb(path: Path) -> list[Pair]:
    pairs = []
    for number, line in enumerate(read_lines(path, "STS file"), start=1):
        if not line.strip():
            continue
        fields = tab_fields(line.strip(), path, number, 7, "7 (genre, file, year, id, score, sentence1, sentence2)")
        pairs.append((clean(fields[5]), clean(fields[6]), gold_score(fields[4], path, number)))
    if not pairs:
        raise no_pairs(path)
    return pairs


def read_stsb_genres(path: Path) -> list[str]:
    """The genre (first column: main-captions, main-forums, main-news) of each pair `read_stsb` reads, in its order."""
    return [fields[0] for fields in (line.strip().split("\t") for line in read_lines(path, "STS file"))
            if len(fields) >= 7]


def read_sick(path: Path) -> list[Pair]:
    lines = read_lines(path, "STS file")[1:]  # header: pair_ID sentence_A sentence_B ...
    pairs = []
    for number, line in enumerate(lines, start=2):
        if not line.strip():
            continue
        fields = tab_fields(line, path, number, 4, "4 (pair_ID, sentence_A, sentence_B, relatedness_score)")
        pairs.append((clean(fields[1]), clean(fields[2]), gold_score(fields[3], path, number)))
    if not pairs:
        raise no_pairs(path)
    return pairs


def load_sts_from_hub(task: str, split: str) -> list[Pair]:
    """The MTEB copy of an STS set from the Hugging Face hub (needs internet or the HF cache)."""
    try:
        from datasets import load_dataset  # noqa: PLC0415

        rows = load_dataset(HUB_STS[task], split=HUB_SPLITS[split])
    except Exception as exc:  # datasets raises many kinds of connection errors
        raise SimCSELabError(f"could not load {task} ({split}): no local data and the hub download failed "
                             f"({type(exc).__name__}). {HOW_TO_GET_DATA}") from exc
    return [(clean(r["sentence1"]), clean(r["sentence2"]), float(r["score"])) for r in rows]
