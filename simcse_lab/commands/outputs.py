"""Where a command writes its results, checked before the work starts (not after an hour of it)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import SimCSELabError

__all__ = ["check_output_file", "check_output_dir"]


def nearest_existing(path: Path) -> Path:
    return next(p for p in [path, *path.absolute().parents] if p.exists())


def check_writable_location(path: Path, flag: str) -> None:
    existing = nearest_existing(path)
    if existing != path and not existing.is_dir():
        raise SimCSELabError(f"{flag} {path}: {existing} is a file, so nothing can be written below it; choose another {flag}")
    if not os.access(existing, os.W_OK | (os.X_OK if existing.is_dir() else 0)):
        raise SimCSELabError(f"{flag} {path} cannot be written ({existing} is read-only or not writable for this user); "
                             f"choose another {flag}")


def check_output_file(path: str | os.PathLike, flag: str) -> Path:
    """A file path a command will write: not a directory, in a writable location."""
    path = Path(path)
    if path.is_dir():
        raise SimCSELabError(f"{flag} {path} is a directory; pass a file path, for example {path / 'results.json'}")
    check_writable_location(path, flag)
    return path


def check_output_dir(path: str | os.PathLike, flag: str) -> Path:
    """A directory a command will write into: not a file, in a writable location."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise SimCSELabError(f"{flag} {path} is a file; pass a directory (it is created if needed)")
    check_writable_location(path, flag)
    return path
