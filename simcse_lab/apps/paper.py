"""The paper's headline rows, measured with this code: the route from the course to Table 5.

Gao, Yao & Chen (2021), Table 5 reports BERT-base (first-last avg.) at 56.70 average STS, unsupervised
SimCSE at 76.25 and supervised SimCSE at 81.57. The authors published both SimCSE checkpoints, so the
rows can be re-measured without training: `measure_paper_rows()` loads each checkpoint with the pooler
its row used and scores it with `evaluate_sts` and the geometry report, minutes on a CPU (the models are
BERT-base, 110M parameters; about 1.3 GB to download once).

One difference is stated, not hidden: the paper's first-last row averaged `hidden_states[0]` (the
embedding layer) and the last layer, a bug the official evaluation later fixed; this library's
`avg_first_last` uses `hidden_states[1]` (the first Transformer layer). `first_last_with_embeddings`
gives the paper's original variant, so both can be shown.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Callable, Mapping

import torch

from ..data.sts import ALL7
from ..errors import SimCSELabError
from ..evaluation.report import encoder_report
from ..evaluation.sts import EVAL_BATCH_SIZE, EVAL_MAX_LENGTH, evaluate_sts
from ..models.encoder import SimCSEEncoder
from ..models.pooling import masked_mean
from ..paths import DEFAULT_MODEL

# Table 5, BERT-base rows: STS12-16, STS-B, SICK-R and the average (the paper's numbers, not measured here).
PAPER_TABLE5 = {
    "BERT-base (first-last avg.)": (39.70, 59.38, 49.67, 66.03, 66.19, 53.87, 62.06, 56.70),
    "unsup. SimCSE-BERT-base": (68.40, 82.41, 74.38, 80.91, 78.56, 76.85, 72.23, 76.25),
    "sup. SimCSE-BERT-base": (75.30, 84.67, 80.19, 85.40, 80.82, 84.25, 80.39, 81.57),
}
# name -> (hub id, pooler): the pooler each row was evaluated with (official evaluation.py's --pooler).
PAPER_CHECKPOINTS = {
    "BERT-base (first-last avg.)": ("bert-base-uncased", "avg_first_last"),
    "unsup. SimCSE-BERT-base": ("princeton-nlp/unsup-simcse-bert-base-uncased", "cls_before_pooler"),
    "sup. SimCSE-BERT-base": ("princeton-nlp/sup-simcse-bert-base-uncased", "cls"),
}


def default_encoder_reference() -> dict | None:
    """What the embedded default encoder's recipes measured on the reference run (its model card's numbers, as
    data: measurements.json beside the weights; its "about" names where each figure was measured), or None."""
    path = Path(DEFAULT_MODEL) / "measurements.json"
    return json.loads(path.read_text()) if path.is_file() else None


def paper_scores(name: str) -> dict[str, float]:
    """A Table 5 row as evaluate_sts's dict (task -> score, "avg")."""
    return dict(zip([*ALL7, "avg"], PAPER_TABLE5[name]))


def first_last_with_embeddings(encoder: SimCSEEncoder) -> Callable[[list[str]], torch.Tensor]:
    """An encode function for the paper's original first-last average: the mean over tokens of
    (hidden_states[0] + hidden_states[-1]) / 2, the embedding layer and the last layer."""

    @torch.no_grad()
    def encode(sentences: list[str]) -> torch.Tensor:
        was_training = encoder.training
        encoder.eval()
        chunks = []
        try:
            for start in range(0, len(sentences), EVAL_BATCH_SIZE):
                batch = encoder.tokenize(sentences[start : start + EVAL_BATCH_SIZE], max_length=EVAL_MAX_LENGTH).to(encoder.device)
                states = encoder.backbone(**batch, output_hidden_states=True).hidden_states
                chunks.append(masked_mean((states[0] + states[-1]) / 2.0, batch["attention_mask"]).float().cpu())
        finally:
            encoder.train(was_training)
        return torch.cat(chunks)

    return encode


