"""`simcse-lab` (also `python -m simcse_lab`): train, reproduce, evaluate, diagnose, pretrain, tour.

The train and evaluate flags are the official SimCSE train.py / evaluation.py names, so a command
from the official README runs after changing `python train.py` to `simcse-lab train`. Flags of the
HF Trainer that the official scripts pass but simcse_lab does not need (--do_train, --do_eval,
--evaluation_strategy, --metric_for_best_model, --load_best_model_at_end) are accepted and ignored.

Errors the user can fix print one line (`error: ...`) and exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from ..errors import SimCSELabError
from ..evaluation.sts import EVAL_BATCH_SIZE, EVAL_MAX_LENGTH
from ..settings import add_dataclass_arguments

IGNORED_OFFICIAL_FLAGS = {"--do_train": 0, "--do_eval": 0, "--load_best_model_at_end": 0, "--evaluation_strategy": 1,
                          "--eval_strategy": 1, "--metric_for_best_model": 1, "--save_strategy": 1}


def strip_ignored_flags(argv: list[str]) -> list[str]:
    kept, skip_next = [], 0
    for arg in argv:
        if skip_next:
            skip_next -= 1
            continue
        name = arg.split("=", 1)[0]
        if name in IGNORED_OFFICIAL_FLAGS:
            skip_next = IGNORED_OFFICIAL_FLAGS[name] if "=" not in arg else 0
            continue
        kept.append(arg)
    return kept


def build_parser() -> argparse.ArgumentParser:
    from ..pretrain.config import add_pretrain_arguments  # noqa: PLC0415
    from ..training.config import TrainConfig  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="simcse-lab", description="SimCSE: train, evaluate and inspect sentence encoders.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train SimCSE (unsup .txt / sup .csv) or SBERT (sent0,sent1,label .csv)")
    add_dataclass_arguments(train, TrainConfig, skip=("show_progress",))
    train.add_argument("--config", help="a JSON recipe of TrainConfig settings; flags given on the command line win")
    train.add_argument("--no_progress", action="store_true", help="no progress bar")

    reproduce = commands.add_parser("reproduce", help="train one recipe for N seeds (resumable) and write a ledger: per-seed STS-B dev "
                                    "and test scores, mean, std, 95%% interval, environment")
    add_dataclass_arguments(reproduce, TrainConfig, skip=("show_progress", "seed", "resume_from_checkpoint", "overwrite_output_dir"))
    reproduce.add_argument("--config", help="a JSON recipe of TrainConfig settings; flags given on the command line win")
    reproduce.add_argument("--seeds", required=True, help="a count (--seeds 5: seeds 1 to 5) or a list (--seeds 1,2,3; one seed: 7,)")
    reproduce.add_argument("--ledger_dir", help="where the seeds and the ledger go (default: <output_dir>-seeds)")
    reproduce.add_argument("--reference", action="append", default=[], metavar="COLUMN:MIN:MAX[:MEAN][:LABEL]",
                           help="someone else's range to draw beside a column, e.g. avg:73.16:76.70:75.11:simple-simcse README (repeatable)")
    reproduce.add_argument("--keep_checkpoints", action="store_true", help="keep each finished seed's checkpoints (default: its selected model only)")
    reproduce.add_argument("--no_progress", action="store_true", help="no progress bar")

    evaluate = commands.add_parser("evaluate", help="STS (SentEval 'all') and SentEval transfer tasks, as the official evaluation.py")
    evaluate.add_argument("--model_name_or_path", required=True)
    evaluate.add_argument("--pooler", choices=None, help="override the pooler the model was trained with (cls, cls_before_pooler, avg, "
                          "avg_top2, avg_first_last); a different one prints what each gives on STS-B dev")
    evaluate.add_argument("--mode", default="test", help="test (test splits; transfer in the full settings), fasttest (test splits; "
                          "transfer in the fast settings) or dev (STS-B and SICK-R dev; transfer validation accuracy)")
    evaluate.add_argument("--task_set", default="sts", help="sts (7 STS tasks), transfer (MR CR SUBJ MPQA SST2 TREC MRPC), full (both) "
                          "or na (the --tasks given)")
    evaluate.add_argument("--tasks", nargs="+", help="instead of the task set, some of: sts12 sts13 sts14 sts15 sts16 stsb sickr "
                          "mr cr subj mpqa sst2 trec mrpc (the official names STSBenchmark, MR, ... also work)")
    evaluate.add_argument("--data_dir", help="local SentEval-layout data (default $SIMCSE_LAB_DATA)")
    evaluate.add_argument("--max_seq_length", type=int, default=None,
                          help=f"tokens kept per sentence (default: what the model was selected with, else {EVAL_MAX_LENGTH})")
    evaluate.add_argument("--batch_size", type=int, default=EVAL_BATCH_SIZE)
    evaluate.add_argument("--output", help="JSON results file (default: eval_results_<mode>.json in the model dir or here)")

    diagnose = commands.add_parser("diagnose", help="anisotropy report: average cosine, spectrum, alignment, uniformity")
    diagnose.add_argument("--model_name_or_path", required=True)
    diagnose.add_argument("--pooler")
    diagnose.add_argument("--data_dir")
    diagnose.add_argument("--output_dir", default=None, help="where the report JSON and figure go (default: diagnose-<model name>)")

    pretrain = commands.add_parser("pretrain", help="MLM pre-training of a small BERT (the embedded default's recipe)")
    add_pretrain_arguments(pretrain)

    prepare = commands.add_parser("prepare-data", help="write the offline unsupervised training file (wiki subset + WordNet)")
    prepare.add_argument("--output", default="outputs/data/wiki_wordnet.txt")
    prepare.add_argument("--data_dir")

    tour = commands.add_parser("tour", help="diagnose the default encoder, train briefly, evaluate, print the table")
    tour.add_argument("--output_dir", default="outputs/tour")
    tour.add_argument("--max_steps", type=int, default=200)
    tour.add_argument("--data_dir")

    course = commands.add_parser("course", help="execute the notebook course and export HTML + figures")
    course.add_argument("--output_dir", default="outputs/course")
    course.add_argument("--quick", action="store_true", help="quick mode: small sizes, minutes on a laptop CPU")
    course.add_argument("--smoke", action="store_true", help="smoke mode: tiny sizes (what CI runs)")
    course.add_argument("--notebooks", nargs="+", help="only these notebooks (file names)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = strip_ignored_flags(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args, argv)
    except SimCSELabError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = "run the same command again to resume" if args.command == "reproduce" else "resume with --resume_from_checkpoint auto"
        print(f"interrupted; {hint}", file=sys.stderr)
        return 130


def train_settings(args, argv) -> dict:
    """TrainConfig values: the defaults, then the --config recipe, then the flags given on the command line."""
    from ..training.config import TrainConfig  # noqa: PLC0415

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    if args.config:
        recipe = read_recipe(Path(args.config))
        given = {a.split("=", 1)[0].lstrip("-") for a in argv if a.startswith("--")}
        values = {**values, **{k: v for k, v in recipe.items() if k not in given}}
    values["show_progress"] = not args.no_progress
    return values


def run_train(args, argv) -> int:
    from ..training.config import TrainConfig  # noqa: PLC0415
    from ..training.trainer import train  # noqa: PLC0415

    result = train(TrainConfig.from_dict(train_settings(args, argv)))
    best = "no evaluation ran" if result.best_score is None else f"best STS-B dev {result.best_score:.2f} at step {result.best_step}"
    print(f"trained {result.steps} steps in {result.seconds:.0f}s; {best}; model in {result.output_dir}")
    return 0


def read_recipe(path: Path) -> dict:
    """A --config JSON file as a dict, or one clear error."""
    try:
        recipe = json.loads(path.read_text())
    except OSError as error:
        raise SimCSELabError(f"cannot read --config {path} ({error.strerror}); pass the path of a JSON file of TrainConfig settings") from None
    except json.JSONDecodeError as error:
        raise SimCSELabError(f"--config {path} is not valid JSON ({error.msg} at line {error.lineno}); "
                             'it should hold one object, for example {"learning_rate": 3e-5}') from None
    if not isinstance(recipe, dict):
        raise SimCSELabError(f"--config {path} must hold one JSON object of TrainConfig settings, not a {type(recipe).__name__}")
    # "${SIMCSE_LAB_DATA}/nli/..." in a recipe points at the local data copy
    return {key: os.path.expandvars(value) if isinstance(value, str) else value for key, value in recipe.items()}


def run_reproduce(args, argv) -> int:
    from ..training.config import TrainConfig  # noqa: PLC0415
    from .ledger import parse_reference  # noqa: PLC0415
    from .reproduce import parse_seeds, reproduce  # noqa: PLC0415

    seeds, references = parse_seeds(args.seeds), [parse_reference(r) for r in args.reference]
    config = TrainConfig.from_dict(train_settings(args, argv))
    name = Path(args.config).stem if args.config else None
    reproduce(config, seeds, ledger_dir=args.ledger_dir, references=references, keep_checkpoints=args.keep_checkpoints, name=name,
              config_file=args.config)
    return 0


def run_evaluate(args, argv) -> int:
    from ..evaluation.sts import save_results  # noqa: PLC0415
    from .evaluation import default_output, evaluate_model, format_evaluation  # noqa: PLC0415

    report = evaluate_model(args.model_name_or_path, mode=args.mode, task_set=args.task_set, tasks=args.tasks, pooler=args.pooler,
                            max_length=args.max_seq_length, batch_size=args.batch_size, data_dir=args.data_dir)
    print(format_evaluation(report))
    output = save_results(report, Path(args.output) if args.output else default_output(args.model_name_or_path, args.mode))
    print(f"results written to {output}")
    return 0


def run_diagnose(args, argv) -> int:
    from .diagnose import diagnose, format_report  # noqa: PLC0415

    output_dir = args.output_dir or f"diagnose-{Path(str(args.model_name_or_path).rstrip('/')).name}"
    report = diagnose(args.model_name_or_path, pooler=args.pooler, data_dir=args.data_dir, output_dir=output_dir)
    print(format_report(report))
    return 0


def run_pretrain(args, argv) -> int:
    from ..pretrain import config_from_args, pretrain  # noqa: PLC0415

    result = pretrain(config_from_args(args))
    print(f"pre-trained; model in {getattr(result, 'output_dir', '?')}")
    return 0


def run_prepare_data(args, argv) -> int:
    from ..data.corpus import write_unsup_training_file  # noqa: PLC0415

    path = write_unsup_training_file(args.output, args.data_dir)
    count = sum(1 for _ in open(path, encoding="utf8"))
    print(f"wrote {count} sentences to {path}")
    return 0


def run_tour(args, argv) -> int:
    from .tour import tour  # noqa: PLC0415

    tour(output_dir=args.output_dir, max_steps=args.max_steps, data_dir=args.data_dir)
    return 0


def run_course(args, argv) -> int:
    from .course import run_course as execute  # noqa: PLC0415

    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    execute(output_dir=args.output_dir, mode=mode, only=args.notebooks)
    return 0


COMMANDS = {"train": run_train, "reproduce": run_reproduce, "evaluate": run_evaluate, "diagnose": run_diagnose, "pretrain": run_pretrain,
            "prepare-data": run_prepare_data, "tour": run_tour, "course": run_course}

if __name__ == "__main__":
    sys.exit(main())
