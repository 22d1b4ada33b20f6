"""Masked-language-model pre-training of the small BERT that simcse_lab ships as its default encoder.

SimCSE starts from a pretrained BERT (Gao, Yao & Chen, 2021). Where none can be downloaded, this
package makes one: BERT's MLM objective (Devlin et al., 2019) on the local sentence corpus
(`simcse_lab.data.corpus`), with a WordPiece vocabulary trained on that corpus.

The recipe, and why:

- **Masking** (`simcse_lab.training.mlm.mask_tokens`): 15% of the real tokens (never [CLS]/[SEP]/[PAD]) are selected; of
  those 80% become [MASK], 10% a random token, 10% stay unchanged, as in BERT.
- **Masked-only loss** (`masked_lm_loss`): the encoder runs on the whole batch, but the MLM head
  (transform + vocabulary projection) runs only on the ~15% selected positions. The vocabulary
  projection is the largest matmul of a small model, so this skips ~85% of it; the loss equals the
  usual `BertForMaskedLM` loss with labels -100 elsewhere (checked in the tests).
- **Data**: the corpus is tokenised once; batches are drawn from length buckets (shuffle, sort by
  length inside chunks of `bucket_chunk_batches` batches, cut into batches, shuffle the batches) and
  padded to their own longest sentence, so little compute goes to padding.
- **Optimisation**: AdamW (no weight decay on biases and LayerNorm), linear warm-up then linear decay
  to zero, gradient clipping, bf16 autocast (CUDA, and CPUs with native bf16) over fp32 weights.
- **Budget**: `max_steps` and/or `time_budget_s`. The schedule's progress is
  `max(step / max_steps, elapsed / time_budget_s)` (whichever is defined): with only steps it is the
  usual step schedule; when the time budget runs out first, the learning rate has been decaying with
  the clock and reaches zero as time ends, so a slow machine still ends on a decayed schedule instead
  of stopping mid-way at a high learning rate. The time budget counts the training loop only.

The output directory is a standard Hugging Face checkpoint (`BertForMaskedLM`, safetensors, tokenizer)
plus `pretrain_log.json` and a model card; `transformers.AutoModel` loads it without converters.
"""


from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.corpus import build_pretraining_corpus
from ..errors import SimCSELabError
from ..models.batches import TokenizedColumn
from ..models.device import bf16_supported, pick_device
from ..paths import DATA_ENV_VAR, resolve_data_dir
from ..training.schedule import linear_schedule
from .card import save_run
from .config import PretrainConfig, PretrainResult
from .data import endless_batches, load_tokenizer, masked_batch


def mlm_head(model):
    """The MLM head of a `*ForMaskedLM` model (`cls` for BERT, `lm_head` for RoBERTa-style models)."""
    for name in ("cls", "lm_head"):
        if hasattr(model, name):
            return getattr(model, name)
    raise SimCSELabError(f"{type(model).__name__} has no MLM head (expected a BertForMaskedLM-style model)")


