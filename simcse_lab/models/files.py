"""The files of a model directory, checked before anything loads them.

A local directory is read by several loaders (transformers for the backbone and tokenizer, simcse_lab for
`simcse_config.json`, `2_Dense/` and `postprocess/`); each fails in its own words, often with a traceback
deep inside, and some not at all (a directory without tokenizer files loads a tokenizer of five special
tokens). `check_model_directory` reads the small files first and checks the weights' structure, so a damaged
or incomplete directory is one error that names the file. The same checks decide whether a checkpoint is
complete (`simcse_lab.training.checkpoint`).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path, PurePosixPath

from ..data.text import read_json
from ..errors import SimCSELabError

__all__ = ["SIMCSE_CONFIG", "DENSE_DIR", "POSTPROCESS_DIR", "safetensors_problem", "check_model_directory",
           "read_model_json", "inside_directory", "check_input_dim"]

SIMCSE_CONFIG = "simcse_config.json"
DENSE_DIR = "2_Dense"
POSTPROCESS_DIR = "postprocess"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
HEADER_LIMIT = 100_000_000  # safetensors' own limit on the JSON header


def safetensors_problem(path: Path) -> str | None:
    """What is wrong with a .safetensors file's structure (missing, truncated, not safetensors), or None.

    Reads only the header: 8 bytes of little-endian length, a JSON table of tensors with their byte offsets;
    the file must be exactly as long as the largest offset says."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                return f"{path.name} is truncated ({size} bytes)"
            (length,) = struct.unpack("<Q", prefix)
            if length > min(HEADER_LIMIT, size - 8):
                return f"{path.name} is truncated or not a safetensors file (its header claims {length} bytes, the file has {size})"
            header = json.loads(handle.read(length))
    except FileNotFoundError:
        return f"{path.name} is missing"
    except OSError as error:
        return f"{path.name} cannot be read ({error.strerror})"
    except (UnicodeDecodeError, json.JSONDecodeError):
        return f"{path.name} is not a safetensors file (its header is not JSON)"
    if not isinstance(header, dict):
        return f"{path.name} is not a safetensors file"
    ends = [entry["data_offsets"][1] for name, entry in header.items()
            if name != "__metadata__" and isinstance(entry, dict) and isinstance(entry.get("data_offsets"), list)
            and len(entry["data_offsets"]) == 2 and isinstance(entry["data_offsets"][1], int)]
    expected = 8 + length + max(ends, default=0)
    if size < expected:
        return f"{path.name} is truncated ({size} of {expected} bytes)"
    if size > expected:
        return f"{path.name} is damaged ({size - expected} bytes more than its tensors take)"
    return None


def read_model_json(path: Path, what: str) -> dict:
    """A JSON file of a model directory, or one error naming it (and that the directory is damaged)."""
    return read_json(path, what, fix="; the model directory is damaged: save it again, or copy the file from where it came from")


def inside_directory(directory: Path, name, what: str) -> Path:
    """`directory / name` for a relative name that stays inside the directory; a path a model directory names
    must not reach outside it (an absolute path or `..` would let a downloaded model read any file)."""
    relative = PurePosixPath(str(name).replace("\\", "/"))
    if not str(name) or relative.is_absolute() or ".." in relative.parts or ":" in relative.parts[0]:
        raise SimCSELabError(f"{what} names the path {str(name)!r}, outside the model directory {directory}; "
                             "a model directory may only name files inside it, so it was refused")
    return Path(directory) / relative


def check_input_dim(kind: str, fitted: int, input_dim: int | None, path) -> None:
    """A post-processing fitted on D-dimensional embeddings must sit on an encoder of hidden size D."""
    if input_dim is not None and fitted != input_dim:
        raise SimCSELabError(f"the {kind} in {path} was fitted on {fitted}-dimensional embeddings, but this encoder's are "
                             f"{input_dim}-dimensional: it belongs to another model. Fit it again on this one")


def check_model_directory(directory: Path) -> dict | None:
    """Check a local model directory's files before they load; return its simcse_config.json (None if absent).

    config.json must be JSON; the weights, when stored as one safetensors file, must be whole; a simcse_lab
    directory's simcse_config.json must name a pooler and, when it says there is an MLP head, hold it whole in
    2_Dense/; postprocess/config.json must be JSON. Raises SimCSELabError naming the first problem."""
    needs = "a model directory needs config.json, the weights (model.safetensors) and the tokenizer files"
    if not (directory / "config.json").is_file():
        raise SimCSELabError(f"model directory {directory} has no config.json; {needs}: pass a directory written by save_pretrained")
    read_model_json(directory / "config.json", "model config")
    if not any((directory / name).is_file() for name in WEIGHT_FILES):
        raise SimCSELabError(f"model directory {directory} holds no weights; {needs}: save the model again")
    if (directory / "model.safetensors").is_file() and (problem := safetensors_problem(directory / "model.safetensors")):
        raise SimCSELabError(f"model directory {directory}: {problem}; the weights are damaged (an interrupted copy?): "
                             "copy or save the model again")
    saved = None
    if (directory / SIMCSE_CONFIG).exists():
        saved = read_model_json(directory / SIMCSE_CONFIG, "simcse_lab config")
        if not isinstance(saved.get("pooler"), str):
            raise SimCSELabError(f"{directory / SIMCSE_CONFIG} names no pooler (a \"pooler\" string); the model directory is "
                                 "damaged: save it again, or pass pooler=... (--pooler)")
        if saved.get("has_mlp"):
            dense = directory / DENSE_DIR / "model.safetensors"
            if (problem := safetensors_problem(dense)) is not None:
                raise SimCSELabError(f"{directory / SIMCSE_CONFIG} says the model has an MLP head, but {DENSE_DIR}/{problem}; "
                                     "without it the head would start from random weights. Save the model again")
    if (directory / POSTPROCESS_DIR / "config.json").exists():
        read_model_json(directory / POSTPROCESS_DIR / "config.json", "post-processing config")
    return saved
