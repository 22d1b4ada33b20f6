"""The learning-rate schedule of the trainer and of the MLM pre-training: linear warm-up, then linear decay."""

from __future__ import annotations


def linear_schedule(step: float, warmup: float, total: float) -> float:
    """HF's get_linear_schedule_with_warmup factor: 0 -> 1 over warm-up, then 1 -> 0 at `total` (in steps, or in
    any unit: simcse_lab.pretrain passes shares of its schedule, with total 1)."""
    if step < warmup:
        return step / warmup
    return max(0.0, (total - step) / (total - warmup)) if total > warmup else 0.0
