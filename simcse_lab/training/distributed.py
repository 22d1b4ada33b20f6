"""One process, or DDP under torchrun, with embeddings all-gathered with gradients."""

from __future__ import annotations

import os

import torch
from torch import nn

from ..errors import SimCSELabError
from ..models.device import pick_device


class DistributedContext:
    """Single process, or DDP under torchrun (WORLD_SIZE > 1).

    Under DDP the embeddings of every rank are all-gathered *with* gradients
    (torch.distributed.nn.functional.all_gather), so each rank's loss uses the global batch's
    negatives and the averaged gradients equal those of one process on the concatenated batch.
    """

    def __init__(self, device: torch.device, rank: int = 0, world_size: int = 1):
        self.device, self.rank, self.world_size = device, rank, world_size

    @classmethod
    def from_environment(cls, device_name: str) -> "DistributedContext":
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls(pick_device(device_name))
        import torch.distributed as torch_dist  # noqa: PLC0415

        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        wants_cuda = str(device_name).startswith("cuda")
        if wants_cuda and not torch.cuda.is_available():
            raise SimCSELabError(f"--device {device_name} under torchrun, but this torch build sees no CUDA GPU; use --device cpu")
        if wants_cuda or (device_name == "auto" and torch.cuda.is_available()):
            # each rank takes its own GPU (LOCAL_RANK), whatever index --device names, as the HF Trainer does
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
            backend = "nccl"
        else:
            device, backend = torch.device("cpu"), "gloo"
        if not torch_dist.is_initialized():
            torch_dist.init_process_group(backend)
        return cls(device, torch_dist.get_rank(), world_size)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, encoder: nn.Module) -> nn.Module:
        if self.world_size <= 1:
            return encoder
        return nn.parallel.DistributedDataParallel(encoder, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def gather(self, z: torch.Tensor) -> torch.Tensor:
        if self.world_size <= 1:
            return z
        from torch.distributed.nn.functional import all_gather  # noqa: PLC0415

        return torch.cat(all_gather(z.contiguous()))

    def all_finite(self, loss: torch.Tensor) -> bool:
        """Whether the loss is finite on every rank: one rank must not skip a step (and its gradient all-reduce)
        that the others take."""
        finite = torch.isfinite(loss.detach()).all()
        if self.world_size > 1:
            flag = finite.to(torch.int32)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
            finite = flag.bool()
        return bool(finite)

    def barrier_if_saving(self, save_steps: int, step: int) -> None:
        if self.world_size > 1 and save_steps > 0 and step % save_steps == 0:
            torch.distributed.barrier()

    def close(self) -> None:
        """Leave together: rank 0 may still be writing the final model when the others are done, and a
        process group torn down under a rank still in it can abort that rank ("terminate called without an
        active exception", seen in about 1 of 17 two-rank runs)."""
        if self.world_size > 1 and torch.distributed.is_initialized():
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()
