"""Crash-safe checkpoints: every directory appears whole or not at all.

A checkpoint is written into a hidden temporary directory beside its final place, each file is
fsync'ed, and the directory is then renamed into place (rename is atomic on POSIX). A run killed
mid-write leaves only a `.tmp-*` directory, which resume ignores and the next save removes.

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
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from ..errors import SimCSELabError

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
STATE_FILE = "trainer_state.pt"
STATE_JSON = "trainer_state.json"


def fsync_tree(directory: Path) -> None:
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_directory(final: Path):
    """Yield a temporary directory; on success it replaces `final` in one rename."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.parent / f".tmp-{final.name}-{os.getpid()}"
    if temporary.exists():
        shutil.rmtree(temporary)
    temporary.mkdir()
    try:
        yield temporary
        fsync_tree(temporary)
        if final.exists():
            old = final.parent / f".old-{final.name}-{os.getpid()}"
            os.rename(final, old)
            os.rename(temporary, final)
            shutil.rmtree(old)
        else:
            os.rename(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    temporary = path.parent / f".tmp-{path.name}-{os.getpid()}"
    with open(temporary, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


OLD_PATTERN = re.compile(r"^\.old-(.+)-\d+$")


def remove_stale_temporaries(output_dir: Path) -> None:
    """Clean up after a killed run: drop half-written `.tmp-*`; an `.old-*` whose replacement never
    arrived (killed between atomic_directory's two renames) is renamed back, else dropped."""
    for path in Path(output_dir).glob(".tmp-*"):
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    for path in Path(output_dir).glob(".old-*"):
        match = OLD_PATTERN.match(path.name)
        final = path.parent / match.group(1) if match else None
        if final is not None and not final.exists():
            os.rename(path, final)
        else:
            shutil.rmtree(path, ignore_errors=True)


def list_checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoints in output_dir, oldest first."""
    found = []
    for path in Path(output_dir).glob("checkpoint-*"):
        match = CHECKPOINT_PATTERN.match(path.name)
        if match and (path / STATE_FILE).is_file() and (path / STATE_JSON).is_file():
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


def resolve_resume(resume_from_checkpoint: str | None, output_dir: Path) -> Path | None:
    """'auto' -> the newest complete checkpoint in output_dir (or None); a path -> that path."""
    if not resume_from_checkpoint:
        return None
    if resume_from_checkpoint == "auto":
        checkpoints = list_checkpoints(output_dir)
        return checkpoints[-1] if checkpoints else None
    path = Path(resume_from_checkpoint)
    if not (path / STATE_FILE).is_file():
        raise SimCSELabError(f"{path} is not a complete simcse_lab checkpoint (no {STATE_FILE}); "
                             "pass a checkpoint-<step> directory or --resume_from_checkpoint auto")
    return path


def rotate_checkpoints(output_dir: Path, keep: int) -> None:
    if keep <= 0:
        return
    for path in list_checkpoints(output_dir)[:-keep]:
        # rename first: a run killed mid-delete leaves a .tmp-* (ignored, then removed), never a partial checkpoint
        doomed = path.parent / f".tmp-delete-{path.name}-{os.getpid()}"
        os.rename(path, doomed)
        shutil.rmtree(doomed, ignore_errors=True)


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


def load_training_state(directory: Path, map_location="cpu") -> tuple[dict, dict]:
    try:
        tensors = torch.load(directory / STATE_FILE, map_location=map_location, weights_only=True)
        plain = json.loads((directory / STATE_JSON).read_text())
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as error:
        # weights_only=True refuses any pickled object that is not plain tensors/containers: say so, run nothing
        raise SimCSELabError(f"cannot load the training state in {directory} ({type(error).__name__}: {str(error).splitlines()[0][:160]}); "
                             "it is damaged or was not written by simcse_lab. Resume from another checkpoint-<step> "
                             "directory or start again without --resume_from_checkpoint") from None
    return tensors, plain
