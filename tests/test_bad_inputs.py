"""Every class of bad input of issue 22, as a table: exit status 2, one `error:` line naming the problem, no
traceback, and nothing in the output directory changed.

The contract is checked against what a user sees, independently of the code: the CLI's exit status and stderr (run
in-process through `simcse_lab.commands.cli.main`, and a few rows as real processes), and a snapshot of the working
directory's tree (names, sizes, mtimes) before and after. Rows marked `before_model` must fail before any model
loads: the loader is replaced by one that fails the test. The library rows check the same through the API.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import torch
from safetensors.torch import save_file

import simcse_lab
from simcse_lab.commands.cli import main
from simcse_lab.errors import SimCSELabError

PACKAGE_DIR = Path(simcse_lab.__file__).parent


# --------------------------------------------------------------------------- the materials (built once)
@pytest.fixture(scope="module")
def materials(tmp_path_factory, tiny_model_dir) -> dict[str, Path]:
    """Model directories damaged one way each, bad training/recipe/STS files, and an interrupted run to resume."""
    from conftest import WORDS

    root = tmp_path_factory.mktemp("bad_inputs")
    made: dict[str, Path] = {"model": tiny_model_dir}
    saved = root / "saved"  # a simcse_lab directory with an MLP head (cls pooler)
    from simcse_lab.models.encoder import SimCSEEncoder

    SimCSEEncoder.from_pretrained(tiny_model_dir, pooler="cls", device="cpu").save_pretrained(saved)
    made["saved"] = saved

    def variant(name: str, change: Callable[[Path], None]) -> None:
        target = root / name
        shutil.copytree(saved, target)
        change(target)
        made[name] = target

    weights = (saved / "model.safetensors").read_bytes()
    variant("truncated_weights", lambda d: (d / "model.safetensors").write_bytes(weights[: len(weights) // 2]))
    variant("garbage_weights", lambda d: (d / "model.safetensors").write_bytes(os.urandom(4096)))
    variant("broken_simcse_config", lambda d: (d / "simcse_config.json").write_text('{"pooler": "cls",'))
    variant("simcse_config_without_pooler", lambda d: (d / "simcse_config.json").write_text('{"has_mlp": false}'))
    variant("simcse_config_not_utf8", lambda d: (d / "simcse_config.json").write_bytes(b'{"pooler": "caf\xe9"}'))
    variant("no_mlp_head", lambda d: shutil.rmtree(d / "2_Dense"))
    variant("mlp_head_of_another_size", lambda d: save_file(
        {"linear.weight": torch.zeros(64, 64), "linear.bias": torch.zeros(64)}, str(d / "2_Dense" / "model.safetensors")))
    variant("config_of_another_size", lambda d: (d / "config.json").write_text(
        json.dumps({**json.loads((d / "config.json").read_text()), "hidden_size": 64, "intermediate_size": 128})))
    variant("config_not_json", lambda d: (d / "config.json").write_text("hidden_size = 32"))
    variant("no_tokenizer", lambda d: [(d / n).unlink() for n in ("tokenizer.json", "vocab.txt", "tokenizer_config.json")
                                       if (d / n).exists()])

    def postprocess(config: dict | str, tensors: dict | None = None):
        def change(d: Path) -> None:
            (d / "postprocess").mkdir()
            (d / "postprocess" / "config.json").write_text(config if isinstance(config, str) else json.dumps(config))
            if tensors:
                save_file(tensors, str(d / "postprocess" / "whitening.safetensors"))
        return change

    variant("postprocess_not_json", postprocess("{kind: flow"))
    variant("postprocess_unknown_kind", postprocess({"kind": "pca"}))
    variant("postprocess_path_escape", postprocess({"kind": "flow", "dim": 32, "weights": "../../../../etc/passwd",
                                                    "flow_config": {}}))
    variant("whitening_of_another_size", postprocess({"kind": "whitening", "k": 8},
                                                     {"mean": torch.zeros(16), "kernel": torch.zeros(16, 8)}))

    # training files and recipes
    files = root / "files"
    files.mkdir()
    sentences = [" ".join(WORDS[(i * 5 + j) % len(WORDS)] for j in range(4 + i % 5)) for i in range(64)]
    (files / "good.txt").write_text("\n".join(sentences) + "\n")
    (files / "latin1.txt").write_bytes("a first line\nun caf\u00e9 noir\n".encode("latin-1"))
    (files / "huge_field.csv").write_text('sent0,sent1\n"an unclosed quote,' + "x" * 140_000 + "\n")
    (files / "no_header.csv").write_text("A man plays a guitar.,Someone plays music.\nA dog runs.,An animal moves.\n")
    for name, text in {"wrong_type.json": '{"learning_rate": "fast"}', "null.json": '{"learning_rate": null}',
                       "list.json": '[{"learning_rate": 3e-5}]'}.items():
        (files / name).write_text(text)
    (files / "not_utf8.json").write_bytes(b'{"output_dir": "r\xe9sultats"}')
    made["files"] = files

    # STS data directories, one damage each
    row = "main-captions\tMSRvid\t2012dev\t{i:04d}\t{gold}\ta man plays {i}\ta woman sings {i}\n"
    stsb = {
        "gold_not_a_number": "".join(row.format(i=i, gold="high" if i == 3 else i % 5) for i in range(6)),
        "comma_delimited": "".join(row.format(i=i, gold=i % 5).replace("\t", ",") for i in range(6)),
        "empty": "",
        "not_utf8": "".join(row.format(i=i, gold=i % 5) for i in range(6)).encode("utf8").replace(b"woman sings 2", b"caf\xe9 2"),
    }
    for name, text in stsb.items():
        folder = root / "sts" / name / "sts" / "STSBenchmark"
        folder.mkdir(parents=True)
        (folder / "sts-dev.csv").write_bytes(text if isinstance(text, bytes) else text.encode("utf8"))
        made[f"sts_{name}"] = root / "sts" / name
    folder = root / "sts" / "no_tab" / "sts" / "STS12-en-test"
    folder.mkdir(parents=True)
    for subset in simcse_lab.data.sts.STS_SUBSETS["sts12"]:
        (folder / f"STS.input.{subset}.txt").write_text("a man plays\ta woman sings\nno tab on this line\n")
        (folder / f"STS.gs.{subset}.txt").write_text("1.0\n2.0\n")
    made["sts_no_tab"] = root / "sts" / "no_tab"

    # an interrupted run: checkpoints at steps 5 and 10, stopped at step 12 of 20
    run = root / "run"
    with pytest.MonkeyPatch.context() as patch:
        import simcse_lab.training.objectives as objectives

        original, calls = objectives.unsup_simcse_loss, [0]

        def loss(*args, **kwargs):
            calls[0] += 1
            if calls[0] == 12:
                raise KeyboardInterrupt
            return original(*args, **kwargs)

        patch.setattr(objectives, "unsup_simcse_loss", loss)
        assert main(run_args(made, run)) == 130  # the CLI's status for an interrupted run
    assert [p.name for p in sorted(run.glob("checkpoint-*"))] == ["checkpoint-10", "checkpoint-5"]
    made["run"] = run
    return made


def run_args(m: dict, output_dir: Path, *extra: str) -> list[str]:
    return ["train", "--model_name_or_path", str(m["model"]), "--train_file", str(m["files"] / "good.txt"), "--output_dir",
            str(output_dir), "--per_device_train_batch_size", "4", "--max_steps", "20", "--save_steps", "5", "--eval_steps", "0",
            "--learning_rate", "1e-3", "--seed", "3", "--pooler_type", "cls", "--device", "cpu", "--no_progress", *extra]


# --------------------------------------------------------------------------- the table
@dataclass
class Row:
    """One bad input. argv(m, work): the command line (m: the materials, work: the working directory, whose tree must
    not change); setup(m, work, monkeypatch): anything to put in place first."""

    id: str
    argv: Callable[[dict, Path], list[str]]
    needles: tuple[str, ...]
    before_model: bool = True  # refused before any model loads
    setup: Callable | None = None
    writes: bool = False  # a write fails part-way: the directory may gain files, but no temporary or partial checkpoint
    marks: tuple = field(default_factory=tuple)


def train(*extra: str, file: str = "good.txt") -> Callable[[dict, Path], list[str]]:
    return lambda m, work: ["train", "--model_name_or_path", str(m["model"]), "--train_file", str(m["files"] / file),
                            "--output_dir", str(work / "out"), "--per_device_train_batch_size", "4", "--max_steps", "6",
                            "--eval_steps", "0", "--device", "cpu", "--no_progress", *[resolve(e, m, work) for e in extra]]


def resume(*extra: str) -> Callable[[dict, Path], list[str]]:
    return lambda m, work: run_args(m, work / "run", "--resume_from_checkpoint", "auto",
                                    *[resolve(e, m, work) for e in extra])


def resume_from(checkpoint: str, *extra: str) -> Callable[[dict, Path], list[str]]:
    return lambda m, work: run_args(m, work / "run", "--resume_from_checkpoint", str(work / "run" / checkpoint), *extra)


def evaluate(model: str = "model", *extra: str) -> Callable[[dict, Path], list[str]]:
    return lambda m, work: ["evaluate", "--model_name_or_path", str(m[model]), "--tasks", "stsb", "--mode", "dev",
                            "--output", str(work / "results.json"), *[resolve(e, m, work) for e in extra]]


def resolve(value: str, m: dict, work: Path) -> str:
    """'files:NAME' and 'data:NAME' name materials, 'work:NAME' a path in the working directory."""
    kind, _, name = value.partition(":")
    if kind == "files":
        return str(m["files"] / name)
    if kind in ("data", "model"):
        return str(m[name])
    if kind == "work":
        return str(work / name)
    return value


def copy_run(m, work, monkeypatch) -> None:
    shutil.copytree(m["run"], work / "run")  # copy2: sizes and mtimes kept, so the snapshot compares the copy


def damage_state(change: Callable[[Path], None]):
    def setup(m, work, monkeypatch):
        copy_run(m, work, monkeypatch)
        change(work / "run" / "checkpoint-10")
    return setup


def drop_plain_key(checkpoint: Path) -> None:
    plain = json.loads((checkpoint / "trainer_state.json").read_text())
    del plain["history"]
    (checkpoint / "trainer_state.json").write_text(json.dumps(plain))


def drop_tensor_key(checkpoint: Path) -> None:
    tensors = torch.load(checkpoint / "trainer_state.pt", weights_only=True)
    del tensors["optimizer"]
    torch.save(tensors, checkpoint / "trainer_state.pt")


class Foreign:
    """An object that is not a tensor or a plain container: weights_only loading refuses it."""


def pickle_object(checkpoint: Path) -> None:
    tensors = torch.load(checkpoint / "trainer_state.pt", weights_only=True)
    torch.save({**tensors, "optimizer": Foreign()}, checkpoint / "trainer_state.pt")


def truncate_every_checkpoint(m, work, monkeypatch) -> None:
    copy_run(m, work, monkeypatch)
    for checkpoint in (work / "run").glob("checkpoint-*"):
        data = (checkpoint / "model.safetensors").read_bytes()
        (checkpoint / "model.safetensors").write_bytes(data[:1000])


def hold_the_lock(m, work, monkeypatch) -> None:
    from simcse_lab.training.run_dir import OutputDirLock

    copy_run(m, work, monkeypatch)
    lock = OutputDirLock(work / "run")
    lock.acquire()  # another run holds it (the lock is per open file, so this process counts as another run)
    HELD.append(lock)


HELD: list = []  # locks a row's setup holds, released after the row


def read_only(where: str):
    """os.access says the location is not writable (what a read-only mount or chmod gives a non-root user)."""
    def setup(m, work, monkeypatch):
        target = (work / where).resolve()
        original = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: False if Path(p).resolve() == target and mode & os.W_OK
                            else original(p, mode, *a, **k))
    return setup


def disk_full_in_torch_save(m, work, monkeypatch) -> None:
    def full(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 320 vs 208")
    monkeypatch.setattr(torch, "save", full)


def disk_full_in_metrics(m, work, monkeypatch) -> None:
    from simcse_lab.training import checkpoint as ckpt

    original = ckpt.atomic_write_text

    def full(path, text):
        if Path(path).suffix == ".json":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return original(path, text)
    monkeypatch.setattr(ckpt, "atomic_write_text", full)


def a_file(name: str):
    def setup(m, work, monkeypatch):
        (work / name).write_text("not a directory\n")
    return setup


def a_directory(name: str):
    def setup(m, work, monkeypatch):
        (work / name).mkdir()
    return setup


SETTINGS = [
    ("max_seq_length", "0", "max_seq_length must be >= 2"), ("max_seq_length", "1", "max_seq_length must be >= 2"),
    ("max_seq_length", "-5", "max_seq_length must be >= 2"),
    ("per_device_train_batch_size", "0", "per_device_train_batch_size must be >= 2"),
    ("per_device_train_batch_size", "-1", "per_device_train_batch_size must be >= 2"),
    ("learning_rate", "-1", "learning_rate must be > 0"), ("learning_rate", "nan", "learning_rate must be > 0"),
    ("learning_rate", "inf", "learning_rate must be > 0"), ("weight_decay", "-0.1", "weight_decay must be >= 0"),
    ("weight_decay", "nan", "weight_decay must be >= 0"), ("num_train_epochs", "0", "num_train_epochs must be > 0"),
    ("num_train_epochs", "inf", "num_train_epochs must be > 0"), ("seed", "-1", "numpy's seed range"),
    ("seed", str(2**32), "numpy's seed range"), ("temp", "0", "temp must be > 0"), ("temp", "-1", "temp must be > 0"),
    ("max_grad_norm", "nan", "max_grad_norm must be >= 0"), ("warmup_ratio", "2", "warmup_ratio must be >= 0 and <= 1"),
    ("augmentation_ratio", "-1", "augmentation_ratio must be >= 0 and <= 1"),
    ("device", "tpu", "unknown device 'tpu'"), ("device", "vulkan", "device 'vulkan' is not supported"),
]
MODEL_DAMAGE = {
    "truncated_weights": ("model.safetensors is truncated",),
    "garbage_weights": ("model.safetensors is", "safetensors"),
    "broken_simcse_config": ("simcse_lab config", "simcse_config.json is not valid JSON"),
    "simcse_config_without_pooler": ("simcse_config.json names no pooler",),
    "simcse_config_not_utf8": ("simcse_config.json, line 1, byte 16: 0xe9 is not UTF-8",),
    "no_mlp_head": ("says the model has an MLP head, but 2_Dense/model.safetensors is missing",),
    "mlp_head_of_another_size": ("2_Dense", "does not hold an MLP head for this encoder (hidden size 32)"),
    "config_of_another_size": ("do not have the shapes its config.json describes",),
    "config_not_json": ("model config", "config.json is not valid JSON"),
    "no_tokenizer": ("no tokenizer vocabulary", "tokenizer files"),
    "postprocess_not_json": ("post-processing config", "is not valid JSON"),
    "postprocess_unknown_kind": ("unknown post-processing kind 'pca'", "valid kinds are: whitening, flow"),
    "postprocess_path_escape": ("names the path '../../../../etc/passwd', outside the model directory",),
    "whitening_of_another_size": ("fitted on 16-dimensional embeddings", "32-dimensional"),
}
ROWS = [
    *[Row(f"train --{flag} {value}", train(f"--{flag}", value), (needle,)) for flag, value, needle in SETTINGS],
    Row("train --device cuda (no GPU)", train("--device", "cuda"), ("sees no CUDA GPU", "--device cpu"),
        marks=(pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is there"),)),
    Row("train --config: wrong type", train("--config", "files:wrong_type.json"), ("learning_rate must be a float, got 'fast'",)),
    Row("train --config: null", train("--config", "files:null.json"), ("learning_rate must not be null",)),
    Row("train --config: not UTF-8", train("--config", "files:not_utf8.json"), ("not_utf8.json, line 1, byte 18: 0xe9 is not UTF-8",)),
    Row("train --config: a list", train("--config", "files:list.json"), ("must hold one JSON object",)),
    Row("train: training file not UTF-8", train(file="latin1.txt"), ("latin1.txt, line 2, byte 7: 0xe9 is not UTF-8",)),
    Row("train: CSV field over the size limit", train(file="huge_field.csv"), ("huge_field.csv, line 2", "field larger than field limit",
                                                                                "never closed")),
    Row("train: CSV without a header", train(file="no_header.csv"), ("is not a header of column names", "sent0,sent1")),
    Row("train: --hard_negative_weight without hard negatives", train("--hard_negative_weight", "1"), ("needs hard negatives",)),
    Row("train: output_dir is a file", train(), ("exists and is a file",), setup=a_file("out")),
    Row("train: output location read-only", train(), ("cannot be written", "read-only"), setup=read_only(".")),
    Row("train: disk full in torch.save", train("--save_steps", "1"), ("cannot write", "full disk"), before_model=False,
        setup=disk_full_in_torch_save, writes=True),
    Row("train: disk full writing metrics", train("--max_steps", "1"), ("cannot write", "history.json: the disk is full"),
        before_model=False, setup=disk_full_in_metrics, writes=True),
    *[Row(f"train from a damaged model: {name}", lambda m, work, name=name: train()(m, work)[:2] + [str(m[name])] + train()(m, work)[3:],
          needles, before_model=False) for name, needles in MODEL_DAMAGE.items()],
    Row("resume: changed learning rate", resume("--learning_rate", "2e-3"), ("would change settings", "learning_rate 0.001 -> 0.002"),
        setup=copy_run),
    Row("resume: changed batch size and seed", resume("--per_device_train_batch_size", "8", "--seed", "4"),
        ("per_device_train_batch_size 4 -> 8", "seed 3 -> 4"), setup=copy_run),
    Row("resume: state JSON missing a key", resume_from("checkpoint-10"), ("trainer_state.json lacks history",),
        setup=damage_state(drop_plain_key)),
    Row("resume: state tensors missing a key", resume_from("checkpoint-10"), ("lacks trainer_state.pt: optimizer",),
        before_model=False, setup=damage_state(drop_tensor_key)),
    Row("resume: a pickled object in the state", resume_from("checkpoint-10"), ("holds pickled objects other than tensors",
                                                                                 "simcse_lab refuses it"),
        before_model=False, setup=damage_state(pickle_object)),
    Row("resume: every checkpoint damaged", resume(), ("no checkpoint in", "can be resumed from", "checkpoint-10 is damaged",
                                                       "checkpoint-5 is damaged"), setup=truncate_every_checkpoint),
    Row("resume: another run holds the output dir", resume(), ("is in use by another run (pid", "lock file"), setup=hold_the_lock),
    Row("evaluate --output a directory", evaluate("model"), ("results.json is a directory",), setup=a_directory("results.json")),
    Row("evaluate --output below a file", lambda m, work: evaluate()(m, work)[:-1] + [str(work / "file" / "r.json")],
        ("is a file",), setup=a_file("file")),
    Row("evaluate --output read-only", evaluate(), ("cannot be written",), setup=read_only(".")),
    Row("evaluate --max_seq_length 0", evaluate("model", "--max_seq_length", "0"), ("--max_seq_length must be a whole number of at least 2",)),
    Row("evaluate --max_seq_length 1", evaluate("model", "--max_seq_length", "1"), ("at least 2, got 1",)),
    Row("evaluate --batch_size 0", evaluate("model", "--batch_size", "0"), ("--batch_size must be a whole number of at least 1",)),
    Row("evaluate --batch_size -3", evaluate("model", "--batch_size", "-3"), ("got -3",)),
    Row("evaluate --tasks sts12 --mode dev", lambda m, work: ["evaluate", "--model_name_or_path", str(m["model"]), "--tasks", "sts12",
                                                             "--mode", "dev", "--output", str(work / "r.json")],
        ("no task of sts12 has a dev split",)),
    Row("evaluate --pooler unknown", evaluate("model", "--pooler", "max"), ("unknown pooler 'max'",)),
    *[Row(f"evaluate: STS-B dev {name}", evaluate("model", "--data_dir", f"data:sts_{name}"), needles)
      for name, needles in {"gold_not_a_number": ("sts-dev.csv, line 4: the gold score 'high' is not a number",),
                            "comma_delimited": ("sts-dev.csv, line 1", "(it looks comma-delimited)"),
                            "empty": ("sts-dev.csv holds no sentence pairs",),
                            "not_utf8": ("sts-dev.csv, line 3, byte", "0xe9 is not UTF-8")}.items()],
    Row("evaluate: STS12 line without a tab", lambda m, work: ["evaluate", "--model_name_or_path", str(m["model"]), "--tasks", "sts12",
                                                              "--data_dir", str(m["sts_no_tab"]), "--output", str(work / "r.json")],
        ("STS.input.MSRpar.txt, line 2: 1 tab-separated field(s), expected 2",)),
    *[Row(f"evaluate a damaged model: {name}", evaluate(name), needles, before_model=False) for name, needles in MODEL_DAMAGE.items()],
    Row("diagnose --output_dir a file", lambda m, work: ["diagnose", "--model_name_or_path", str(m["model"]), "--output_dir",
                                                        str(work / "report")], ("--output_dir", "report is a file"),
        setup=a_file("report")),
]


def tree(root: Path, directory_mtimes: bool = True) -> dict[str, tuple]:
    """Every entry under root: (is a directory, size, mtime in ns). directory_mtimes=False leaves out the mtimes of
    directories, which change when a run that got as far as loading its model takes (and drops) its lock file."""
    return {p.relative_to(root).as_posix(): (p.is_dir(), p.stat().st_size if p.is_file() else 0,
                                             p.stat().st_mtime_ns if directory_mtimes or not p.is_dir() else 0)
            for p in sorted(root.rglob("*"))}


def assert_one_error_line(stderr: str, needles) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert "\x1b" not in lines[0] and "weights_only" not in lines[0], lines[0]  # the project's words, not torch's
    return lines[0]


@pytest.mark.parametrize("row", [pytest.param(r, id=r.id, marks=r.marks) for r in ROWS])
def test_cli_bad_input(row: Row, materials, tmp_path, capsys, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    if row.setup is not None:
        row.setup(materials, work, monkeypatch)
    if row.before_model:
        monkeypatch.setattr("simcse_lab.models.loading.load_encoder",
                            lambda *a, **k: pytest.fail("the model loaded before the bad input was refused"))
    before = tree(work, row.before_model)
    argv = row.argv(materials, work)
    try:
        status = main(argv)
        after = tree(work, row.before_model)
    finally:
        while HELD:
            HELD.pop().release()
    assert status == 2
    assert_one_error_line(capsys.readouterr().err, row.needles)
    from simcse_lab.training import checkpoint as ckpt

    if row.writes:  # the write failed part-way: nothing half-written is left behind
        out = work / "out"
        assert not [p for p in out.rglob("*") if ckpt.is_temporary(p)]
        assert all(ckpt.checkpoint_problem(c) is None for c in out.glob("checkpoint-*"))
    else:
        assert after == before


# --------------------------------------------------------------------------- the same classes through the API
def api_rows():
    from simcse_lab.data import load_sts, load_training_file
    from simcse_lab.models.encoder import SimCSEEncoder
    from simcse_lab.train import TrainConfig

    def encoder(m):
        return SimCSEEncoder.from_pretrained(m["model"], pooler="avg", device="cpu")

    rows = [
        ("encode(dict)", lambda m: encoder(m).encode({"a": 1}), "got a dict"),
        ("encode(max_length=0)", lambda m: encoder(m).encode(["a"], max_length=0), "max_length must be a whole number of at least 2"),
        ("encode(max_length=1)", lambda m: encoder(m).encode(["a"], max_length=1), "at least 2, got 1"),
        ("encode(batch_size=0)", lambda m: encoder(m).encode(["a"], batch_size=0), "batch_size must be a whole number of at least 1"),
        ("encode(batch_size=-2)", lambda m: encoder(m).encode(["a"], batch_size=-2), "got -2"),
        ("encode(device='tpu')", lambda m: encoder(m).encode(["a"], device="tpu"), "unknown device 'tpu'"),
        ("TrainConfig(temp=0)", lambda m: TrainConfig(train_file="x.txt", temp=0), "temp must be > 0"),
        ("TrainConfig(seed=2**32)", lambda m: TrainConfig(train_file="x.txt", seed=2**32), "numpy's seed range"),
        ("TrainConfig(learning_rate=nan)", lambda m: TrainConfig(train_file="x.txt", learning_rate=float("nan")), "learning_rate must be > 0"),
        ("TrainConfig(learning_rate=None)", lambda m: TrainConfig(train_file="x.txt", learning_rate=None), "must not be null"),
        ("load_training_file(latin-1)", lambda m: load_training_file(m["files"] / "latin1.txt"), "line 2, byte 7: 0xe9 is not UTF-8"),
        ("load_training_file(no header)", lambda m: load_training_file(m["files"] / "no_header.csv"), "is not a header"),
        ("load_sts(non-numeric gold)", lambda m: load_sts("stsb", "dev", m["sts_gold_not_a_number"]), "is not a number"),
        ("load_sts(no tab)", lambda m: load_sts("sts12", "test", m["sts_no_tab"]), "tab-separated"),
    ]
    rows += [(f"from_pretrained({name})", lambda m, name=name: SimCSEEncoder.from_pretrained(m[name], device="cpu"), needles[-1])
             for name, needles in MODEL_DAMAGE.items()]
    return rows


API_ROWS = api_rows()


@pytest.mark.parametrize("call, needle", [pytest.param(c, n, id=i) for i, c, n in API_ROWS])
def test_api_bad_input(call, needle, materials):
    before = tree(materials["saved"].parent)
    with pytest.raises(SimCSELabError) as caught:
        call(materials)
    message = str(caught.value)
    assert needle in message and "\n" not in message, message
    assert tree(materials["saved"].parent) == before  # loading never writes into a model directory


def test_the_trainer_state_refusal_is_in_the_projects_words(materials, tmp_path):
    from simcse_lab.training import checkpoint as ckpt

    shutil.copytree(materials["run"] / "checkpoint-10", tmp_path / "checkpoint-10")
    pickle_object(tmp_path / "checkpoint-10")
    with pytest.raises(SimCSELabError) as caught:
        ckpt.load_training_state(tmp_path / "checkpoint-10")
    message = str(caught.value)
    assert "could run code" in message and "\x1b" not in message and "weights_only" not in message.replace("weights_only=True", "")
    assert "do those steps only if you trust" not in message


def test_a_csv_with_a_byte_order_mark_reads_as_without(materials, tmp_path):
    from simcse_lab.data import load_training_file

    plain = tmp_path / "plain.csv"
    plain.write_text("sent0,sent1\nA man plays.,Someone plays.\n")
    marked = tmp_path / "bom.csv"
    marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    assert load_training_file(marked).rows == load_training_file(plain).rows == [("A man plays.", "Someone plays.")]


# --------------------------------------------------------------------------- as real processes
def child_env() -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_DIR.parent), env.get("PYTHONPATH", "")])
    return env


PROCESS_ROWS = ["train --config: not UTF-8", "evaluate a damaged model: truncated_weights", "diagnose --output_dir a file",
                "resume: changed learning rate"]


@pytest.mark.parametrize("row", [r for r in ROWS if r.id in PROCESS_ROWS], ids=lambda r: r.id)
def test_process_exit_status_and_stderr(row: Row, materials, tmp_path, monkeypatch):
    """The process-level contract, with Python's own warning printing: status 2, one error line, no traceback."""
    work = tmp_path / "work"
    work.mkdir()
    if row.setup is not None:
        row.setup(materials, work, monkeypatch)
    before = tree(work)
    result = subprocess.run([sys.executable, "-m", "simcse_lab", *row.argv(materials, work)], capture_output=True, text=True,
                            env=child_env(), timeout=600, cwd=work)
    assert result.returncode == 2, result.stderr
    assert_one_error_line(result.stderr, row.needles)
    assert all(line.startswith(("error: ", "warning: ")) for line in result.stderr.splitlines() if line.strip()), result.stderr
    assert tree(work) == before


def test_the_suite_covers_every_class_of_the_issue():
    """The table's size, and one row (at least) per class the issue lists."""
    ids = " | ".join(r.id for r in ROWS)
    for needle in ("max_seq_length", "batch_size", "learning_rate", "weight_decay", "num_train_epochs", "seed", "device", "--config",
                   "CSV field", "gold_not_a_number", "without a tab", "not_utf8", "truncated_weights", "garbage_weights",
                   "simcse_config", "no_mlp_head", "postprocess", "of_another_size", "missing a key", "read-only", "disk full",
                   "--output a directory", "--output_dir a file", "another run holds", "no_tokenizer"):
        assert needle in ids, needle
    assert len(ROWS) + len(API_ROWS) >= 100
