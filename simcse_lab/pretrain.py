"""Masked-language-model pre-training of the small BERT that simcse_lab ships as its default encoder.

SimCSE starts from a pretrained BERT (Gao, Yao & Chen, 2021). Where none can be downloaded, this
module makes one: BERT's MLM objective (Devlin et al., 2019) on the local sentence corpus
(`simcse_lab.corpus`), with a WordPiece vocabulary trained on that corpus.

The recipe, and why:

- **Masking** (`mask_tokens`): 15% of the real tokens (never [CLS]/[SEP]/[PAD]) are selected; of
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

import argparse
import json
import os
import random
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
import torch.nn.functional as F

from .corpus import build_pretraining_corpus
from .errors import SimCSELabError
from .paths import DATA_ENV_VAR, resolve_data_dir


@dataclass
class PretrainConfig:
    """Everything one pre-training run depends on; `pretrain_log.json` records it."""

    output_dir: str = "data/models/bert-mini-mlm"  # where the checkpoint, log and card are written
    data_dir: str | None = None  # data folder; None reads $SIMCSE_LAB_DATA
    # Tokenizer
    vocab: str | None = None  # vocab.txt or tokenizer dir to use as is; None trains WordPiece on the corpus
    vocab_size: int = 8192  # size of the trained WordPiece vocabulary (ignored with vocab/init_from)
    # Model
    init_from: str | None = None  # HF checkpoint dir to continue from; None builds a fresh BERT
    num_hidden_layers: int = 4  # transformer layers of a fresh model
    hidden_size: int = 256  # width of a fresh model
    num_attention_heads: int = 4  # attention heads (hidden_size / heads = 64 per head)
    intermediate_size: int = 1024  # feed-forward width, 4x hidden as in BERT
    max_position_embeddings: int = 512  # position table, kept BERT-sized so longer inputs still encode
    # Data
    max_seq_length: int = 64  # tokens per sentence incl. [CLS]/[SEP]; longer ones are truncated
    mlm_probability: float = 0.15  # fraction of real tokens selected for prediction
    heldout_sentences: int = 1000  # sentences kept out of training to measure a held-out MLM loss
    bucket_chunk_batches: int = 64  # batches per length-sorted chunk (larger: less padding, less random)
    # Optimisation
    per_device_train_batch_size: int = 256  # sentences per step
    learning_rate: float = 1e-3  # peak learning rate (from scratch; use ~1e-4 when continuing)
    weight_decay: float = 0.01  # AdamW decay, not applied to biases and LayerNorm weights
    adam_beta2: float = 0.98  # RoBERTa's value, steadier than 0.999 at a high learning rate
    warmup_ratio: float = 0.06  # fraction of the schedule spent warming up linearly
    max_grad_norm: float = 1.0  # gradient clipping
    max_steps: int | None = 2000  # optimiser steps; None runs on the time budget alone
    time_budget_s: float | None = None  # wall-clock limit of the training loop; None: no limit
    # Runtime
    seed: int = 42  # seeds data order, masking and initialisation
    bf16: bool | None = None  # bf16 autocast; None: on for CUDA and for CPUs with native bf16
    device: str = "auto"  # 'auto' (CUDA if available), 'cpu', 'cuda', ...
    num_threads: int | None = None  # torch CPU threads; None keeps torch's default
    log_every: int = 50  # steps per logged (window-averaged) loss
    progress: bool = True  # show a tqdm progress bar


@dataclass
class PretrainResult:
    """What a run produced; the same numbers are in `pretrain_log.json`."""

    output_dir: str
    steps: int
    epochs: float
    tokens_seen: int
    wall_time_s: float
    final_loss: float  # training MLM loss averaged over the last log window
    heldout_loss: float | None  # MLM loss on the held-out sentences (fixed masking seed)
    stopped_by: str  # 'max_steps' or 'time_budget'
    loss_curve: list = field(default_factory=list)


# --------------------------------------------------------------------------- masking and loss


def mask_tokens(input_ids: torch.Tensor, special_mask: torch.Tensor, vocab_size: int, mask_token_id: int,
                mlm_probability: float = 0.15, generator: torch.Generator | None = None):
    """BERT's corruption: select `mlm_probability` of the non-special tokens; 80% [MASK], 10% random, 10% kept.

    `input_ids` (B, T); `special_mask` (B, T) bool, True for [CLS]/[SEP]/[PAD] (never selected).
    Returns `(corrupted_ids, selected)`: `corrupted_ids` (B, T) and `selected` (B, T) bool, the positions
    whose original token is to be predicted. Random replacements are uniform over the vocabulary, as in BERT.
    """
    probs = torch.full(input_ids.shape, mlm_probability)
    probs.masked_fill_(special_mask, 0.0)
    selected = torch.bernoulli(probs, generator=generator).bool()  # (B, T)
    draw = torch.rand(input_ids.shape, generator=generator)  # one draw decides mask / random / keep
    to_mask = selected & (draw < 0.8)
    to_random = selected & (draw >= 0.8) & (draw < 0.9)
    corrupted = input_ids.clone()
    corrupted[to_mask] = mask_token_id
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator)
    corrupted[to_random] = random_ids[to_random]
    return corrupted, selected


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


# --------------------------------------------------------------------------- tokenizer and data


def train_wordpiece(sentences: list[str], vocab_size: int, workdir: Path):
    """A lower-cased WordPiece vocabulary trained on `sentences`, returned as a `BertTokenizerFast`."""
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertTokenizerFast

    wordpiece = BertWordPieceTokenizer(lowercase=True, clean_text=True, handle_chinese_chars=True)
    wordpiece.train_from_iterator(
        sentences, vocab_size=vocab_size, min_frequency=2, limit_alphabet=1000, wordpieces_prefix="##",
        special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], show_progress=False,
    )
    workdir.mkdir(parents=True, exist_ok=True)
    wordpiece.save_model(str(workdir))  # writes workdir/vocab.txt
    return BertTokenizerFast.from_pretrained(str(workdir), do_lower_case=True, model_max_length=512)


def tokenizer_from_vocab_file(vocab_file: Path, workdir: Path):
    """A lower-cased `BertTokenizerFast` over a vocab.txt (loaded from a folder: portable across transformers 4/5)."""
    import shutil

    from transformers import BertTokenizerFast

    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(vocab_file, workdir / "vocab.txt")
    return BertTokenizerFast.from_pretrained(str(workdir), do_lower_case=True, model_max_length=512)


def load_tokenizer(config: PretrainConfig, sentences: list[str], workdir: Path):
    """The tokenizer the config asks for: given vocab.txt / dir, the init checkpoint's, or a trained one."""
    from transformers import AutoTokenizer

    if config.vocab:
        path = Path(config.vocab).expanduser()
        if path.is_file():
            return tokenizer_from_vocab_file(path, workdir)
        if path.is_dir():
            return AutoTokenizer.from_pretrained(str(path))
        raise SimCSELabError(f"vocab {path} is neither a vocab.txt file nor a tokenizer directory")
    if config.init_from:
        return AutoTokenizer.from_pretrained(config.init_from)
    return train_wordpiece(sentences, config.vocab_size, workdir)


