"""SBERT's classification objective on NLI: the supervised baseline SimCSE compares against.

Reimers & Gurevych (2019), "Sentence-BERT: Sentence Embeddings using Siamese BERT-Networks" (EMNLP).
Both sentences of an NLI pair go through the same encoder (a siamese network), giving u and v; a
linear softmax classifier reads their concatenation with the element-wise difference,

    o = softmax(W [u; v; |u - v|] + b),      W: (num_labels, 3D),

and the encoder is trained with cross-entropy against the gold label (entailment / neutral /
contradiction). The classifier is thrown away afterwards; only the encoder is kept, and similarity
is the cosine of u and v. SBERT found (u, v, |u - v|) the best of the combinations they tried, and
mean pooling ("avg" here, `DEFAULT_POOLER`) better than CLS, so avg is the default for this objective.

Why SimCSE compares with it. SBERT-NLI is strong on STS, but its objective never pushes unrelated
sentences apart in cosine: nothing in a 3-way classifier asks for a uniform spread, so its embeddings
stay anisotropic (high average cosine; see Gao et al. 2021, Sec. 5 and Fig. 2 on alignment /
uniformity). Supervised SimCSE uses the same NLI data as contrastive pairs (entailment = positive,
contradiction = hard negative), which improves uniformity as well.

Data. `load_nli_pairs` reads SNLI/MNLI as (premise, hypothesis, label id) triples from a CSV
`sent0,sent1,label` or from SentEval's layout (`s1.<split>`, `s2.<split>`, `labels.<split>`).
Label ids follow the Hugging Face `snli` / GLUE MNLI convention: 0 entailment, 1 neutral,
2 contradiction.
"""

from __future__ import annotations

import csv
import json
import os
import warnings
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from .errors import SimCSELabError

__all__ = [
    "NLI_LABELS", "LABEL_TO_ID", "ID_TO_LABEL", "DEFAULT_POOLER", "NLIPair",
    "SBERTHead", "sbert_features", "sbert_classification_loss", "load_nli_pairs", "write_nli_csv",
]

NLI_LABELS = ("entailment", "neutral", "contradiction")  # index = label id (HF snli / GLUE MNLI order)
LABEL_TO_ID = {name: i for i, name in enumerate(NLI_LABELS)}
ID_TO_LABEL = dict(enumerate(NLI_LABELS))
NO_GOLD_LABEL = "-"  # SNLI's marker for pairs without annotator agreement; skipped, as SentEval and SBERT do
DEFAULT_POOLER = "avg"  # SBERT's mean pooling
CSV_COLUMNS = ("sent0", "sent1", "label")
SENTEVAL_SPLITS = ("train", "dev", "test")
HEAD_DIR = "sbert_head"

NLIPair = tuple[str, str, int]


# ---------------------------------------------------------------------- model and loss
def sbert_features(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """[u; v; |u - v|]. u, v: (B, D) -> (B, 3D)."""
    return torch.cat([u, v, (u - v).abs()], dim=-1)


class SBERTHead(nn.Module):
    """The softmax classifier of SBERT: Linear(3D, num_labels) on (u, v, |u - v|)."""

    def __init__(self, dim: int, num_labels: int = len(NLI_LABELS)):
        super().__init__()
        self.dim, self.num_labels = int(dim), int(num_labels)
        self.linear = nn.Linear(3 * self.dim, self.num_labels)

    def forward(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_labels) for sentence embeddings u, v (B, D)."""
        if u.shape != v.shape or u.shape[-1] != self.dim:
            raise SimCSELabError(f"SBERTHead({self.dim}) needs u and v of shape (B, {self.dim}); got {tuple(u.shape)} and {tuple(v.shape)}")
        return self.linear(sbert_features(u, v))

    def save(self, directory: str | os.PathLike) -> Path:
        """Write directory/sbert_head/model.safetensors (the state_dict) and config.json."""
        target = Path(directory) / HEAD_DIR
        target.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}, str(target / "model.safetensors"))
        config = {"dim": self.dim, "num_labels": self.num_labels, "features": "u,v,|u-v|", "labels": list(NLI_LABELS)}
        (target / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        return target

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "SBERTHead":
        target = Path(directory) / HEAD_DIR
        for name in ("config.json", "model.safetensors"):
            if not (target / name).is_file():
                raise SimCSELabError(f"no SBERT head in {target}: {name} is missing")
        config = json.loads((target / "config.json").read_text())
        head = cls(config["dim"], config["num_labels"])
        head.load_state_dict(load_file(str(target / "model.safetensors")))
        return head


def sbert_classification_loss(u: torch.Tensor, v: torch.Tensor, labels: torch.Tensor, head: SBERTHead) -> torch.Tensor:
    """Mean softmax cross-entropy of head(u, v) against labels. u, v: (B, D); labels: (B,) ids."""
    logits = head(u, v)  # (B, num_labels)
    return F.cross_entropy(logits.float(), labels.to(logits.device).long())


# ---------------------------------------------------------------------- data
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
    with open(path, encoding="utf8", errors="replace", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
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
    return finish(pairs, path.name, skipped, no_gold)


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
        columns = [file.read_text(encoding="utf8", errors="replace").splitlines() for file in files]
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
        pairs += finish(kept, f"{folder.name}/*.{name}", skipped, no_gold)
    return pairs


def finish(pairs: list[NLIPair], name: str, skipped: int, no_gold: int) -> list[NLIPair]:
    if skipped or no_gold:
        parts = [f"{skipped} row(s) with an empty field"] if skipped else []
        parts += [f"{no_gold} row(s) without a gold label ('-')"] if no_gold else []
        warnings.warn(f"{name}: skipped {' and '.join(parts)}", stacklevel=3)
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
