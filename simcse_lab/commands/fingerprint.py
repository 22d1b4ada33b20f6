"""The environment a result was measured in: what to compare before comparing two numbers.

Library versions (python, torch, transformers, tokenizers, numpy, scipy, scikit-learn), the CUDA and cuDNN
versions torch was built with, the device the run used, the CPU model (/proc/cpuinfo), the thread count,
simcse_lab's version and, in a git checkout, its commit (with "+dirty" when the work tree has changes).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
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
    """The commit of the checkout simcse_lab is imported from ("<sha>+dirty" with local changes); None when it
    is not a git checkout (an installed wheel) or git is missing."""
    if not (source / ".git").exists():
        return None
    try:
        sha = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return None
        status = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return sha.stdout.strip() + ("+dirty" if status.stdout.strip() else "")
