"""Issue 22's "wrong behaviour" list: no user file is touched, no result is silently wrong.

One test (or a small table) per item; each failed on the code before the fix (main at 0e16605), except where a
docstring says main already handled it. The references are independent of the code under test: the bytes and
mtimes of the files before the run, the weights saved by the earlier run, a byte written by hand at a known line.
Training runs are in-process on the tiny BERT of conftest, a few steps each.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from simcse_lab.commands.cli import main
from simcse_lab.data import load_sts, load_training_file
from simcse_lab.errors import SimCSELabError
from simcse_lab.models.encoder import SimCSEEncoder
from simcse_lab.training import checkpoint as ckpt


# --------------------------------------------------------------------------- helpers
def tree(root: Path) -> dict[str, tuple]:
    """Every entry under root: (is a directory, size, mtime in ns); what 'nothing changed' is compared with."""
    return {p.relative_to(root).as_posix(): (p.is_dir(), p.stat().st_size if p.is_file() else 0, p.stat().st_mtime_ns)
            for p in sorted(Path(root).rglob("*"))}


@pytest.fixture
def sentences(tmp_path, one_thread) -> Path:
    from conftest import WORDS

    path = tmp_path / "sentences.txt"
    path.write_text("\n".join(" ".join(WORDS[(i * 5 + j) % len(WORDS)] for j in range(4 + i % 5)) for i in range(64)) + "\n")
    return path


def config(model_dir: Path, train_file: Path, output_dir: Path, **overrides):
    from simcse_lab.train import TrainConfig

    values = dict(model_name_or_path=str(model_dir), train_file=str(train_file), output_dir=str(output_dir), pooler_type="cls",
                  per_device_train_batch_size=4, max_steps=12, save_steps=5, eval_steps=0, logging_steps=1,
                  learning_rate=1e-3, seed=3, device="cpu", show_progress=False)
    return TrainConfig(**{**values, **overrides})


def stop_at_loss_call(monkeypatch, call: int) -> None:
    """Interrupt the run inside its call-th loss computation (a Ctrl-C mid-step)."""
    import simcse_lab.training.objectives as objectives

    original, counter = objectives.unsup_simcse_loss, [0]

    def loss(*args, **kwargs):
        counter[0] += 1
        if counter[0] == call:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(objectives, "unsup_simcse_loss", loss)


def interrupted_run(model_dir, train_file, output_dir, monkeypatch, at_call: int = 12, **overrides) -> None:
    """A run stopped mid-step at loss call `at_call` (checkpoints every 5 steps before it)."""
    from simcse_lab.train import train

    stop_at_loss_call(monkeypatch, at_call)
    with pytest.raises(KeyboardInterrupt):
        train(config(model_dir, train_file, output_dir, **overrides))
    monkeypatch.undo()


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def same_weights(a: Path, b: Path) -> bool:
    x, y = weights(a), weights(b)
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


# --------------------------------------------------------------------------- 1. data loss in the start-up cleanup
def user_lookalikes(output_dir: Path) -> None:
    """Entries named like the trainer's temporaries that the user made: none may be read, moved or removed."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / ".tmp-notes").mkdir()
    (output_dir / ".tmp-notes" / "ideas.txt").write_text("my ideas\n")
    (output_dir / ".tmp-draft.txt").write_text("a draft\n")
    (output_dir / ".old-notes-1").mkdir()  # main renamed this to notes/
    (output_dir / ".old-notes-1" / "v1.txt").write_text("version 1\n")
    (output_dir / "results").mkdir()
    (output_dir / ".old-results-7").mkdir()  # main deleted this: results/ exists
    (output_dir / ".old-results-7" / "kept.txt").write_text("kept\n")


def test_a_refused_output_dir_is_left_exactly_as_it_was(tiny_model_dir, sentences, tmp_path, capsys):
    """Item 1: main removed .tmp-*, removed .old-<name>-<n> whose <name> exists and renamed the others, then refused."""
    output_dir = tmp_path / "out"
    user_lookalikes(output_dir)
    before = tree(output_dir)
    status = main(["train", "--model_name_or_path", str(tiny_model_dir), "--train_file", str(sentences), "--output_dir",
                   str(output_dir), "--per_device_train_batch_size", "4", "--max_steps", "1", "--eval_steps", "0", "--no_progress"])
    assert status == 2 and "already exists and is not empty" in capsys.readouterr().err
    assert tree(output_dir) == before


