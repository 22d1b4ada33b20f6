"""Cached contrastive loss: a big batch's exact gradients in the memory of one small chunk.

In-batch-negative losses want big batches (supervised SimCSE: 512), but a plain step keeps the
activations of every sentence alive until backward. Gao, Zhang, Han & Callan (2021), "Scaling Deep
Contrastive Learning Batch Size under Memory Limited Setup" (GradCache), split the step in two:

1. embed every chunk of the batch without a graph: z = [f(x_1); ...; f(x_n)]       (N, D)
2. compute the loss on a detached copy of z that requires grad, backward once:
   g = d loss / d z                                                                 (N, D)
   (the loss, its all-gather across ranks and its logits cost O(N^2 D), not activations)
3. for each chunk again, embed it *with* a graph and backprop its slice of g:
   d loss / d theta = sum_c (d z_c / d theta)^T g_c

Step 3 gives the same parameter gradients as one backward through the whole batch because z only
depends on theta through each chunk's own forward (chain rule, chunk by chunk). Peak memory is that
of one chunk's activations plus the (N, D) embeddings, at the price of one extra forward pass.

Dropout. SimCSE's positives *are* dropout noise, so step 3 must see exactly the dropout masks of
step 1. The CPU (and the model device's CUDA) RNG state is saved before each chunk's first pass and
restored, inside `torch.random.fork_rng`, before its second pass; the global RNG ends where step 1
left it, as after a plain step over the same chunks.

Precision and DDP. The loss is scaled by `scale_loss` (GradScaler.scale for fp16) before its
backward, so chunk gradients carry the same scale as a plain step's. Under
DistributedDataParallel every chunk but the last runs under `no_sync()`, so gradients are reduced
once per step. The loss function may all-gather embeddings across ranks (simcse_lab.training.distributed's
DistributedContext.gather); the gather's backward sums each rank's share into g.

Used by the trainer when `TrainConfig.gradient_cache_chunk_size > 0`;
`sentence_transformers.losses.CachedMultipleNegativesRankingLoss` is the same idea.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Sequence

import torch
from torch import nn

from ..errors import SimCSELabError

__all__ = ["CachedEmbeddings", "cached_backward", "split_batch"]

REPLAYABLE_DEVICES = ("cpu", "cuda")


def split_batch(input_ids: torch.Tensor, attention_mask: torch.Tensor, chunk_size: int,
                multiple: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(N, T) ids and mask -> chunks of at most chunk_size rows, each cut at its longest sentence
    (rounded up to a multiple of `multiple`, for static-shape compiled models)."""
    chunks = []
    for ids, mask in zip(input_ids.split(chunk_size), attention_mask.split(chunk_size)):
        width = int(mask.sum(1).max())  # one host sync per chunk: less padding in both passes
        width = min(-(-width // multiple) * multiple, ids.shape[1])
        chunks.append((ids[:, :width], mask[:, :width]))
    return chunks


class RNGState:
    """The CPU RNG state and, for a CUDA model, that device's RNG state."""

    def __init__(self, device: torch.device):
        if device.type not in REPLAYABLE_DEVICES:
            # other backends (Apple's MPS) keep generators this class does not save: a replay there would draw new
            # dropout masks, and the cached gradients would silently differ from a plain step's
            raise SimCSELabError(f"the cached loss (gradient_cache_chunk_size) replays dropout masks on "
                                 f"{' and '.join(REPLAYABLE_DEVICES)} only, not {device.type}; train without it on this device")
        self.device = device
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    @contextlib.contextmanager
    def replay(self):
        """Run the block from this saved state, then put the global RNG back as it was."""
        with torch.random.fork_rng(devices=[self.device] if self.cuda is not None else [], device_type="cuda"):
            torch.set_rng_state(self.cpu)
            if self.cuda is not None:
                torch.cuda.set_rng_state(self.cuda, self.device)
            yield


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


class CachedEmbeddings:
    """Steps 1 and 3 of the cached loss: `embed` runs step 1 and gives z, a leaf that requires grad; the caller
    computes the loss on z (step 2); `backward(loss)` backpropagates it to z and then, chunk by chunk, into the
    model (step 3)."""

    def __init__(self, model: nn.Module, chunks, states: list[RNGState], outputs: list[torch.Tensor]):
        self.model, self.chunks, self.states = model, chunks, states
        self.sizes = [len(o) for o in outputs]
        self.z = torch.cat(outputs).detach().requires_grad_()  # (N, D)

    @classmethod
    def embed(cls, model: nn.Module, chunks: Sequence[Sequence[torch.Tensor]]) -> "CachedEmbeddings":
        device = model_device(model)
        states, outputs = [], []
        with torch.no_grad():
            for chunk in chunks:  # step 1
                states.append(RNGState(device))
                # (b, D), copied: a CUDA-graph replay (torch.compile's reduce-overhead) reuses its output buffer
                outputs.append(model(*chunk).clone())
        return cls(model, chunks, states, outputs)

    def backward(self, loss: torch.Tensor) -> None:
        """loss: computed from self.z only (and already scaled, for fp16)."""
        loss.backward()
        grads = self.z.grad.split(self.sizes)
        no_sync = getattr(self.model, "no_sync", None)
        for index, (chunk, state, grad) in enumerate(zip(self.chunks, self.states, grads)):  # step 3
            last = index == len(self.chunks) - 1
            with state.replay(), (no_sync() if no_sync is not None and not last else contextlib.nullcontext()):
                self.model(*chunk).backward(grad)


def cached_backward(
    model: nn.Module,
    chunks: Sequence[Sequence[torch.Tensor]],
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    scale_loss: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Backward of loss_fn(cat([model(*c) for c in chunks])) chunk by chunk; returns the detached loss.

    model: maps one chunk's tensors, model(*chunk), to embeddings (b, D); a DDP wrapper is fine.
    chunks: the batch split along the sentence axis (see `split_batch`); every rank of a DDP run
        must pass the same number of chunks.
    loss_fn: embeddings (N, D), the chunks' outputs concatenated in order -> a scalar loss. It must
        use only its argument (and constant tensors), so that d loss / d z is all step 3 needs.
    scale_loss: applied to the loss before its backward (e.g. GradScaler.scale); None = identity.

    Parameter gradients are accumulated into `.grad` as by `loss.backward()`.
    """
    cache = CachedEmbeddings.embed(model, chunks)
    loss = loss_fn(cache.z)  # step 2
    cache.backward(scale_loss(loss) if scale_loss is not None else loss)
    return loss.detach()
