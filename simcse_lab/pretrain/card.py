"""What a pre-training run leaves in its output directory: the checkpoint, its log and its model card."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import torch

from .config import PretrainConfig, PretrainResult

CARD_TEMPLATE = Path(__file__).with_name("model_card.md")


def save_run(model, tokenizer, config: PretrainConfig, corpus_report: dict, result: PretrainResult,
             use_bf16: bool, device: torch.device) -> None:
    """Checkpoint (safetensors, fp32) + tokenizer + `pretrain_log.json` + model card in `output_dir`."""
    output_dir = Path(result.output_dir)
    model.float().save_pretrained(output_dir, safe_serialization=True)
    tokenizer.save_pretrained(output_dir)
    write_vocab_txt(tokenizer, output_dir)
    shutil.rmtree(output_dir / "_wordpiece", ignore_errors=True)
    log = {"config": asdict(config), "corpus": corpus_report, "result": asdict(result),
           "runtime": {"device": str(device), "bf16_autocast": use_bf16, "torch": torch.__version__,
                       "threads": torch.get_num_threads(),
                       "tokens_per_s": round(result.tokens_seen / max(result.wall_time_s, 1e-9))}}
    (output_dir / "pretrain_log.json").write_text(json.dumps(log, indent=1) + "\n")
    (output_dir / "README.md").write_text(model_card(model, tokenizer, config, corpus_report, result, use_bf16, device))


def write_vocab_txt(tokenizer, output_dir: Path) -> None:
    """vocab.txt beside tokenizer.json, for loaders that want BERT's classic file (transformers 5 omits it)."""
    path = output_dir / "vocab.txt"
    vocab = tokenizer.get_vocab()
    if path.exists() or sorted(vocab.values()) != list(range(len(vocab))):
        return
    path.write_text("".join(token + "\n" for token, _ in sorted(vocab.items(), key=lambda item: item[1])),
                    encoding="utf-8")


def model_card(model, tokenizer, config: PretrainConfig, corpus_report: dict, result: PretrainResult, use_bf16: bool,
               device: torch.device) -> str:
    """The model card (model_card.md filled in): recipe, corpus counts, run statistics; geometry is filled in later."""
    arch, totals, curve = model.config, corpus_report["totals"], result.loss_curve
    picks = sorted({0, len(curve) // 4, len(curve) // 2, 3 * len(curve) // 4, len(curve) - 1}) if curve else []
    return CARD_TEMPLATE.read_text().format(
        layers=arch.num_hidden_layers, hidden=arch.hidden_size, heads=arch.num_attention_heads,
        intermediate=arch.intermediate_size, parameters_m=sum(p.numel() for p in model.parameters()) / 1e6,
        vocabulary=len(tokenizer), init="from scratch" if not config.init_from else f"from `{config.init_from}`",
        tokenizer=("lower-cased WordPiece trained on the corpus below" if not (config.vocab or config.init_from)
                   else f"given ({config.vocab or config.init_from})"),
        max_seq_length=config.max_seq_length, mlm_probability=config.mlm_probability, learning_rate=config.learning_rate,
        adam_beta2=config.adam_beta2, weight_decay=config.weight_decay, warmup_ratio=config.warmup_ratio,
        max_grad_norm=config.max_grad_norm, batch_size=config.per_device_train_batch_size, max_steps=config.max_steps,
        time_budget_s=config.time_budget_s, stopped_by=result.stopped_by, device=device, bf16="on" if use_bf16 else "off",
        seed=config.seed, heldout=min(config.heldout_sentences, totals["sentences"] // 10),
        source_rows="\n".join(f"| {name} | `{s.get('file', '-')}` | {s['read']:,} | {s['kept']:,} |"
                              for name, s in corpus_report["sources"].items()),
        read_total=totals.get("read", totals["sentences"]), sentences=totals["sentences"],
        whitespace_tokens=totals["whitespace_tokens"], steps=result.steps, epochs=result.epochs, tokens_seen=result.tokens_seen,
        wall_minutes=result.wall_time_s / 60, log_every=config.log_every, final_loss=result.final_loss,
        heldout_loss=f"{result.heldout_loss:.3f}" if result.heldout_loss is not None else "n/a",
        curve_rows="\n".join(f"| {curve[i]['step']} | {curve[i]['loss']:.3f} |" for i in picks),
    )
