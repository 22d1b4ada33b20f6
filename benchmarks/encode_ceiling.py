"""How far ahead of `SentenceTransformer.encode` can an fp32 `encode` be on this CPU?

    SIMCSE_LAB_DATA=../shared/data python benchmarks/encode_ceiling.py

Both libraries sort sentences by length and cut each batch at its longest, so they run the same
matrix products: per layer Q, K, V, the attention output and the two feed-forward products over
every token of every batch. This script times, side by side in one process:

- `SimCSEEncoder.encode` and `SentenceTransformer.encode` on the same model and sentences;
- the work no exact fp32 encoder can skip, on random inputs of the very shapes the batches give:
  the matrix products alone, with torch's default BLAS (`F.linear`: MKL in the PyPI wheels) and with
  oneDNN (what simcse_lab's CPU forward calls), then those plus attention (SDPA) and GELU, then plus
  tokenising the sentences (one fast-tokenizer call); no LayerNorm, embedding lookup, pooling or copies.

Each is a lower bound on the time of any fp32 encoder built on that library's matrix products, so
`sentence-transformers time / bound` bounds the ratio such an encoder can reach on this machine. On the
AMD EPYC CPU this project runs on, MKL's fp32 products run at about 200 GFLOP/s and oneDNN's AVX-512
ones at about twice that, so the bound with MKL (x1.45-1.51) is no bound for simcse_lab. All of this is
for mean pooling (the model is saved with avg pooling =
sentence-transformers' mean Pooling), which reads every token of the last layer. With [CLS] pooling
the last layer needs the [CLS] row only, less work than this bound counts: simcse_lab does that
(simcse_lab/bert_forward.py), and `benchmarks/speed.py --pooling cls` times it.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import build_model, find_data_dir, load_sentences, load_tokenizer  # noqa: E402
from simcse_lab.models.bert_forward import matmul_transposed, onednn_available  # noqa: E402


def unavoidable_work(batches: list[tuple[int, int]], hidden: int, intermediate: int, layers: int, heads: int,
                     with_attention_and_gelu: bool, linear=F.linear, repeats: int = 3) -> float:
    """Seconds for `layers` BERT layers' matrix products by `linear` (and, optionally, attention and GELU)
    over batches of (sentences, width), best of repeats."""
    shapes = [(hidden, hidden)] * 4 + [(hidden, intermediate), (intermediate, hidden)]  # (in, out): Q, K, V, O, FFN up, down
    weights = [(torch.randn(out, inp), torch.randn(out)) for inp, out in shapes]
    best = float("inf")
    with torch.inference_mode():
        tensors = {}
        for rows, width in set(batches):
            n = rows * width
            tensors[rows, width] = ({inp: torch.randn(n, inp) for inp in (hidden, intermediate)},
                                    torch.randn(rows, heads, width, hidden // heads), torch.ones(rows, 1, 1, width, dtype=torch.bool))
        for _ in range(repeats):
            started = time.perf_counter()
            for rows, width in batches:
                inputs, qkv, mask = tensors[rows, width]
                for _layer in range(layers):
                    for (weight, bias), (inp, _out) in zip(weights, shapes):
                        linear(inputs[inp], weight, bias)
                    if with_attention_and_gelu:
                        F.scaled_dot_product_attention(qkv, qkv, qkv, attn_mask=mask)
                        F.gelu(inputs[intermediate])
            best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    from sentence_transformers import SentenceTransformer

    from simcse_lab import SimCSEEncoder

    workdir = Path(tempfile.mkdtemp(prefix="simcse_ceiling_"))
    data_dir = find_data_dir(None)
    tokenizer, _ = load_tokenizer(workdir, None)
    sentences, source = load_sentences(data_dir, tokenizer, 4096)
    info = build_model("small", tokenizer, workdir / "model")
    batch = 64

    lengths = np.array([len(ids) for ids in tokenizer(sentences, truncation=True, max_length=32)["input_ids"]])
    by_length = np.sort(lengths)[::-1]
    batches = [(len(chunk), int(chunk.max())) for chunk in np.split(by_length, range(batch, len(by_length), batch))]

    ours = SimCSEEncoder.from_pretrained(str(workdir / "model"), device="cpu")
    theirs = SentenceTransformer(str(workdir / "model"), device="cpu")
    timings = {}
    for name, run in (("simcse_lab encode", lambda: ours.encode(sentences, batch_size=batch, max_length=32, show_progress=False)),
                      ("st encode", lambda: theirs.encode(sentences, batch_size=batch, show_progress_bar=False))):
        run()  # warm-up
        timings[name] = min(timed(run) for _ in range(3))
    config = ours.backbone.config
    shape = (config.hidden_size, config.intermediate_size, config.num_hidden_layers, config.num_attention_heads)
    timings["products, default BLAS"] = unavoidable_work(batches, *shape, with_attention_and_gelu=False)
    fastest = F.linear
    if onednn_available():
        timings["products, oneDNN"] = unavoidable_work(batches, *shape, with_attention_and_gelu=False, linear=matmul_transposed)
        fastest = matmul_transposed if timings["products, oneDNN"] < timings["products, default BLAS"] else F.linear
    timings["+ attention and GELU"] = unavoidable_work(batches, *shape, with_attention_and_gelu=True, linear=fastest)
    timings["+ tokenising"] = timings["+ attention and GELU"] + min(
        timed(lambda: tokenizer(sentences, truncation=True, max_length=32)) for _ in range(3))
    tokens = sum(rows * width for rows, width in batches)
    flops = 2 * tokens * config.num_hidden_layers * (4 * config.hidden_size**2 + 2 * config.hidden_size * config.intermediate_size)

    print(f"# {len(sentences)} sentences ({source}), batch {batch}, BERT {info}, {torch.get_num_threads()} threads, fp32")
    print(f"{'':<24} {'seconds':>8} {'sent/s':>8} {'GFLOP/s of linear layers':>26}")
    for name, seconds in timings.items():
        print(f"{name:<24} {seconds:8.2f} {len(sentences) / seconds:8.0f} {flops / seconds / 1e9:26.0f}")
    library = "oneDNN" if fastest is matmul_transposed else "the default BLAS"
    print(f"simcse_lab / st: x{timings['st encode'] / timings['simcse_lab encode']:.2f}; the most an fp32 encode on {library}'s "
          f"products can be ahead of st here: x{timings['st encode'] / timings['+ tokenising']:.2f} "
          f"(x{timings['st encode'] / min(v for k, v in timings.items() if k.startswith('products')):.2f} counting matrix products only); "
          f"on the default BLAS's products alone: x{timings['st encode'] / timings['products, default BLAS']:.2f}")


def timed(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
