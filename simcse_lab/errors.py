"""User-facing errors.

`SimCSELabError` carries one message that names the problem and the fix. The CLI prints it on one line
(no traceback); library callers can catch it. It subclasses ValueError so that code expecting the
usual "bad argument" exception keeps working.
"""


class SimCSELabError(ValueError):
    """A problem the user can fix; the message says how."""


def unknown_choice(kind: str, value, valid) -> SimCSELabError:
    """The error for a value outside a closed set: it lists the valid ones."""
    valid = list(valid)
    return SimCSELabError(f"unknown {kind} {value!r}; valid {kind}s are: {', '.join(map(str, valid))}")


class SimCSELabTypeError(SimCSELabError, TypeError):
    """A value of the wrong type (for example a non-string sentence)."""
