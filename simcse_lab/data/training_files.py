"""SimCSE's training files, in the official formats (the file decides the mode, as in `train.py`):

- unsupervised: a text file, one sentence per line (wiki1m_for_simcse.txt);
- supervised: a CSV with a header, `sent0,sent1` (pairs) or `sent0,sent1,hard_neg` (triplets);
- SBERT: a CSV `sent0,sent1,label` (NLI pairs with labels, `simcse_lab.data.nli`);
- JSON (`.json` / `.jsonl`), read as the official train.py reads it through Hugging Face datasets' json
  loader: JSON Lines (one object per line) or one array of objects, whose columns, in the order their keys
  first appear, are taken by position: one column (e.g. `text`) = unsupervised, two = pairs, three = pairs +
  hard negatives (`sent0`, `sent1`, `hard_neg`), and, as for a CSV, a third column named `label` = SBERT.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..errors import SimCSELabError, SimCSELabWarning, unknown_choice
from .nli import label_id, load_nli_pairs
from .text import read_csv_rows, read_lines, read_text, text_lines

SIMCSE_HUB_REPO = "princeton-nlp/datasets-for-simcse"


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
    if path.suffix.lower() in JSON_SUFFIXES:
        return read_json_training_file(path)
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
    for line in read_lines(path, "training file"):  # strict UTF-8: a bad byte is named, never replaced
        line = line.strip()
        if line:
            sentences.append(line)
        else:
            skipped += 1
    if skipped:
        warnings.warn(f"{path.name}: skipped {skipped} empty line(s)", SimCSELabWarning, stacklevel=2)
    if not sentences:
        raise SimCSELabError(f"{path} holds no sentences (only empty lines)")
    return sentences, skipped


CSV_LAYOUTS = {2: ("sent0", "sent1"), 3: ("sent0", "sent1", "hard_neg")}


HEADER_NAME = re.compile(r"^[A-Za-z_][\w\-]*$")  # a column name, not a sentence


def check_header(path: Path, header: list[str]) -> None:
    """The first row must name the columns; a row of sentences there means the header line is missing."""
    if header and not all(HEADER_NAME.match(name) for name in header):
        raise SimCSELabError(f"{path.name}: the first row {header!r:.120} is not a header of column names; add a first line "
                             "sent0,sent1 (pairs), sent0,sent1,hard_neg (triplets) or sent0,sent1,label (SBERT)")


def read_csv_training_file(path: Path) -> TrainingData:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    rows = read_csv_rows(path, delimiter, "training file")
    header = [h.strip() for h in rows.pop(0)] if rows else []
    check_header(path, header)
    if header and header[-1].lower() == "label" and len(header) == 3:
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
        warnings.warn(f"{path.name}: skipped {skipped} empty row(s)", SimCSELabWarning, stacklevel=2)
    if not kept:
        raise SimCSELabError(f"{path.name} has a header but no rows")
    return TrainingData("pairs" if width == 2 else "triplets", kept, skipped, str(path))


JSON_SUFFIXES = (".json", ".jsonl")


def json_records(path: Path) -> list[tuple[str, object]]:
    """(where, record) for each record of a JSON Lines file or of a file holding one JSON array."""
    text = read_text(path, "training file")  # strict UTF-8, BOM dropped
    try:
        if text.lstrip().startswith("["):
            return [(f"item {i}", record) for i, record in enumerate(json.loads(text))]
        return [(f"line {n}", json.loads(line)) for n, line in enumerate(text_lines(text), start=1) if line.strip()]
    except json.JSONDecodeError as error:
        raise SimCSELabError(f"{path.name} is not JSON Lines or a JSON array ({error.msg}); write one object per line, for "
                             'example {"sent0": "...", "sent1": "...", "hard_neg": "..."}') from None


def read_json_training_file(path: Path) -> TrainingData:
    """A .json / .jsonl training file (module docstring). A record whose fields are all empty is skipped and
    counted; one with some fields missing or empty is an error naming it (the official code reads those as " ")."""
    records = [(where, {"text": r} if isinstance(r, str) else r) for where, r in json_records(path)]  # an array of strings: `text`
    columns: dict[str, None] = {}
    for where, record in records:
        if not isinstance(record, dict):
            raise SimCSELabError(f"{path.name}, {where}: expected a JSON object of columns, got {type(record).__name__} ({record!r:.60})")
        columns.update(dict.fromkeys(record))
    names = list(columns)
    sbert = len(names) == 3 and names[-1].lower() == "label"
    if not 1 <= len(names) <= 3:
        raise SimCSELabError(f"{path.name}: expected 1 column (sentences), 2 (sent0, sent1), 3 (sent0, sent1, hard_neg) or "
                             f"sent0, sent1, label; found {len(names)}: {names}")
    kept, skipped = [], 0
    for where, record in records:
        values = [record.get(name) for name in names]
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
            skipped += 1
            continue
        texts = values[:2] if sbert else values
        if any(not isinstance(v, str) or not v.strip() for v in texts):
            raise SimCSELabError(f"{path.name}, {where}: expected {len(names)} non-empty text fields {names}, got {record!r:.120}")
        if sbert:
            label = label_id(str(values[2]), f"{path.name}, {where}")
            if label is None:  # SNLI's "-": no gold label
                skipped += 1
                continue
            kept.append((texts[0].strip(), texts[1].strip(), label))
        else:
            kept.append(tuple(v.strip() for v in texts))
    if skipped:
        warnings.warn(f"{path.name}: skipped {skipped} empty or unlabelled record(s)", stacklevel=2)
    if not kept:
        raise SimCSELabError(f"{path.name} holds no records with text")
    mode = "sbert" if sbert else {1: "unsup", 2: "pairs", 3: "triplets"}[len(names)]
    return TrainingData(mode, kept, skipped, str(path))


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
