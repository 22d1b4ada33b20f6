"""User-facing errors and warnings.

`SimCSELabError` carries one message that names the problem and the fix. The CLI prints it on one line
(no traceback); library callers can catch it. It subclasses ValueError so that code expecting the
usual "bad argument" exception keeps working. `write_error` turns a failed write (full disk, read-only
filesystem) into such an error naming the path; `one_line_warning` prints the project's warnings as one line.
"""

import errno
import os
import warnings

DEFAULT_FORMATWARNING = warnings.formatwarning
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class SimCSELabError(ValueError):
    """A problem the user can fix; the message says how."""


def unknown_choice(kind: str, value, valid) -> SimCSELabError:
    """The error for a value outside a closed set: it lists the valid ones."""
    valid = list(valid)
    return SimCSELabError(f"unknown {kind} {value!r}; valid {kind}s are: {', '.join(map(str, valid))}")


class SimCSELabTypeError(SimCSELabError, TypeError):
    """A value of the wrong type (for example a non-string sentence)."""


class SimCSELabWarning(UserWarning):
    """Something the user should know that does not stop the work (a skipped row, a checkpoint passed over)."""


def one_line_warning(message, category, filename, lineno, line=None) -> str:
    """`warnings.formatwarning` for the CLI: simcse_lab's own warnings as one `warning: ...` line, without the
    source line Python prints by default; any other warning formatted as Python would."""
    if issubclass(category, SimCSELabWarning) or os.path.abspath(str(filename)).startswith(PACKAGE_DIR):
        return f"warning: {message}\n"
    return DEFAULT_FORMATWARNING(message, category, filename, lineno, line)


WRITE_ERRNOS = {"ENOSPC": "the disk is full", "EDQUOT": "the disk quota is exceeded", "EROFS": "the filesystem is read-only",
                "EACCES": "permission denied", "EPERM": "permission denied", "EFBIG": "the file is too large for the filesystem"}


def write_error(error: BaseException, where, fix: str = "free some space or choose a writable location") -> SimCSELabError | None:
    """The one-line error for a failed write under `where` (disk full, read-only, no permission), or None when
    `error` is not one. torch.save reports a full disk as a RuntimeError ("unexpected pos", "file write failed")."""
    if isinstance(error, OSError) and error.errno is not None:
        reason = WRITE_ERRNOS.get(errno.errorcode.get(error.errno, ""))
        path = error.filename or where
    elif isinstance(error, RuntimeError) and any(m in str(error) for m in ("unexpected pos", "file write failed", "PytorchStreamWriter")):
        reason, path = "the write failed part-way (a full disk, most likely)", where
    else:
        return None
    if reason is None:
        return None
    return SimCSELabError(f"cannot write {path}: {reason}; {fix}")
