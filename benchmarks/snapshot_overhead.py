"""What geometry snapshots (TrainConfig.geometry_snapshots, explore's training replay) cost a training run.

Runs each recipe with snapshots off and on, alternating the order round by round (off/on, then on/off) so a
machine that gets busier or quieter moves both alike, in this one process. Prints, per run, the wall and CPU
seconds of `train` and the seconds spent inside the snapshot recorder itself (timed around its callbacks),
the load average before and after, and per recipe the medians and the overhead.

    SIMCSE_LAB_DATA=../shared/data python benchmarks/snapshot_overhead.py                  # both recipes, 2 rounds
    SIMCSE_LAB_DATA=../shared/data python benchmarks/snapshot_overhead.py --recipes sup --rounds 3
    SIMCSE_LAB_DATA=../shared/data python benchmarks/snapshot_overhead.py --max_steps unsup=100 sup=15

--max_steps runs only the first N steps of a recipe, every other setting (eval_steps included) as it is: on a
busy machine a whole run takes hours. The share it measures is then an upper bound of the whole run's: step 0's
snapshot (one encode of the probe) is spread over fewer steps, while each evaluation's snapshot costs the
same per evaluation interval.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from simcse_lab.data.corpus import write_unsup_training_file
from simcse_lab.training import snapshots
from simcse_lab.training.config import TrainConfig
from simcse_lab.training.trainer import train

REPO = Path(__file__).resolve().parent.parent
RECIPES = {"unsup": REPO / "recipes" / "unsup_default.json", "sup": REPO / "recipes" / "sup_default.json"}


class RecorderClock:
    """Time spent inside GeometrySnapshots' callbacks: on_train_begin (step 0: one encode of the probe) and
    on_evaluate (each evaluation: the numbers and files of one snapshot)."""

    def __init__(self):
        self.seconds = 0.0
        self.by_callback = {"on_train_begin": [], "on_evaluate": []}
        self.originals = {}

    def __enter__(self):
        for name in ("on_train_begin", "on_evaluate"):
            original = getattr(snapshots.GeometrySnapshots, name)
            self.originals[name] = original

            def timed(recorder, *args, _original=original, _name=name):
                started = time.perf_counter()
                try:
                    return _original(recorder, *args)
                finally:
                    self.seconds += time.perf_counter() - started
                    self.by_callback[_name].append(time.perf_counter() - started)

            setattr(snapshots.GeometrySnapshots, name, timed)
        return self

    def __exit__(self, *exc):
        for name, original in self.originals.items():
            setattr(snapshots.GeometrySnapshots, name, original)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def one_run(recipe: dict, output_dir: Path, size: int) -> dict:
    config = TrainConfig.from_dict({**recipe, "output_dir": str(output_dir), "overwrite_output_dir": True, "show_progress": False,
                                    "geometry_snapshots": size})
    load_before = os.getloadavg()[0]
    cpu, wall = cpu_seconds(), time.perf_counter()
    with RecorderClock() as clock:
        result = train(config)
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    folder = output_dir / snapshots.SNAPSHOT_DIR
    stored = sum(p.stat().st_size for p in folder.glob("*")) if folder.is_dir() else 0
    begin, evaluations = clock.by_callback["on_train_begin"], clock.by_callback["on_evaluate"]
    return {"snapshots": size, "wall_s": wall, "cpu_s": cpu, "recorder_s": clock.seconds, "best": result.best_score,
            "step0_s": sum(begin), "per_eval_s": sum(evaluations) / max(len(evaluations), 1),
            "load_before": load_before, "load_after": os.getloadavg()[0], "stored_bytes": stored}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--size", type=int, default=TrainConfig.geometry_snapshots, help="probe sentences when on")
    parser.add_argument("--max_steps", nargs="+", default=[], metavar="RECIPE=N", help="run only the first N steps of a recipe")
    args = parser.parse_args()
    prefix = {name: int(steps) for name, steps in (item.split("=") for item in args.max_steps)}
    work = Path(tempfile.mkdtemp(prefix="snapshot-overhead-"))
    summary = {}
    for name in args.recipes:
        recipe = json.loads(RECIPES[name].read_text())
        recipe = {k: os.path.expandvars(v) if isinstance(v, str) else v for k, v in recipe.items()}
        recipe.pop("output_dir")
        if name in prefix:
            recipe["max_steps"] = prefix[name]
        if name == "unsup":
            recipe["train_file"] = str(write_unsup_training_file(work / "wiki_wordnet.txt"))
        runs = []
        for round_ in range(args.rounds):
            for size in ((0, args.size) if round_ % 2 == 0 else (args.size, 0)):
                run = one_run(recipe, work / f"{name}-{size}", size)
                runs.append(run)
                print(f"{name} round {round_ + 1} snapshots={size:>3}: wall {run['wall_s']:7.1f}s  cpu {run['cpu_s']:7.1f}s  "
                      f"recorder {run['recorder_s']:5.2f}s (step 0 {run['step0_s']:.2f}s, {run['per_eval_s']:.2f}s an evaluation)  best dev {run['best']:.2f}  stored {run['stored_bytes'] / 2**20:.2f} MB  "
                      f"load {run['load_before']:.1f} -> {run['load_after']:.1f}", flush=True)
        off = [r for r in runs if r["snapshots"] == 0]
        on = [r for r in runs if r["snapshots"] > 0]
        wall_off, wall_on = (statistics.median(r["wall_s"] for r in rs) for rs in (off, on))
        cpu_off, cpu_on = (statistics.median(r["cpu_s"] for r in rs) for rs in (off, on))
        recorder = statistics.median(r["recorder_s"] for r in on)
        full_steps = json.loads(RECIPES[name].read_text())["max_steps"]
        evaluations = len(snapshots.frame_steps(full_steps, recipe["eval_steps"], full_steps))
        # the whole recipe, from this run: training time linear in steps (its evaluations come every eval_steps steps too)
        full = (statistics.median(r["step0_s"] for r in on) + evaluations * statistics.median(r["per_eval_s"] for r in on)) / (
            wall_off * full_steps / recipe["max_steps"])
        summary[name] = dict(wall_off=wall_off, wall_on=wall_on, cpu_off=cpu_off, cpu_on=cpu_on, recorder=recorder,
                             steps=recipe["max_steps"], eval_steps=recipe["eval_steps"], full=full, full_steps=full_steps)
    print("\n| recipe (steps, eval every) | wall off (s) | wall on (s) | wall +% | CPU off (s) | CPU on (s) | CPU +% | inside the recorder (s) | recorder / wall on | whole recipe, estimated |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, s in summary.items():
        print(f"| {name} ({s['steps']}, {s['eval_steps']}) | {s['wall_off']:.1f} | {s['wall_on']:.1f} | {100 * (s['wall_on'] / s['wall_off'] - 1):+.1f} | {s['cpu_off']:.1f} | "
              f"{s['cpu_on']:.1f} | {100 * (s['cpu_on'] / s['cpu_off'] - 1):+.1f} | {s['recorder']:.2f} | {100 * s['recorder'] / s['wall_on']:.2f}% | {100 * s['full']:.2f}% of {s['full_steps']} steps |")
    print(f"\nmedians of {args.rounds} run(s) each; load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
