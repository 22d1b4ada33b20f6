"""`simcse-lab` (also `python -m simcse_lab`): train, reproduce, evaluate, diagnose, explore, pretrain, tour.

The train and evaluate flags are the official SimCSE train.py / evaluation.py names, so a command
from the official README or run scripts runs after changing `python train.py` to `simcse-lab train`.
The official flags that simcse_lab's TrainConfig does not hold as such (the HF Trainer's among them) are
renamed, accepted or refused with a reason by simcse_lab.commands.official_flags, which also reads HF's
spellings (`--fp16 False`, `--local-rank=0`) and `simcse-lab train args.json`.

Errors the user can fix print one line (`error: ...`; one per refused flag) and exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import warnings
from pathlib import Path

from ..errors import SimCSELabError, one_line_warning
from ..evaluation.sts import EVAL_BATCH_SIZE, EVAL_MAX_LENGTH
from ..settings import add_dataclass_arguments
from . import official_flags
from .explore import add_explore_arguments, run_explore
from .outputs import check_output_dir, check_output_file

TRAIN_ONLY_FLAGS = ("config", "no_progress", "help")  # simcse-lab train's flags besides TrainConfig's fields


def build_parser() -> argparse.ArgumentParser:
    from ..pretrain.config import add_pretrain_arguments  # noqa: PLC0415
    from ..training.config import TrainConfig  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="simcse-lab", description="SimCSE: train, evaluate and inspect sentence encoders.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train SimCSE (unsup .txt / sup .csv or .json) or SBERT (sent0,sent1,label .csv)",
                                usage="simcse-lab train [flags] | simcse-lab train ARGS.json",
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=official_flags.help_text())
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
                          "avg_top2, avg_first_last, mask for PromptBERT); a different one prints what each gives on STS-B dev")
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

    prepare = commands.add_parser("prepare-data", help="write an offline unsupervised training file from the local data")
    prepare.add_argument("--output", default="outputs/data/wiki_wordnet.txt")
    prepare.add_argument("--data_dir")
    prepare.add_argument("--sources", nargs="+", default=["wiki", "wordnet"], metavar="SOURCE",
                         help="source groups: wiki (wiki1m subset), wordnet (WordNet examples), snli (SNLI dev/test "
                              "sentences), stsb_train, sick_train (their train splits' sentences, no scores), reviews (MR, CR, "
                              "SUBJ, MPQA sentences, no labels). Every sentence that also occurs in an STS evaluation split "
                              "is left out (default: wiki wordnet)")

    tour = commands.add_parser("tour", help="diagnose the default encoder, train briefly, evaluate, print the table")
    tour.add_argument("--output_dir", default="outputs/tour")
    tour.add_argument("--max_steps", type=int, default=200)
    tour.add_argument("--data_dir")

    add_explore_arguments(commands.add_parser("explore", help="one self-contained HTML page of models' embedding geometry, "
                                                              "and how training reshaped it"))

    course = commands.add_parser("course", help="execute the notebook course and export HTML + figures")
    course.add_argument("--output_dir", default="outputs/course")
    course.add_argument("--quick", action="store_true", help="quick mode: small sizes, minutes on a laptop CPU")
    course.add_argument("--smoke", action="store_true", help="smoke mode: tiny sizes (what CI runs)")
    course.add_argument("--medium", action="store_true", help="medium mode: BERT-base, a few thousand steps (a GPU and the hub)")
    course.add_argument("--notebooks", nargs="+", help="only these notebooks (file names)")
    course.add_argument("--figures", default="png+svg", help="figure files: png+svg (slides), png, svg, html or none")
    course.add_argument("--record_timings", action="store_true", help="write the notebooks' times into notebooks/timings.json "
                        "(each notebook's header shows them)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = launcher_rank_after_command(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    formatwarning, warnings.formatwarning = warnings.formatwarning, one_line_warning  # the project's warnings: one line
    try:
        if argv[:1] == ["train"]:
            argv = ["train", *official_train_arguments(argv[1:])]
            args, unknown = parser.parse_known_args(argv)
            if unknown:
                raise SimCSELabError("\n".join(f"unrecognized argument {arg!r} for simcse-lab train (neither a simcse-lab flag nor "
                                               "one of the official train.py's; see simcse-lab train --help)" for arg in unknown))
        else:
            args = parser.parse_args(argv)
        return COMMANDS[args.command](args, argv)
    except SimCSELabError as error:
        for line in str(error).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = "run the same command again to resume" if argv[:1] == ["reproduce"] else "resume with --resume_from_checkpoint auto"
        print(f"interrupted; {hint}", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = formatwarning


def launcher_rank_after_command(argv: list[str]) -> list[str]:
    """`python -m torch.distributed.launch ... -m simcse_lab train ...` passes --local-rank=N before the command; the
    train command takes it (and ignores it: the rank is read from LOCAL_RANK)."""
    if not argv or argv[0].split("=", 1)[0] not in ("--local-rank", "--local_rank"):
        return argv
    taken = 1 if "=" in argv[0] else 2
    rank, rest = argv[:taken], argv[taken:]
    return [*rest[:1], *rank, *rest[1:]] if rest[:1] == ["train"] else rest


def official_train_arguments(argv: list[str]) -> list[str]:
    """simcse-lab train's arguments from a command line (or a JSON file, `simcse-lab train args.json`) written for
    the official train.py, with a one-line note on stderr for each flag that has no effect here."""
    from ..training.config import TrainConfig  # noqa: PLC0415

    if len(argv) == 1 and argv[0].endswith(".json"):  # as the official train.py: HfArgumentParser.parse_json_file
        argv = official_flags.json_arguments(argv[0])
    fields = dataclasses.fields(TrainConfig)
    known = {f.name for f in fields} | {f"no_{f.name}" for f in fields if "bool" in str(f.type)} | set(TRAIN_ONLY_FLAGS)
    translation = official_flags.translate(argv, known)
    for note in translation.notes:
        print(note, file=sys.stderr)
    return translation.argv


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
    done = f"already finished: {result.steps} steps" if result.already_finished else f"trained {result.steps} steps in {result.seconds:.0f}s"
    print(f"{done}; {best}; model in {result.output_dir}")
    return 0


def read_recipe(path: Path) -> dict:
    """A --config JSON file as a dict, or one clear error."""
    from ..data.text import read_text  # noqa: PLC0415

    if not path.is_file():
        raise SimCSELabError(f"cannot read --config {path} (it {'is a directory' if path.is_dir() else 'does not exist'}); "
                             "pass the path of a JSON file of TrainConfig settings")
    try:
        recipe = json.loads(read_text(path, "--config"))  # strict UTF-8: a bad byte is named with its line
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
    from ..data.sts import load_sts  # noqa: PLC0415
    from ..errors import unknown_choice  # noqa: PLC0415
    from ..evaluation.sts import SPLIT_TASKS, save_results, tasks_with_split  # noqa: PLC0415
    from ..models.encoder import check_positive  # noqa: PLC0415
    from ..models.pooling import check_pooler  # noqa: PLC0415
    from ..paths import resolve_data_dir  # noqa: PLC0415
    from .evaluation import MODES, default_output, evaluate_model, format_evaluation, resolve_tasks  # noqa: PLC0415

    if args.mode not in MODES:
        raise unknown_choice("mode", args.mode, list(MODES))
    # every setting and path is checked here, before the model loads and the work starts
    split = MODES[args.mode]
    sts_tasks, _ = resolve_tasks(args.task_set, args.tasks, split)
    if sts_tasks:
        sts_tasks = tasks_with_split(sts_tasks, split)
    if args.max_seq_length is not None:
        check_positive("--max_seq_length", args.max_seq_length, minimum=2)  # [CLS] and [SEP] take two
    check_positive("--batch_size", args.batch_size)
    if args.pooler is not None:
        check_pooler(args.pooler)
    output = check_output_file(Path(args.output) if args.output else default_output(args.model_name_or_path, args.mode), "--output")
    if resolve_data_dir(args.data_dir) is not None:  # local data is read once first (milliseconds): a damaged file fails now
        for task in sts_tasks:
            load_sts(task, split if task in SPLIT_TASKS else "test", args.data_dir)
    report = evaluate_model(args.model_name_or_path, mode=args.mode, task_set=args.task_set, tasks=args.tasks, pooler=args.pooler,
                            max_length=args.max_seq_length, batch_size=args.batch_size, data_dir=args.data_dir)
    print(format_evaluation(report))
    save_results(report, output)
    print(f"results written to {output}")
    return 0


def run_diagnose(args, argv) -> int:
    from .diagnose import diagnose, format_report  # noqa: PLC0415

    output_dir = check_output_dir(args.output_dir or f"diagnose-{Path(str(args.model_name_or_path).rstrip('/')).name}", "--output_dir")
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

    path = write_unsup_training_file(args.output, args.data_dir, sources=tuple(args.sources))
    count = sum(1 for _ in open(path, encoding="utf8"))
    print(f"wrote {count} sentences from {', '.join(args.sources)} to {path}")
    return 0


def run_tour(args, argv) -> int:
    from .tour import tour  # noqa: PLC0415

    tour(output_dir=args.output_dir, max_steps=args.max_steps, data_dir=args.data_dir)
    return 0


def run_course(args, argv) -> int:
    from .course import run_course as execute  # noqa: PLC0415

    mode = "smoke" if args.smoke else "quick" if args.quick else "medium" if args.medium else "full"
    execute(output_dir=args.output_dir, mode=mode, only=args.notebooks, figures=args.figures, record_timings=args.record_timings)
    return 0


COMMANDS = {"train": run_train, "reproduce": run_reproduce, "evaluate": run_evaluate, "diagnose": run_diagnose, "pretrain": run_pretrain,
            "prepare-data": run_prepare_data, "tour": run_tour, "course": run_course, "explore": run_explore}

if __name__ == "__main__":
    sys.exit(main())
