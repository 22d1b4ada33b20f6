"""The official SimCSE `train.py` command line on `simcse-lab train`: the flags TrainConfig does not hold as such.

The official train.py parses three dataclasses with Hugging Face's HfArgumentParser: its ModelArguments and
DataTrainingArguments, and OurTrainingArguments, HF's TrainingArguments (transformers 4.2.1, which its
requirements pin) plus `eval_transfer`. Most SimCSE flags, and the HF ones that matter here, are TrainConfig
fields of the same name (simcse_lab/training/config.py: their --help says where a default differs). Every
other flag of those classes, and a few of later HF versions that run scripts use, is in OFFICIAL_FLAGS, as:

- rename:  the same meaning under a simcse_lab flag (`--no_cuda` = `--device cpu`, `--disable_tqdm` = `--no_progress`);
- already: what simcse_lab always does (`--load_best_model_at_end`): accepted silently when the value asks for
           that, refused with the reason when it asks for something else;
- note:    accepted, with one line on stderr saying why it changes nothing here (unless it has its HF default);
- refuse:  one line each, naming the flag, the reason and what to do instead (unless it has its harmless default).

`translate` rewrites an argv accordingly, so a command line from the official README or run scripts runs after
changing `python train.py` to `simcse-lab train`: HF's spellings included (`--fp16 False`, `--local-rank=0` from
`python -m torch.distributed.launch`, `--no_use_fast_tokenizer`, dashes for underscores), and
`simcse-lab train args.json` reads the flags from a JSON file as HfArgumentParser.parse_json_file does.
"""

from __future__ import annotations

import json
import os
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import SimCSELabError
from ..settings import FALSE_WORDS, TRUE_WORDS

BOOL, VALUE, VALUES = "bool", "value", "values"  # an optional true/false; one value; one or more values


@dataclass(frozen=True)
class OfficialFlag:
    kind: str  # BOOL | VALUE | VALUES
    action: str  # rename | already | note | refuse
    why: str = ""  # said when the flag is noted or refused
    quiet: Callable[[object], bool] = lambda value: False  # values that need no note or refusal (defaults, what simcse_lab does)
    to: Callable[[object], list[str]] = lambda value: []  # rename: the simcse_lab flags it becomes


def one_of(*values) -> Callable[[object], bool]:
    wanted = {str(v).lower() for v in values}
    return lambda value: str(value).lower() in wanted


def is_false(value) -> bool:
    return value is False


def is_true(value) -> bool:
    return value is True


ANY = lambda value: True  # noqa: E731
TPU = "TPU training is not supported here (simcse_lab runs on CUDA GPUs, Apple MPS and CPUs)"

