"""Interrupted training resumes exactly; checkpoints are never half-written; NaN and OOM stop cleanly.

The reference is an uninterrupted `python -m simcse_lab train` run with the same seed: a run that is
SIGKILLed and resumed with `--resume_from_checkpoint auto` must end with bit-identical weights
(model.safetensors compared tensor by tensor) and the same logged history.

Kill points are made deterministic by a small wrapper (KILL_WRAPPER below) that patches one library
function inside the child process and SIGKILLs itself there; the library has no test hooks.
SIGKILL cannot be caught, so nothing in the library gets a chance to clean up: what the resume sees is
what a power cut or the OOM killer leaves.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from simcse_lab.training import checkpoint as ckpt
from simcse_lab.training.run_dir import LOCK_FILE
from simcse_lab.errors import SimCSELabError

DATA_DIR = os.environ.get("SIMCSE_LAB_DATA")
MAX_STEPS, SAVE_STEPS, BATCH = 30, 5, 8
PACKAGE_ROOT = Path(__file__).resolve().parent.parent

KILL_WRAPPER = textwrap.dedent('''
    """Run the simcse_lab CLI, SIGKILLing this process at the point named by $KILL_POINT."""
    import os, shutil, signal, sys
    from pathlib import Path

    import simcse_lab.training.checkpoint as ckpt
    import simcse_lab.training.objectives as objectives
    import simcse_lab.training.trainer as trainer

    kind, _, arg = os.environ["KILL_POINT"].partition(":")
    die = lambda: os.kill(os.getpid(), signal.SIGKILL)

    if kind == "loss":  # mid-step: inside the arg-th loss computation of this process, before backward
        calls, original_loss = [0], objectives.unsup_simcse_loss
        def loss(*args, **kwargs):
            calls[0] += 1
            if calls[0] == int(arg):
                die()
            return original_loss(*args, **kwargs)
        objectives.unsup_simcse_loss = loss
    elif kind == "state_pt":  # checkpoint-arg half written: model + trainer_state.pt, no trainer_state.json
        original_state = ckpt.save_training_state
        def save_training_state(directory, tensors, plain):
            if plain["step"] == int(arg):
                import torch
                torch.save(tensors, Path(directory) / ckpt.STATE_FILE)
                die()
            return original_state(directory, tensors, plain)
        ckpt.save_training_state = save_training_state
    elif kind == "before_rename":  # checkpoint-arg fully written and fsynced, not yet renamed into place
        original_fsync = ckpt.fsync_tree
        def fsync_tree(directory):
            original_fsync(directory)
            if Path(directory).parent.name.startswith(f".tmp-checkpoint-{arg}-"):  # the content inside its temporary
                die()
        ckpt.fsync_tree = fsync_tree
    elif kind == "rotate":  # deleting the rotated-out checkpoint-arg: one file gone, then killed
        original_rmtree = shutil.rmtree
        def rmtree(path, *args, **kwargs):
            name = Path(path).name
            if name == f"checkpoint-{arg}" or name.startswith(f".tmp-delete-checkpoint-{arg}-"):
                next(Path(path).rglob("model.safetensors")).unlink()
                die()
            return original_rmtree(path, *args, **kwargs)
        shutil.rmtree = rmtree
    elif kind == "final":  # writing the final model into output_dir: a truncated model.safetensors
        def finish(*args, **kwargs):
            output_dir = next(a for a in [*args, *kwargs.values()] if isinstance(a, (str, os.PathLike)))
            (Path(output_dir) / "model.safetensors").write_bytes(b"half-written")
            die()
        trainer.finish_run = finish
    elif kind == "best_rename":  # between atomic_directory's two renames while replacing best_model
        original_rename = os.rename
        def rename(src, dst, *args, **kwargs):
            original_rename(src, dst, *args, **kwargs)
            if Path(dst).parent.name.startswith(".old-best_model-"):  # best_model moved into its .old- temporary
                die()
        os.rename = rename
    else:
        raise SystemExit(f"unknown KILL_POINT {kind}")

    from simcse_lab.commands.cli import main
    sys.exit(main(sys.argv[1:]))
''')


def child_env() -> dict:
    # one intra-op thread: on shared cores it halves the run time, and both runs of a comparison use it
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_ROOT), env.get("PYTHONPATH", "")])
    return env


class Runs:
    """Builds and runs `simcse_lab train` command lines for one tiny-BERT setup."""

    def __init__(self, root: Path, model_dir: Path, train_file: Path, evaluate: bool, seed: int):
        self.root, self.model_dir, self.train_file, self.evaluate, self.seed = root, model_dir, train_file, evaluate, seed
        (root / "kill_wrapper.py").write_text(KILL_WRAPPER)

    def args(self, output_dir: Path) -> list[str]:
        evaluation = ["--eval_steps", "5", "--eval_max_pairs", "20"] if self.evaluate else ["--eval_steps", "0"]
        return ["train", "--model_name_or_path", str(self.model_dir), "--train_file", str(self.train_file),
                "--output_dir", str(output_dir), "--pooler_type", "cls",  # cls: the MLP head's state is resumed too
                "--per_device_train_batch_size", str(BATCH), "--max_steps", str(MAX_STEPS),
                "--save_steps", str(SAVE_STEPS), "--save_total_limit", "2", "--logging_steps", "3", "--learning_rate", "1e-3",
                "--seed", str(self.seed), "--no_progress", *evaluation]

    def run(self, output_dir: Path, *extra: str, kill_point: str | None = None, warnings: bool = False) -> subprocess.CompletedProcess:
        """warnings: let the child print its warnings (simcse_lab's are one `warning:` line each)."""
        env = {**child_env(), **({"PYTHONWARNINGS": "default"} if warnings else {})}
        if kill_point is None:
            command = [sys.executable, "-m", "simcse_lab", *self.args(output_dir), *extra]
        else:
            command = [sys.executable, str(self.root / "kill_wrapper.py"), *self.args(output_dir), *extra]
            env["KILL_POINT"] = kill_point
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, cwd=self.root)

    def resume(self, output_dir: Path, kill_point: str | None = None, warnings: bool = False) -> subprocess.CompletedProcess:
        return self.run(output_dir, "--resume_from_checkpoint", "auto", kill_point=kill_point, warnings=warnings)


