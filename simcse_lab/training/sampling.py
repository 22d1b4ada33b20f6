"""Which rows each optimiser step trains on: an epoch's shuffled order cut into global batches, grouped for
gradient accumulation, with or without the last incomplete batch.

A global batch is `per_device_train_batch_size x world_size` consecutive rows of the epoch's order; rank r
takes its r-th slice. A step trains on `gradient_accumulation_steps` consecutive global batches (micro-batches)
and the epoch's last step on the micro-batches left. Contrastive learning cares what a batch holds: each
micro-batch's loss sees only its own in-batch negatives, so accumulating 4 batches of 64 is not a batch of 256
(the cached loss, `gradient_cache_chunk_size`, is), and a last incomplete batch (kept when
`dataloader_drop_last` is off, HF's default) gives its sentences fewer negatives. Under DDP that last batch is
shared out equally, its ranks' slices filled up from the start of the order, as HF's DistributedSampler pads.
"""

from __future__ import annotations

import math

import numpy as np


class StepPlan:
    """The micro-batches of every step of an epoch, for one rank."""

    def __init__(self, num_rows: int, per_device: int, world_size: int, rank: int, accumulation: int, drop_last: bool):
        self.num_rows, self.per_device, self.world_size, self.rank = num_rows, per_device, world_size, rank
        self.accumulation, self.drop_last = accumulation, drop_last
        global_batch = per_device * world_size
        self.micro_batches = num_rows // global_batch if drop_last else math.ceil(num_rows / global_batch)

    @property
    def global_batch(self) -> int:
        return self.per_device * self.world_size

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.micro_batches / self.accumulation)

    def rows(self, order: np.ndarray, step_in_epoch: int) -> list[np.ndarray]:
        """This rank's row indices of each micro-batch of the epoch's step `step_in_epoch`."""
        first = step_in_epoch * self.accumulation
        return [self.micro_batch(order, m) for m in range(first, min(first + self.accumulation, self.micro_batches))]

    def micro_batch(self, order: np.ndarray, index: int) -> np.ndarray:
        start = index * self.global_batch
        size = min(self.global_batch, self.num_rows - start)
        if size == self.global_batch:
            begin = start + self.rank * self.per_device
            return order[begin : begin + self.per_device]
        share = math.ceil(size / self.world_size)  # the incomplete last batch, shared out equally
        return order[(start + self.rank * share + np.arange(share)) % self.num_rows]
