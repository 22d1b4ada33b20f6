"""Crash-safe checkpoints: every directory appears whole or not at all, and cleanup touches only what the trainer made.

The on-disk protocol (this module is the only one that knows it):
- Everything is written first into a *temporary*: a hidden directory beside its final place
  (`.tmp-<name>-<pid>/`), created with a marker file (`.simcse_lab-temporary`, JSON: what it is) and holding
  the new content under its final name. The content is fsync'ed, then renamed into place (atomic on POSIX).
- A directory being replaced is first moved into an `.old-<name>-<pid>/` temporary, a directory being deleted
  into a `.tmp-delete-<name>-<pid>/` one, so a kill part-way leaves it whole and marked, never half-deleted.
- After a killed run, `remove_stale_temporaries` removes the temporaries (putting back an `.old-` directory
  whose replacement never arrived) and touches nothing else: an entry without the marker is the user's,
  whatever its name. It runs only once the output directory has been accepted for this run.
- A checkpoint counts as complete only when its files are whole (`checkpoint_problem`); resuming passes over
  a damaged newest one to the one before, and says so.

Training state (optimiser, scheduler, grad scaler, RNG states, data position) is saved with
torch.save and loaded with `weights_only=True`, so a checkpoint cannot run code when loaded.
Model weights are safetensors only.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import re
import shutil
import warnings
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from ..errors import SimCSELabError, SimCSELabWarning
from ..models.files import DENSE_DIR, SIMCSE_CONFIG, safetensors_problem

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
STATE_FILE = "trainer_state.pt"
STATE_JSON = "trainer_state.json"
MARKER = ".simcse_lab-temporary"  # inside every temporary directory the trainer makes
KINDS = ("tmp", "old", "tmp-delete")  # new content on its way in / a replaced directory / a directory being deleted
# what a checkpoint's state files must hold (the trainer writes more)
STATE_TENSOR_KEYS = ("optimizer", "scheduler", "scaler", "objective", "rng")
STATE_PLAIN_KEYS = ("step", "epoch", "batch_in_epoch", "best_score", "best_step", "skipped_nonfinite", "history", "rng", "config")


def fsync_tree(directory: Path) -> None:
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    fsync_directory(directory)


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------- temporaries
def make_temporary(parent: Path, kind: str, name: str) -> Path:
    """A new, marked temporary directory `.<kind>-<name>-<pid>` in parent (its content goes in a child named `name`)."""
    parent.mkdir(parents=True, exist_ok=True)
    holder = parent / f".{kind}-{name}-{os.getpid()}"
    if temporary_kind(holder) is not None:  # this pid's own leftover (pids are reused)
        shutil.rmtree(holder)
    suffix = 0
    while True:
        try:
            holder.mkdir()
            break
        except FileExistsError:  # an entry of that name that is not ours: leave it, pick another name
            suffix += 1
            holder = parent / f".{kind}-{name}-{os.getpid()}.{suffix}"
    (holder / MARKER).write_text(json.dumps({"kind": kind, "holds": name, "pid": os.getpid()}) + "\n")
    return holder


def temporary_kind(path: Path) -> tuple[str, str] | None:
    """(kind, name held) when path is a temporary this module made (it holds a valid marker), else None."""
    try:
        marker = json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("kind") not in KINDS or not isinstance(marker.get("holds"), str):
        return None
    return marker["kind"], marker["holds"]


def is_temporary(path: Path) -> bool:
    return path.is_dir() and temporary_kind(path) is not None


@contextmanager
def atomic_directory(final: Path):
    """Yield an empty directory to write into; on success it replaces `final` in one rename."""
    final = Path(final)
    holder = make_temporary(final.parent, "tmp", final.name)
    content = holder / final.name
    content.mkdir()
    try:
        yield content
        fsync_tree(content)
        if final.exists():
            old = make_temporary(final.parent, "old", final.name)
            os.rename(final, old / final.name)
            os.rename(content, final)
            shutil.rmtree(old)
        else:
            os.rename(content, final)
        fsync_directory(final.parent)
    finally:
        shutil.rmtree(holder, ignore_errors=True)  # the marker, and on failure the content


def discard(path: Path) -> None:
    """Delete a directory the trainer made: first moved whole into a temporary, so a kill mid-delete never leaves it partial."""
    path = Path(path)
    holder = make_temporary(path.parent, "tmp-delete", path.name)
    os.rename(path, holder / path.name)
    shutil.rmtree(holder, ignore_errors=True)


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    holder = make_temporary(path.parent, "tmp", path.name)
    try:
        with open(holder / path.name, "w", encoding="utf8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(holder / path.name, path)
    finally:
        shutil.rmtree(holder, ignore_errors=True)


@contextmanager
def files_into(target: Path):
    """Yield an empty directory; on success each file written there replaces its namesake under `target`, in one
    rename each (a kill part-way leaves every file whole: the old one or the new one)."""
    holder = make_temporary(Path(target), "tmp", "files")
    staged = holder / "files"
    staged.mkdir()
    try:
        yield staged
        place_files(staged, Path(target))
    finally:
        shutil.rmtree(holder, ignore_errors=True)


def copy_files_into(source: Path, target: Path) -> None:
    """Every file of `source` to the same place under `target` (as files_into), leaving `source` whole."""
    with files_into(target) as staged:
        for path in sorted(Path(source).rglob("*")):
            if path.is_file():
                destination = staged / path.relative_to(source)
                destination.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(path, destination)  # files are never rewritten in place, so a hard link is a copy
                except OSError:
                    shutil.copy2(path, destination)


def place_files(staged: Path, target: Path) -> None:
    files = sorted(p for p in staged.rglob("*") if p.is_file())
    for path in files:
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
    for path in files:
        destination = target / path.relative_to(staged)
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, destination)
    fsync_directory(target)


def remove_stale_temporaries(output_dir: Path) -> list[str]:
    """Clean up after a killed run: remove the temporaries this module made (they hold its marker); an `.old-`
    one whose replacement never arrived (killed between atomic_directory's two renames) is put back first.
    Entries without the marker are never touched. Returns what was put back."""
    restored = []
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return restored
    for path in sorted(output_dir.iterdir()):
        found = temporary_kind(path) if path.is_dir() else None
        if found is None:
            continue
        kind, name = found
        if kind == "old" and (path / name).is_dir() and not (output_dir / name).exists():
            os.rename(path / name, output_dir / name)
            restored.append(name)
        shutil.rmtree(path, ignore_errors=True)
    return restored


def trainer_entries(output_dir: Path) -> list[Path]:
    """The entries of output_dir that are the trainer's temporaries (what an emptiness check should not count)."""
    return [path for path in Path(output_dir).iterdir() if is_temporary(path)] if Path(output_dir).is_dir() else []


def list_checkpoints(output_dir: Path) -> list[Path]:
    """Checkpoints in output_dir with both state files, oldest first (whether they are whole: checkpoint_problem)."""
    found = []
    for path in Path(output_dir).glob("checkpoint-*"):
        match = CHECKPOINT_PATTERN.match(path.name)
        if match and (path / STATE_FILE).is_file() and (path / STATE_JSON).is_file():
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


def checkpoint_problem(path: Path) -> str | None:
    """What makes a checkpoint unusable for resuming (a missing or truncated file, state files without their
    keys), or None when it is whole. Reads headers and the small JSON files only."""
    path = Path(path)
    for name in ("config.json", SIMCSE_CONFIG, STATE_FILE, STATE_JSON):
        if not (path / name).is_file():
            return f"{name} is missing"
    if (problem := safetensors_problem(path / "model.safetensors")) is not None:
        return problem
    try:
        saved = json.loads((path / SIMCSE_CONFIG).read_text(encoding="utf8"))
        plain = json.loads((path / STATE_JSON).read_text(encoding="utf8"))
    except (OSError, ValueError):
        return f"{SIMCSE_CONFIG} or {STATE_JSON} is not valid JSON"
    if not isinstance(saved, dict) or not isinstance(plain, dict):
        return f"{SIMCSE_CONFIG} or {STATE_JSON} does not hold a JSON object"
    if saved.get("has_mlp") and (problem := safetensors_problem(path / DENSE_DIR / "model.safetensors")) is not None:
        return f"the MLP head {DENSE_DIR}/{problem}"
    if missing := [key for key in STATE_PLAIN_KEYS if key not in plain]:
        return f"{STATE_JSON} lacks {', '.join(missing)}"
    if not zipfile.is_zipfile(path / STATE_FILE):  # torch.save writes a zip archive; a truncated one has no directory
        return f"{STATE_FILE} is truncated or not written by torch.save"
    return None


def resolve_resume(resume_from_checkpoint: str | None, output_dir: Path) -> Path | None:
    """'auto' -> the newest whole checkpoint in output_dir (or None), passing over damaged newer ones with a warning;
    a path -> that checkpoint, which must be whole."""
    if not resume_from_checkpoint:
        return None
    if resume_from_checkpoint == "auto":
        passed_over = []
        for path in reversed(list_checkpoints(output_dir)):
            problem = checkpoint_problem(path)
            if problem is None:
                if passed_over:
                    warnings.warn(f"{'; '.join(passed_over)}: resuming from {path.name}, the newest complete checkpoint",
                                  SimCSELabWarning, stacklevel=2)
                return path
            passed_over.append(f"{path.name} is damaged ({problem})")
        if passed_over:
            raise SimCSELabError(f"no checkpoint in {output_dir} can be resumed from: {'; '.join(passed_over)}. Pass "
                                 "--overwrite_output_dir (without --resume_from_checkpoint) to start again there")
        return None
    path = Path(resume_from_checkpoint)
    if not (path / STATE_FILE).is_file():
        raise SimCSELabError(f"{path} is not a complete simcse_lab checkpoint (no {STATE_FILE}); "
                             "pass a checkpoint-<step> directory or --resume_from_checkpoint auto")
    if (problem := checkpoint_problem(path)) is not None:
        raise SimCSELabError(f"checkpoint {path} is damaged ({problem}); resume from an earlier checkpoint-<step> "
                             "or with --resume_from_checkpoint auto, which picks the newest complete one")
    return path


def rotate_checkpoints(output_dir: Path, keep: int) -> None:
    if keep <= 0:
        return
    for path in list_checkpoints(output_dir)[:-keep]:
        discard(path)


# ---------------------------------------------------------------------- RNG state
def capture_rng_state() -> tuple[dict, dict]:
    """(tensor states for torch.save, JSON-able states for python/numpy)."""
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors["cuda"] = torch.cuda.get_rng_state_all()
    version, internal, gauss = random.getstate()
    kind, keys, position, has_gauss, cached = np.random.get_state()
    plain = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, keys.tolist(), int(position), int(has_gauss), float(cached)],
    }
    return tensors, plain


