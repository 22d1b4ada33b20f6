"""`simcse-lab train` on the official SimCSE command lines: the run scripts verbatim, HF's spellings, every flag of
the official argument classes either supported or answered in one line."""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from simcse_lab.commands import official_flags
from simcse_lab.commands.cli import main
from simcse_lab.train import TrainConfig

# The command lines of the official run_unsup_example.sh and run_sup_example.sh, after `python train.py` (the sup one
# under `python -m torch.distributed.launch --nproc_per_node $NUM_GPU --master_port $PORT_ID train.py`).
UNSUP_SCRIPT = shlex.split("""
    --model_name_or_path bert-base-uncased --train_file data/wiki1m_for_simcse.txt
    --output_dir result/my-unsup-simcse-bert-base-uncased --num_train_epochs 1 --per_device_train_batch_size 64
    --learning_rate 3e-5 --max_seq_length 32 --evaluation_strategy steps --metric_for_best_model stsb_spearman
    --load_best_model_at_end --eval_steps 125 --pooler_type cls --mlp_only_train --overwrite_output_dir --temp 0.05
    --do_train --do_eval --fp16""")
SUP_SCRIPT = shlex.split("""
    --model_name_or_path bert-base-uncased --train_file data/nli_for_simcse.csv
    --output_dir result/my-sup-simcse-bert-base-uncased --num_train_epochs 3 --per_device_train_batch_size 128
    --learning_rate 5e-5 --max_seq_length 32 --evaluation_strategy steps --metric_for_best_model stsb_spearman
    --load_best_model_at_end --eval_steps 125 --pooler_type cls --overwrite_output_dir --temp 0.05
    --do_train --do_eval --fp16""")

# Every field of the official argument classes, from princeton-nlp/SimCSE train.py (ModelArguments,
# DataTrainingArguments, OurTrainingArguments) and transformers 4.2.1's TrainingArguments, which it pins: 77 flags.
OFFICIAL_ARGUMENTS = """
model_name_or_path model_type config_name tokenizer_name cache_dir use_fast_tokenizer model_revision use_auth_token
temp pooler_type hard_negative_weight do_mlm mlm_weight mlp_only_train
dataset_name dataset_config_name overwrite_cache validation_split_percentage preprocessing_num_workers train_file
max_seq_length pad_to_max_length mlm_probability
eval_transfer
output_dir overwrite_output_dir do_train do_eval do_predict evaluation_strategy prediction_loss_only
per_device_train_batch_size per_device_eval_batch_size per_gpu_train_batch_size per_gpu_eval_batch_size
gradient_accumulation_steps eval_accumulation_steps learning_rate weight_decay adam_beta1 adam_beta2 adam_epsilon
max_grad_norm num_train_epochs max_steps lr_scheduler_type warmup_steps logging_dir logging_first_step logging_steps
save_steps save_total_limit no_cuda seed fp16 fp16_opt_level fp16_backend local_rank tpu_num_cores tpu_metrics_debug
debug dataloader_drop_last eval_steps dataloader_num_workers past_index run_name disable_tqdm remove_unused_columns
label_names load_best_model_at_end metric_for_best_model greater_is_better ignore_data_skip sharded_ddp deepspeed
label_smoothing_factor adafactor""".split()


@pytest.fixture
def captured(monkeypatch):
    """The TrainConfig that `simcse-lab train` would train with (training itself replaced)."""
    configs = []

    def fake_train(config):
        configs.append(config)
        return SimpleNamespace(best_score=None, best_step=None, steps=0, seconds=0.0, output_dir=config.output_dir, already_finished=False)

    monkeypatch.setattr("simcse_lab.training.trainer.train", fake_train)
    return configs


def error_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_the_official_argument_classes_are_all_covered():
    assert len(OFFICIAL_ARGUMENTS) == len(set(OFFICIAL_ARGUMENTS)) == 77
    fields = {f.name for f in TrainConfig.__dataclass_fields__.values()}
    uncovered = [name for name in OFFICIAL_ARGUMENTS if name not in fields and name not in official_flags.OFFICIAL_FLAGS]
    assert uncovered == []
    assert not set(official_flags.OFFICIAL_FLAGS) & fields  # each flag is handled in one place


