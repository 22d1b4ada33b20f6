"""`simcse-lab evaluate`: the official evaluation.py's modes and task sets, with the protocol written down.

The protocol guard. A model saved by simcse_lab records how it is to be evaluated (simcse_config.json's
"evaluation": the pooler, whether the MLP head runs at inference, and the max length STS-B dev was scored at
when its checkpoint was selected); a sentence-transformers directory or an official SimCSE checkpoint name says
which pooler it was trained with. Those are the defaults here. Asking for another pooler prints one line with
what was trained and what each pooler gives on STS-B dev (never a test set), then evaluates as asked.

Every result carries its protocol (mode, pooler, max length, the STS aggregate), and every score's key names
its split: "sts_dev": {"stsb_dev": ...} cannot be read as a test result, and the printed tables say dev or test
in their titles and column names.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

from ..data.sts import STS_TASKS, TASK_DISPLAY_NAMES
from ..data.transfer import TRANSFER_DISPLAY_NAMES, TRANSFER_TASKS
from ..errors import SimCSELabError, unknown_choice
from ..evaluation.sts import EVAL_BATCH_SIZE, EVAL_MAX_LENGTH, evaluate_sts, format_table, sts_report
from ..models.encoder import SimCSEEncoder
from ..models.files import check_model_directory
from ..models.loading import choose_pooler

MODES = {"test": "test", "fasttest": "test", "dev": "dev"}  # mode -> the split scores come from
TASK_SETS = ("sts", "transfer", "full", "na")  # na: the --tasks given (the official evaluation.py's spelling)
# the official evaluation.py's task names, accepted as well as simcse_lab's
OFFICIAL_NAMES = {**{v.lower(): k for k, v in TASK_DISPLAY_NAMES.items()}, **{v.lower(): k for k, v in TRANSFER_DISPLAY_NAMES.items()}}


def resolve_tasks(task_set: str, tasks: Sequence[str] | None, split: str) -> tuple[list[str], list[str]]:
    """(STS tasks, transfer tasks) to run: --tasks when given, else the task set's (official evaluation.py)."""
    if task_set not in TASK_SETS:
        raise unknown_choice("task_set", task_set, TASK_SETS)
    if tasks:
        chosen = [OFFICIAL_NAMES.get(t.lower(), t.lower()) for t in tasks]
        for task in chosen:
            if task not in STS_TASKS + TRANSFER_TASKS:
                raise unknown_choice("task", task, STS_TASKS + TRANSFER_TASKS)
        return [t for t in chosen if t in STS_TASKS], [t for t in chosen if t in TRANSFER_TASKS]
    if task_set == "na":
        raise SimCSELabError("--task_set na evaluates the --tasks given; pass --tasks (for example --tasks stsb mr)")
    sts = list(STS_TASKS if split == "test" else ("stsb", "sickr")) if task_set in ("sts", "full") else []
    return sts, list(TRANSFER_TASKS) if task_set in ("transfer", "full") else []


def trained_protocol(model_name_or_path) -> dict:
    """What the model says it is to be evaluated with: {"pooler", "mlp_only_train", "max_length", "reason", "known"}.
    known is False when nothing was saved (the pooler is then simcse_lab's default guess, avg)."""
    name = str(model_name_or_path)
    local = Path(name).expanduser()
    saved = check_model_directory(local) if local.is_dir() else None  # a damaged directory: one error, as loading gives
    choice = choose_pooler(name, local if local.is_dir() else None, saved, None, None)
    evaluation = (saved or {}).get("evaluation") or {}
    return {"pooler": choice.pooler, "mlp_only_train": choice.mlp_only_train, "max_length": evaluation.get("max_length"),
            "reason": choice.reason, "known": not choice.reason.startswith("no saved")}


def inference_pooler(pooler: str, mlp_only_train: bool) -> str:
    """The pooler as inference sees it: cls whose MLP runs in training only is cls_before_pooler."""
    return "cls_before_pooler" if pooler == "cls" and mlp_only_train else pooler


