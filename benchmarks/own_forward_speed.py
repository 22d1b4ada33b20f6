"""simcse_lab's own BERT forward against transformers' on this CPU, for BERT and the RoBERTa family.

    SIMCSE_LAB_DATA=../shared/data python benchmarks/own_forward_speed.py [--arch roberta] [--pooler avg]

One process, one random-init model of the default encoder's shape (4 layers, hidden 256; `--arch` picks
BertModel, RobertaModel or XLMRobertaModel), the same wiki sentences (6-40 tokens, cut at 32) for both
forwards, switched with `SimCSEEncoder.bert_forward` ("auto" = the own forward on a CPU, "transformers").
Rounds alternate the two so that drift in the machine's speed hits both:
- train: 12 unsupervised SimCSE steps of batch 64 (forward over [x; x], InfoNCE, backward, fused AdamW);
- encode: `SimCSEEncoder.encode` of 4,096 sentences, batch 64.
Prints sentences/s per round and the ratio of the best rounds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import find_data_dir, load_sentences, load_tokenizer  # noqa: E402
from simcse_lab import SimCSEEncoder  # noqa: E402
from simcse_lab.models.batches import TokenizedColumn, collate  # noqa: E402
from simcse_lab.losses import unsup_simcse_loss  # noqa: E402

ARCHITECTURES = ("bert", "roberta", "xlm-roberta")


def build_backbone(arch: str, tokenizer):
    from transformers import BertConfig, BertModel, RobertaConfig, RobertaModel, XLMRobertaConfig, XLMRobertaModel

    config_class, model_class = {"bert": (BertConfig, BertModel), "roberta": (RobertaConfig, RobertaModel),
                                 "xlm-roberta": (XLMRobertaConfig, XLMRobertaModel)}[arch]
    torch.manual_seed(0)
    # max_position_embeddings 130: RoBERTa numbers positions from padding_idx + 1
    config = config_class(vocab_size=len(tokenizer), hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                          intermediate_size=1024, pad_token_id=tokenizer.pad_token_id, max_position_embeddings=130)
    return model_class(config, add_pooling_layer=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=ARCHITECTURES, default="roberta")
    parser.add_argument("--pooler", default="avg")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data_dir", default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as workdir:
        tokenizer, _ = load_tokenizer(Path(workdir), None)
    sentences, source = load_sentences(find_data_dir(args.data_dir), tokenizer, 4096)
    encoder = SimCSEEncoder(build_backbone(args.arch, tokenizer), tokenizer, pooler=args.pooler)
    column = TokenizedColumn.from_sentences(tokenizer, sentences, 32)
    rng = np.random.default_rng(0)
    batches = [collate([column, column], rng.choice(len(sentences), 64, replace=False)) for _ in range(12)]
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=1e-5, fused=True)

    def train_rate() -> float:
        encoder.train()
        started = time.perf_counter()
        for ids, mask in batches:
            unsup_simcse_loss(*encoder(ids, mask).chunk(2)).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return 64 * len(batches) / (time.perf_counter() - started)

    def encode_rate() -> float:
        started = time.perf_counter()
        encoder.encode(sentences, batch_size=64, max_length=32, show_progress=False)
        return len(sentences) / (time.perf_counter() - started)

    encoder.encode(sentences[:256])  # warm-up
    train_rate()
    rates = {choice: {"train": [], "encode": []} for choice in ("auto", "transformers")}
    for _ in range(args.rounds):
        for choice, measured in rates.items():
            encoder.bert_forward = choice
            measured["train"].append(train_rate())
            measured["encode"].append(encode_rate())
    print(f"# {args.arch}, {args.pooler} pooling, 4 layers x 256, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"data {source}")
    names = {"auto": "simcse_lab's own forward", "transformers": "transformers' forward"}
    for work in ("train", "encode"):
        for choice, measured in rates.items():
            print(f"{work:6s} {names[choice]:26s} sent/s per round: {', '.join(f'{r:,.0f}' for r in measured[work])}")
        print(f"{work:6s} own / transformers, best rounds: x{max(rates['auto'][work]) / max(rates['transformers'][work]):.2f}")


if __name__ == "__main__":
    main()