def make_runs(tmp_path_factory, tiny_model_dir, evaluate: bool) -> tuple[Runs, Path]:
    """The runs' setup and its uninterrupted reference run. With evaluation, the first seed from 8 whose
    reference replaces best_model at least once (the case "replacing_best_model" needs one; which seeds
    do depends on the dropout masks the forward draws, so no single seed is pinned)."""
    root = tmp_path_factory.mktemp("resume_eval" if evaluate else "resume")
    train_file = root / "sentences.txt"
    if DATA_DIR and (Path(DATA_DIR) / "wiki" / "wiki1m_head.txt").is_file():
        lines = (Path(DATA_DIR) / "wiki" / "wiki1m_head.txt").read_text(encoding="utf8").splitlines()[:400]
    else:  # generated text: the test needs sentences, not Wikipedia
        from conftest import WORDS
        lines = [" ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(5 + i % 9)) for i in range(400)]
    train_file.write_text("\n".join(lines) + "\n")
    for seed in EVAL_SEEDS if evaluate else (7,):
        runs = Runs(root, tiny_model_dir, train_file, evaluate, seed)
        reference = root / f"reference-seed{seed}"
        result = runs.run(reference)
        assert result.returncode == 0, result.stderr[-3000:]
        if not evaluate or steps_replacing_best_model(reference):
            break
    return runs, reference


EVAL_SEEDS = range(8, 14)


def steps_replacing_best_model(reference: Path) -> list[int]:
    """The evaluation steps whose STS-B dev score beats every earlier one. Step 0 (eval_at_start) is a
    reference, never saved as best_model, so it is not a candidate to beat."""
    history = json.loads((reference / "history.json").read_text())
    scores = [(r["step"], r["stsb_dev"]) for r in history if "stsb_dev" in r and r["step"] > 0]
    return [step for i, (step, score) in enumerate(scores) if i > 0 and score > max(s for _, s in scores[:i])]


@pytest.fixture(scope="module")
def unsup(tmp_path_factory, tiny_model_dir):
    return make_runs(tmp_path_factory, tiny_model_dir, evaluate=False)


@pytest.fixture(scope="module")
def unsup_eval(tmp_path_factory, tiny_model_dir):
    if not DATA_DIR:
        pytest.skip("evaluation during training needs STS-B dev: set SIMCSE_LAB_DATA")
    return make_runs(tmp_path_factory, tiny_model_dir, evaluate=True)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def assert_same_weights(got: Path, expected: Path) -> None:
    a, b = weights(got), weights(expected)
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def assert_checkpoints_complete(output_dir: Path, reference: Path | None = None) -> list[str]:
    """Every checkpoint-N present is whole: the reference's files, loadable state, readable weights.
    Returns the names present."""
    names = sorted(p.name for p in output_dir.glob("checkpoint-*"))
    for name in names:
        directory = output_dir / name
        files = {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}
        required = {"model.safetensors", "config.json", "simcse_config.json", ckpt.STATE_FILE, ckpt.STATE_JSON,
                    "tokenizer.json", "2_Dense/model.safetensors"}
        assert required <= files, f"{name} is incomplete: missing {sorted(required - files)}"
        tensors, plain = ckpt.load_training_state(directory)
        assert plain["step"] == int(name.split("-")[1])
        weights(directory / "model.safetensors")
        if reference is not None and (reference / name).is_dir():
            reference_files = {p.relative_to(reference / name).as_posix() for p in (reference / name).rglob("*") if p.is_file()}
            assert files == reference_files
            assert_same_weights(directory / "model.safetensors", reference / name / "model.safetensors")
    return names


def kill_and_resume(runs: Runs, reference: Path, output_dir: Path, kill_points: list[str]) -> dict:
    """Run killed at each point in turn (each later one is a killed resume), then resume to the end."""
    seen = {}
    for i, point in enumerate(kill_points):
        result = runs.run(output_dir, kill_point=point) if i == 0 else runs.resume(output_dir, kill_point=point)
        assert result.returncode == -signal.SIGKILL, f"{point}: not killed (rc {result.returncode}): {result.stderr[-2000:]}"
        seen[point] = {
            "checkpoints": assert_checkpoints_complete(output_dir, reference),
            "temporaries": sorted(p.name.rsplit("-", 1)[0] for p in output_dir.glob(".*") if p.name != LOCK_FILE),
            "resume_from": ckpt.list_checkpoints(output_dir)[-1].name if ckpt.list_checkpoints(output_dir) else None,
        }
    result = runs.resume(output_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_same_weights(output_dir / "model.safetensors", reference / "model.safetensors")
    assert_same_weights(output_dir / "2_Dense" / "model.safetensors", reference / "2_Dense" / "model.safetensors")
    assert json.loads((output_dir / "history.json").read_text()) == json.loads((reference / "history.json").read_text())
    metrics, reference_metrics = (json.loads((d / "metrics.json").read_text()) for d in (output_dir, reference))
    for key in ("steps", "best_step", "best_stsb_dev", "skipped_nonfinite"):
        assert metrics[key] == reference_metrics[key], key
    assert not list(output_dir.glob(".tmp-*")) and not list(output_dir.glob(".old-*")), "stale temporaries were left"
    assert_checkpoints_complete(output_dir, reference)
    return seen


# (kill points, the newest complete checkpoint the resume must start from, what must be lying around)
UNSUP_CASES = {
    "mid_step_between_saves": (["loss:13"], "checkpoint-10", []),
    "mid_step_before_any_checkpoint": (["loss:3"], None, []),
    "checkpoint_half_written": (["state_pt:15"], "checkpoint-10", [".tmp-checkpoint-15"]),
    "checkpoint_written_not_renamed": (["before_rename:15"], "checkpoint-10", [".tmp-checkpoint-15"]),
    "deleting_rotated_checkpoint": (["rotate:10"], "checkpoint-20", [".tmp-delete-checkpoint-10"]),
    "writing_final_model": (["final"], "checkpoint-25", []),
    "killed_twice": (["loss:13", "loss:9"], "checkpoint-15", []),
}
FAST = ("mid_step_between_saves", "checkpoint_half_written")


@pytest.mark.parametrize("case", [c if c in FAST else pytest.param(c, marks=pytest.mark.slow) for c in UNSUP_CASES])
def test_sigkill_then_resume_matches_uninterrupted_run(unsup, tmp_path, case):
    runs, reference = unsup
    kill_points, resume_from, leftovers = UNSUP_CASES[case]
    seen = kill_and_resume(runs, reference, tmp_path / "out", kill_points)
    last = seen[kill_points[-1]]
    assert last["resume_from"] == resume_from
    assert last["temporaries"] == leftovers
    if case == "writing_final_model":
        assert (tmp_path / "out" / "model.safetensors").is_file()  # the half-written one was replaced


def test_resume_after_a_truncated_newest_checkpoint_falls_back_to_the_one_before(unsup, tmp_path):
    """The newest checkpoint's weights cut in half (a copy interrupted, a disk fault): the resume passes over it with a
    line, continues from the checkpoint before, and still ends with the uninterrupted run's weights and history."""
    runs, reference = unsup
    output_dir = tmp_path / "out"
    killed = runs.run(output_dir, kill_point="loss:18")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert [p.name for p in ckpt.list_checkpoints(output_dir)] == ["checkpoint-10", "checkpoint-15"]
    newest = output_dir / "checkpoint-15" / "model.safetensors"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    resumed = runs.resume(output_dir, warnings=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert ("warning: checkpoint-15 is damaged (model.safetensors is truncated" in resumed.stderr
            and "resuming from checkpoint-10" in resumed.stderr), resumed.stderr[-2000:]
    assert_same_weights(output_dir / "model.safetensors", reference / "model.safetensors")
    assert_same_weights(output_dir / "2_Dense" / "model.safetensors", reference / "2_Dense" / "model.safetensors")
    assert json.loads((output_dir / "history.json").read_text()) == json.loads((reference / "history.json").read_text())
    assert_checkpoints_complete(output_dir, reference)  # checkpoint-15 was written again, whole


EVAL_CASES = {  # "REPLACED": the checkpoint before the first step whose dev score beats an earlier best
    "mid_step_between_evaluations": (["loss:13"], "checkpoint-10", []),
    "mid_step_late": (["loss:27"], "checkpoint-25", []),
    "replacing_best_model": (["best_rename"], "REPLACED", [".old-best_model", ".tmp-best_model"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(EVAL_CASES))
def test_sigkill_with_evaluation_resumes_to_the_same_best_model(unsup_eval, tmp_path, case):
    """With STS-B dev evaluation on: the best model (what output_dir ends up holding), its step and score match."""
    runs, reference = unsup_eval
    kill_points, resume_from, leftovers = EVAL_CASES[case]
    if resume_from == "REPLACED":
        replaced = steps_replacing_best_model(reference)
        if not replaced:
            pytest.skip(f"with seeds {EVAL_SEEDS.start}-{EVAL_SEEDS.stop - 1} the dev score never improves after its first "
                        "evaluation, so best_model is never replaced")
        resume_from = f"checkpoint-{replaced[0] - SAVE_STEPS}"
    seen = kill_and_resume(runs, reference, tmp_path / "out", kill_points)
    assert seen[kill_points[-1]]["resume_from"] == resume_from
    assert seen[kill_points[-1]]["temporaries"] == leftovers


# --------------------------------------------------------------------------- the rename windows, in-process


def test_stale_old_directory_is_restored_when_its_replacement_never_arrived(tmp_path, monkeypatch):
    """Killed between atomic_directory's renames: `best_model` is gone, its `.old-` temporary holds it whole."""
    (tmp_path / "best_model").mkdir()
    (tmp_path / "best_model" / "model.safetensors").write_text("weights")
    (tmp_path / "checkpoint-5").mkdir()
    with ckpt.atomic_directory(tmp_path / "checkpoint-5") as content:  # replaced completely: its .old- one is dropped
        (content / "model.safetensors").write_text("new")
    original_rename, renames = os.rename, []

    def rename_then_stop(src, dst):
        original_rename(src, dst)
        renames.append(Path(dst).parent.name)
        if Path(dst).parent.name.startswith(".old-best_model-"):
            raise KeyboardInterrupt  # what the kill leaves, minus the cleanup a kill would not run

    monkeypatch.setattr(ckpt.os, "rename", rename_then_stop)
    monkeypatch.setattr(ckpt.shutil, "rmtree", lambda *args, **kwargs: None)  # a SIGKILL removes nothing either
    with pytest.raises(KeyboardInterrupt):
        with ckpt.atomic_directory(tmp_path / "best_model") as content:
            (content / "model.safetensors").write_text("better weights")
    monkeypatch.undo()
    assert not (tmp_path / "best_model").exists()
    assert sorted(p.name.rsplit("-", 1)[0] if p.name.startswith(".") else p.name for p in tmp_path.iterdir()) == [
        ".old-best_model", ".tmp-best_model", "checkpoint-5"]
    assert ckpt.remove_stale_temporaries(tmp_path) == ["best_model"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best_model", "checkpoint-5"]
    assert (tmp_path / "best_model" / "model.safetensors").read_text() == "weights"
    assert (tmp_path / "checkpoint-5" / "model.safetensors").read_text() == "new"


def test_rotation_never_leaves_a_partial_checkpoint(tmp_path, monkeypatch):
    """Deletion interrupted after one file: the checkpoint name is already gone (moved into a temporary first)."""
    for step in (5, 10, 15):
        directory = tmp_path / f"checkpoint-{step}"
        directory.mkdir()
        for name in ("model.safetensors", ckpt.STATE_FILE, ckpt.STATE_JSON):
            (directory / name).write_text("x")

    def interrupted_rmtree(path, ignore_errors=False):
        next(Path(path).rglob("model.safetensors")).unlink()
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt.shutil, "rmtree", interrupted_rmtree)
    with pytest.raises(KeyboardInterrupt):
        ckpt.rotate_checkpoints(tmp_path, keep=2)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["checkpoint-10", "checkpoint-15"]
    assert not (tmp_path / "checkpoint-5").exists()
    monkeypatch.undo()
    ckpt.remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-10", "checkpoint-15"]


# --------------------------------------------------------------------------- NaN and OOM, in-process


def small_config(model_dir: Path, train_file: Path, output_dir: Path, **overrides):
    from simcse_lab.train import TrainConfig

    values = dict(model_name_or_path=str(model_dir), train_file=str(train_file), output_dir=str(output_dir),
                  per_device_train_batch_size=4, max_steps=12, save_steps=5, eval_steps=0, logging_steps=1,
                  learning_rate=1e-3, seed=3, device="cpu", show_progress=False)
    return TrainConfig(**{**values, **overrides})


@pytest.fixture
def sentences_file(tmp_path, one_thread) -> Path:
    from conftest import WORDS

    path = tmp_path / "sentences.txt"
    path.write_text("\n".join(" ".join(WORDS[(i * 5 + j) % len(WORDS)] for j in range(4 + i % 5)) for i in range(64)) + "\n")
    return path


def inject(monkeypatch, calls: set[int], make) -> list[int]:
    """Replace the unsupervised loss so that its k-th call (k in calls) returns/raises make(loss, k)."""
    import simcse_lab.training.objectives as objectives

    original, counter = objectives.unsup_simcse_loss, [0]

    def loss(*args, **kwargs):
        counter[0] += 1
        value = original(*args, **kwargs)
        return make(value, counter[0]) if counter[0] in calls else value

    monkeypatch.setattr(objectives, "unsup_simcse_loss", loss)
    return counter


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny_model_dir, sentences_file, tmp_path, monkeypatch):
    from simcse_lab.train import train

    inject(monkeypatch, {8}, lambda loss, k: loss * float("nan"))
    output_dir = tmp_path / "out"
    with pytest.raises(SimCSELabError) as caught:
        train(small_config(tiny_model_dir, sentences_file, output_dir))
    message = str(caught.value)
    assert "NaN/inf by step 8" in message and "--on_nonfinite skip" in message and "learning rate" in message
    assert [p.name for p in ckpt.list_checkpoints(output_dir)] == ["checkpoint-5"]
    assert not (output_dir / "model.safetensors").exists()
    kept = weights(output_dir / "checkpoint-5" / "model.safetensors")
    assert all(torch.isfinite(t).all() for t in kept.values())
    _, plain = ckpt.load_training_state(output_dir / "checkpoint-5")
    assert plain["step"] == 5 and all(math.isfinite(r["loss"]) for r in plain["history"])


def test_nan_loss_skip_counts_skipped_batches(tiny_model_dir, sentences_file, tmp_path, monkeypatch):
    from simcse_lab.train import train

    counter = inject(monkeypatch, {3, 7, 11}, lambda loss, k: loss + float("inf") if k == 7 else loss * float("nan"))
    result = train(small_config(tiny_model_dir, sentences_file, tmp_path / "out", on_nonfinite="skip"))
    assert counter[0] == 12 and result.steps == 12
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["skipped_nonfinite"] == 3 and metrics["steps"] == 12
    final = weights(tmp_path / "out" / "model.safetensors")
    assert all(torch.isfinite(t).all() for t in final.values())
    logged = {r["step"]: r["loss"] for r in result.history if "loss" in r}
    assert all(math.isfinite(v) for v in logged.values())


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before:UserWarning")
def test_nan_skip_leaves_the_weights_untouched_on_that_step(tiny_model_dir, sentences_file, tmp_path, monkeypatch):
    """Independent check of 'skip': with every batch non-finite, the saved weights are the initial ones."""
    from simcse_lab.models.encoder import SimCSEEncoder
    from simcse_lab.train import train

    inject(monkeypatch, set(range(1, 100)), lambda loss, k: loss * float("nan"))
    train(small_config(tiny_model_dir, sentences_file, tmp_path / "out", on_nonfinite="skip", max_steps=3, save_steps=0,
                       pooler_type="avg"))
    initial = SimCSEEncoder.from_pretrained(tiny_model_dir, pooler="avg").backbone.state_dict()
    final = weights(tmp_path / "out" / "model.safetensors")
    compared = [k for k in final if k in initial]
    assert len(compared) >= 10 and all(torch.equal(final[k], initial[k]) for k in compared)


def test_out_of_memory_gives_a_helpful_message(tiny_model_dir, sentences_file, tmp_path, monkeypatch):
    from simcse_lab.train import train

    def raise_oom(loss, k):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    inject(monkeypatch, {2}, raise_oom)
    with pytest.raises(SimCSELabError) as caught:
        train(small_config(tiny_model_dir, sentences_file, tmp_path / "out"))
    message = str(caught.value)
    assert "ran out of memory at batch size 4, max_seq_length 32" in message
    assert "--per_device_train_batch_size" in message and "--max_seq_length" in message
