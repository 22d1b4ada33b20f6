"""`simcse-lab tour`: the library end to end in a few minutes on a laptop CPU.

1. diagnose the embedded default encoder (anisotropy);
2. train unsupervised SimCSE on it briefly (wiki subset + WordNet sentences, STS-B dev selection);
3. evaluate raw and trained on the seven STS tasks and print the comparison.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..data.corpus import write_unsup_training_file
from ..evaluation.sts import evaluate_sts, format_comparison_table
from ..models.device import bf16_supported
from ..models.encoder import SimCSEEncoder
from ..paths import DEFAULT_MODEL
from ..training.config import TrainConfig
from ..training.trainer import train
from .diagnose import diagnose, format_report


def tour(output_dir: str = "outputs/tour", max_steps: int = 200, data_dir=None) -> dict:
    out = Path(output_dir)
    print("== 1. the raw default encoder: how anisotropic is it? ==")
    print(format_report(diagnose(DEFAULT_MODEL, pooler="avg", data_dir=data_dir, output_dir=str(out / "diagnose-raw"))))

    print(f"\n== 2. unsupervised SimCSE, {max_steps} steps ==")
    train_file = write_unsup_training_file(out / "data" / "wiki_wordnet.txt", data_dir)
    config = TrainConfig(
        model_name_or_path=DEFAULT_MODEL, train_file=str(train_file), output_dir=str(out / "unsup-simcse"),
        pooler_type="avg", max_steps=max_steps, per_device_train_batch_size=64, learning_rate=1e-4, max_seq_length=32,
        eval_steps=max(max_steps // 4, 1), seed=42, data_dir=data_dir, overwrite_output_dir=True,
        bf16=bf16_supported(torch.device("cpu")) and not torch.cuda.is_available(),
    )
    result = train(config)
    print(f"best STS-B dev {result.best_score:.2f} at step {result.best_step}; model in {result.output_dir}")

    print("\n== 3. seven STS tasks (Spearman x 100, SentEval 'all' setting) ==")
    rows = {}
    for name, path in (("raw default, avg", DEFAULT_MODEL), ("+ unsup SimCSE, avg", result.output_dir)):
        encoder = SimCSEEncoder.from_pretrained(path, pooler="avg")
        rows[name] = evaluate_sts(lambda s: encoder.encode(s, batch_size=128), data_dir=data_dir)
    print(format_comparison_table(rows))
    print(format_report(diagnose(result.output_dir, data_dir=data_dir, output_dir=str(out / "diagnose-trained"))))
    return rows