def describe_pooler(encoder: SimCSEEncoder) -> str:
    if encoder.pooler != "cls":
        return encoder.pooler
    return "cls with the MLP head" if encoder.mlp is not None and not encoder.mlp_only_train else "cls without the MLP head (mlp_only_train)"


def evaluate_model(model_name_or_path, mode: str = "test", task_set: str = "sts", tasks: Sequence[str] | None = None,
                   pooler: str | None = None, max_length: int | None = None, batch_size: int = EVAL_BATCH_SIZE, data_dir=None,
                   show_progress: bool = True, say: Callable[[str], None] = print) -> dict:
    """Evaluate one model as `simcse-lab evaluate` does; returns the results JSON (module docstring)."""
    if mode not in MODES:
        raise unknown_choice("mode", mode, MODES)
    split = MODES[mode]
    sts_tasks, transfer_tasks = resolve_tasks(task_set, tasks, split)
    trained = trained_protocol(model_name_or_path)
    encoder = SimCSEEncoder.from_pretrained(model_name_or_path, pooler=pooler)
    length = max_length or trained["max_length"] or EVAL_MAX_LENGTH
    if max_length and trained["max_length"] and max_length != trained["max_length"]:
        say(f"note: max length {max_length} asked; this model's checkpoint was selected with STS-B dev scored at {trained['max_length']}")

    def encode_with(model: SimCSEEncoder):
        return lambda s: model.encode(s, batch_size=batch_size, max_length=length, show_progress=show_progress).numpy()

    asked_as = inference_pooler(encoder.pooler, encoder.mlp_only_train)
    if pooler is not None and trained["known"] and asked_as != inference_pooler(trained["pooler"], trained["mlp_only_train"]):
        say(pooler_guard_line(model_name_or_path, encoder, trained, encode_with, data_dir))
    protocol = {"mode": mode, "split": split, "pooler": encoder.pooler, "pooler_description": describe_pooler(encoder),
                "pooler_source": encoder.pooler_reason, "max_length": length, "batch_size": batch_size,
                "sts_aggregate": "STS12-16: 'all' = one Spearman over the concatenated subsets (SimCSE's setting); "
                                 "SentEval's 'mean' and 'wmean' of the per-subset Spearman are in the detail"}
    report = {"model": str(model_name_or_path), "protocol": protocol}
    encode = encode_with(encoder)
    if sts_tasks:
        sts = sts_report(encode, sts_tasks, split, data_dir)
        report[f"sts_{split}"] = {f"{task}_{split}": score for task, score in sts["scores"].items()}
        report[f"sts_{split}_detail"] = {f"{task}_{split}": detail for task, detail in sts["detail"].items()}
    if transfer_tasks:
        from ..evaluation.transfer import average, evaluate_transfer, pretraining_overlap, transfer_settings  # noqa: PLC0415

        protocol["transfer"] = transfer_settings(mode)
        results = evaluate_transfer(encode, transfer_tasks, mode, data_dir, show_progress=show_progress)
        key = "acc" if split == "test" else "devacc"
        section = {f"{task}_{split}": result for task, result in results.items()}
        section[f"avg_{split}"] = {key: average(results, key)}
        report[f"transfer_{split}"] = section
        overlap = pretraining_overlap(model_name_or_path)
        if overlap:
            report["notes"] = [f"the encoder's MLM pre-training corpus contained the sentences of {', '.join(overlap['tasks'])} "
                               f"({overlap['source']}): their transfer accuracies are not measured on unseen text"]
    return report


