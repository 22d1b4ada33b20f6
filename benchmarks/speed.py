"""Training and encoding speed: simcse_lab against sentence-transformers, like for like.

    python benchmarks/speed.py --mode cpu     # this machine's CPU: a small BERT, at most ~5 minutes
    python benchmarks/speed.py --mode gpu     # BERT-base, bf16 (benchmarks/gpu/run.sh runs this)

Both libraries load the same random-init BERT, saved once by SimCSEEncoder.save_pretrained with the
same pooling (`--pooling mean`, the default: simcse_lab's avg = sentence-transformers' mean Pooling;
`--pooling cls`: simcse_lab's cls_before_pooler = sentence-transformers' CLS Pooling, the [CLS] state
without an MLP head), and see the same sentences: wiki1m_head.txt lines of 6-40 tokens, truncated at
32 (random vocabulary words of the same lengths when the data is absent).

Rows, all in one process on one device, same batch size, same dtype per row:
- train simcse_lab:        the trainer itself (`simcse_lab.train.train`), timed between two on_log
                           callbacks, so model loading and saving are excluded;
- train st Trainer:        SentenceTransformerTrainer + MultipleNegativesRankingLoss(scale=20, i.e.
                           temperature 0.05), (anchor, positive) = (sentence, the same sentence);
- train hand loop:         SentenceTransformer + MNRL + AdamW, tokenising each batch, no Trainer;
- encode simcse_lab / st:  SimCSEEncoder.encode vs SentenceTransformer.encode.
`--bert_forward auto own` (GPU mode's default) adds simcse_lab rows with the encoder's own BERT forward
(SimCSEEncoder.bert_forward "own": no host syncs) beside the default (on a GPU, transformers' forward).
CPU mode also times whole processes, 100 steps each: `python -m simcse_lab train ... --max_steps 100
--eval_steps 0` vs `python benchmarks/speed.py st-train` (a SentenceTransformerTrainer script).

Units: sentences/s counts the batch's sentences (per_device_train_batch_size per step); unsupervised
SimCSE and MNRL-on-duplicates both encode each sentence twice. The table and a JSON file
(benchmarks/results/speed_<mode>.json, speed_<mode>_cls.json with --pooling cls) are written; ratios
are simcse_lab / the other row.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
WIKI = Path("wiki") / "wiki1m_head.txt"
MODES = {  # model, batch sizes, steps (warm-up, timed), encode sentences
    "cpu": dict(model="small", batch_sizes=(64,), warmup=3, steps=12, encode_n=4096, process_steps=100),
    "gpu": dict(model="base", batch_sizes=(64, 512), warmup=10, steps=40, encode_n=65536, process_steps=0),
}
POOLERS = {"mean": "avg", "cls": "cls_before_pooler"}  # --pooling: sentence-transformers' mode -> simcse_lab's pooler


# ---------------------------------------------------------------------- data and model
def find_data_dir(given: str | None) -> Path | None:
    for candidate in (given, os.environ.get("SIMCSE_LAB_DATA"), ROOT / "benchmarks" / "gpu" / "data", ROOT.parent / "shared" / "data"):
        if candidate and (Path(candidate) / WIKI).is_file():
            return Path(candidate)
    return None


def load_tokenizer(workdir: Path, text: list[str] | None):
    """The embedded default model's tokenizer, else WordPiece trained on the text, else a made-up vocabulary."""
    from transformers import AutoTokenizer, BertTokenizerFast

    from simcse_lab import DEFAULT_MODEL

    if (Path(DEFAULT_MODEL) / "tokenizer.json").is_file() or (Path(DEFAULT_MODEL) / "vocab.txt").is_file():
        return AutoTokenizer.from_pretrained(DEFAULT_MODEL), "simcse_lab.DEFAULT_MODEL"
    if text:
        from simcse_lab.pretrain.data import train_wordpiece

        return train_wordpiece(text, 8192, workdir / "wordpiece"), "WordPiece 8192 trained on the benchmark text"
    rng = random.Random(0)
    words = sorted({"".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(3, 8))) for _ in range(8000)})
    (workdir / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    return BertTokenizerFast(vocab_file=str(workdir / "vocab.txt")), "made-up 8000-word vocabulary (no data, no default model)"


def load_sentences(data_dir: Path | None, tokenizer, count: int, seed: int = 0) -> tuple[list[str], str]:
    """Sentences of 6-40 tokens (with [CLS]/[SEP]): wiki lines, or random words of those lengths."""
    rng = random.Random(seed)
    if data_dir is not None:
        lines = [line.strip() for line in (data_dir / WIKI).read_text(encoding="utf8").splitlines() if line.strip()]
        lengths = [len(ids) for ids in tokenizer(lines)["input_ids"]]
        kept = [s for s, n in zip(lines, lengths) if 6 <= n <= 40]
        rng.shuffle(kept)
        return (kept * (count // len(kept) + 1))[:count], f"{data_dir / WIKI} ({len(kept)} lines of 6-40 tokens)"
    words = [w for w in tokenizer.get_vocab() if w.isalpha() and len(w) > 2]
    return [" ".join(rng.choices(words, k=rng.randint(4, 30))) for _ in range(count)], "random vocabulary words (no data dir)"


def build_model(size: str, tokenizer, directory: Path, pooler: str = "avg") -> dict:
    """A random-init BERT saved in simcse_lab's format (which sentence-transformers loads as is, with the
    matching Pooling module)."""
    from transformers import BertConfig, BertModel

    from simcse_lab import DEFAULT_MODEL, SimCSEEncoder

    if size == "base":
        config = BertConfig()  # BERT-base: 12 layers, hidden 768, 12 heads, vocab 30522
    elif (Path(DEFAULT_MODEL) / "config.json").is_file():
        config = BertConfig.from_pretrained(DEFAULT_MODEL)
    else:
        config = BertConfig(vocab_size=len(tokenizer), hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024)
    config.vocab_size = max(config.vocab_size, len(tokenizer))
    torch.manual_seed(0)
    SimCSEEncoder(BertModel(config), tokenizer, pooler=pooler).save_pretrained(directory, max_seq_length=32)
    return {"layers": config.num_hidden_layers, "hidden": config.hidden_size, "vocab": config.vocab_size}


# ---------------------------------------------------------------------- timing helpers
def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def reset_memory(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_memory_gib(device: str) -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.startswith("cuda") else None


def autocast(device: str, bf16: bool):
    return torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=bf16)


# ---------------------------------------------------------------------- training rows
def train_simcse_lab(model_dir, train_file, device, batch, warmup, steps, bf16, workdir, pooler, **overrides) -> dict:
    from simcse_lab.train import TrainConfig, train

    class Clock:
        times: dict[int, float] = {}

        def on_log(self, state, record):  # the trainer has read the loss back: the device is in sync
            self.times[state.step] = time.perf_counter()

    clock = Clock()
    config = TrainConfig(model_name_or_path=str(model_dir), train_file=str(train_file), output_dir=str(workdir / "simcse_lab_run"),
                         overwrite_output_dir=True, pooler_type=pooler, per_device_train_batch_size=batch, max_seq_length=32,
                         max_steps=warmup + steps, logging_steps=warmup if steps % warmup == 0 else 1, eval_steps=0,
                         bf16=bf16, device=device, show_progress=False, **overrides)
    reset_memory(device)
    train(config, callbacks=[clock])
    seconds = clock.times[warmup + steps] - clock.times[warmup]
    return {"sent_per_s": batch * steps / seconds, "peak_gib": peak_memory_gib(device)}


def st_arguments(output_dir, batch, max_steps, bf16, device, seed=42):
    from sentence_transformers import SentenceTransformerTrainingArguments

    return SentenceTransformerTrainingArguments(
        output_dir=str(output_dir), per_device_train_batch_size=batch, max_steps=max_steps, learning_rate=3e-5,
        warmup_steps=0, lr_scheduler_type="linear", max_grad_norm=1.0, bf16=bf16, logging_steps=max_steps,
        save_strategy="no", report_to="none", disable_tqdm=True, dataloader_drop_last=True, seed=seed,
        use_cpu=not device.startswith("cuda"), **({"optim": "adamw_torch_fused"} if device.startswith("cuda") else {}))


def st_trainer(model_dir, sentences, device, batch, max_steps, bf16, output_dir, callbacks=()):
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    model = SentenceTransformer(str(model_dir), device=device)
    dataset = Dataset.from_dict({"anchor": sentences, "positive": sentences})
    return SentenceTransformerTrainer(model=model, args=st_arguments(output_dir, batch, max_steps, bf16, device), train_dataset=dataset,
                                      loss=MultipleNegativesRankingLoss(model, scale=20.0), callbacks=list(callbacks))


def train_st_trainer(model_dir, sentences, device, batch, warmup, steps, bf16, workdir) -> dict:
    from transformers import TrainerCallback

    times = {}

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step in (warmup, warmup + steps):
                sync(device)
                times[state.global_step] = time.perf_counter()

    reset_memory(device)
    trainer = st_trainer(model_dir, sentences, device, batch, warmup + steps, bf16, workdir / "st_run", [Clock()])
    trainer.train()
    return {"sent_per_s": batch * steps / (times[warmup + steps] - times[warmup]), "peak_gib": peak_memory_gib(device)}


def train_hand_loop(model_dir, sentences, device, batch, warmup, steps, bf16, workdir) -> dict:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    torch.manual_seed(42)
    model = SentenceTransformer(str(model_dir), device=device)
    model.train()
    loss_fn = MultipleNegativesRankingLoss(model, scale=20.0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-5, fused=True)  # as simcse_lab and the HF Trainer
    reset_memory(device)
    started = None
    for step in range(warmup + steps):
        if step == warmup:
            sync(device)
            started = time.perf_counter()
        texts = sentences[step * batch : (step + 1) * batch]
        features = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in model.preprocess(texts).items()}
        with autocast(device, bf16):
            loss = loss_fn([dict(features), dict(features)], None)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    sync(device)
    return {"sent_per_s": batch * steps / (time.perf_counter() - started), "peak_gib": peak_memory_gib(device)}


# ---------------------------------------------------------------------- encode rows
def encode_rows(model_dir, sentences, device, batch, bf16_st: bool, repeats: int, bert_forwards=("auto",)) -> dict:
    """simcse_lab (one row per bert_forward: "simcse_lab", then "simcse_lab <choice>") and sentence-transformers."""
    from sentence_transformers import SentenceTransformer

    from simcse_lab import SimCSEEncoder

    ours = SimCSEEncoder.from_pretrained(str(model_dir), device=device)
    theirs = SentenceTransformer(str(model_dir), device=device)
    if bf16_st:
        theirs.to(torch.bfloat16)

    def encode_ours(choice, texts):
        ours.bert_forward = choice
        return ours.encode(texts, batch_size=batch, max_length=32, show_progress=False)

    runs = {simcse_lab_row(i, choice): (lambda texts, choice=choice: encode_ours(choice, texts)) for i, choice in enumerate(bert_forwards)}
    runs["st"] = lambda texts: theirs.encode(texts, batch_size=batch, convert_to_tensor=True, show_progress_bar=False)
    results, outputs = {}, {}
    for name, encode in runs.items():
        run = functools.partial(encode, sentences)
        encode(sentences[: batch * 4])  # warm-up
        reset_memory(device)
        best = float("inf")
        for _ in range(repeats):
            sync(device)
            started = time.perf_counter()
            outputs[name] = run()
            sync(device)
            best = min(best, time.perf_counter() - started)
        results[name] = {"sent_per_s": len(sentences) / best, "peak_gib": peak_memory_gib(device)}
    theirs_out = outputs["st"].float().cpu()
    results["agreement_min_cosine"] = min(float(torch.nn.functional.cosine_similarity(outputs[name].float().cpu(), theirs_out).min())
                                          for name in outputs if name != "st")
    return results


def simcse_lab_row(index: int, bert_forward: str) -> str:
    """The first simcse_lab row is "simcse_lab" (the ratios' reference); more bert_forward choices add rows."""
    return "simcse_lab" if index == 0 else f"simcse_lab {bert_forward} forward"


# ---------------------------------------------------------------------- whole processes (CPU goal)
def time_process(command: list[str], env: dict) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:6])} ... failed:\n{done.stdout[-3000:]}")
    return seconds