OFFICIAL_FLAGS: dict[str, OfficialFlag] = {
    # ---- ModelArguments (official train.py)
    "model_type": OfficialFlag(VALUE, "note", "the architecture is read from the config.json of --model_name_or_path (the official "
                                              "train.py, too, trains only from a checkpoint)"),
    "config_name": OfficialFlag(VALUE, "refuse", "the config is read from --model_name_or_path; save the config you want into a copy of "
                                                 "the model directory and pass that"),
    "tokenizer_name": OfficialFlag(VALUE, "refuse", "the tokenizer is read from --model_name_or_path; save the tokenizer you want into a "
                                                    "copy of the model directory and pass that"),
    "cache_dir": OfficialFlag(VALUE, "refuse", "set HF_HUB_CACHE=<dir> (or HF_HOME) in the environment instead: simcse_lab downloads "
                                               "through huggingface_hub's cache"),
    "use_fast_tokenizer": OfficialFlag(BOOL, "already", "simcse_lab tokenises with the fast (Rust) tokenizer only", quiet=is_true),
    "model_revision": OfficialFlag(VALUE, "already", "download that revision (huggingface-cli download NAME --revision REV --local-dir "
                                                     "DIR) and pass the directory", quiet=one_of("main")),
    "use_auth_token": OfficialFlag(BOOL, "note", "huggingface_hub uses your saved login (huggingface-cli login) or HF_TOKEN by itself",
                                   quiet=is_false),
    # ---- DataTrainingArguments
    "dataset_name": OfficialFlag(VALUE, "refuse", "SimCSE trains on --train_file (the official train.py reads only that file, too); "
                                                  "hub datasets such as wikitext belong to MLM scripts"),
    "dataset_config_name": OfficialFlag(VALUE, "refuse", "SimCSE trains on --train_file (the official train.py reads only that file, too)"),
    "overwrite_cache": OfficialFlag(BOOL, "note", "simcse_lab keeps no dataset cache: the training file is tokenised anew every run",
                                    quiet=is_false),
    "validation_split_percentage": OfficialFlag(VALUE, "note", "the dev set is STS-B dev (the official train.py ignores this flag, too)",
                                                quiet=one_of(5)),
    # ---- OurTrainingArguments
    "eval_transfer": OfficialFlag(BOOL, "already", "training evaluates STS-B dev only; for the transfer tasks' dev accuracy run "
                                                  "simcse-lab evaluate --model_name_or_path OUTPUT_DIR --task_set transfer --mode dev", quiet=is_false),
    # ---- HF TrainingArguments (transformers 4.2.1)
    "do_train": OfficialFlag(BOOL, "already", "simcse-lab train always trains; evaluate a model with simcse-lab evaluate", quiet=is_true),
    "do_eval": OfficialFlag(BOOL, "already", quiet=ANY),  # STS-B dev runs every --eval_steps; metrics.json holds the best score
    "do_predict": OfficialFlag(BOOL, "note", "the official train.py has no prediction step either", quiet=is_false),
    "evaluation_strategy": OfficialFlag(VALUE, "rename", "pass --eval_steps N (an epoch has rows / batch size steps) or "
                                                         "--evaluation_strategy no", quiet=one_of("steps", "no"),
                                        to=lambda value: ["--eval_steps", "0"] if str(value).lower() == "no" else []),
    "prediction_loss_only": OfficialFlag(BOOL, "note", "simcse_lab has no prediction loop", quiet=is_false),
    "per_device_eval_batch_size": OfficialFlag(VALUE, "note", "STS-B dev is encoded as simcse-lab evaluate encodes it, so a run's dev "
                                                              "score is the one evaluate reports", quiet=one_of(8)),
    "per_gpu_train_batch_size": OfficialFlag(VALUE, "rename", to=lambda value: ["--per_device_train_batch_size", str(value)]),
    "per_gpu_eval_batch_size": OfficialFlag(VALUE, "note", "STS-B dev is encoded as simcse-lab evaluate encodes it"),
    "eval_accumulation_steps": OfficialFlag(VALUE, "note", "it belongs to HF's prediction loop; STS-B dev embeddings stay small"),
    "logging_dir": OfficialFlag(VALUE, "note", "simcse_lab writes no TensorBoard events: the loss log is output_dir/history.json"),
    "logging_first_step": OfficialFlag(BOOL, "note", "the first loss is logged at --logging_steps", quiet=is_false),
    "no_cuda": OfficialFlag(BOOL, "rename", to=lambda value: ["--device", "cpu"] if value else []),
    "fp16_opt_level": OfficialFlag(VALUE, "note", "apex opt levels do not apply: --fp16 is torch.amp autocast with loss scaling "
                                                  "(apex O1's scheme)", quiet=one_of("O1")),
    "fp16_backend": OfficialFlag(VALUE, "note", "--fp16 always runs torch.amp (native) autocast, never apex", quiet=one_of("auto", "amp")),
    "local_rank": OfficialFlag(VALUE, "already", quiet=ANY),  # the rank comes from LOCAL_RANK, which the launchers set
    "tpu_num_cores": OfficialFlag(VALUE, "refuse", TPU),
    "tpu_metrics_debug": OfficialFlag(BOOL, "refuse", TPU, quiet=is_false),
    "debug": OfficialFlag(BOOL, "refuse", "HF's debug options (TPU metrics, underflow/overflow detection) are not available here; "
                                          "--on_nonfinite says what a NaN/inf loss does", quiet=is_false),
    "dataloader_num_workers": OfficialFlag(VALUE, "note", "batches are slices of the training file, tokenised once in memory: there "
                                                          "is no loader to parallelise (--preprocessing_num_workers sets the tokenising "
                                                          "threads)", quiet=one_of(0)),
    "past_index": OfficialFlag(VALUE, "refuse", "it is for models with memories (Transformer-XL, XLNet), not sentence encoders",
                               quiet=one_of(-1)),
    "run_name": OfficialFlag(VALUE, "note", "it names a W&B / MLflow run; simcse_lab reports to output_dir/history.json only"),
    "remove_unused_columns": OfficialFlag(BOOL, "note", "the training file is read into the columns simcse_lab uses: there are none "
                                                        "to remove", quiet=is_true),
    "label_names": OfficialFlag(VALUES, "note", "the objective decides its labels (the positives' positions, or the NLI label "
                                                "column for SBERT)"),
    "load_best_model_at_end": OfficialFlag(BOOL, "already", "simcse_lab always puts the best STS-B dev model in output_dir; "
                                                            "--eval_steps 0 (no evaluation) keeps the final model instead", quiet=is_true),
    "metric_for_best_model": OfficialFlag(VALUE, "already", "simcse_lab selects checkpoints on STS-B dev Spearman (stsb_spearman) only",
                                          quiet=one_of("stsb_spearman", "eval_stsb_spearman")),
    "greater_is_better": OfficialFlag(BOOL, "already", "simcse_lab keeps the checkpoint with the highest STS-B dev Spearman",
                                      quiet=is_true),
    "ignore_data_skip": OfficialFlag(BOOL, "note", "resuming always continues the data order exactly, without replaying batches",
                                     quiet=is_false),
    "sharded_ddp": OfficialFlag(BOOL, "refuse", "FairScale's sharded DDP is not supported: simcse_lab replicates the encoder on each "
                                                "rank (torchrun) and all-gathers the embeddings", quiet=is_false),
    "deepspeed": OfficialFlag(VALUE, "refuse", "DeepSpeed is not supported: train with torchrun (DDP), --bf16 or --fp16, and "
                                               "--gradient_cache_chunk_size for big batches in fixed memory"),
    "label_smoothing_factor": OfficialFlag(VALUE, "note", "no effect, as in the official code: its loss is computed inside the model, "
                                                          "out of reach of HF's label smoother", quiet=one_of(0, 0.0)),
    "adafactor": OfficialFlag(BOOL, "refuse", "simcse_lab trains with AdamW, as the official runs do", quiet=is_false),
    # ---- later HF versions' flags that run scripts use
    "eval_strategy": OfficialFlag(VALUE, "rename", "pass --eval_steps N (an epoch has rows / batch size steps) or --eval_strategy no",
                                  quiet=one_of("steps", "no"), to=lambda value: ["--eval_steps", "0"] if str(value).lower() == "no" else []),
    "save_strategy": OfficialFlag(VALUE, "already", "checkpoints are written every --save_steps (0 = at every evaluation)",
                                  quiet=one_of("steps")),
    "logging_strategy": OfficialFlag(VALUE, "already", "the loss is logged every --logging_steps", quiet=one_of("steps")),
    "report_to": OfficialFlag(VALUES, "note", "simcse_lab reports to output_dir/history.json and the progress bar; pass callbacks to "
                                              "simcse_lab.train.train for other loggers", quiet=lambda value: value == ("none",)),
    "optim": OfficialFlag(VALUE, "already", "simcse_lab trains with torch's (fused) AdamW",
                          quiet=one_of("adamw_torch", "adamw_torch_fused", "adamw_hf")),
    "gradient_checkpointing": OfficialFlag(BOOL, "refuse", "it is not implemented; --gradient_cache_chunk_size gives big batches in "
                                                           "fixed memory (the exact gradients)", quiet=is_false),
    "group_by_length": OfficialFlag(BOOL, "refuse", "grouping by length would decide which sentences are each other's in-batch "
                                                    "negatives; simcse_lab cuts each batch at its longest sentence instead", quiet=is_false),
    "dataloader_pin_memory": OfficialFlag(BOOL, "already", quiet=ANY),  # batches are pinned on a GPU as needed
    "use_cpu": OfficialFlag(BOOL, "rename", to=lambda value: ["--device", "cpu"] if value else []),
    "push_to_hub": OfficialFlag(BOOL, "refuse", "upload output_dir yourself (huggingface-cli upload)", quiet=is_false),
    "fsdp": OfficialFlag(VALUE, "refuse", "FSDP is not supported: simcse_lab replicates the encoder on each rank (torchrun)",
                         quiet=one_of("", "False")),
    "save_safetensors": OfficialFlag(BOOL, "already", "simcse_lab saves safetensors only", quiet=is_true),
    "disable_tqdm": OfficialFlag(BOOL, "rename", to=lambda value: ["--no_progress"] if value else []),
}


