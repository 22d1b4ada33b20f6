"""SimCSE's training files, in the official formats (the file decides the mode, as in `train.py`):

- unsupervised: a text file, one sentence per line (wiki1m_for_simcse.txt);
- supervised: a CSV with a header, `sent0,sent1` (pairs) or `sent0,sent1,hard_neg` (triplets);
- SBERT: a CSV `sent0,sent1,label` (NLI pairs with labels, `simcse_lab.data.nli`).
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..errors import SimCSELabError, SimCSELabWarning, unknown_choice
from .nli import load_nli_pairs
from .text import read_csv_rows, read_text

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
    for line in read_text(path, "training file").splitlines():  # strict UTF-8: a bad byte is named, never replaced
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
