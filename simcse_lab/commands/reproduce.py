"""`simcse-lab reproduce`: one recipe, N seeds, a ledger you can trust.

    simcse-lab reproduce --config recipes/unsup_default.json --seeds 5        # seeds 1..5
    simcse-lab reproduce --config recipes/unsup_default.json --seeds 1,2,3

Each seed trains into `<ledger_dir>/seed-<s>/` (the recipe's checkpoint selection on STS-B dev), then its
selected model is evaluated on the seven STS test tasks with the protocol it was selected with (its saved pooler
and max length; STS12-16 in SentEval's "all" setting, with "mean" and "wmean" kept too). The ledger
(`ledger.json`, `ledger.md`, and a figure of the seed distribution) is rewritten after every seed.

Resuming: a seed whose `seed_result.json` exists is kept as it is, never rerun; a seed whose training finished
is only evaluated; a seed killed mid-training continues from its newest checkpoint (the trainer's
`resume_from_checkpoint auto`). Running again with more seeds adds them. A different recipe in the same
ledger directory is refused. A finished seed's checkpoints are deleted (its selected model stays) unless
`keep_checkpoints`.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

from ..data.sts import ALL7
from ..errors import SimCSELabError
from ..evaluation.sts import EVAL_BATCH_SIZE, EVAL_MAX_LENGTH, sts_report
from ..models.device import pick_device
from ..models.encoder import SimCSEEncoder
from ..training import checkpoint as ckpt
from ..training.config import TrainConfig
from ..training.trainer import train
from .evaluation import describe_pooler, trained_protocol
from .fingerprint import environment_fingerprint
from .ledger import COLUMN_NAMES, COLUMNS, SELECTION_STATEMENT, ledger_markdown, seed_row, summarize

RESULT_FILE = "seed_result.json"
LEDGER_JSON, LEDGER_MD = "ledger.json", "ledger.md"
# set per seed by reproduce itself, so not part of the recipe a ledger is tied to
PER_RUN_SETTINGS = ("seed", "output_dir", "resume_from_checkpoint", "overwrite_output_dir", "show_progress")


def parse_seeds(text: str) -> list[int]:
    """`5` -> seeds 1..5; `1,2,3` -> those seeds; `7,` -> seed 7 alone."""
    text = str(text).strip()
    try:
        if "," not in text:
            count = int(text)
            if count < 1:
                raise ValueError
            return list(range(1, count + 1))
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SimCSELabError(f"--seeds {text!r}: give a count (--seeds 5: seeds 1 to 5) or a list (--seeds 1,2,3; one seed: --seeds 7,)") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise SimCSELabError(f"--seeds {text!r}: the seeds must be distinct whole numbers >= 0")
    return seeds


def recipe_of(config: TrainConfig) -> dict:
    return {k: v for k, v in config.recipe().items() if k not in PER_RUN_SETTINGS}


def reproduce(config: TrainConfig, seeds: Sequence[int], ledger_dir: str | Path | None = None, references: Sequence[dict] = (),
              keep_checkpoints: bool = False, name: str | None = None, config_file: str | None = None,
              say: Callable[[str], None] = print) -> dict:
    """Run (or resume) the seeds of one recipe and write the ledger; returns the ledger dict (module docstring)."""
    started = time.perf_counter()
    ledger_dir = Path(ledger_dir or f"{config.output_dir.rstrip('/')}-seeds")
    recipe = recipe_of(config)
    previous = read_json(ledger_dir / LEDGER_JSON)
    check_same_recipe(previous, recipe, ledger_dir)
    ledger_dir.mkdir(parents=True, exist_ok=True)
    environment = environment_fingerprint(pick_device(config.device))
    invocations = (previous or {}).get("wall_seconds", {}).get("invocations", [])
    invocation = {"started_at": now(), "seeds_run": [], "seed_seconds": 0.0, "total": 0.0}
    environments = dict((previous or {}).get("environments", {}))
    name = name or Path(config.output_dir).name
    for seed in seeds:
        seed_dir = ledger_dir / f"seed-{seed}"
        if (seed_dir / RESULT_FILE).is_file():
            say(f"seed {seed}: finished earlier, kept ({seed_dir / RESULT_FILE})")
            continue
        record = run_seed(config, seed, seed_dir, environment, keep_checkpoints, say)
        environments[environment["id"]] = environment
        invocation["seeds_run"].append(seed)
        invocation["seed_seconds"] += record["wall_seconds"]
        invocation["total"] = time.perf_counter() - started
        write_ledger(ledger_dir, build_ledger(ledger_dir, name, recipe, seeds, environments, invocations + [invocation], references, config_file))
        say(f"seed {seed}: STS-B dev {record['stsb_dev']:.2f} at step {record['best_step']}, test avg {record['sts_test']['avg_test']:.2f} "
            f"({record['wall_seconds']:.0f}s)")
    ledger = build_ledger(ledger_dir, name, recipe, seeds, environments, invocations + [invocation], references, config_file)
    ledger["figure"] = write_figure(ledger, ledger_dir, say)
    invocation["total"] = round(time.perf_counter() - started, 1)
    invocation["seed_seconds"] = round(invocation["seed_seconds"], 1)
    ledger["wall_seconds"]["total"] = round(sum(i["total"] for i in ledger["wall_seconds"]["invocations"]), 1)
    write_ledger(ledger_dir, ledger)
    if invocation["seeds_run"]:
        overhead = invocation["total"] - invocation["seed_seconds"]
        say(f"reproduce: {len(invocation['seeds_run'])} seed(s) run in {invocation['seed_seconds']:.0f}s; setup, ledger and figure took "
            f"{overhead:.1f}s more ({100 * overhead / max(invocation['seed_seconds'], 1e-9):.1f}%)")
    say(f"ledger: {ledger_dir / LEDGER_MD} and {ledger_dir / LEDGER_JSON}" + (f", figure {ledger_dir / ledger['figure']}" if ledger["figure"] else ""))
    return ledger


def run_seed(config: TrainConfig, seed: int, seed_dir: Path, environment: dict, keep_checkpoints: bool, say) -> dict:
    """Train (or resume, or skip a finished training) and evaluate one seed; writes its seed_result.json."""
    started = time.perf_counter()
    metrics_path = seed_dir / "metrics.json"
    resumed_from = None
    if metrics_path.is_file():
        say(f"seed {seed}: training finished earlier; evaluating its selected model")
    else:
        checkpoints = ckpt.list_checkpoints(seed_dir) if seed_dir.is_dir() else []
        if checkpoints:
            resumed_from = int(checkpoints[-1].name.split("-")[1])
            say(f"seed {seed}: resuming from {checkpoints[-1]}")
        else:
            say(f"seed {seed}: training")
        values = {**dataclasses.asdict(config), "seed": seed, "output_dir": str(seed_dir), "resume_from_checkpoint": "auto",
                  "overwrite_output_dir": True}
        train(TrainConfig.from_dict(values))
    metrics = json.loads(metrics_path.read_text())
    train_seconds = time.perf_counter() - started
    if metrics["best_step"] is None:
        raise SimCSELabError(f"seed {seed}: the run evaluated nothing on STS-B dev, so no checkpoint was selected; "
                             "a ledger needs eval_steps > 0 and STS-B dev data (--data_dir or $SIMCSE_LAB_DATA)")
    evaluated = time.perf_counter()
    protocol, scores = evaluate_selected(seed_dir, config)
    record = {
        "seed": seed, "best_step": metrics["best_step"], "steps": metrics["steps"], "stsb_dev": metrics["best_stsb_dev"],
        "sts_test": {f"{task}_test": value for task, value in scores["scores"].items()},
        "sts_test_detail": {f"{task}_test": value for task, value in scores["detail"].items()},
        "protocol": protocol, "resumed_from_step": resumed_from,
        "train_seconds": round(train_seconds, 1), "eval_seconds": round(time.perf_counter() - evaluated, 1),
        "wall_seconds": round(time.perf_counter() - started, 1), "finished_at": now(), "environment_id": environment["id"],
    }
    if not keep_checkpoints:
        for path in ckpt.list_checkpoints(seed_dir):
            shutil.rmtree(path, ignore_errors=True)
    write_json(seed_dir / RESULT_FILE, record)
    return record


def evaluate_selected(seed_dir: Path, config: TrainConfig) -> tuple[dict, dict]:
    """The seven STS test tasks on the seed's selected model, with the protocol it was selected with."""
    trained = trained_protocol(seed_dir)
    encoder = SimCSEEncoder.from_pretrained(seed_dir, device=config.device)
    length = trained["max_length"] or EVAL_MAX_LENGTH
    report = sts_report(lambda s: encoder.encode(s, batch_size=EVAL_BATCH_SIZE, max_length=length, show_progress=False).numpy(),
                        ALL7, "test", config.data_dir, max_pairs=config.eval_max_pairs)
    protocol = {"split": "test", "pooler": encoder.pooler, "pooler_description": describe_pooler(encoder), "max_length": length,
                "sts_aggregate": "all", "max_pairs": config.eval_max_pairs}
    return protocol, report


