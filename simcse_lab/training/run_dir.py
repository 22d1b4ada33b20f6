"""A run's output directory: whether this run may use it, its lock, and where a resumed run continues from.

`claim_output_dir` is what `train` holds for the whole run. In order, before any model or data is loaded:
1. a path that is a file, or a location that cannot be written, is refused;
2. the directory is locked (`.simcse_lab.lock`: pid, host, start time), so a second run on it stops with one
   line that names the first; a lock left by a run that died is taken over, with a line that says so;
3. it is accepted or refused: empty (or only the trainer's own temporaries), a run to resume, or
   `--overwrite_output_dir`; nothing in it is touched before that;
4. only then are the trainer's temporaries of a killed run cleaned up (simcse_lab.training.checkpoint);
5. a resumed run's settings are compared with the ones its checkpoint recorded: a change that would alter
   the run (learning rate, batch size, pooler, seed, max_steps, ...) is refused, naming each setting, and
   one that cannot (logging, checkpoint frequency, device) is allowed;
6. a run that already finished (metrics.json is written last) is not trained again: resuming it is a no-op.
A write that fails during the run (disk full, read-only filesystem) becomes one line naming the path.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import socket
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import SimCSELabError, SimCSELabWarning, write_error
from . import checkpoint as ckpt
from .config import TrainConfig

try:
    import fcntl
except ImportError:  # Windows: no advisory locks here; runs are not locked there
    fcntl = None

LOCK_FILE = ".simcse_lab.lock"
METRICS_FILE = "metrics.json"  # written last: its presence means the run finished
HISTORY_FILE = "history.json"
BEST_DIR = "best_model"
# Settings a resumed run may change: they decide how the run is logged, saved or executed, not what it computes.
MAY_CHANGE_ON_RESUME = frozenset({"logging_steps", "save_steps", "save_total_limit", "output_dir", "resume_from_checkpoint",
                                  "overwrite_output_dir", "data_dir", "device", "torch_compile", "torch_compile_mode",
                                  "bert_forward", "on_nonfinite", "show_progress"})
WRITE_FIX = ("free some space or choose a writable --output_dir; the last complete checkpoint is kept, so "
             "--resume_from_checkpoint auto continues from it")


@dataclass
class RunDirectory:
    """The output directory as this run holds it."""

    path: Path
    config: TrainConfig
    resume: Path | None = None  # the checkpoint to continue from
    finished: dict | None = None  # metrics.json of a run that already finished (then there is nothing to do)
    recorded_best_step: int = -1  # the resumed checkpoint's best step (-1: no best model yet)
    lock: "OutputDirLock | None" = None
    overwrite: bool = False  # the directory held results and --overwrite_output_dir was given
    owner: bool = True  # this process cleans up and removes (rank 0 of a DDP run)

    def open_for_writing(self) -> None:
        """Called once the model has loaded: create the directory, lock it if it did not exist before, and with
        --overwrite_output_dir remove the earlier run's results (only the files the trainer writes)."""
        self.path.mkdir(parents=True, exist_ok=True)
        if self.lock is not None:
            self.lock.acquire()
        if self.overwrite and self.owner:
            for old in ckpt.list_checkpoints(self.path) + [self.path / BEST_DIR]:
                if old.is_dir():
                    ckpt.discard(old)
            for name in (METRICS_FILE, HISTORY_FILE):
                (self.path / name).unlink(missing_ok=True)


@contextmanager
def claim_output_dir(config: TrainConfig, is_main: bool = True):
    """Yield the RunDirectory of config.output_dir, locked for this run (module docstring); release it at the end.
    is_main: False on the other ranks of a DDP run, which check the directory but leave locking and cleanup to rank 0."""
    path = Path(config.output_dir)
    check_writable(path)
    lock = OutputDirLock(path) if is_main else None
    try:
        with warnings.catch_warnings():  # said below, once
            warnings.simplefilter("ignore")
            accept(config, path, None, clean=False)  # every refusal first, before even the lock file is written
        if lock is not None and path.is_dir():
            lock.acquire()
        run = accept(config, path, lock, clean=is_main)  # again under the lock: what this run acts on
        try:
            yield run
        except (OSError, RuntimeError) as error:
            translated = write_error(error, path, WRITE_FIX)
            if translated is None:
                raise
            raise translated from None
    finally:
        if lock is not None:
            lock.release()


