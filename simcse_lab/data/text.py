"""Reading the files a user hands over: strict UTF-8, and one error that says where a file goes wrong.

Every text file simcse_lab reads (training files, STS sets, NLI pairs, recipes, model configs) is decoded
strictly: a byte that is not UTF-8 is an error naming the file, the line and the byte, never a silent
U+FFFD in the training data. A leading byte-order mark (what some editors write) is dropped.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from ..errors import SimCSELabError

__all__ = ["read_text", "read_lines", "text_lines", "read_json", "read_csv_rows", "decode_utf8"]


def decode_utf8(data: bytes, path: str | os.PathLike) -> str:
    """data as UTF-8 text (a leading BOM dropped), or an error naming the file, line and offending byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise SimCSELabError(
            f"{path}, line {line}, byte {column}: 0x{data[error.start]:02x} is not UTF-8 ({error.reason}); save the file as "
            "UTF-8 (for example: iconv -f latin1 -t utf-8 FILE > FILE.utf8)") from None


def read_text(path: str | os.PathLike, what: str = "file") -> str:
    """The whole file as text, decoded strictly (decode_utf8); a file that cannot be read is one error naming it."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise SimCSELabError(f"cannot read {what} {path} ({error.strerror or type(error).__name__})") from None
    return decode_utf8(data, path)


def text_lines(text: str) -> list[str]:
    """The lines of `text` as a file opened in text mode gives them: split at \\n, \\r\\n and \\r only, never at the
    other characters str.splitlines() splits at (\\x1c-\\x1e, \\x85, \\u2028, ...), which can sit inside a sentence."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def read_lines(path: str | os.PathLike, what: str = "file") -> list[str]:
    """read_text, as lines (text_lines)."""
    return text_lines(read_text(path, what))


def read_json(path: str | os.PathLike, what: str = "JSON file", fix: str = "") -> dict:
    """A file holding one JSON object, or one error naming the file and what is wrong (the fix appended)."""
    text = read_text(path, what)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise SimCSELabError(f"{what} {path} is not valid JSON ({error.msg} at line {error.lineno}){fix}") from None
    if not isinstance(value, dict):
        raise SimCSELabError(f"{what} {path} must hold one JSON object, not a {type(value).__name__}{fix}")
    return value


def read_csv_rows(path: str | os.PathLike, delimiter: str = ",", what: str = "CSV file") -> list[list[str]]:
    """Every row of a CSV file, decoded strictly; a field over the csv module's size limit (usually a quote that is
    never closed, swallowing the rest of the file) is one error naming the line."""
    reader = csv.reader(io.StringIO(read_text(path, what), newline=""), delimiter=delimiter)
    try:
        return list(reader)
    except csv.Error as error:
        raise SimCSELabError(f"{path}, line {reader.line_num}: {error}; a quote (\") that is never closed makes the rest of "
                             "the file one field: close or remove it") from None