def test_an_accepted_output_dir_keeps_the_users_lookalikes(tiny_model_dir, sentences, tmp_path):
    """Item 1, accepted (--overwrite_output_dir): main's cleanup removed and renamed the same entries."""
    from simcse_lab.train import train

    output_dir = tmp_path / "out"
    user_lookalikes(output_dir)
    before = tree(output_dir)
    train(config(tiny_model_dir, sentences, output_dir, overwrite_output_dir=True, max_steps=2, save_steps=0))
    after = tree(output_dir)
    assert {name: after.get(name) for name in before} == before


def test_cleanup_removes_the_trainers_own_temporaries_only(tmp_path):
    """What a killed run leaves (a marked temporary, made by the code a run uses) goes; a look-alike stays."""
    user_lookalikes(tmp_path)
    before = tree(tmp_path)
    holder = ckpt.make_temporary(tmp_path, "tmp", "checkpoint-5")
    (holder / "checkpoint-5").mkdir()
    (holder / "checkpoint-5" / "model.safetensors").write_text("half")
    assert ckpt.is_temporary(holder) and not ckpt.is_temporary(tmp_path / ".tmp-notes")
    ckpt.remove_stale_temporaries(tmp_path)
    assert tree(tmp_path) == before


# --------------------------------------------------------------------------- 2. a finished run resumed
class StepScores:
    """A dev evaluator whose score falls with the step (the best model is the first evaluated), so the final model
    and the best one differ; the step comes from the trainer's on_log callback, called just before evaluating."""

    def __init__(self):
        self.step = 0

    def on_log(self, state, record):
        self.step = state.step

    def __call__(self, encoder):
        return {"stsb_dev": 100.0 - self.step}


def run_with_evaluation(model_dir, train_file, output_dir, monkeypatch, **overrides):
    from simcse_lab.train import train

    scores = StepScores()
    monkeypatch.setattr("simcse_lab.training.trainer.dev_evaluator", lambda config, dist: scores)
    overrides.setdefault("geometry_snapshots", 0)  # the fake evaluator has no STS-B dev pairs to draw a snapshot probe from
    return train(config(model_dir, train_file, output_dir, eval_steps=3, save_steps=3, **overrides), callbacks=[scores])


def test_a_finished_run_resumed_is_a_no_op_that_keeps_the_best_model(tiny_model_dir, sentences, tmp_path, monkeypatch):
    """Item 2: main resumed from the last checkpoint, found best_model/ already moved out, and saved the final
    model over the best one (metrics.json still naming the best step)."""
    output_dir = tmp_path / "out"
    first = run_with_evaluation(tiny_model_dir, sentences, output_dir, monkeypatch)
    assert first.best_step == 3 and first.steps == 12
    best = tmp_path / "best.safetensors"
    shutil.copy2(output_dir / "model.safetensors", best)
    metrics = (output_dir / "metrics.json").read_text()
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        again = run_with_evaluation(tiny_model_dir, sentences, output_dir, monkeypatch, resume_from_checkpoint="auto")
    assert same_weights(output_dir / "model.safetensors", best)
    assert (output_dir / "metrics.json").read_text() == metrics
    assert [str(w.message) for w in said if "holds a finished run" in str(w.message) and "nothing to do" in str(w.message)]
    assert again.already_finished and again.steps == 12 and again.best_step == 3


