"""Update latency of SimilarityExplorer: 20 sentences, CPU, Python side (encode + figure + sync).

    python benchmarks/similarity_explorer_latency.py [--model DIR_OR_HUB_ID] [--repeats 20]

Measures (1) editing one line, which re-encodes that line only (embedding cache), and (2) a full
recompute with an empty cache. The model is --model, else simcse_lab.DEFAULT_MODEL if it has been
built, else a tiny random BERT (2 layers, hidden 32). Target: <= 300 ms per update. The browser's
own rendering time is not included (see tests/test_browser.py for the end-to-end path). On a
machine whose cores are busy with other jobs, --threads 1 avoids torch's threads spinning against them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import simcse_lab
from simcse_lab.apps.widgets import SimilarityExplorer, example_sentences

TARGET_MS = 300


def pick_model(requested: str | None) -> str:
    if requested:
        return requested
    if (Path(simcse_lab.DEFAULT_MODEL) / "config.json").is_file():
        return simcse_lab.DEFAULT_MODEL
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from conftest import build_tiny_bert  # noqa: PLC0415

    print("default model not built yet: using a tiny random BERT")
    return str(build_tiny_bert(Path(tempfile.mkdtemp()) / "tiny_bert"))


def summary(name: str, ms: list[float]) -> str:
    p90 = float(np.percentile(ms, 90))
    flag = "ok" if p90 <= TARGET_MS else f"OVER the {TARGET_MS} ms target"
    return f"{name:<28} median {statistics.median(ms):7.1f} ms   p90 {p90:7.1f} ms   ({len(ms)} runs; {flag})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--sentences", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model = pick_model(args.model)
    encoder = simcse_lab.SimCSEEncoder.from_pretrained(model, device="cpu")
    sentences = example_sentences()[: args.sentences]
    app = SimilarityExplorer(encoder, sentences)  # warm-up: first figure, first encode
    print(f"model {model} · {len(sentences)} sentences · torch threads {torch.get_num_threads()}")

    edit, encode_one = [], []
    for r in range(args.repeats):
        lines = list(sentences)
        lines[r % len(lines)] = f"{lines[r % len(lines)]} Edited version {r}."
        start = time.perf_counter()
        app.text.value = "\n".join(lines)  # the textarea observer runs update()
        edit.append(1000 * (time.perf_counter() - start))
        start = time.perf_counter()
        app.embed.encode([f"one more sentence {r}"])
        encode_one.append(1000 * (time.perf_counter() - start))
    assert app.embed.encoded == len(sentences) + args.repeats  # one encode per edit, as designed

    full = []
    for _ in range(max(5, args.repeats // 4)):
        app.embed.vectors.clear()
        start = time.perf_counter()
        app.update()
        full.append(1000 * (time.perf_counter() - start))

    print(summary("edit one line", edit))
    print(summary("  of which encode 1 sentence", encode_one))
    print(summary("full recompute (no cache)", full))


if __name__ == "__main__":
    main()