def test_help_lists_the_official_flags_and_the_default_differences(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in official_flags.OFFICIAL_FLAGS:
        assert f"--{name}" in text, name
    for name, ours, theirs in official_flags.DEFAULT_DIFFERENCES:
        assert f"{name} {ours} (official {theirs})" in text
    assert "does not add in-batch negatives" in text and "--gradient_cache_chunk_size" in text


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only refusal of --fp16")
def test_the_unsup_script_fails_first_on_fp16_without_cuda(monkeypatch, capsys):
    """Regression: --fp16 on a CPU failed only after the data and the model had loaded (~90 s)."""
    def must_not_load(*args, **kwargs):
        raise AssertionError("the training file was read before --fp16 was checked")

    monkeypatch.setattr("simcse_lab.training.trainer.load_training_file", must_not_load)
    assert main(["train", *UNSUP_SCRIPT]) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1 and "--fp16 needs a CUDA GPU" in lines[0]


def tiny_overrides(model_dir, train_file, output_dir, *extra) -> list[str]:
    """What the scripts' "$@" appends here: a tiny model and file, and --fp16 False on a CPU."""
    return ["--model_name_or_path", str(model_dir), "--train_file", str(train_file), "--output_dir", str(output_dir),
            "--fp16", "False", "--eval_max_pairs", "40", "--no_progress", *extra]


def test_the_official_unsup_script_runs(tiny_model_dir, tmp_path):
    train_file = tmp_path / "wiki.txt"
    train_file.write_text("\n".join(f"sentence number {i} is about a man and a dog" for i in range(20)) + "\n")
    # its own settings otherwise (1 epoch, cls + mlp_only_train, evaluation), with HF's last incomplete batch kept
    argv = ["train", *UNSUP_SCRIPT, *tiny_overrides(tiny_model_dir, train_file, tmp_path / "out", "--per_device_train_batch_size", "8",
                                                   "--dataloader_drop_last", "False")]
    assert main(argv) == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["steps"] == 3  # 20 rows in batches of 8: 8, 8 and the incomplete 4
    recipe = metrics["recipe"]
    assert (recipe["pooler_type"], recipe["mlp_only_train"], recipe["temp"], recipe["learning_rate"]) == ("cls", True, 0.05, 3e-5)


def test_the_official_sup_script_runs_with_the_launchers_local_rank(tiny_model_dir, tmp_path):
    """Regression: `python -m torch.distributed.launch ... train.py` passes --local-rank=0 (--local_rank=0 before torch 2),
    which was an unrecognized argument."""
    train_file = tmp_path / "nli.csv"
    train_file.write_text("sent0,sent1,hard_neg\n" + "".join(f"a man plays song {i},someone makes music,nobody plays\n" for i in range(12)))
    argv = ["train", "--local-rank=0", *SUP_SCRIPT,
            *tiny_overrides(tiny_model_dir, train_file, tmp_path / "out", "--per_device_train_batch_size", "4", "--max_steps", "2")]
    assert main(argv) == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["steps"] == 2 and metrics["recipe"]["pooler_type"] == "cls" and not metrics["recipe"]["mlp_only_train"]


@pytest.mark.slow
def test_the_sup_script_under_torch_distributed_launch(tiny_model_dir, tmp_path):
    """The sup script's launcher itself, with one process (it passes --local-rank=0 and sets LOCAL_RANK)."""
    train_file = tmp_path / "nli.csv"
    train_file.write_text("sent0,sent1,hard_neg\n" + "".join(f"a man plays song {i},someone makes music,nobody plays\n" for i in range(8)))
    # `-m simcse_lab train` in place of train.py: the launcher then passes --local-rank=0 before `train`
    command = [sys.executable, "-m", "torch.distributed.launch", "--nproc_per_node", "1", "--master_port", "29517", "-m", "simcse_lab", "train",
               *SUP_SCRIPT, *tiny_overrides(tiny_model_dir, train_file, tmp_path / "out", "--per_device_train_batch_size", "4",
                                            "--max_steps", "1", "--eval_steps", "0")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["steps"] == 1


def test_the_launchers_rank_may_come_before_the_command(captured):
    """torch.distributed.launch with `-m simcse_lab train` puts its --local-rank=0 (or --local_rank 0) first."""
    assert main(["--local-rank=0", "train", "--train_file", "t.txt"]) == 0
    assert main(["--local_rank", "1", "train", "--train_file", "u.txt"]) == 0
    assert [config.train_file for config in captured] == ["t.txt", "u.txt"]


REFUSED = [(f"--{name}", [] if flag.kind == official_flags.BOOL else ["x"])
           for name, flag in official_flags.OFFICIAL_FLAGS.items() if flag.action == "refuse"]
REFUSED_VALUES = [("--load_best_model_at_end", ["False"]), ("--metric_for_best_model", ["eval_loss"]), ("--greater_is_better", ["false"]),
                  ("--do_train", ["False"]), ("--eval_transfer", []), ("--use_fast_tokenizer", ["False"]), ("--no_use_fast_tokenizer", []),
                  ("--model_revision", ["v1.0"]), ("--optim", ["adafactor"]), ("--save_strategy", ["epoch"]),
                  ("--evaluation_strategy", ["epoch"]), ("--eval_strategy", ["epoch"]), ("--past_index", ["0"])]


@pytest.mark.parametrize("flag,value", REFUSED + REFUSED_VALUES)
def test_each_refused_flag_gets_one_line_naming_it(flag, value, tmp_path, capsys):
    assert main(["train", "--train_file", str(tmp_path / "missing.txt"), flag, *value]) == 2
    lines = error_lines(capsys)
    name = flag.replace("--no_", "--")
    assert len(lines) == 1 and lines[0].startswith(f"error: {name}") and "not supported" in lines[0], lines


def test_several_refused_flags_get_a_line_each(tmp_path, capsys):
    assert main(["train", "--train_file", "t.txt", "--deepspeed", "ds.json", "--adafactor", "--tpu_num_cores", "8"]) == 2
    lines = error_lines(capsys)
    assert [line.split()[1] for line in lines] == ["--deepspeed", "--adafactor", "--tpu_num_cores"]


def test_an_unknown_flag_is_one_line(capsys):
    assert main(["train", "--train_file", "t.txt", "--no_such_flag", "3"]) == 2
    lines = error_lines(capsys)
    assert len(lines) == 2 and "'--no_such_flag'" in lines[0] and "'3'" in lines[1]


def test_flags_without_effect_are_noted_in_one_line_each(captured, capsys):
    assert main(["train", "--train_file", "t.txt", "--logging_dir", "runs", "--dataloader_num_workers", "4",
                 "--report_to", "wandb", "tensorboard", "--label_smoothing_factor", "0.1", "--report_to", "none",
                 "--dataloader_num_workers", "0", "--remove_unused_columns", "True"]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    assert [line.split()[1] for line in notes] == ["--logging_dir", "--dataloader_num_workers", "--report_to", "--label_smoothing_factor"]
    assert captured[0].train_file == "t.txt"


def test_hf_spellings_parse(captured, capsys):
    """HF's booleans (--fp16 False), dashes, --no_cuda, --disable_tqdm, per_gpu batch size, evaluation_strategy no."""
    assert main(["train", "--train_file", "t.txt", "--fp16", "False", "--do_mlm", "True", "--mlp_only_train=true",
                 "--overwrite_output_dir", "yes", "--per-device-train-batch-size", "8", "--no_cuda", "--disable_tqdm", "True",
                 "--per_gpu_train_batch_size", "16", "--evaluation_strategy", "no", "--eval_steps", "125", "--local_rank", "0",
                 "--gradient_accumulation_steps", "4", "--warmup_steps", "10", "--weight_decay", "0.01", "--adam_beta2=0.98",
                 "--dataloader_drop_last", "--do_eval", "False", "--no_remove_unused_columns"]) == 0
    config = captured[0]
    assert (config.fp16, config.do_mlm, config.mlp_only_train, config.overwrite_output_dir) == (False, True, True, True)
    assert (config.per_device_train_batch_size, config.device, config.show_progress, config.eval_steps) == (16, "cpu", False, 0)
    assert (config.gradient_accumulation_steps, config.warmup_steps, config.weight_decay, config.adam_beta2) == (4, 10, 0.01, 0.98)
    assert config.dataloader_drop_last is True
    assert "--remove_unused_columns False" in capsys.readouterr().err


def test_a_json_arguments_file_parses_as_hf_parse_json_file(captured, tmp_path, capsys):
    """`python train.py args.json` (HfArgumentParser.parse_json_file) becomes `simcse-lab train args.json`."""
    arguments = {"model_name_or_path": "bert-base-uncased", "train_file": "data/nli_for_simcse.csv", "output_dir": "result/x",
                 "num_train_epochs": 3, "per_device_train_batch_size": 128, "learning_rate": 5e-5, "max_seq_length": 32,
                 "evaluation_strategy": "steps", "metric_for_best_model": "stsb_spearman", "load_best_model_at_end": True,
                 "eval_steps": 125, "pooler_type": "cls", "mlp_only_train": False, "overwrite_output_dir": True, "temp": 0.05,
                 "do_train": True, "do_eval": True, "fp16": False, "report_to": ["none"], "save_total_limit": None,
                 "local_rank": -1}
    path = tmp_path / "args.json"
    path.write_text(json.dumps(arguments))
    assert main(["train", str(path)]) == 0
    config = captured[0]
    assert (config.train_file, config.num_train_epochs, config.per_device_train_batch_size, config.learning_rate) == (
        "data/nli_for_simcse.csv", 3.0, 128, 5e-5)
    assert (config.fp16, config.mlp_only_train, config.overwrite_output_dir, config.save_total_limit) == (False, False, True, 2)
    path.write_text(json.dumps({**arguments, "deepspeed": "ds_config.json"}))
    assert main(["train", str(path)]) == 2
    assert [line.split()[1] for line in error_lines(capsys)] == ["--deepspeed"]
