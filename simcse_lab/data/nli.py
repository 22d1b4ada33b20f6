"""NLI pairs with labels (SNLI / MNLI): the data of SBERT's classification objective.

`load_nli_pairs` reads (premise, hypothesis, label id) triples from a CSV `sent0,sent1,label` or from
SentEval's layout (`s1.<split>`, `s2.<split>`, `labels.<split>`). Label ids follow the Hugging Face
`snli` / GLUE MNLI convention: 0 entailment, 1 neutral, 2 contradiction.
"""

from __future__ import annotations

import csv
import os
import warnings
from pathlib import Path
from typing import Sequence

from ..errors import SimCSELabError, SimCSELabWarning
from .text import read_csv_rows, read_lines

__all__ = ["NLI_LABELS", "LABEL_TO_ID", "ID_TO_LABEL", "NLIPair", "load_nli_pairs", "write_nli_csv"]

NLI_LABELS = ("entailment", "neutral", "contradiction")  # index = label id (HF snli / GLUE MNLI order)
LABEL_TO_ID = {name: i for i, name in enumerate(NLI_LABELS)}
ID_TO_LABEL = dict(enumerate(NLI_LABELS))
NO_GOLD_LABEL = "-"  # SNLI's marker for pairs without annotator agreement; skipped, as SentEval and SBERT do
CSV_COLUMNS = ("sent0", "sent1", "label")
SENTEVAL_SPLITS = ("train", "dev", "test")

NLIPair = tuple[str, str, int]


def label_id(value: str, where: str) -> int | None:
    """The id of a label given as text ("entailment") or as an id ("0"); None for SNLI's "-"."""
    text = value.strip().lower()
    if text == NO_GOLD_LABEL:
        return None
    if text in LABEL_TO_ID:
        return LABEL_TO_ID[text]
    if text.isdigit() and int(text) < len(NLI_LABELS):
        return int(text)
    valid = ", ".join(f"{name} ({i})" for i, name in enumerate(NLI_LABELS))
    raise SimCSELabError(f"{where}: unknown NLI label {value!r}; valid labels are: {valid}")


def load_nli_pairs(path_or_dir: str | os.PathLike, split: str | Sequence[str] | None = None) -> list[NLIPair]:
    """NLI pairs as [(premise, hypothesis, label_id)], from a CSV or a SentEval-layout folder.

    - a .csv (or .tsv) file with a header naming the columns sent0, sent1, label (other columns are
      ignored); labels as text (entailment / neutral / contradiction) or ids (0 / 1 / 2);
    - a folder with s1.<split>, s2.<split>, labels.<split> (one item per line, SentEval's SNLI layout).
      split: one name or several; None reads every split present, in the order train, dev, test.

    Sentences are stripped. Rows with an empty field are skipped and counted in one warning, as are
    SNLI's "-" (no gold label) rows. Anything else wrong raises SimCSELabError naming the file.
    """
    path = Path(path_or_dir)
    if path.is_dir():
        return read_senteval_nli(path, split)
    if split is not None:
        raise SimCSELabError(f"split={split!r} only applies to a SentEval folder; {path} is a file")
    if not path.exists():
        raise SimCSELabError(f"NLI file {path} does not exist; pass a CSV with columns {','.join(CSV_COLUMNS)} "
                             "or a folder with s1.<split>, s2.<split>, labels.<split>")
    return read_nli_csv(path)


def read_nli_csv(path: Path) -> list[NLIPair]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = iter(read_csv_rows(path, delimiter, "NLI file"))  # strict UTF-8, a BOM dropped
    header = [h.strip().lower() for h in next(reader, [])]
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        hint = (" (this is a SimCSE triplet file; SBERT needs one label per pair)"
                if "hard_neg" in header else "")
        raise SimCSELabError(f"{path.name}: expected a header with columns {','.join(CSV_COLUMNS)}; "
                             f"missing {', '.join(missing)}, found {header or 'nothing (empty file)'}{hint}")
    columns = [header.index(c) for c in CSV_COLUMNS]
    pairs, skipped, no_gold = [], 0, 0
    for line_number, row in enumerate(reader, start=2):
        if len(row) < len(header) and any(cell.strip() for cell in row):
            raise SimCSELabError(f"{path.name}, line {line_number}: expected {len(header)} columns "
                                 f"({','.join(header)}), got {len(row)}: {row!r:.120}")
        fields = [row[i].strip() if i < len(row) else "" for i in columns]
        if not all(fields):
            skipped += 1
            continue
        label = label_id(fields[2], f"{path.name}, line {line_number}")
        if label is None:
            no_gold += 1
            continue
        pairs.append((fields[0], fields[1], label))
    return labelled_pairs(pairs, path.name, skipped, no_gold)


def read_senteval_nli(folder: Path, split: str | Sequence[str] | None) -> list[NLIPair]:
    present = [s for s in SENTEVAL_SPLITS if (folder / f"labels.{s}").is_file()]
    if split is None:
        splits = present
        if not splits:
            raise SimCSELabError(f"{folder} holds no SentEval NLI files: expected s1.<split>, s2.<split>, labels.<split> "
                                 f"for a split in {', '.join(SENTEVAL_SPLITS)} (for example s1.dev, s2.dev, labels.dev)")
    else:
        splits = [split] if isinstance(split, str) else list(split)
    pairs: list[NLIPair] = []
    for name in splits:
        files = [folder / f"{prefix}.{name}" for prefix in ("s1", "s2", "labels")]
        missing = [file.name for file in files if not file.is_file()]
        if missing:
            raise SimCSELabError(f"SentEval NLI file(s) {', '.join(missing)} missing in {folder} "
                                 f"(split {name!r}; splits present: {', '.join(present) or 'none'})")
        columns = [read_lines(file, "NLI file") for file in files]
        lengths = [len(c) for c in columns]
        if len(set(lengths)) != 1:
            raise SimCSELabError(f"{folder}: s1.{name}, s2.{name} and labels.{name} must have one line per pair, "
                                 f"but they have {lengths[0]}, {lengths[1]} and {lengths[2]} lines")
        skipped, no_gold, kept = 0, 0, []
        for line_number, (s1, s2, label) in enumerate(zip(*columns), start=1):
            s1, s2, label = s1.strip(), s2.strip(), label.strip()
            if not (s1 and s2 and label):
                skipped += 1
                continue
            label_value = label_id(label, f"labels.{name}, line {line_number}")
            if label_value is None:
                no_gold += 1
                continue
            kept.append((s1, s2, label_value))
        pairs += labelled_pairs(kept, f"{folder.name}/*.{name}", skipped, no_gold)
    return pairs


def labelled_pairs(pairs: list[NLIPair], name: str, skipped: int, no_gold: int) -> list[NLIPair]:
    """The pairs read, after one warning that counts what was skipped; an error if none is left."""
    if skipped or no_gold:
        parts = [f"{skipped} row(s) with an empty field"] if skipped else []
        parts += [f"{no_gold} row(s) without a gold label ('-')"] if no_gold else []
        warnings.warn(f"{name}: skipped {' and '.join(parts)}", SimCSELabWarning, stacklevel=3)
    if not pairs:
        raise SimCSELabError(f"{name} holds no labelled NLI pairs")
    return pairs


def write_nli_csv(pairs: Sequence[NLIPair], path: str | os.PathLike) -> Path:
    """Write NLI pairs as the CSV `sent0,sent1,label` (label names) that SBERT training reads."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        writer.writerows((s1, s2, ID_TO_LABEL[int(label)]) for s1, s2, label in pairs)
    return path