def pooler_guard_line(model_name_or_path, encoder: SimCSEEncoder, trained: dict, encode_with, data_dir) -> str:
    """One line: the pooler the model was trained with, the one asked for, and what each gives on STS-B dev."""
    as_trained = SimCSEEncoder.from_pretrained(model_name_or_path)
    scores = {model.pooler: evaluate_sts(encode_with(model), ("stsb",), "dev", data_dir)["stsb"] for model in (as_trained, encoder)}
    return (f"pooler: this model was trained with {describe_pooler(as_trained)} ({trained['reason']}) and you asked for "
            f"{describe_pooler(encoder)}; STS-B dev: {as_trained.pooler} {scores[as_trained.pooler]:.2f} (trained), "
            f"{encoder.pooler} {scores[encoder.pooler]:.2f} (asked); evaluating with {encoder.pooler}")


# ---------------------------------------------------------------------- printing
def format_evaluation(report: dict) -> str:
    """The printed tables: their titles and columns say dev or test, and which STS aggregate each row is."""
    protocol = report["protocol"]
    split = protocol["split"]
    label = "test splits" if split == "test" else "dev splits: validation scores, NOT test results"
    head = f"{protocol['mode']} ({label}) | pooler {protocol['pooler_description']} | max length {protocol['max_length']}"
    suffix = "" if split == "test" else " (dev)"
    blocks = []
    if f"sts_{split}" in report:
        scores = report[f"sts_{split}"]
        names = [TASK_DISPLAY_NAMES[k.rsplit("_", 1)[0]] + suffix for k in scores if not k.startswith("avg_")] + ["Avg." + suffix]
        what = "Spearman x 100" + ("; STS12-16: SentEval 'all' (SimCSE's setting)" if split == "test" else "")
        blocks.append(format_table(names, [[f"{v:.2f}" for v in scores.values()]], f"{head} | STS, {what}"))
        detail = {k: v for k, v in report[f"sts_{split}_detail"].items() if "mean" in v}
        if detail:
            header = ["aggregate"] + [TASK_DISPLAY_NAMES[k.rsplit("_", 1)[0]] for k in detail]
            rows = [["all (SimCSE)"] + [f"{v['all']:.2f}" for v in detail.values()],
                    ["mean (SentEval)"] + [f"{v['mean']:.2f}" for v in detail.values()],
                    ["wmean (SentEval)"] + [f"{v['wmean']:.2f}" for v in detail.values()]]
            blocks.append(format_table(header, rows, "STS12-16: the three aggregates of the same per-pair scores"))
    if f"transfer_{split}" in report:
        section = report[f"transfer_{split}"]
        key = "acc" if split == "test" else "devacc"
        settings = protocol["transfer"]
        names = [TRANSFER_DISPLAY_NAMES[k.rsplit("_", 1)[0]] + suffix for k in section if not k.startswith("avg_")] + ["Avg." + suffix]
        values = [f"{v[key]:.2f}" if v.get(key) is not None else "-" for v in section.values()]
        what = "test accuracy" if split == "test" else "validation accuracy (devacc)"
        classifier = settings["classifier"]
        blocks.append(format_table(names, [values], f"transfer, {what}; SentEval, '{protocol['mode']}' settings: {settings['kfold']}-fold, "
                                   f"{classifier['optim']}, batch {classifier['batch_size']}, tenacity {classifier['tenacity']}, "
                                   f"epoch size {classifier['epoch_size']}"))
        seconds = ", ".join(f"{TRANSFER_DISPLAY_NAMES[k.rsplit('_', 1)[0]]} {v['seconds']:.0f}s" for k, v in section.items() if "seconds" in v)
        blocks.append(f"time per task: {seconds}")
    blocks += [f"note: {note}" for note in report.get("notes", [])]
    return "\n".join(blocks)


def default_output(model_name_or_path, mode: str) -> Path:
    model_dir = Path(str(model_name_or_path))
    folder = model_dir if model_dir.is_dir() and os.access(model_dir, os.W_OK) else Path(".")
    return folder / f"eval_results_{mode}.json"


__all__ = ["evaluate_model", "format_evaluation", "default_output", "trained_protocol"]