def measure_paper_rows(checkpoints: Mapping[str, tuple[str, str]] = PAPER_CHECKPOINTS, data_dir=None,
                       max_pairs: int | None = None, device: str | None = None) -> dict[str, dict]:
    """Each checkpoint's seven STS scores and geometry (average cosine, alignment, uniformity, spectrum), measured
    here: {name: {"sts": {task: score, "avg": ...}, "report": encoder_report(...), "source": id, "pooler": ...}}.
    For BERT-base's first-last row also "sts_with_embeddings": the paper's original variant (module docstring).

    Offline, a checkpoint that is neither cached nor a local directory raises one SimCSELabError that says what
    this would do with internet."""
    unavailable = [source for source, _ in checkpoints.values() if not available(source)]
    if unavailable:
        raise SimCSELabError(f"measuring the paper's rows needs the published checkpoints ({', '.join(unavailable)}; about "
                             "1.3 GB, downloaded once), and the Hugging Face hub cannot be reached from here and they are not "
                             "in its cache: run this with internet once (or pass local directories)")
    rows = {}
    for name, (source, pooler) in checkpoints.items():
        try:
            encoder = SimCSEEncoder.from_pretrained(source, pooler=pooler, device=device)
        except SimCSELabError as error:
            ids = ", ".join(s for s, _ in checkpoints.values())
            raise SimCSELabError(f"measuring the paper's rows needs the published checkpoints ({ids}; about 1.3 GB, "
                                 f"downloaded once): {source} could not be loaded. {str(error).split('. ', 1)[-1]}") from None

        def encode(sentences, encoder=encoder):
            return encoder.encode(sentences, batch_size=EVAL_BATCH_SIZE)

        row = {"source": source, "pooler": encoder.pooler, "sts": evaluate_sts(encode, data_dir=data_dir, max_pairs=max_pairs),
               "report": encoder_report(lambda s, encode=encode: encode(s).numpy(), data_dir=data_dir, max_pairs=max_pairs)}
        if pooler == "avg_first_last":
            row["sts_with_embeddings"] = evaluate_sts(first_last_with_embeddings(encoder), data_dir=data_dir, max_pairs=max_pairs)
        rows[name] = row
    return rows


def available(source: str) -> bool:
    """Whether from_pretrained can get `source` without waiting on retries: a local directory, a hub id already in
    the cache, or a hub that answers (a DNS look-up of huggingface.co within 3 s)."""
    if Path(source).expanduser().is_dir():
        return True
    try:
        from huggingface_hub import try_to_load_from_cache  # noqa: PLC0415

        if isinstance(try_to_load_from_cache(source, "config.json"), str):
            return True
    except (ImportError, ValueError):
        pass
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    previous = socket.getdefaulttimeout()
    try:
        socket.setdefaulttimeout(3)
        socket.getaddrinfo("huggingface.co", 443)
        return True
    except OSError:
        return False
    finally:
        socket.setdefaulttimeout(previous)


def table_rows(measured: Mapping[str, dict]) -> dict[str, dict[str, float]]:
    """Measured rows beside the paper's, for format_comparison_table: "<name> (paper)" and "<name> (measured here)"."""
    rows = {}
    for name, row in measured.items():
        if name in PAPER_TABLE5:
            rows[f"{name} (paper)"] = paper_scores(name)
        rows[f"{name} (measured here, {row['pooler']})"] = row["sts"]
        if "sts_with_embeddings" in row:
            rows[f"{name} (measured here, embeddings + last layer, as the paper)"] = row["sts_with_embeddings"]
    return rows


__all__ = ["PAPER_TABLE5", "PAPER_CHECKPOINTS", "default_encoder_reference", "paper_scores", "first_last_with_embeddings", "measure_paper_rows",
           "table_rows"]