def process_rows(model_dir, train_file, steps, batch, bf16, workdir, repeats, pooler) -> dict:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    flags = ["--bf16"] if bf16 else []
    ours = [sys.executable, "-m", "simcse_lab", "train", "--train_file", str(train_file), "--model_name_or_path", str(model_dir),
            "--output_dir", str(workdir / "proc_simcse_lab"), "--overwrite_output_dir", "--pooler_type", pooler,
            "--per_device_train_batch_size", str(batch), "--max_seq_length", "32", "--max_steps", str(steps), "--eval_steps", "0",
            "--no_progress", *flags]
    theirs = [sys.executable, str(Path(__file__).resolve()), "st-train", "--model", str(model_dir), "--train_file", str(train_file),
              "--output_dir", str(workdir / "proc_st"), "--batch_size", str(batch), "--max_steps", str(steps), *flags]
    times = {"simcse_lab": [], "st": []}
    for _ in range(repeats):  # interleaved, so background load hits both alike
        times["simcse_lab"].append(time_process(ours, env))
        times["st"].append(time_process(theirs, env))
    return {name: {"seconds": min(values), "all_seconds": [round(v, 1) for v in values]} for name, values in times.items()}


def st_train_main(argv: list[str]) -> None:
    """`speed.py st-train`: a plain SentenceTransformerTrainer run, the baseline process."""
    parser = argparse.ArgumentParser(prog="speed.py st-train")
    parser.add_argument("--model", required=True)
    parser.add_argument("--train_file", required=True)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--max_steps", type=int, default=100)
    parser.add_argument("--bf16", action="store_true")
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    sentences = [line.strip() for line in Path(args.train_file).read_text(encoding="utf8").splitlines() if line.strip()]
    trainer = st_trainer(args.model, sentences, device, args.batch_size, args.max_steps, args.bf16, args.output_dir)
    trainer.train()
    trainer.model.save(args.output_dir)  # simcse_lab's run saves its model too


