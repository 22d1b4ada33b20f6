"""Datasets: STS evaluation sets (SentEval layout) and SimCSE's training files.

Local first: every loader reads `data_dir`, which defaults to $SIMCSE_LAB_DATA. The layout is
SentEval's (what `../shared/data` and SentEval's download script produce):

    sts/STS12-en-test ... STS16-en-test/STS.input.<subset>.txt, STS.gs.<subset>.txt
    sts/STSBenchmark/sts-{train,dev,test}.csv
    sick/SICK_train.txt, SICK_trial.txt, SICK_test_annotated.txt

With no local copy, the STS loaders fall back to the Hugging Face hub (the MTEB copies of the same
sets); offline with nothing local they raise one error that says what to do.

Training files, in the official SimCSE formats:
- unsupervised: a text file, one sentence per line (wiki1m_for_simcse.txt);
- supervised: a CSV with a header, `sent0,sent1` (pairs) or `sent0,sent1,hard_neg` (triplets);
- SBERT: a CSV `sent0,sent1,label` (see simcse_lab.sbert).
"""

from __future__ import annotations

import csv
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from .errors import SimCSELabError, unknown_choice
from .paths import DATA_ENV_VAR, resolve_data_dir

STS_TASKS = ("sts12", "sts13", "sts14", "sts15", "sts16", "stsb", "sickr")
ALL7 = STS_TASKS
# Tokens kept per sentence when an STS sentence is encoded for scoring, in training (STS-B dev) and in
# `simcse-lab evaluate`: longer than any STS-B dev sentence (58 tokens at most with the default encoder's
# tokenizer), as SentEval's batcher does not truncate; training's max_seq_length of 32 would cut 8% of them.
EVAL_MAX_LENGTH = 128
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
SIMCSE_HUB_REPO = "princeton-nlp/datasets-for-simcse"
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
        pairs: list[Pair] = []
        for subset in STS_SUBSETS[task]:
            pairs.extend(read_senteval_subset(root / "sts" / f"{task.upper()}-en-test", subset))
        return pairs
    if task == "stsb":
        return read_stsb(require_file(root / "sts" / "STSBenchmark" / f"sts-{split}.csv", task))
    return read_sick(require_file(root / "sick" / SICK_FILES[split], task))


def require_file(path: Path, task: str) -> Path:
    if not path.is_file():
        raise SimCSELabError(f"{task}: missing data file {path}. {HOW_TO_GET_DATA}")
    return path


def clean(sentence: str) -> str:
    return " ".join(sentence.split())


def read_senteval_subset(folder: Path, subset: str) -> list[Pair]:
    inputs = require_file(folder / f"STS.input.{subset}.txt", folder.name).read_text(encoding="utf8").splitlines()
    golds = require_file(folder / f"STS.gs.{subset}.txt", folder.name).read_text(encoding="utf8").splitlines()
    if len(inputs) != len(golds):
        raise SimCSELabError(f"{folder.name}/{subset}: {len(inputs)} sentence pairs but {len(golds)} gold scores; the files are damaged")
    pairs = []
    for line, gold in zip(inputs, golds):
        if gold.strip() == "":
            continue
        s1, s2 = line.split("\t")[:2]
        pairs.append((clean(s1), clean(s2), float(gold)))
    return pairs


def read_stsb(path: Path) -> list[Pair]:
    pairs = []
    for line in path.read_text(encoding="utf8").splitlines():
        fields = line.strip().split("\t")
        if len(fields) >= 7:
            pairs.append((clean(fields[5]), clean(fields[6]), float(fields[4])))
    return pairs


def read_sick(path: Path) -> list[Pair]:
    lines = path.read_text(encoding="utf8").splitlines()[1:]  # header: pair_ID sentence_A sentence_B ...
    pairs = []
    for line in lines:
        fields = line.split("\t")
        if len(fields) >= 4:
            pairs.append((clean(fields[1]), clean(fields[2]), float(fields[3])))
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


# ---------------------------------------------------------------------- training files
@dataclass
class TrainingData:
    """Rows of a training file. columns: 1 (unsup sentences), 2 (pairs), 3 (triplets) or 'label' (SBERT)."""

    mode: str  # "unsup" | "pairs" | "triplets" | "sbert"
    rows: list[tuple]
    skipped_empty: int = 0
    source: str = ""


TRAIN_MODES = ("unsup", "pairs", "triplets", "sbert")


def load_training_file(path: str | os.PathLike) -> TrainingData:
    """Read a training file; the format decides the mode, as in the official train.py:
    .txt -> unsupervised sentences; .csv with 2 columns -> pairs; with 3 -> pairs + hard negatives;
    a CSV whose third column is `label` -> SBERT pairs with NLI labels.
    """
    path = Path(path)
    check_readable(path)
    if path.suffix.lower() in (".csv", ".tsv"):
        return read_csv_training_file(path)
    sentences, skipped = read_sentences(path)
    return TrainingData("unsup", [(s,) for s in sentences], skipped, str(path))


