"""Sentence corpora built from the local data folder: the default encoder's MLM corpus and the
offline unsupervised SimCSE training file.

No pretrained BERT can be downloaded everywhere simcse_lab runs, so the project pre-trains a small
one itself. Its corpus is every *training-side* sentence of the local data folder:

- the head of SimCSE's wiki1m (the file's last line is cut off, so it is dropped),
- WordNet example sentences,
- SentEval transfer sentences (MR, CR, SUBJ, MPQA; text only, labels unused),
- SNLI dev/test sentences (premises and hypotheses),
- the STS-B *train* split and the SICK *train* split (sentences only, scores unused).

Evaluation text is never read: STS-B dev/test, STS12-16 and SICK trial/test are what the encoder
is judged on, and putting them in the pre-training corpus would leak them. The file list below is
closed for that reason; `FORBIDDEN_PREFIXES` makes the rule checkable.

Sentences are stripped, whitespace-normalised, deduplicated (first occurrence wins) and kept in a
fixed order: sources in the order of `SOURCES`, lines in file order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import SimCSELabError
from .text import text_lines
from ..paths import DATA_ENV_VAR, resolve_data_dir

# Evaluation files (relative to the data folder) that must never feed pre-training.
FORBIDDEN_PREFIXES = (
    "sts/STSBenchmark/sts-dev",
    "sts/STSBenchmark/sts-test",
    "sts/STSBenchmark/stsbenchmark",
    "sts/STS1",
    "sick/SICK_trial",
    "sick/SICK_test",
)


def read_text(path: Path) -> str:
    """File text as UTF-8, falling back to latin-1 (some SentEval releases are latin-1 encoded)."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _lines(text: str) -> list[str]:
    return text_lines(text)


def _lines_without_last(text: str) -> list[str]:
    return text_lines(text)[:-1]  # wiki1m_head.txt ends mid-sentence


def _tsv_columns(*columns: int, header: bool) -> Callable[[str], list[str]]:
    def extract(text: str) -> list[str]:
        rows = text_lines(text)[1 if header else 0:]
        out = []
        for row in rows:
            fields = row.split("\t")
            out.extend(fields[c] for c in columns if c < len(fields))
        return out
    return extract


@dataclass(frozen=True)
class CorpusSource:
    """One file of the corpus and how to pull sentences out of it."""

    name: str  # label used in the report
    relpath: str  # path below the data folder
    extract: Callable[[str], list[str]]  # file text -> sentences


SOURCES: tuple[CorpusSource, ...] = (
    CorpusSource("wiki1m_head", "wiki/wiki1m_head.txt", _lines_without_last),
    CorpusSource("wordnet", "wordnet/wordnet_examples.txt", _lines),
    CorpusSource("mr.pos", "transfer/MR/rt-polarity.pos", _lines),
    CorpusSource("mr.neg", "transfer/MR/rt-polarity.neg", _lines),
    CorpusSource("cr.pos", "transfer/CR/custrev.pos", _lines),
    CorpusSource("cr.neg", "transfer/CR/custrev.neg", _lines),
    CorpusSource("subj.objective", "transfer/SUBJ/subj.objective", _lines),
    CorpusSource("subj.subjective", "transfer/SUBJ/subj.subjective", _lines),
    CorpusSource("mpqa.pos", "transfer/MPQA/mpqa.pos", _lines),
    CorpusSource("mpqa.neg", "transfer/MPQA/mpqa.neg", _lines),
    CorpusSource("snli.s1.dev", "nli/s1.dev", _lines),
    CorpusSource("snli.s2.dev", "nli/s2.dev", _lines),
    CorpusSource("snli.s1.test", "nli/s1.test", _lines),
    CorpusSource("snli.s2.test", "nli/s2.test", _lines),
    # STS-B (SentEval layout): genre, file, year, id, score, sentence 1, sentence 2.
    CorpusSource("stsb.train", "sts/STSBenchmark/sts-train.csv", _tsv_columns(5, 6, header=False)),
    # SICK: pair_ID, sentence_A, sentence_B, relatedness_score, entailment_judgment.
    CorpusSource("sick.train", "sick/SICK_train.txt", _tsv_columns(1, 2, header=True)),
)


def normalise(sentence: str) -> str:
    """Strip and collapse internal whitespace runs to one space (the dedup key is the result)."""
    return " ".join(sentence.split())


def build_pretraining_corpus(data_dir, sources=SOURCES) -> tuple[list[str], dict]:
    """All pre-training sentences of `data_dir`, deduplicated, plus a report of what was read.

    Returns `(sentences, report)`; `report["sources"][name]` has `read` (non-empty lines read) and
    `kept` (new after dedup), `report["totals"]` has `read`, `sentences` and `whitespace_tokens`.
    Raises `SimCSELabError` naming the first missing file.
    """
    data_dir = Path(data_dir).expanduser()
    for source in sources:
        if source.relpath.startswith(FORBIDDEN_PREFIXES):
            raise SimCSELabError(f"{source.relpath} is evaluation data and must not be pre-trained on")
        if not (data_dir / source.relpath).is_file():
            raise SimCSELabError(
                f"pre-training corpus file missing: {data_dir / source.relpath} "
                "(point data_dir / SIMCSE_LAB_DATA at the data folder laid out as in its README)"
            )
    seen: set[str] = set()
    sentences: list[str] = []
    per_source = {}
    for source in sources:
        read = kept = 0
        for line in source.extract(read_text(data_dir / source.relpath)):
            sentence = normalise(line)
            if not sentence:
                continue
            read += 1
            if sentence not in seen:
                seen.add(sentence)
                sentences.append(sentence)
                kept += 1
        per_source[source.name] = {"file": source.relpath, "read": read, "kept": kept}
    report = {
        "data_dir": str(data_dir),
        "sources": per_source,
        "totals": {
            "read": sum(s["read"] for s in per_source.values()),
            "sentences": len(sentences),
            "whitespace_tokens": sum(len(s.split()) for s in sentences),
        },
    }
    return sentences, report