def test_killed_before_metrics_json_the_best_model_survives(tiny_model_dir, sentences, tmp_path, monkeypatch):
    """Item 2, second half: killed after the best model was moved into place but before metrics.json; main's resume
    then saved the final model over it."""
    output_dir = tmp_path / "out"
    reference = run_with_evaluation(tiny_model_dir, sentences, tmp_path / "reference", monkeypatch)
    original = ckpt.atomic_write_text

    def killed_at_metrics(path, text):
        if Path(path).name == "metrics.json":
            raise KeyboardInterrupt
        return original(path, text)

    monkeypatch.setattr(ckpt, "atomic_write_text", killed_at_metrics)
    with pytest.raises(KeyboardInterrupt):
        run_with_evaluation(tiny_model_dir, sentences, output_dir, monkeypatch)
    monkeypatch.undo()
    assert not (output_dir / "metrics.json").exists()
    result = run_with_evaluation(tiny_model_dir, sentences, output_dir, monkeypatch, resume_from_checkpoint="auto")
    assert same_weights(output_dir / "model.safetensors", tmp_path / "reference" / "model.safetensors")
    assert result.best_step == reference.best_step == 3
    assert json.loads((output_dir / "metrics.json").read_text())["best_step"] == 3
    assert not (output_dir / "best_model").exists() and not result.already_finished


# --------------------------------------------------------------------------- 3. a model directory without tokenizer files
def test_a_model_directory_without_tokenizer_files_is_refused(tiny_model_dir, tmp_path, capsys):
    """Item 3: main loaded a 5-token tokenizer (every word [UNK]) and went on, exit 0."""
    model = tmp_path / "no_tokenizer"
    model.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy2(tiny_model_dir / name, model / name)
    with pytest.raises(SimCSELabError, match="no tokenizer vocabulary.*tokenizer files"):
        SimCSEEncoder.from_pretrained(model, pooler="avg")
    assert main(["evaluate", "--model_name_or_path", str(model), "--tasks", "stsb", "--output", str(tmp_path / "r.json")]) == 2
    assert "tokenizer files" in capsys.readouterr().err and not (tmp_path / "r.json").exists()


# --------------------------------------------------------------------------- 4. resume with changed settings
@pytest.mark.parametrize("setting, value", [("learning_rate", 2e-3), ("per_device_train_batch_size", 8), ("pooler_type", "avg"),
                                            ("seed", 4), ("max_steps", 20)])
def test_resume_refuses_a_setting_that_changes_the_run(tiny_model_dir, sentences, tmp_path, monkeypatch, setting, value):
    """Item 4: main ignored a new learning rate (weights as with the old one) but recorded it; other changes shifted
    the schedule silently."""
    from simcse_lab.train import train

    output_dir = tmp_path / "out"
    interrupted_run(tiny_model_dir, sentences, output_dir, monkeypatch)
    before = tree(output_dir)
    with pytest.raises(SimCSELabError, match=f"would change settings .*{setting} .*->") as caught:
        train(config(tiny_model_dir, sentences, output_dir, resume_from_checkpoint="auto", **{setting: value}))
    assert "\n" not in str(caught.value)
    assert tree(output_dir) == before


def test_resume_allows_logging_and_checkpoint_settings(tiny_model_dir, sentences, tmp_path, monkeypatch):
    from simcse_lab.train import train

    output_dir = tmp_path / "out"
    interrupted_run(tiny_model_dir, sentences, output_dir, monkeypatch)
    result = train(config(tiny_model_dir, sentences, output_dir, resume_from_checkpoint="auto", logging_steps=4, save_total_limit=1))
    assert result.steps == 12