def check_readable(path: Path) -> None:
    if not path.exists():
        raise SimCSELabError(f"training file {path} does not exist; check the path (official files: wiki1m_for_simcse.txt, "
                             f"nli_for_simcse.csv from the hub dataset {SIMCSE_HUB_REPO})")
    if path.is_dir():
        raise SimCSELabError(f"{path} is a directory; pass a .txt file (one sentence per line) or a .csv file")
    if not os.access(path, os.R_OK):
        raise SimCSELabError(f"training file {path} is not readable (permissions); fix them with chmod or copy the file")
    if path.stat().st_size == 0:
        raise SimCSELabError(f"training file {path} is empty; it needs one sentence per line (.txt) or a header and rows (.csv)")


def read_sentences(path: str | os.PathLike) -> tuple[list[str], int]:
    """Non-empty stripped lines of a text file, and how many empty lines were skipped."""
    path = Path(path)
    check_readable(path)
    sentences, skipped = [], 0
    with open(path, encoding="utf8", errors="replace") as handle:
        for line in handle:
            line = line.strip()
            if line:
                sentences.append(line)
            else:
                skipped += 1
    if skipped:
        warnings.warn(f"{path.name}: skipped {skipped} empty line(s)", stacklevel=2)
    if not sentences:
        raise SimCSELabError(f"{path} holds no sentences (only empty lines)")
    return sentences, skipped


CSV_LAYOUTS = {2: ("sent0", "sent1"), 3: ("sent0", "sent1", "hard_neg")}


def read_csv_training_file(path: Path) -> TrainingData:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with open(path, encoding="utf8", errors="replace", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = [h.strip() for h in next(reader, [])]
        rows = list(reader)
    if header and header[-1].lower() == "label" and len(header) == 3:
        from .sbert import load_nli_pairs  # noqa: PLC0415

        return TrainingData("sbert", load_nli_pairs(path), 0, str(path))
    if len(header) not in CSV_LAYOUTS:
        raise SimCSELabError(
            f"{path.name}: expected a CSV header with 2 columns (sent0,sent1), 3 columns (sent0,sent1,hard_neg) "
            f"or sent0,sent1,label; found {len(header)} column(s): {header}")
    width = len(header)
    kept, skipped = [], 0
    for line_number, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            skipped += 1
            continue
        if len(row) != width or any(not cell.strip() for cell in row):
            raise SimCSELabError(f"{path.name}, line {line_number}: expected {width} non-empty columns {list(CSV_LAYOUTS[width])}, "
                                 f"got {len(row)}: {row!r:.120}")
        kept.append(tuple(cell.strip() for cell in row))
    if skipped:
        warnings.warn(f"{path.name}: skipped {skipped} empty row(s)", stacklevel=2)
    if not kept:
        raise SimCSELabError(f"{path.name} has a header but no rows")
    return TrainingData("pairs" if width == 2 else "triplets", kept, skipped, str(path))


def download_simcse_training_file(name: str = "wiki1m_for_simcse.txt", cache_dir: str | None = None) -> Path:
    """Download an official SimCSE training file (wiki1m_for_simcse.txt or nli_for_simcse.csv) from the hub."""
    valid = ("wiki1m_for_simcse.txt", "nli_for_simcse.csv")
    if name not in valid:
        raise unknown_choice("SimCSE training file", name, valid)
    try:
        from huggingface_hub import hf_hub_download  # noqa: PLC0415

        return Path(hf_hub_download(SIMCSE_HUB_REPO, name, repo_type="dataset", cache_dir=cache_dir))
    except Exception as exc:
        raise SimCSELabError(f"could not download {name} from the hub dataset {SIMCSE_HUB_REPO} ({type(exc).__name__}); "
                             "offline, use the local subsets in the data directory (wiki/wiki1m_head.txt, "
                             "nli/snli_devtest_triplets.csv) or copy the file over by hand") from exc


UNSUP_SOURCES = ("wiki/wiki1m_head.txt", "wordnet/wordnet_examples.txt")


def write_unsup_training_file(output_path: str | os.PathLike, data_dir=None) -> Path:
    """The offline unsupervised training file: the wiki1m subset plus WordNet example sentences.

    One sentence per line, deduplicated, the wiki subset's cut-off last line dropped. Neither source
    overlaps the STS evaluation sets. Online, use wiki1m_for_simcse.txt (download_simcse_training_file).
    """
    root = resolve_data_dir(data_dir)
    if root is None:
        raise SimCSELabError(f"no local data directory: set {DATA_ENV_VAR} or pass data_dir; online, use "
                             "download_simcse_training_file('wiki1m_for_simcse.txt') instead")
    sentences: dict[str, None] = {}
    for relative in UNSUP_SOURCES:
        path = require_file(root / relative, "unsupervised training data")
        lines = [" ".join(line.split()) for line in path.read_text(encoding="utf8", errors="replace").splitlines()]
        if relative.startswith("wiki/"):
            lines = lines[:-1]  # the subset's last line is cut off mid-sentence
        sentences.update((line, None) for line in lines if line)
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    output_path.write_text("\n".join(sentences) + "\n", encoding="utf8")
    return output_path