def build_ledger(ledger_dir: Path, name: str, recipe: dict, seeds: Sequence[int], environments: dict, invocations: list,
                 references: Sequence[dict], config_file: str | None) -> dict:
    """The ledger from every seed_result.json in ledger_dir (seeds of earlier invocations included)."""
    records = sorted((read_json(path) for path in ledger_dir.glob(f"seed-*/{RESULT_FILE}")), key=lambda r: r["seed"])
    return {
        "name": name, "config_file": config_file, "recipe": recipe, "seeds_asked": list(seeds),
        "seeds_done": [r["seed"] for r in records], "selection": SELECTION_STATEMENT,
        "smoke": f"test sets cut to their first {recipe['eval_max_pairs']} pairs (eval_max_pairs)" if recipe.get("eval_max_pairs") else None,
        "per_seed": records, "summary": summarize(records), "references": list(references), "environments": environments,
        "wall_seconds": {"seeds": round(sum(r["wall_seconds"] for r in records), 1),
                         "total": round(sum(i["total"] for i in invocations), 1), "invocations": invocations},
        "figure": None,
    }


def write_ledger(ledger_dir: Path, ledger: dict) -> None:
    write_json(ledger_dir / LEDGER_JSON, ledger)
    ckpt.atomic_write_text(ledger_dir / LEDGER_MD, ledger_markdown(ledger))


