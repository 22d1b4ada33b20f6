"""The reproduction ledger: per-seed results of one recipe, their statistics, as JSON and Markdown.

Columns: STS-B dev (the score each seed's checkpoint was selected with) and the seven STS test tasks with their
average (STS12-16 in SentEval's "all" setting). Per column: mean, the sample standard deviation (n - 1), min,
max and a 95% confidence interval for the mean from Student's t with n - 1 degrees of freedom,
mean +- t(0.975, n - 1) * std / sqrt(n). With one seed there is no spread, so std and the interval are None.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy.stats import t as student_t

from ..data.sts import ALL7

TEST_COLUMNS = tuple(f"{task}_test" for task in ALL7) + ("avg_test",)
COLUMNS = ("stsb_dev",) + TEST_COLUMNS
COLUMN_NAMES = {"stsb_dev": "STS-B dev (selection)", "sts12_test": "STS12", "sts13_test": "STS13", "sts14_test": "STS14",
                "sts15_test": "STS15", "sts16_test": "STS16", "stsb_test": "STS-B", "sickr_test": "SICK-R", "avg_test": "Avg. (test)"}
SELECTION_STATEMENT = ("Each seed keeps the checkpoint with the best STS-B dev score. The test columns are reported, never used "
                       "to select: no checkpoint, seed or setting was chosen by a test score.")


def column_stats(values: Sequence[float]) -> dict:
    """n, mean, std (sample, n - 1), min, max and the 95% t interval of the mean (module docstring)."""
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    stats = {"n": n, "mean": float(x.mean()), "std": None, "min": float(x.min()), "max": float(x.max()), "ci95": None}
    if n > 1:
        std = float(x.std(ddof=1))
        half = float(student_t.ppf(0.975, n - 1)) * std / math.sqrt(n)
        stats.update(std=std, ci95=[stats["mean"] - half, stats["mean"] + half])
    return stats


def seed_row(record: dict) -> dict[str, float]:
    """One seed's values by column."""
    return {"stsb_dev": record["stsb_dev"], **record["sts_test"]}


def summarize(records: Sequence[dict]) -> dict[str, dict]:
    rows = [seed_row(r) for r in records]
    return {column: column_stats([row[column] for row in rows]) for column in COLUMNS if rows and all(column in row for row in rows)}


def duration(seconds: float) -> str:
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m {rest:02d}s" if minutes else f"{rest}s"


def ledger_markdown(ledger: dict) -> str:
    """The ledger as a Markdown page: recipe, the selection rule, per-seed rows, statistics, protocol, environment."""
    records, summary = ledger["per_seed"], ledger["summary"]
    columns = [c for c in COLUMNS if c in summary]
    lines = [f"# Reproduction ledger: {ledger['name']} ({len(records)} seed{'s' if len(records) != 1 else ''})", ""]
    lines += [f"**{SELECTION_STATEMENT}**", ""]
    if ledger.get("smoke"):
        lines += [f"**Smoke run: {ledger['smoke']}. These are not the protocol's numbers.**", ""]
    recipe = ledger["recipe"]
    lines += ["Recipe" + (f" (`{ledger['config_file']}`)" if ledger.get("config_file") else "") + ": "
              + ", ".join(f"`{k}={v}`" for k, v in recipe.items() if v not in (None, "", False)), ""]
    header = ["seed", "selected step"] + [COLUMN_NAMES[c] for c in columns] + ["wall"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for record in records:
        row = seed_row(record)
        wall = duration(record["wall_seconds"]) + (" (resumed)" if record.get("resumed_from_step") else "")
        lines.append("| " + " | ".join([str(record["seed"]), str(record["best_step"])] + [f"{row[c]:.2f}" for c in columns] + [wall]) + " |")

    def stat_row(label: str, render) -> str:
        return "| " + " | ".join([f"**{label}**", ""] + [render(summary[c]) for c in columns] + [""]) + " |"

    lines.append(stat_row("mean ± std", lambda s: f"{s['mean']:.2f} ± {s['std']:.2f}" if s["std"] is not None else f"{s['mean']:.2f}"))
    lines.append(stat_row("min", lambda s: f"{s['min']:.2f}"))
    lines.append(stat_row("max", lambda s: f"{s['max']:.2f}"))
    n = len(records)
    lines.append(stat_row(f"95% CI (t, {max(n - 1, 0)} df)", lambda s: f"{s['ci95'][0]:.2f} – {s['ci95'][1]:.2f}" if s["ci95"] else "–"))
    lines.append("")
    protocol = records[0]["protocol"] if records else {}
    described = protocol.get("pooler_description")
    pooler = f"`{protocol.get('pooler')}`" + (f" ({described})" if described and described != protocol.get("pooler") else "")
    lines += [f"Test protocol: pooler {pooler}, max length "
              f"{protocol.get('max_length')}; STS12-16 in SentEval's \"all\" setting (one Spearman over the concatenated subsets, "
              "as the SimCSE paper reports); SentEval's \"mean\" and \"wmean\" per seed are in ledger.json.", ""]
    wall = ledger["wall_seconds"]
    lines += [f"Wall time: {duration(wall['seeds'])} for the seeds' runs (training + test evaluation), "
              f"{duration(wall['total'])} in all over {len(wall['invocations'])} invocation(s).", ""]
    for reference in ledger.get("references", []):
        mean = f", mean {reference['mean']:.2f}" if reference.get("mean") is not None else ""
        lines.append(f"Reference (someone else's measurement, not this ledger's): {COLUMN_NAMES.get(reference['column'], reference['column'])} "
                     f"{reference['min']:.2f}–{reference['max']:.2f}{mean}: {reference['label']}")
    if ledger.get("references"):
        lines.append("")
    if ledger.get("figure"):
        lines += [f"Figure: [{ledger['figure']}]({ledger['figure']})", ""]
    environments = ledger["environments"]
    if len(environments) > 1:
        lines += [f"**The seeds ran in {len(environments)} different environments** (see each seed's `environment_id`).", ""]
    lines += ["Environment:", "", "| | " + " | ".join(environments) + " |", "|---|" + "---|" * len(environments)]
    keys = [k for k in next(iter(environments.values()), {}) if k != "id"]
    for key in keys:
        lines.append(f"| {key} | " + " | ".join(str(env.get(key)) for env in environments.values()) + " |")
    return "\n".join(lines) + "\n"


def parse_reference(text: str) -> dict:
    """`COLUMN:MIN:MAX[:MEAN][:LABEL]` (e.g. `avg:73.16:76.70:75.11:simple-simcse README, 50 seeds`) as a reference range."""
    from ..errors import SimCSELabError  # noqa: PLC0415

    parts = text.split(":", 4)
    aliases = {"stsb_dev": "stsb_dev", **{c.removesuffix("_test"): c for c in TEST_COLUMNS}, **{c: c for c in TEST_COLUMNS}}
    try:
        column = aliases[parts[0].strip().lower()]
        low, high = float(parts[1]), float(parts[2])
        mean = float(parts[3]) if len(parts) > 3 and parts[3].strip() else None
    except (KeyError, IndexError, ValueError):
        raise SimCSELabError(f"--reference {text!r}: expected COLUMN:MIN:MAX[:MEAN][:LABEL] with COLUMN one of "
                             f"{', '.join(c.removesuffix('_test') for c in COLUMNS)}, e.g. avg:73.16:76.70:75.11:simple-simcse README") from None
    label = parts[4].strip() if len(parts) > 4 and parts[4].strip() else "reference range"
    return {"column": column, "min": low, "max": high, "mean": mean, "label": label}