def restore_rng_state(tensors: dict, plain: dict) -> None:
    torch.set_rng_state(tensors["torch"])
    if "cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(tensors["cuda"])
    version, internal, gauss = plain["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached = plain["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), position, has_gauss, cached))


def save_training_state(directory: Path, tensors: dict, plain: dict) -> None:
    torch.save(tensors, directory / STATE_FILE)
    (directory / STATE_JSON).write_text(json.dumps(plain, indent=1) + "\n")


def read_state_json(directory: Path) -> dict:
    """The plain (JSON) half of a checkpoint's training state: cheap, read before any model loads."""
    try:
        plain = json.loads((Path(directory) / STATE_JSON).read_text(encoding="utf8"))
    except (OSError, ValueError):
        plain = None
    if not isinstance(plain, dict):
        raise SimCSELabError(f"cannot load the training state in {directory}: {STATE_JSON} is missing or not valid JSON; it is "
                             "damaged or was not written by simcse_lab. Resume from another checkpoint-<step> directory, or "
                             "start again without --resume_from_checkpoint")
    return plain


def load_training_state(directory: Path, map_location="cpu") -> tuple[dict, dict]:
    """The tensor and plain state of a checkpoint; anything else (damaged, foreign, a pickle that would run code)
    is one error in simcse_lab's words."""
    directory = Path(directory)
    again = ("Resume from another checkpoint-<step> directory, or start again without --resume_from_checkpoint")
    try:
        tensors = torch.load(directory / STATE_FILE, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        # weights_only=True refuses any pickled object that is not plain tensors/containers: say so, run nothing
        raise SimCSELabError(f"cannot load the training state in {directory}: {STATE_FILE} holds pickled objects other than "
                             "tensors and plain containers, which could run code when loaded, so simcse_lab refuses it; it was "
                             f"not written by simcse_lab. {again}") from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or "truncated, or not written by torch.save"
        raise SimCSELabError(f"cannot load the training state in {directory}: {STATE_FILE} is damaged ({reason}); it was "
                             f"not written by simcse_lab or was cut short. {again}") from None
    plain = read_state_json(directory)
    missing = [f"{STATE_FILE}: {key}" for key in STATE_TENSOR_KEYS if not isinstance(tensors, dict) or key not in tensors]
    missing += [f"{STATE_JSON}: {key}" for key in STATE_PLAIN_KEYS if not isinstance(plain, dict) or key not in plain]
    if missing:
        raise SimCSELabError(f"cannot load the training state in {directory}: it lacks {', '.join(missing)}; it is damaged "
                             f"or was not written by this simcse_lab. {again}")
    return tensors, plain