DEFAULT_DIFFERENCES = (  # (flag, simcse_lab's default, the official train.py's), for --help and the README
    ("learning_rate", "3e-5", "5e-5"), ("per_device_train_batch_size", "64", "8"), ("num_train_epochs", "1", "3"),
    ("logging_steps", "10", "500"), ("save_steps", "0 = at every evaluation", "500"), ("save_total_limit", "2", "all"),
    ("dataloader_drop_last", "on", "off"), ("eval_steps", "125", "= logging_steps"),
)


def help_text() -> str:
    """The official flags' handling and the defaults that differ, for `simcse-lab train --help`."""
    groups = {"rename": [], "already": [], "note": [], "refuse": []}
    for name, flag in sorted(OFFICIAL_FLAGS.items()):
        groups[flag.action].append(f"--{name}")
    differences = ", ".join(f"{name} {ours} (official {theirs})" for name, ours, theirs in DEFAULT_DIFFERENCES)
    paragraphs = [
        ("", "Official train.py command lines run as they are, python train.py becoming simcse-lab train (HF's "
             "--fp16 False, --local-rank=0 and simcse-lab train args.json included). The official flags not listed above:"),
        ("  ", "taken under a simcse_lab name: " + " ".join(groups["rename"])),
        ("  ", "what simcse_lab always does (other values are refused, with the reason): " + " ".join(groups["already"])),
        ("  ", "accepted with a one-line note (no effect here): " + " ".join(groups["note"])),
        ("  ", "refused with the reason: " + " ".join(groups["refuse"])),
        ("", "Defaults that differ from the official train.py's (its run scripts pass the first three): " + differences + "."),
        ("", "Contrastive learning and batches: --gradient_accumulation_steps does not add in-batch negatives (each batch's "
             "loss sees its own; --gradient_cache_chunk_size computes a big batch's loss in fixed memory), and keeping the "
             "last incomplete batch (--dataloader_drop_last False) gives its sentences fewer negatives."),
        ("", "Pooler: --pooler_type defaults to cls, as officially; simcse-lab evaluate --pooler defaults to the checkpoint's "
             "own pooler (avg for a model that records none), where the official evaluation.py defaults to cls."),
    ]
    return "\n".join(textwrap.fill(text, width=110, initial_indent=indent, subsequent_indent=indent + "  ")
                     for indent, text in paragraphs)


