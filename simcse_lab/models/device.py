"""Where a model runs, and in which precision: the one device resolver of the library."""

from __future__ import annotations

import torch

from ..errors import SimCSELabError

__all__ = ["pick_device", "autocast_for", "training_autocast", "bf16_supported"]


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """'auto'/None -> cuda if available, else mps, else cpu; anything else must name a device this torch has."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise SimCSELabError(f"unknown device {str(device)!r}; use auto, cpu, cuda, cuda:<index> or mps") from None
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise SimCSELabError(f"device {str(device)!r} asked for, but this torch build sees no CUDA GPU "
                                 f"(torch {torch.__version__}); use --device cpu or auto, or install a CUDA build of torch")
        if chosen.index is not None and chosen.index >= torch.cuda.device_count():
            raise SimCSELabError(f"device {str(device)!r} asked for, but only {torch.cuda.device_count()} CUDA GPU(s) are visible")
    elif chosen.type == "mps" and not mps_available():
        raise SimCSELabError(f"device {str(device)!r} asked for, but MPS (Apple GPU) is not available here; use cpu or auto")
    elif chosen.type not in ("cpu", "cuda", "mps", "meta"):
        raise SimCSELabError(f"device {str(device)!r} is not supported; use auto, cpu, cuda, cuda:<index> or mps")
    return chosen


def mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def autocast_for(device: torch.device):
    """bf16 autocast on CUDA for inference; a no-op elsewhere (CPU results stay fp32-exact)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)


def training_autocast(device: torch.device, bf16: bool = False, fp16: bool = False):
    """A factory of the autocast context a training step runs in: bf16, fp16 (CUDA only) or none."""
    if bf16:
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    if fp16:
        if device.type != "cuda":
            raise SimCSELabError("fp16 needs a CUDA GPU; on CPU use --bf16")
        return lambda: torch.autocast("cuda", dtype=torch.float16)
    return lambda: torch.autocast(device.type, enabled=False)


def bf16_supported(device: torch.device) -> bool:
    """Native bf16: CUDA with bf16 support, or a CPU whose oneDNN has bf16 kernels (AVX512-BF16 / AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False