def masked_lm_loss(model, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                   flat_positions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the selected positions, running the MLM head on those positions only.

    `input_ids`, `attention_mask` (B, T); `flat_positions` (M,) indices into the flattened (B*T) grid;
    `targets` (M,) original token ids there. Passing positions computed on the host avoids the
    device-to-host sync that boolean indexing would cost on CUDA.
    """
    hidden = model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, T, H)
    selected = hidden.reshape(-1, hidden.shape[-1]).index_select(0, flat_positions)  # (M, H)
    logits = mlm_head(model)(selected)  # (M, V)
    return F.cross_entropy(logits.float(), targets)


def build_model(config: PretrainConfig, tokenizer):
    """A fresh `BertForMaskedLM` sized by the config, or the `init_from` checkpoint."""
    from transformers import AutoModelForMaskedLM, BertConfig, BertForMaskedLM

    if config.init_from:
        model = AutoModelForMaskedLM.from_pretrained(config.init_from)
        if model.get_input_embeddings().num_embeddings < len(tokenizer):
            model.resize_token_embeddings(len(tokenizer))
        return model
    bert_config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=config.hidden_size, num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads, intermediate_size=config.intermediate_size,
        max_position_embeddings=config.max_position_embeddings, pad_token_id=tokenizer.pad_token_id,
    )
    return BertForMaskedLM(bert_config)


def build_optimizer(model, config: PretrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (biases and LayerNorm weights are 1-D and not decayed)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.learning_rate, betas=(0.9, config.adam_beta2), eps=1e-6)


def schedule_progress(step: int, elapsed_s: float, config: PretrainConfig) -> float:
    """How far through the run we are: the further along of the step budget and the time budget."""
    parts = []
    if config.max_steps:
        parts.append(step / config.max_steps)
    if config.time_budget_s:
        parts.append(elapsed_s / config.time_budget_s)
    return max(parts)


# --------------------------------------------------------------------------- the run


@torch.no_grad()
def heldout_loss(model, column: TokenizedColumn, tokenizer, config: PretrainConfig, device, use_bf16) -> float | None:
    """Token-weighted MLM loss on held-out sentences with a fixed masking seed (comparable across runs)."""
    if not len(column):
        return None
    model.eval()
    generator = torch.Generator().manual_seed(1234)
    total, count = 0.0, 0
    for start in range(0, len(column), config.per_device_train_batch_size):
        rows = np.arange(start, min(start + config.per_device_train_batch_size, len(column)))
        ids, attention, positions, targets = masked_batch(column, rows, tokenizer, config.mlm_probability, generator)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            loss = masked_lm_loss(model, ids.to(device), attention.to(device), positions.to(device), targets.to(device))
        total += float(loss) * len(targets)
        count += len(targets)
    model.train()
    return total / count


def pretrain(config: PretrainConfig, corpus: list[str] | None = None) -> PretrainResult:
    """Pre-train (or continue pre-training) a BERT with MLM and save it to `config.output_dir`.

    `corpus` defaults to `build_pretraining_corpus(data_dir)`; pass a list of sentences to use your own.
    """
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    output_dir = Path(config.output_dir).expanduser()
    output_dir.mkdir(parents=True, exist_ok=True)

    if corpus is None:
        data_dir = resolve_data_dir(config.data_dir)
        if data_dir is None:
            raise SimCSELabError(f"no corpus: pass data_dir (--data_dir) or set ${DATA_ENV_VAR}")
        corpus, corpus_report = build_pretraining_corpus(data_dir)
    else:
        corpus_report = {"sources": {"given": {"read": len(corpus), "kept": len(corpus)}},
                         "totals": {"sentences": len(corpus), "whitespace_tokens": sum(len(s.split()) for s in corpus)}}
    sentences = list(corpus)
    random.Random(config.seed).shuffle(sentences)  # held-out split drawn from every source
    n_heldout = min(config.heldout_sentences, len(sentences) // 10)
    heldout, train_sentences = sentences[:n_heldout], sentences[n_heldout:]

    tokenizer = load_tokenizer(config, train_sentences, output_dir / "_wordpiece")
    tokenized = TokenizedColumn.from_sentences(tokenizer, train_sentences, config.max_seq_length)
    tokenized_heldout = TokenizedColumn.from_sentences(tokenizer, heldout, config.max_seq_length)
    lengths = tokenized.lengths.tolist()
    corpus_report["totals"]["wordpiece_tokens_train"] = sum(lengths)

    device = pick_device(config.device)
    use_bf16 = bf16_supported(device) if config.bf16 is None else config.bf16
    model = build_model(config, tokenizer).to(device)
    model.train()
    optimizer = build_optimizer(model, config)
    generator = torch.Generator().manual_seed(config.seed)
    batch_rng = random.Random(config.seed)

    from tqdm.auto import tqdm

    bar = tqdm(total=config.max_steps, disable=not config.progress, desc="MLM pre-training", unit="step")
    loss_curve, window_loss, window_steps = [], torch.zeros((), device=device), 0
    step, tokens_seen, sentences_seen, stopped_by = 0, 0, 0, "max_steps"
    start = time.perf_counter()
    for batch_indices in endless_batches(lengths, config, batch_rng):
        elapsed = time.perf_counter() - start
        if config.max_steps and step >= config.max_steps:
            break
        if config.time_budget_s and elapsed >= config.time_budget_s:
            stopped_by = "time_budget"
            break
        lr = config.learning_rate * linear_schedule(schedule_progress(step, elapsed, config), config.warmup_ratio, 1.0)
        for group in optimizer.param_groups:
            group["lr"] = lr
        ids, attention, positions, targets = masked_batch(tokenized, batch_indices, tokenizer, config.mlm_probability, generator)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            loss = masked_lm_loss(model, ids.to(device, non_blocking=True), attention.to(device, non_blocking=True),
                                  positions.to(device, non_blocking=True), targets.to(device, non_blocking=True))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        tokens_seen += sum(lengths[i] for i in batch_indices)
        sentences_seen += len(batch_indices)
        window_loss += loss.detach()  # stays on the device: no host sync per step
        window_steps += 1
        bar.update(1)
        if step % config.log_every == 0:
            mean_loss = float(window_loss) / window_steps
            loss_curve.append({"step": step, "loss": round(mean_loss, 4), "lr": lr, "tokens": tokens_seen,
                               "elapsed_s": round(time.perf_counter() - start, 1)})
            bar.set_postfix(loss=f"{mean_loss:.3f}", lr=f"{lr:.2e}")
            window_loss, window_steps = torch.zeros((), device=device), 0
    if window_steps:  # the last, partial window
        loss_curve.append({"step": step, "loss": round(float(window_loss) / window_steps, 4), "lr": lr,
                           "tokens": tokens_seen, "elapsed_s": round(time.perf_counter() - start, 1)})
    bar.close()
    wall_time = time.perf_counter() - start
    result = PretrainResult(
        output_dir=str(output_dir), steps=step, epochs=round(sentences_seen / len(tokenized), 3),
        tokens_seen=tokens_seen, wall_time_s=round(wall_time, 1),
        final_loss=loss_curve[-1]["loss"] if loss_curve else float("nan"),
        heldout_loss=heldout_loss(model, tokenized_heldout, tokenizer, config, device, use_bf16),
        stopped_by=stopped_by, loss_curve=loss_curve,
    )
    save_run(model, tokenizer, config, corpus_report, result, use_bf16, device)
    return result