def tokenize_corpus(tokenizer, sentences: list[str], max_seq_length: int) -> list[list[int]]:
    """Token ids of every sentence, with [CLS]/[SEP], truncated; done once before training."""
    if not sentences:  # fast tokenizers fail on an empty batch
        return []
    return tokenizer(sentences, add_special_tokens=True, truncation=True, max_length=max_seq_length)["input_ids"]


def length_bucketed_batches(lengths: list[int], batch_size: int, chunk_batches: int, rng: random.Random):
    """One epoch of batches (lists of indices) with similar lengths inside a batch, in random order."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * chunk_batches
    batches = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start:start + chunk], key=lengths.__getitem__)
        batches += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def endless_batches(lengths: list[int], config: PretrainConfig, rng: random.Random):
    """Length-bucketed batches, epoch after epoch, each epoch freshly shuffled."""
    while True:
        yield from length_bucketed_batches(lengths, config.per_device_train_batch_size,
                                           config.bucket_chunk_batches, rng)


def collate(token_ids: list[list[int]], pad_id: int):
    """Right-padded (B, T) ids and attention mask, T the longest sentence of the batch."""
    width = max(map(len, token_ids))
    ids = torch.full((len(token_ids), width), pad_id, dtype=torch.long)
    for row, seq in enumerate(token_ids):
        ids[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
    return ids, ids.ne(pad_id).long()


def masked_batch(token_ids: list[list[int]], tokenizer, mlm_probability: float, generator: torch.Generator):
    """A training batch on the host: corrupted ids, attention mask, flat masked positions and their targets."""
    ids, attention = collate(token_ids, tokenizer.pad_token_id)
    special = torch.isin(ids, torch.tensor(tokenizer.all_special_ids))
    corrupted, selected = mask_tokens(ids, special, len(tokenizer), tokenizer.mask_token_id,
                                      mlm_probability, generator)
    if not selected.any() and not special.all():  # a batch of one-word sentences may draw none; predict one
        row, col = divmod(int(torch.nonzero(~special.flatten())[0]), ids.shape[1])
        selected[row, col] = True
    flat_positions = selected.flatten().nonzero().squeeze(1)  # (M,)
    return corrupted, attention, flat_positions, ids.flatten()[flat_positions]


# --------------------------------------------------------------------------- model, optimiser, schedule


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


def lr_factor(progress: float, warmup_ratio: float) -> float:
    """Linear warm-up to 1 over `warmup_ratio` of the schedule, then linear decay to 0 at progress 1."""
    if progress < warmup_ratio:
        return progress / warmup_ratio
    return max(0.0, (1.0 - progress) / max(1e-12, 1.0 - warmup_ratio))


def schedule_progress(step: int, elapsed_s: float, config: PretrainConfig) -> float:
    """How far through the run we are: the further along of the step budget and the time budget."""
    parts = []
    if config.max_steps:
        parts.append(step / config.max_steps)
    if config.time_budget_s:
        parts.append(elapsed_s / config.time_budget_s)
    return max(parts)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def bf16_supported(device: torch.device) -> bool:
    """Native bf16: CUDA with bf16 support, or a CPU whose oneDNN has bf16 kernels (AVX512-BF16 / AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


# --------------------------------------------------------------------------- the run


@torch.no_grad()
def heldout_loss(model, tokenized: list[list[int]], tokenizer, config: PretrainConfig, device, use_bf16) -> float | None:
    """Token-weighted MLM loss on held-out sentences with a fixed masking seed (comparable across runs)."""
    if not tokenized:
        return None
    model.eval()
    generator = torch.Generator().manual_seed(1234)
    total, count = 0.0, 0
    for start in range(0, len(tokenized), config.per_device_train_batch_size):
        ids, attention, positions, targets = masked_batch(
            tokenized[start:start + config.per_device_train_batch_size], tokenizer, config.mlm_probability, generator)
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
    if not config.max_steps and not config.time_budget_s:
        raise SimCSELabError("set max_steps and/or time_budget_s, otherwise pre-training never stops")
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
    tokenized = tokenize_corpus(tokenizer, train_sentences, config.max_seq_length)
    tokenized_heldout = tokenize_corpus(tokenizer, heldout, config.max_seq_length)
    lengths = [len(t) for t in tokenized]
    corpus_report["totals"]["wordpiece_tokens_train"] = sum(lengths)

    device = resolve_device(config.device)
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
        lr = config.learning_rate * lr_factor(schedule_progress(step, elapsed, config), config.warmup_ratio)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = [tokenized[i] for i in batch_indices]
        ids, attention, positions, targets = masked_batch(batch, tokenizer, config.mlm_probability, generator)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            loss = masked_lm_loss(model, ids.to(device, non_blocking=True), attention.to(device, non_blocking=True),
                                  positions.to(device, non_blocking=True), targets.to(device, non_blocking=True))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        tokens_seen += sum(len(t) for t in batch)
        sentences_seen += len(batch)
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


# --------------------------------------------------------------------------- saving


def save_run(model, tokenizer, config: PretrainConfig, corpus_report: dict, result: PretrainResult,
             use_bf16: bool, device: torch.device) -> None:
    """Checkpoint (safetensors, fp32) + tokenizer + `pretrain_log.json` + model card in `output_dir`."""
    import shutil

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


def model_card(model, tokenizer, config, corpus_report, result, use_bf16, device) -> str:
    """The model card: recipe, corpus counts, run statistics; geometry figures are filled in later."""
    n_params = sum(p.numel() for p in model.parameters())
    arch = model.config
    rows = "\n".join(f"| {name} | `{s.get('file', '-')}` | {s['read']:,} | {s['kept']:,} |"
                     for name, s in corpus_report["sources"].items())
    totals = corpus_report["totals"]
    curve = result.loss_curve
    picks = sorted({0, len(curve) // 4, len(curve) // 2, 3 * len(curve) // 4, len(curve) - 1}) if curve else []
    curve_rows = "\n".join(f"| {curve[i]['step']} | {curve[i]['loss']:.3f} |" for i in picks)
    heldout = f"{result.heldout_loss:.3f}" if result.heldout_loss is not None else "n/a"
    return f"""---
license: mit
language: en
library_name: transformers
tags: [bert, fill-mask, simcse_lab]
---

# bert-mini-mlm: the default encoder of simcse_lab

A small BERT ({arch.num_hidden_layers} layers, hidden {arch.hidden_size}, {arch.num_attention_heads} heads,
intermediate {arch.intermediate_size}, {n_params / 1e6:.1f}M parameters, vocabulary {len(tokenizer):,})
pre-trained {"from scratch" if not config.init_from else f"from `{config.init_from}`"} by simcse_lab with
masked-language modelling (`simcse_lab.pretrain`), so that SimCSE can be trained and studied offline. It is a
teaching-scale model: expect far weaker sentence embeddings than BERT-base.

Load it with `transformers.AutoModel.from_pretrained(path)` / `AutoTokenizer.from_pretrained(path)`, or as
`simcse_lab.DEFAULT_MODEL`. The checkpoint is a standard `BertForMaskedLM` (MLM head included; no pooler).

## Recipe

- Tokenizer: {"lower-cased WordPiece trained on the corpus below" if not (config.vocab or config.init_from) else f"given ({config.vocab or config.init_from})"}, {len(tokenizer):,} entries; max sequence length {config.max_seq_length}.
- Objective: BERT MLM; {config.mlm_probability:.0%} of real tokens selected, 80% [MASK] / 10% random / 10% kept;
  loss on the selected positions only (the MLM head runs only there). No next-sentence prediction.
- Optimiser: AdamW (lr {config.learning_rate:g}, betas (0.9, {config.adam_beta2}), weight decay {config.weight_decay},
  none on biases/LayerNorm), linear warm-up over {config.warmup_ratio:.0%} of the schedule then linear decay,
  gradient clipping {config.max_grad_norm}; batch {config.per_device_train_batch_size} sentences from length buckets.
- Budget: max_steps={config.max_steps}, time_budget_s={config.time_budget_s}; stopped by {result.stopped_by}.
- Hardware: {device}, bf16 autocast {"on" if use_bf16 else "off"} (fp32 master weights); seed {config.seed}.

## Corpus

Training-side sentences of the local data folder, stripped, whitespace-normalised, deduplicated in this order.
Never STS-B dev/test, STS12-16 or SICK trial/test (they are evaluation data). {min(config.heldout_sentences, totals['sentences'] // 10):,}
random sentences are held out to measure a held-out MLM loss.

| source | file | sentences read | kept after dedup |
|---|---|---:|---:|
{rows}
| **total** | | {totals.get('read', totals['sentences']):,} | {totals['sentences']:,} ({totals['whitespace_tokens']:,} whitespace tokens) |

## Training run

| | |
|---|---|
| steps | {result.steps:,} |
| epochs | {result.epochs:.2f} |
| tokens seen (WordPiece, incl. [CLS]/[SEP]) | {result.tokens_seen:,} |
| wall time | {result.wall_time_s / 60:.1f} min |
| final training MLM loss (last {config.log_every}-step window) | {result.final_loss:.3f} |
| held-out MLM loss | {heldout} |

Loss curve (window-averaged; full curve in `pretrain_log.json`):

| step | MLM loss |
|---:|---:|
{curve_rows}

## Measured geometry

<!-- TO BE FILLED by the lead: STS-B dev / STS12-16 Spearman, anisotropy, alignment/uniformity. -->
_Not measured yet._

## Licence and attribution

Weights: MIT (as simcse_lab). The corpus comes from Wikipedia (CC BY-SA), WordNet 3.0, SentEval transfer sets
(MR, CR, SUBJ, MPQA), SNLI (CC BY-SA 4.0), STS-B train (CC BY-SA 4.0) and SICK train (CC BY-NC-SA 3.0).
"""


# --------------------------------------------------------------------------- command line


def add_pretrain_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Flags of `simcse-lab pretrain`; each maps onto the `PretrainConfig` field of the same name."""
    d = PretrainConfig()
    add = parser.add_argument
    add("--output_dir", default=d.output_dir, help="where to write the checkpoint, log and model card")
    add("--data_dir", default=None, help=f"data folder (default: ${DATA_ENV_VAR})")
    add("--vocab", default=None, help="vocab.txt or tokenizer dir to use instead of training WordPiece")
    add("--vocab_size", type=int, default=d.vocab_size, help="size of the trained WordPiece vocabulary")
    add("--init_from", default=None, help="HF checkpoint dir to continue pre-training from")
    add("--num_hidden_layers", type=int, default=d.num_hidden_layers)
    add("--hidden_size", type=int, default=d.hidden_size)
    add("--num_attention_heads", type=int, default=d.num_attention_heads)
    add("--intermediate_size", type=int, default=d.intermediate_size)
    add("--max_seq_length", type=int, default=d.max_seq_length)
    add("--per_device_train_batch_size", type=int, default=d.per_device_train_batch_size)
    add("--learning_rate", type=float, default=d.learning_rate)
    add("--warmup_ratio", type=float, default=d.warmup_ratio)
    add("--max_steps", type=int, default=d.max_steps, help="optimiser steps (0: time budget only)")
    add("--time_budget_s", type=float, default=None, help="wall-clock limit of the training loop")
    add("--seed", type=int, default=d.seed)
    add("--num_threads", type=int, default=None, help="torch CPU threads")
    add("--log_every", type=int, default=d.log_every)
    add("--device", default=d.device)
    add("--no_progress", dest="progress", action="store_false", help="no progress bar (logs, batch jobs)")
    bf16 = parser.add_mutually_exclusive_group()
    bf16.add_argument("--bf16", dest="bf16", action="store_true", default=None, help="force bf16 autocast")
    bf16.add_argument("--no_bf16", dest="bf16", action="store_false", help="disable bf16 autocast")
    return parser


def config_from_args(args: argparse.Namespace) -> PretrainConfig:
    """The `PretrainConfig` of parsed `add_pretrain_arguments` flags (unset data_dir reads $SIMCSE_LAB_DATA)."""
    names = {f.name for f in fields(PretrainConfig)}
    values = {k: v for k, v in vars(args).items() if k in names}
    if not values.get("max_steps"):
        values["max_steps"] = None
    if values.get("data_dir") is None and os.environ.get(DATA_ENV_VAR):
        values["data_dir"] = os.environ[DATA_ENV_VAR]
    return PretrainConfig(**values)


def main(argv: list[str] | None = None) -> PretrainResult:
    """`python -m simcse_lab.pretrain ...` (the CLI subcommand `simcse-lab pretrain` maps onto the same flags)."""
    parser = add_pretrain_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    result = pretrain(config_from_args(parser.parse_args(argv)))
    print(json.dumps({k: v for k, v in asdict(result).items() if k != "loss_curve"}, indent=1))
    return result


if __name__ == "__main__":
    main()