# --------------------------------------------------------------------------- 5. damaged newest checkpoint
DAMAGE = {
    "no_mlp_head": (lambda c: shutil.rmtree(c / "2_Dense"), "2_Dense/model.safetensors is missing"),
    "no_simcse_config": (lambda c: (c / "simcse_config.json").unlink(), "simcse_config.json is missing"),
    "truncated_weights": (lambda c: (c / "model.safetensors").write_bytes((c / "model.safetensors").read_bytes()[:5000]),
                          "model.safetensors is truncated"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(tiny_model_dir, sentences, tmp_path, monkeypatch, damage):
    """Item 5: main resumed from a checkpoint without 2_Dense/ or simcse_config.json with a fresh random head, and
    died in a traceback on truncated weights."""
    from simcse_lab.train import train

    output_dir = tmp_path / "out"
    interrupted_run(tiny_model_dir, sentences, output_dir, monkeypatch)
    assert [p.name for p in ckpt.list_checkpoints(output_dir)] == ["checkpoint-5", "checkpoint-10"]
    make_damage, needle = DAMAGE[damage]
    make_damage(output_dir / "checkpoint-10")
    resumed_from = []
    original = ckpt.load_training_state
    monkeypatch.setattr(ckpt, "load_training_state", lambda path, **kw: resumed_from.append(Path(path).name) or original(path, **kw))
    with pytest.warns(UserWarning, match=f"checkpoint-10 is damaged \\(.*{re.escape(needle)}.*resuming from checkpoint-5"):
        result = train(config(tiny_model_dir, sentences, output_dir, resume_from_checkpoint="auto"))
    assert resumed_from == ["checkpoint-5"] and result.steps == 12


# --------------------------------------------------------------------------- 6. non-UTF-8 training files
@pytest.mark.parametrize("name, content, where", [
    ("latin1.txt", "a first sentence\nun café noir\n".encode("latin-1"), "latin1.txt, line 2, byte 7: 0xe9"),
    ("latin1.csv", "sent0,sent1\nun café,a coffee\n".encode("latin-1"), "latin1.csv, line 2, byte 7: 0xe9"),
    ("binary.txt", bytes(range(200, 256)) * 4, "binary.txt, line 1, byte 1: 0xc8"),
])
def test_non_utf8_training_files_name_file_line_and_byte(tmp_path, name, content, where):
    """Item 6: main decoded with errors='replace' (café -> caf\\ufffd; random binary trained)."""
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SimCSELabError, match="is not UTF-8") as caught:
        load_training_file(path)
    assert where in str(caught.value)


# --------------------------------------------------------------------------- 7. evaluation never returns NaN
def sts_dir(tmp_path: Path, dev: str | bytes) -> Path:
    folder = tmp_path / "data" / "sts" / "STSBenchmark"
    folder.mkdir(parents=True)
    (folder / "sts-dev.csv").write_bytes(dev.encode("utf8") if isinstance(dev, str) else dev)
    return tmp_path / "data"


ROW = "main-captions\tMSRvid\t2012dev\t{i:04d}\t{gold}\ta man plays {i}\ta woman sings {i}\n"


@pytest.mark.parametrize("dev, needle", [
    ("".join(ROW.format(i=i, gold="x.5" if i == 2 else i % 5) for i in range(4)), "line 3: the gold score 'x.5' is not a number"),
    ("".join(ROW.format(i=i, gold=i % 5).replace("\t", ",") for i in range(4)), "line 1: 1 tab-separated field(s), expected 7"),
    ("", "holds no sentence pairs"),
    ("".join(ROW.format(i=i, gold="nan" if i == 1 else i % 5) for i in range(4)), "line 2: the gold score 'nan' is not a number"),
])
def test_a_damaged_sts_file_is_an_error_naming_file_and_line(tmp_path, dev, needle):
    """Item 7. main already raised for NaN gold and for an empty or comma-delimited file (as '0 scored pairs', naming
    neither the file nor the delimiter); a non-numeric gold score was a ValueError traceback."""
    data = sts_dir(tmp_path, dev)
    with pytest.raises(SimCSELabError) as caught:
        load_sts("stsb", "dev", data)
    assert needle in str(caught.value) and "sts-dev.csv" in str(caught.value)


def test_dev_mode_of_test_only_tasks_is_an_error_not_an_average_over_nothing(tiny_model_dir, tmp_path, capsys, monkeypatch):
    """Item 7: `--tasks sts12 --mode dev` (main already refused it, after loading the model); now before the model loads."""
    monkeypatch.setattr("simcse_lab.models.loading.load_encoder", lambda *a, **k: pytest.fail("the model loaded"))
    assert main(["evaluate", "--model_name_or_path", str(tiny_model_dir), "--tasks", "sts12", "--mode", "dev"]) == 2
    assert "no task of sts12 has a dev split" in capsys.readouterr().err


# --------------------------------------------------------------------------- 8. settings
@pytest.mark.parametrize("flag, value, needle", [  # --temp -1, --max_grad_norm nan, --warmup_ratio 2: test_train's CLI test
    ("--temp", "0", "temp must be > 0"),
    ("--augmentation_ratio", "-1", "augmentation_ratio must be >= 0 and <= 1"),
    ("--num_train_epochs", "0", "num_train_epochs must be > 0"),
    ("--mlp_only_train", "--pooler_type=avg", "mlp_only_train applies to the cls pooler"),
    ("--hard_negative_weight", "1", "hard_negative_weight needs hard negatives"),
])
def test_settings_are_checked_before_the_model_loads(tiny_model_dir, sentences, tmp_path, capsys, monkeypatch, flag, value, needle):
    """Item 8. main already range-checked these (training/config.py BOUNDS) except hard_negative_weight without hard
    negatives, which was refused only after the model had loaded."""
    monkeypatch.setattr("simcse_lab.models.loading.load_encoder", lambda *a, **k: pytest.fail("the model loaded"))
    status = main(["train", "--model_name_or_path", str(tiny_model_dir), "--train_file", str(sentences), "--output_dir",
                   str(tmp_path / "out"), "--no_progress", flag, value])
    assert status == 2 and needle in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- the lock
def test_a_second_run_on_the_same_output_dir_says_who_holds_it(tiny_model_dir, sentences, tmp_path):
    import os
    import socket

    from simcse_lab.train import train
    from simcse_lab.training.run_dir import OutputDirLock

    output_dir = tmp_path / "out"
    output_dir.mkdir()
    holder = OutputDirLock(output_dir)
    holder.acquire()
    try:
        with pytest.raises(SimCSELabError, match=f"in use by another run \\(pid {os.getpid()} on {socket.gethostname()}, started "):
            train(config(tiny_model_dir, sentences, output_dir))
    finally:
        holder.release()
    assert list(output_dir.iterdir()) == []


def test_a_lock_left_by_a_dead_run_is_taken_over_with_a_line(tiny_model_dir, sentences, tmp_path):
    from simcse_lab.train import train
    from simcse_lab.training.run_dir import LOCK_FILE

    output_dir = tmp_path / "out"
    output_dir.mkdir()
    (output_dir / LOCK_FILE).write_text(json.dumps({"pid": 999999, "host": "gone", "started": "yesterday"}))  # nobody holds it
    with pytest.warns(UserWarning, match="took over the lock left by pid 999999 on gone, started yesterday"):
        train(config(tiny_model_dir, sentences, output_dir, max_steps=2, save_steps=0))
    assert not (output_dir / LOCK_FILE).exists()


def test_warnings_of_the_project_print_as_one_line(tiny_model_dir, tmp_path, capsys):
    """Also-list: Python printed a second line with the source of the warn() call."""
    import warnings as python_warnings

    from simcse_lab.errors import SimCSELabWarning, one_line_warning

    assert one_line_warning(SimCSELabWarning("skipped 2 empty line(s)"), SimCSELabWarning, "x.py", 3) == "warning: skipped 2 empty line(s)\n"
    # anyone else's warning keeps Python's format: file, line, category, and the source line
    assert one_line_warning(UserWarning("other"), UserWarning, "/elsewhere/x.py", 3, "f()") == "/elsewhere/x.py:3: UserWarning: other\n  f()\n"
    gaps = tmp_path / "gaps.txt"
    gaps.write_text("a man plays\n\nthe dog runs\nthe cat sings\n\n")
    with python_warnings.catch_warnings():
        python_warnings.simplefilter("always")
        # what Python does outside pytest's capture: write formatwarning's text to stderr
        python_warnings.showwarning = lambda message, category, filename, lineno, file=None, line=None: sys.stderr.write(
            python_warnings.formatwarning(message, category, filename, lineno, line))
        main(["train", "--model_name_or_path", str(tiny_model_dir), "--train_file", str(gaps), "--output_dir", str(tmp_path / "o"),
              "--per_device_train_batch_size", "4", "--max_steps", "1", "--eval_steps", "0", "--no_progress"])
    err = capsys.readouterr().err
    assert "warning: gaps.txt: skipped 2 empty line(s)\n" in err and "warnings.warn" not in err