# The unsupervised training file is built from groups of sources (`simcse-lab prepare-data --sources ...`).
# wiki + wordnet is the offline stand-in for wiki1m_for_simcse.txt; the others are unlabelled text from the
# domains the STS sets are drawn from (image captions, news, forums, reviews), whose sentences are used
# without their labels or scores.
UNSUP_SOURCE_GROUPS = {
    "wiki": ("wiki1m_head",),
    "wordnet": ("wordnet",),
    "snli": ("snli.s1.dev", "snli.s2.dev", "snli.s1.test", "snli.s2.test"),
    "stsb_train": ("stsb.train",),
    "sick_train": ("sick.train",),
    "reviews": ("mr.pos", "mr.neg", "cr.pos", "cr.neg", "subj.objective", "subj.subjective", "mpqa.pos", "mpqa.neg"),
}
DEFAULT_UNSUP_SOURCES = ("wiki", "wordnet")
# The offline unsupervised recipe's corpus (recipes/unsup_default.json; chosen on STS-B dev against wiki + WordNet,
# benchmarks/README.md): every source group but STS-B train, so no sentence of the evaluated benchmark's own
# release is trained on.
IN_DOMAIN_SOURCES = ("wiki", "wordnet", "snli", "sick_train", "reviews")
# Evaluation splits whose sentences an unsupervised training file must not contain (normalised text compared):
# the STS sets reuse sentences across releases, so STS-B train, SICK train and even SNLI captions hold some.
EVALUATION_SPLITS = (("stsb", "dev"), ("stsb", "test"), ("sickr", "dev"), ("sickr", "test"), ("sts12", "test"),
                     ("sts13", "test"), ("sts14", "test"), ("sts15", "test"), ("sts16", "test"))


def match_key(sentence: str) -> str:
    """What "the same sentence" means across releases: lower-cased, alphanumerics only, single spaces
    ("A man plays." and SentEval's tokenised "a man plays ." match)."""
    return " ".join("".join(c if c.isalnum() else " " for c in sentence.lower()).split())


def evaluation_sentences(data_dir) -> set[str]:
    """match_key of every sentence of every evaluation split (EVALUATION_SPLITS)."""
    from .sts import load_sts  # noqa: PLC0415

    return {match_key(s) for task, split in EVALUATION_SPLITS for pair in load_sts(task, split, data_dir) for s in pair[:2]}


def unsup_corpus(data_dir, sources=DEFAULT_UNSUP_SOURCES) -> tuple[list[str], dict]:
    """The sentences of the chosen source groups (UNSUP_SOURCE_GROUPS), deduplicated, with every sentence that
    also occurs in an evaluation split removed; and a report: per source, sentences read, kept, and removed as
    evaluation sentences."""
    unknown = [s for s in sources if s not in UNSUP_SOURCE_GROUPS]
    if unknown or not sources:
        from ..errors import unknown_choice  # noqa: PLC0415

        raise unknown_choice("unsupervised source", (unknown or [""])[0], UNSUP_SOURCE_GROUPS)
    names = [name for group in sources for name in UNSUP_SOURCE_GROUPS[group]]
    chosen = [next(s for s in SOURCES if s.name == name) for name in names]
    sentences, report = build_pretraining_corpus(data_dir, chosen)
    forbidden = evaluation_sentences(data_dir)
    kept, removed = [], {}
    for sentence in sentences:
        if match_key(sentence) in forbidden:
            removed[sentence] = True
        else:
            kept.append(sentence)
    report["removed_as_evaluation_sentences"] = len(removed)
    report["totals"]["sentences"] = len(kept)
    report["sources_chosen"] = list(sources)
    return kept, report


def write_unsup_training_file(output_path: str | os.PathLike, data_dir=None, sources=DEFAULT_UNSUP_SOURCES) -> Path:
    """The offline unsupervised training file: one sentence per line, from the chosen source groups
    (default: the wiki1m subset plus WordNet example sentences, the stand-in for wiki1m_for_simcse.txt), with
    no sentence of an evaluation split (`unsup_corpus`). Online, use wiki1m_for_simcse.txt
    (download_simcse_training_file)."""
    root = resolve_data_dir(data_dir)
    if root is None:
        raise SimCSELabError(f"no local data directory: set {DATA_ENV_VAR} or pass data_dir; online, use "
                             "download_simcse_training_file('wiki1m_for_simcse.txt') instead")
    sentences, _ = unsup_corpus(root, sources)
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    output_path.write_text("\n".join(sentences) + "\n", encoding="utf8")
    return output_path