def write_figure(ledger: dict, ledger_dir: Path, say) -> str | None:
    """ledger.png (plotly + kaleido + a Chrome/Chromium), else ledger.html; None without plotly (the notebooks extra)
    or before any seed has finished."""
    try:
        from ..apps.seed_figure import seed_distribution_figure  # noqa: PLC0415
    except ImportError:
        return None
    records = ledger["per_seed"]
    if not records:
        return None
    columns = [c for c in COLUMNS if c in ledger["summary"]]
    values = {c: [seed_row(r)[c] for r in records] for c in columns}
    names = {**COLUMN_NAMES, "stsb_dev": "STS-B dev<br>(selection)", "avg_test": "Avg.<br>(test)"}
    fig = seed_distribution_figure(values, ledger["summary"], names, [r["seed"] for r in records], ledger["references"],
                                   title=f"{ledger['name']}: {len(records)} seeds (dots), mean and 95% t interval (bars)")
    try:
        fig.write_image(str(ledger_dir / "ledger.png"), scale=2)
        return "ledger.png"
    except Exception as error:  # no kaleido, no Chrome, a sandbox that forbids it, ...
        say(f"static figure export failed ({type(error).__name__}: {str(error).splitlines()[0][:120] if str(error) else ''}); "
            "writing ledger.html instead")
        fig.write_html(str(ledger_dir / "ledger.html"), include_plotlyjs="cdn")
        return "ledger.html"


def check_same_recipe(previous: dict | None, recipe: dict, ledger_dir: Path) -> None:
    if previous is None or previous.get("recipe") == recipe:
        return
    old = previous.get("recipe", {})
    changed = sorted(k for k in set(old) | set(recipe) if old.get(k) != recipe.get(k))
    detail = ", ".join(f"{k}: {old.get(k)!r} there, {recipe.get(k)!r} now" for k in changed[:4])
    raise SimCSELabError(f"{ledger_dir} holds the ledger of another recipe ({detail}); pass --ledger_dir for a new ledger, "
                         "or the same settings to resume this one")


def read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def write_json(path: Path, data: dict) -> None:
    ckpt.atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
