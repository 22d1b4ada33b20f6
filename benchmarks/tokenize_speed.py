"""Tokenising sentences into a padded id matrix: simcse_lab's threaded Rust path against the tokenizer's call.

    SIMCSE_LAB_DATA=../shared/data python benchmarks/tokenize_speed.py [--sentences 16384] [--max_length 32]

Times, side by side in one process on the same sentences (wiki lines of 6-40 tokens, as speed.py uses;
random vocabulary words without the data):

- `tokenizer(sentences, truncation=True, max_length=L, padding="max_length", return_tensors="np")`:
  what `TokenizedColumn` called before simcse_lab.models.tokenization;
- `tokenizer(sentences, padding=True, truncation=True, max_length=L, return_tensors="pt")`: what
  `SentenceTransformer.encode` calls per batch (here on all sentences at once);
- `simcse_lab.models.tokenization.token_matrix` on one thread and on every core this process may use.

Every row gives the same ids (checked). TOKENIZERS_PARALLELISM is left as the environment sets it (the
Rust tokenizer's own threads); the table says which. Prints a table; writes benchmarks/results/tokenize_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import ROOT, find_data_dir, load_sentences, load_tokenizer  # noqa: E402
from simcse_lab.models.tokenization import token_matrix, tokenizer_threads  # noqa: E402


def best_seconds(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=16384)
    parser.add_argument("--max_length", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "tokenize_speed.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as workdir:
        tokenizer, tokenizer_source = load_tokenizer(Path(workdir), None)
        sentences, data_source = load_sentences(find_data_dir(args.data_dir), tokenizer, args.sentences)
    length = args.max_length
    reference_ids, reference_lengths = token_matrix(tokenizer, sentences, length, threads=1)
    padded = tokenizer(sentences, truncation=True, max_length=length, padding="max_length", return_tensors="np")
    assert (padded["input_ids"] == reference_ids).all() and (padded["attention_mask"].sum(1) == reference_lengths).all()
    threads = tokenizer_threads()
    assert (token_matrix(tokenizer, sentences, length, threads=threads)[0] == reference_ids).all()

    rows = {
        "tokenizer call, padded to max_length, numpy (simcse_lab before)":
            lambda: tokenizer(sentences, truncation=True, max_length=length, padding="max_length", return_tensors="np"),
        "tokenizer call, padding=True, torch (as SentenceTransformer.encode)":
            lambda: tokenizer(sentences, padding=True, truncation=True, max_length=length, return_tensors="pt"),
        "simcse_lab token_matrix, 1 thread": lambda: token_matrix(tokenizer, sentences, length, threads=1),
        f"simcse_lab token_matrix, {threads} threads": lambda: token_matrix(tokenizer, sentences, length, threads=threads),
    }
    print(f"# {len(sentences)} sentences from {data_source}; tokenizer: {tokenizer_source}; max_length {length}; "
          f"TOKENIZERS_PARALLELISM={os.environ.get('TOKENIZERS_PARALLELISM', '(unset)')}; {threads} cores usable")
    results = {}
    for name, run in rows.items():
        run()  # warm-up
        seconds = best_seconds(run, args.repeats)
        results[name] = {"seconds": seconds, "sent_per_s": len(sentences) / seconds}
    baseline = next(iter(results.values()))["sent_per_s"]
    print(f"{'row':70s} {'sent/s':>9s}  x first row")
    for name, result in results.items():
        print(f"{name:70s} {result['sent_per_s']:9,.0f}  x{result['sent_per_s'] / baseline:.2f}")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"sentences": len(sentences), "data": data_source, "max_length": length,
                                             "threads": threads, "rows": results}, indent=1) + "\n")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
