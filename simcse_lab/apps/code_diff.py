"""A library function shown as a diff from another (notebook 05: each follow-up of SimCSE as its diff)."""

from __future__ import annotations

import difflib
import inspect
from typing import Callable


def source_diff(old: Callable, new: Callable, context: int = 3) -> str:
    """Markdown: a ```diff block from `old`'s source to `new`'s (inspect.getsource), with `context` lines around
    each change; the header names both functions by module and name."""
    def named(function: Callable) -> str:
        return f"{function.__module__}.{function.__qualname__}"

    lines = difflib.unified_diff(inspect.getsource(old).splitlines(), inspect.getsource(new).splitlines(), named(old), named(new),
                                 n=context, lineterm="")
    return "```diff\n" + "\n".join(lines) + "\n```"


def source_block(function: Callable) -> str:
    """Markdown: a ```python block with `function`'s source."""
    return "```python\n" + inspect.getsource(function).rstrip() + "\n```"