def official_flag_names() -> list[str]:
    return sorted(OFFICIAL_FLAGS)


@dataclass
class Translation:
    argv: list[str]  # for simcse-lab train's own parser
    notes: list[str]  # one line each, for stderr


def translate(argv: list[str], known: set[str]) -> Translation:
    """Rewrite `simcse-lab train` arguments (after the command) written for the official train.py (module
    docstring). known: the flags simcse-lab train itself has (without dashes). Raises SimCSELabError with one
    line per refused flag."""
    kept, appended, notes, refused = [], [], [], []
    position = 0
    while position < len(argv):
        token = argv[position]
        position += 1
        if not token.startswith("--") or token == "--":
            kept.append(token)
            continue
        name, has_value, inline = token[2:].partition("=")
        name = name.replace("-", "_")  # --local-rank (torch.distributed.launch), --per-device-train-batch-size (recent HF)
        negated = name.startswith("no_") and name not in known and name[3:] in OFFICIAL_FLAGS and OFFICIAL_FLAGS[name[3:]].kind == BOOL
        if negated:  # HF's --no_<flag> for a flag that defaults to True
            name = name[3:]
        flag = OFFICIAL_FLAGS.get(name)
        if flag is None:
            kept.append(f"--{name}" + (f"={inline}" if has_value else "") if name in known else token)
            continue
        if negated:
            value = False
        else:
            value, position = read_value(flag.kind, name, has_value, inline, argv, position)
        shown = f"--{name}" if value is True else f"--{name} {format_value(value)}"
        if flag.action == "rename" and (flag.quiet(value) or not flag.why):
            appended += flag.to(value)  # after the rest: HF's meaning wins over a simcse_lab flag given elsewhere
        elif flag.action != "rename" and flag.quiet(value):
            continue
        elif flag.action == "note":
            notes.append(f"note: {shown} is accepted and has no effect here: {flag.why}")
        else:
            refused.append(f"{shown} is not supported by simcse-lab train: {flag.why}")
    if refused:
        raise SimCSELabError("\n".join(refused))
    return Translation(kept + appended, notes)


