"""The environment a result was measured in: what to compare before comparing two numbers.

Library versions (python, torch, transformers, tokenizers, numpy, scipy, scikit-learn), the CUDA and cuDNN
versions torch was built with, the device the run used, the CPU model (/proc/cpuinfo), the thread count,
simcse_lab's version and, in a git checkout, its commit, read from the checkout's .git files (the library starts
no processes; whether the work tree has changes is not recorded, so record results from a clean checkout).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from importlib import metadata
from pathlib import Path

import torch

PACKAGES = ("torch", "transformers", "tokenizers", "numpy", "scipy", "scikit-learn", "safetensors")


def environment_fingerprint(device: str | torch.device = "cpu") -> dict:
    """What `reproduce` records with every seed; `device` is the one the run trained on."""
    device = torch.device(device)
    fingerprint = {"python": platform.python_version(), "platform": platform.platform()}
    fingerprint.update({name: package_version(name) for name in PACKAGES})
    fingerprint.update({
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else device.type,
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "simcse_lab": __import__("simcse_lab").__version__,
        "git_commit": git_commit(Path(__file__).resolve().parent.parent.parent),
    })
    fingerprint["id"] = fingerprint_id(fingerprint)
    return fingerprint


def fingerprint_id(fingerprint: dict) -> str:
    """A short hash of everything but the thread count: two seeds with the same id ran in the same setting."""
    stable = {k: v for k, v in fingerprint.items() if k not in ("id", "torch_threads")}
    return hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()[:12]


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name (Linux), else what platform knows."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit(source: Path) -> str | None:
    """The commit checked out at `source` (HEAD, resolved through its ref, a worktree's common directory and
    packed-refs); None when it is not a git checkout (an installed wheel) or the files cannot be read."""
    git = source / ".git"
    try:
        if git.is_file():  # a worktree or submodule: "gitdir: <path>"
            text = git.read_text(encoding="utf8").strip()
            git = (source / text.removeprefix("gitdir:").strip()).resolve() if text.startswith("gitdir:") else git
        if not git.is_dir():
            return None
        head = (git / "HEAD").read_text(encoding="utf8").strip()
        if not head.startswith("ref:"):
            return head or None  # a detached HEAD holds the sha itself
        ref = head.removeprefix("ref:").strip()
        common = (git / (git / "commondir").read_text(encoding="utf8").strip()).resolve() if (git / "commondir").is_file() else git
        for base in (git, common):
            if (base / ref).is_file():
                return (base / ref).read_text(encoding="utf8").strip()
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text(encoding="utf8").splitlines():
                sha, _, name = line.partition(" ")
                if name == ref:
                    return sha
    except OSError:
        return None
    return None
