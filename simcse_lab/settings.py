"""Config dataclasses, checked: every field's type and range in one place, and the CLI built from them.

A config (`TrainConfig`, `PretrainConfig`) is a dataclass whose fields carry a one-line comment; its
`__post_init__` calls `check_fields(self, BOUNDS)`, so a recipe file, a CLI flag and a Python call
fail alike, with one line, before any model or data is loaded. `add_dataclass_arguments` turns the
same fields into `--flags` whose help is that comment: nothing is declared twice.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import math
import re
from dataclasses import dataclass

from .errors import SimCSELabError

__all__ = ["Bounds", "check_fields", "field_comments", "add_dataclass_arguments", "field_types", "parse_bool"]


@dataclass(frozen=True)
class Bounds:
    """The values a numeric setting may take: [low, high] (either end open or absent), plus `also`."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is not allowed
    high_open: bool = False
    also: tuple = ()  # values allowed outside the range (e.g. -1 = "not set")
    why: str = ""  # said after the rule when it is broken

    def admits(self, value: float) -> bool:
        if value in self.also:
            return True
        if not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or not (value > self.high or (self.high_open and value == self.high))

    def describe(self) -> str:
        def number(v) -> str:
            return str(v) if isinstance(v, int) else f"{v:g}"

        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {number(self.low)}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {number(self.high)}")
        text = " and ".join(parts) or "finite"
        return text + "".join(f", or {number(v)}" for v in self.also)


def field_types(cls) -> dict[str, set[str]]:
    """Each field's annotation as a set of type names ("int | None" -> {"int", "None"})."""
    return {f.name: {part.strip() for part in str(f.type).split("|")} for f in dataclasses.fields(cls)}


def check_fields(config, bounds: dict[str, Bounds], kind: str = "setting") -> None:
    """Check every field's type against its annotation and every bounded one against its range; ints given
    where a float is expected become floats. Raises SimCSELabError naming the field, the value and the rule."""
    for name, allowed in field_types(type(config)).items():
        value = getattr(config, name)
        if value is None:
            if "None" not in allowed:
                raise SimCSELabError(f"{kind} {name} must not be null (None); leave it out to use its default")
            continue
        if isinstance(value, bool):
            ok = "bool" in allowed
        elif isinstance(value, int):
            ok = bool({"int", "float"} & allowed)
            if ok and "int" not in allowed:
                object.__setattr__(config, name, float(value))
        elif isinstance(value, float):
            ok = "float" in allowed or ("int" in allowed and value.is_integer() and math.isfinite(value))
            if ok and "float" not in allowed:
                object.__setattr__(config, name, int(value))
        else:
            ok = type(value).__name__ in allowed
        if not ok:
            wanted = " or ".join(sorted(t for t in allowed if t != "None"))
            raise SimCSELabError(f"{kind} {name} must be a {wanted}, got {value!r} ({type(value).__name__})")
        rule = bounds.get(name)
        if rule is not None and not isinstance(value, bool) and not rule.admits(getattr(config, name)):
            why = f" ({rule.why})" if rule.why else ""
            raise SimCSELabError(f"{kind} {name} must be {rule.describe()}{why}, got {value!r}")


def field_comments(cls) -> dict[str, str]:
    """The one-line comment after each dataclass field, reused as --help text."""
    comments = {}
    for line in inspect.getsource(cls).splitlines():
        match = re.match(r"\s+(\w+): [^=]+=.*?#\s*(.+)$", line)
        if match:
            comments[match.group(1)] = match.group(2).strip()
    return comments


PARSERS = {"int": int, "float": float, "str": str}
TRUE_WORDS, FALSE_WORDS = ("true", "yes", "t", "y", "1"), ("false", "no", "f", "n", "0")  # HF's string_to_bool


def parse_bool(text: str) -> bool:
    """A boolean flag's value as Hugging Face's HfArgumentParser reads it: true/false, yes/no, t/f, y/n, 1/0."""
    if isinstance(text, bool):
        return text
    if text.lower() in TRUE_WORDS:
        return True
    if text.lower() in FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls, skip: tuple[str, ...] = ()) -> None:
    """One --flag per dataclass field: `--name VALUE` typed by the annotation. A bool is `--name` (on), or
    `--name true|false` as HF's HfArgumentParser spells it (`--fp16 False`); one that defaults to True, or an
    optional bool (None = automatic), also has `--no_name`."""
    comments, types = field_comments(cls), field_types(cls)
    for item in dataclasses.fields(cls):
        if item.name in skip:
            continue
        flag, default, help_text, allowed = f"--{item.name}", item.default, comments.get(item.name, ""), types[item.name]
        if "bool" in allowed:
            parser.add_argument(flag, nargs="?", const=True, default=default, type=parse_bool, metavar="true|false",
                                help=help_text if default is None or not default else f"{help_text} (default: on)")
            if default is None or default:
                parser.add_argument(f"--no_{item.name}", dest=item.name, action="store_false", help=f"turn {item.name} off")
            continue
        kind = next((PARSERS[t] for t in ("int", "float", "str") if t in allowed), str)
        parser.add_argument(flag, type=kind, default=default, help=f"{help_text} (default: {default})")