def read_value(kind: str, name: str, has_value: bool, inline: str, argv: list[str], position: int) -> tuple[object, int]:
    """The flag's value (a bool for BOOL, a str for VALUE, a tuple for VALUES) and where the next argument starts."""
    if kind == BOOL:
        if has_value:
            return parse_bool_value(name, inline), position
        if position < len(argv) and not argv[position].startswith("-"):
            return parse_bool_value(name, argv[position]), position + 1
        return True, position
    if has_value:
        return (tuple(inline.split(",")) if kind == VALUES else inline), position
    values = []
    while position < len(argv) and not argv[position].startswith("--") and (kind == VALUES or not values):
        values.append(argv[position])
        position += 1
    if not values:
        raise SimCSELabError(f"--{name} expects a value")
    return (tuple(values) if kind == VALUES else values[0]), position


def parse_bool_value(name: str, text: str) -> bool:
    if text.lower() in TRUE_WORDS:
        return True
    if text.lower() in FALSE_WORDS:
        return False
    raise SimCSELabError(f"--{name} expects true or false (as HF's HfArgumentParser reads it), got {text!r}")


def format_value(value) -> str:
    if isinstance(value, tuple):
        return " ".join(value)
    return str(value)


def json_arguments(path: str | os.PathLike) -> list[str]:
    """The arguments of a JSON file of flags, as HF's HfArgumentParser.parse_json_file reads it (`python train.py
    args.json`): one object, flag names as keys; a null value keeps the default, true/false are booleans, a list
    gives several values."""
    path = Path(path)
    try:
        values = json.loads(path.read_text(encoding="utf8"))
    except OSError as error:
        raise SimCSELabError(f"cannot read the arguments file {path} ({error.strerror})") from None
    except json.JSONDecodeError as error:
        raise SimCSELabError(f"the arguments file {path} is not valid JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(values, dict):
        raise SimCSELabError(f"the arguments file {path} must hold one JSON object of flags, not a {type(values).__name__}")
    argv = []
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, list):
            argv += [f"--{key}", *map(str, value)]
        else:
            argv += [f"--{key}", str(value).lower() if isinstance(value, bool) else str(value)]
    return argv


__all__ = ["OFFICIAL_FLAGS", "OfficialFlag", "Translation", "translate", "json_arguments", "official_flag_names"]
