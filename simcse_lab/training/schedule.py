"""The learning-rate schedules of the trainer and of the MLM pre-training: HF's, by the same names."""

from __future__ import annotations

import math

SCHEDULES = ("linear", "constant", "constant_with_warmup", "cosine")  # TrainConfig.lr_scheduler_type


def linear_schedule(step: float, warmup: float, total: float) -> float:
    """HF's get_linear_schedule_with_warmup factor: 0 -> 1 over warm-up, then 1 -> 0 at `total` (in steps, or in
    any unit: simcse_lab.pretrain passes shares of its schedule, with total 1)."""
    if step < warmup:
        return step / warmup
    return max(0.0, (total - step) / (total - warmup)) if total > warmup else 0.0


def schedule_factor(kind: str, step: float, warmup: float, total: float) -> float:
    """The learning-rate factor of HF's schedule `kind` (SCHEDULES) at `step`: constant is 1 throughout (HF's
    constant schedule has no warm-up), constant_with_warmup 0 -> 1 then 1, cosine a half cosine 1 -> 0 after
    the warm-up (HF's num_cycles=0.5)."""
    if kind == "linear":
        return linear_schedule(step, warmup, total)
    if kind == "constant":
        return 1.0
    if step < warmup:
        return step / warmup
    if kind == "constant_with_warmup":
        return 1.0
    if kind == "cosine":
        progress = (step - warmup) / max(1.0, total - warmup)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
    raise ValueError(f"unknown schedule {kind!r}; valid schedules are: {', '.join(SCHEDULES)}")