# ---------------------------------------------------------------------- report
def table(report: dict) -> str:
    lines = [f"{'row':<44} {'dtype':<6} {'sent/s':>10} {'peak GiB':>9} {'simcse_lab x':>13}"]
    for row in report["rows"]:
        if "skipped" in row:
            lines.append(f"{row['name']:<44} {row['dtype']:<6} skipped: {row['skipped'][:60]}")
            continue
        peak = "" if row.get("peak_gib") is None else f"{row['peak_gib']:.2f}"
        ratio = "" if row.get("ratio") is None else f"{row['ratio']:.2f}"
        lines.append(f"{row['name']:<44} {row['dtype']:<6} {row['sent_per_s']:>10.0f} {peak:>9} {ratio:>13}")
    for row in report.get("processes", []):
        lines.append(f"{row['name']:<44} {row['dtype']:<6} {row['seconds']:>9.1f}s {'':>9} {row.get('ratio', ''):>13}")
    return "\n".join(lines)


def run_benchmark(args) -> dict:
    plan = {**MODES[args.mode], **({"batch_sizes": tuple(args.batch_sizes)} if args.batch_sizes else {})}
    device = "cuda" if args.mode == "gpu" else "cpu"
    if args.smoke:
        plan.update(model="small", warmup=1, steps=2, encode_n=512, process_steps=min(plan["process_steps"], 3))
        device = device if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--mode gpu needs a CUDA GPU")
    workdir = Path(tempfile.mkdtemp(prefix="simcse_speed_"))
    data_dir = find_data_dir(args.data_dir)
    raw = (data_dir / WIKI).read_text(encoding="utf8").splitlines()[:5000] if data_dir else None
    tokenizer, tokenizer_source = load_tokenizer(workdir, raw)
    sentences, source = load_sentences(data_dir, tokenizer, max(plan["encode_n"], 20_000))
    train_file = workdir / "train.txt"
    train_file.write_text("\n".join(sentences[:20_000]) + "\n")
    model_dir = workdir / "model"
    pooler = POOLERS[args.pooling]
    model_info = build_model(plan["model"], tokenizer, model_dir, pooler)
    dtypes = ["bf16"] if args.mode == "gpu" else args.cpu_dtypes
    report = {"smoke": args.smoke, "mode": args.mode, "device": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu",
              "torch": torch.__version__, "threads": torch.get_num_threads(), "model": model_info, "tokenizer": tokenizer_source,
              "sentences": source, "max_seq_length": 32, "pooling": args.pooling, "rows": [], "processes": []}
    print(f"# {args.mode}: {report['device']}, torch {torch.__version__}, {report['threads']} threads, BERT {model_info}, "
          f"{args.pooling} pooling, data {source}",
          flush=True)
    only = set(args.only.split(",")) if args.only else None
    for dtype in dtypes:
        bf16 = dtype == "bf16"
        for batch in plan["batch_sizes"]:
            kwargs = dict(device=device, batch=batch, warmup=plan["warmup"], steps=plan["steps"], bf16=bf16, workdir=workdir)
            ours = None
            simcse_lab_runs = [("train " + simcse_lab_row(i, choice), functools.partial(
                train_simcse_lab, model_dir, train_file, **kwargs, pooler=pooler, bert_forward=choice, **args.simcse_overrides))
                for i, choice in enumerate(args.bert_forward)]
            for name, run in (*simcse_lab_runs,
                              ("train st Trainer + MNRL", lambda: train_st_trainer(model_dir, sentences, **kwargs)),
                              ("train hand loop + MNRL", lambda: train_hand_loop(model_dir, sentences, **kwargs))):
                if only and name.split()[1] not in only:
                    continue
                try:
                    result = run()
                except Exception as error:  # e.g. no `datasets` on the GPU machine, or an API change: the other rows still run
                    error = f"{type(error).__name__}: {error}"
                    report["rows"].append({"name": f"{name} (batch {batch})", "dtype": dtype, "skipped": error})
                    print(f"  {name} (batch {batch}): skipped, {error}", flush=True)
                    continue
                ours = ours or result["sent_per_s"]
                row = {"name": f"{name} (batch {batch})", "dtype": dtype, **result, "ratio": ours / result["sent_per_s"]}
                report["rows"].append(row)
                print(f"  {row['name']:<44} {dtype:<6} {row['sent_per_s']:10.0f} sent/s  x{row['ratio']:.2f}", flush=True)
            if args.mode == "gpu" and batch >= 512 and (not only or "simcse_lab" in only):
                result = train_simcse_lab(model_dir, train_file, **kwargs, pooler=pooler, gradient_cache_chunk_size=128,
                                          bert_forward=args.bert_forward[0], **args.simcse_overrides)
                report["rows"].append({"name": f"train simcse_lab cached, chunk 128 (batch {batch})", "dtype": dtype, **result,
                                       "ratio": None})
        if not only or "encode" in only:
            batch = max(plan["batch_sizes"])
            encoded = encode_rows(model_dir, sentences[: plan["encode_n"]], device, batch, bf16_st=bf16 and device == "cuda",
                                  repeats=1 if args.mode == "cpu" else 2, bert_forwards=args.bert_forward)
            st_dtype = "bf16" if (bf16 and device == "cuda") else "fp32"
            our_dtype = "bf16" if device == "cuda" else "fp32"  # SimCSEEncoder.encode: bf16 autocast on CUDA, fp32 on CPU
            keys = [simcse_lab_row(i, choice) for i, choice in enumerate(args.bert_forward)]
            for name, key, kind in (*((f"encode {key}", key, our_dtype) for key in keys), ("encode st", "st", st_dtype)):
                report["rows"].append({"name": f"{name} (batch {batch})", "dtype": kind, **encoded[key],
                                       "ratio": encoded["simcse_lab"]["sent_per_s"] / encoded[key]["sent_per_s"]})
            report["encode_agreement_min_cosine"] = encoded["agreement_min_cosine"]
            print(f"  encode: {encoded}", flush=True)
        if plan["process_steps"] and (not only or "process" in only):
            times = process_rows(model_dir, train_file, plan["process_steps"], plan["batch_sizes"][0], bf16, workdir, args.process_repeats,
                                 pooler)
            for name, key in (("process: simcse-lab train", "simcse_lab"), ("process: st Trainer script", "st")):
                report["processes"].append({"name": f"{name}, {plan['process_steps']} steps", "dtype": dtype, **times[key],
                                            "ratio": f"{times['st']['seconds'] / times[key]['seconds']:.2f}"})
            print(f"  processes: {times}", flush=True)
    return report


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["st-train"]:
        return st_train_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=sorted(MODES), default="cpu")
    parser.add_argument("--data_dir", help="the data directory holding wiki/wiki1m_head.txt (default $SIMCSE_LAB_DATA)")
    parser.add_argument("--cpu_dtypes", nargs="+", default=["fp32"], choices=["fp32", "bf16"], help="CPU mode: dtypes to run")
    parser.add_argument("--process_repeats", type=int, default=1, help="CPU mode: whole-process runs per side (best is kept)")
    parser.add_argument("--pooling", choices=sorted(POOLERS), default="mean",
                        help="sentence pooling of both libraries: mean (simcse_lab avg) or cls (simcse_lab cls_before_pooler)")
    parser.add_argument("--only", help="comma list of: simcse_lab, st, hand, encode, process")
    parser.add_argument("--compile", action="store_true", help="simcse_lab rows with torch_compile=True")
    parser.add_argument("--compile_mode", default="default", help="with --compile: torch_compile_mode (e.g. reduce-overhead: CUDA graphs)")
    parser.add_argument("--batch_sizes", type=int, nargs="+", help="override the mode's batch sizes")
    parser.add_argument("--bert_forward", nargs="+", choices=["auto", "own", "transformers"],
                        help="simcse_lab rows, one per choice (SimCSEEncoder.bert_forward); the first is the ratios' reference "
                             "(default: auto; GPU mode: auto own, transformers' BERT forward and simcse_lab's)")
    parser.add_argument("--smoke", action="store_true", help="exercise the mode's code paths in seconds (small model, 2 steps; "
                        "falls back to the CPU): checks the script, measures nothing")
    parser.add_argument("--output", help="JSON path (default benchmarks/results/speed_<mode>.json)")
    args = parser.parse_args(argv)
    args.bert_forward = args.bert_forward or (["auto", "own"] if args.mode == "gpu" else ["auto"])
    args.simcse_overrides = {"torch_compile": True, "torch_compile_mode": args.compile_mode} if args.compile else {}
    started = time.perf_counter()
    report = run_benchmark(args)
    report["seconds"] = round(time.perf_counter() - started, 1)
    output = Path(args.output) if args.output else ROOT / "benchmarks" / "results" / f"speed_{args.mode}{'_cls' if args.pooling == 'cls' else ''}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))
    print(f"({report['seconds']:.0f}s; written to {output})")


if __name__ == "__main__":
    main()