def check_writable(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise SimCSELabError(f"output_dir {path} exists and is a file; choose another --output_dir")
    existing = next(p for p in [path, *path.absolute().parents] if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise SimCSELabError(f"output_dir {path} cannot be written ({existing} is read-only or not writable for this user); "
                             "choose another --output_dir")


def accept(config: TrainConfig, path: Path, lock, clean: bool) -> RunDirectory:
    """Accept or refuse the directory for this run (module docstring, steps 3-6); nothing is changed before it is
    accepted, and nothing at all without `clean` (the trainer's temporaries are cleaned up by rank 0 only)."""
    run = RunDirectory(path=path, config=config, lock=lock, owner=clean)
    if config.resume_from_checkpoint and path.is_dir() and (finished := read_finished(path)) is not None:
        refuse_changes(config, finished.get("recipe", {}), f"the finished run in {path} ({METRICS_FILE})")
        run.finished = finished
        if clean:
            ckpt.remove_stale_temporaries(path)
            if (path / BEST_DIR).is_dir():  # killed after metrics.json, before best_model/ was removed: its files are in place
                ckpt.discard(path / BEST_DIR)
        return run
    run.resume = ckpt.resolve_resume(config.resume_from_checkpoint, path)
    user_entries = [p for p in path.iterdir() if p.name != LOCK_FILE and not ckpt.is_temporary(p)] if path.is_dir() else []
    if run.resume is None and user_entries:
        if not config.overwrite_output_dir and config.resume_from_checkpoint == "auto":
            raise SimCSELabError(f"--resume_from_checkpoint auto found no complete checkpoint-<step> in {path} (the run "
                                 "stopped before its first save) and the directory is not empty; pass --overwrite_output_dir "
                                 "to start again there, or choose another --output_dir")
        if not config.overwrite_output_dir:
            raise SimCSELabError(f"output_dir {path} already exists and is not empty; pass --overwrite_output_dir to "
                                 "train into it anyway, --resume_from_checkpoint auto to continue, or choose another --output_dir")
        run.overwrite = True
    if run.resume is not None:
        plain = ckpt.read_state_json(run.resume)
        refuse_changes(config, plain.get("config", {}), f"checkpoint {run.resume}")
        run.recorded_best_step = int(plain.get("best_step", -1))
    if clean and path.is_dir():
        ckpt.remove_stale_temporaries(path)  # only now: the directory is this run's
        if run.resume is not None and run.recorded_best_step >= 0 and run.resume.resolve().parent == path.resolve() and not (path / BEST_DIR).is_dir():
            raise SimCSELabError(f"checkpoint {run.resume.name} records a best model at step {run.recorded_best_step}, but "
                                 f"{path / BEST_DIR} is missing, so the run could not end with its best model; put it back, "
                                 "or start again with --overwrite_output_dir")
    return run


def read_finished(path: Path) -> dict | None:
    """metrics.json of a finished run in path, or None."""
    try:
        metrics = json.loads((path / METRICS_FILE).read_text(encoding="utf8"))
    except (OSError, ValueError):
        return None
    return metrics if isinstance(metrics, dict) and isinstance(metrics.get("steps"), int) else None


def changed_settings(config: TrainConfig, recorded: dict) -> list[str]:
    """'name old -> new' for each setting that differs from the recorded recipe and would change the run. A setting
    the recipe does not record (added since) counts as its default; num_train_epochs only counts without max_steps."""
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    current = config.recipe()
    changes = []
    for name, value in current.items():
        if name in MAY_CHANGE_ON_RESUME or name not in defaults:
            continue
        before = recorded.get(name, defaults[name])
        if name == "num_train_epochs" and config.max_steps > 0 and recorded.get("max_steps", -1) > 0:
            continue
        if not same_value(before, value):
            changes.append(f"{name} {before!r} -> {value!r}")
    return changes


def same_value(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) and not isinstance(b, bool):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def refuse_changes(config: TrainConfig, recorded: dict, where: str) -> None:
    changes = changed_settings(config, recorded)
    if changes:
        allowed = ", ".join(sorted(MAY_CHANGE_ON_RESUME - {"show_progress"}))
        raise SimCSELabError(f"resuming would change settings that {where} was trained with: {'; '.join(changes)}. These "
                             "change what the run computes, so resume with the recorded values, or train in another "
                             f"--output_dir (on resume only these may change: {allowed})")


# ---------------------------------------------------------------------- the lock
class OutputDirLock:
    """An advisory lock on an output directory (flock on `.simcse_lab.lock`, which names its holder)."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.path = self.directory / LOCK_FILE
        self.fd: int | None = None

    def acquire(self) -> None:
        if fcntl is None or self.fd is not None:
            return
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = describe_holder(read_holder(fd))
                os.close(fd)
                raise SimCSELabError(f"output_dir {self.directory} is in use by another run ({holder}; lock file {self.path}); "
                                     "wait for it to finish, or choose another --output_dir") from None
            except OSError as error:  # a filesystem without locks (some network mounts)
                os.close(fd)
                warnings.warn(f"output_dir {self.directory} cannot be locked ({error.strerror}); make sure no other run uses it",
                              SimCSELabWarning, stacklevel=3)
                return
            try:  # the file we locked may have been removed by the holder that just released it: lock the new one
                if os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        previous = read_holder(fd)
        if previous:
            warnings.warn(f"output_dir {self.directory}: took over the lock left by {describe_holder(previous)}, which is no "
                          "longer running", SimCSELabWarning, stacklevel=3)
        mine = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S %z")}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, (json.dumps(mine) + "\n").encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def read_holder(fd: int) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    try:
        holder = json.loads(os.read(fd, 4096).decode("utf8", "replace") or "{}")
    except ValueError:
        return {"pid": "?", "host": "?", "started": "?"}  # cut short by a kill mid-write
    return holder if isinstance(holder, dict) else {}


def describe_holder(holder: dict) -> str:
    return f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started {holder.get('started', '?')}"


def publish_best_model(path: Path) -> bool:
    """Copy best_model/'s files into the output directory (each replaced in one rename; best_model/ stays whole until
    metrics.json is written, so a kill part-way copies again on resume). False when there is no best_model/."""
    best = path / BEST_DIR
    if not best.is_dir():
        return False
    ckpt.copy_files_into(best, path)
    return True


def finish_publishing(path: Path) -> None:
    """After metrics.json: best_model/'s files are in the output directory, so the directory itself goes."""
    if (path / BEST_DIR).is_dir():
        ckpt.discard(path / BEST_DIR)


__all__ = ["claim_output_dir", "RunDirectory", "OutputDirLock", "changed_settings", "MAY_CHANGE_ON_RESUME", "LOCK_FILE",
           "publish_best_model", "finish_publishing"]
