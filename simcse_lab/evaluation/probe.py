"""SentEval's logistic-regression probe (its PyTorch classifier with nhid=0), many fits at once.

What one fit does, as SentEval's `senteval/tools/classifier.py` does it (the `usepytorch` path, the one the
SimCSE paper's Table 7 used):
- seed numpy and torch with `seed` (1111), then build `nn.Linear(D, C)`: every fit starts from the same weights;
- validation: the given validation rows, or (`validation_split=0.05`) the first 5% of `np.random.permutation`;
- one "epoch" is `epoch_size` passes over the training rows, each in a fresh `np.random.permutation` order, in
  mini-batches of `batch_size`, cross-entropy (mean over the batch), the optimiser's L2 penalty `l2reg`
  (torch's `weight_decay`, on weight and bias);
- after each epoch, accuracy on the validation rows; the best model is kept; training stops at the
  (tenacity + 1)-th epoch that does not improve on the best (the count is never reset), or past `max_epoch`;
- the fit's model is the best one, its score that best validation accuracy.

Speed without changing that (`train_stack`): fits are independent, and every fit reseeds, so fits with the same
number of training rows draw the same permutations and can step together. They are trained as one stack: the
fits of a row set (one fold, four penalties) share each gathered batch, and all row sets of the stack run in one
batched product per step. Each fit still gets exactly its own update (see `train_stack`). A fit that has stopped
keeps training in the stack, but its kept (best) weights no longer change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import unknown_choice

OPTIMIZERS = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop}  # torch's defaults, as SentEval's get_optimizer
VALIDATION_SPLIT = 0.05  # SentEval's final fits hold out 5% of the training rows for early stopping
MAX_STACK = 64  # row sets trained together at most (memory: a batch is (U, batch_size, D))
# The probe's tensors are small (a step is a few million multiply-adds), so a second thread buys little and waits
# at every operation; on a busy machine that wait dominates (benchmarks/README.md: MR, fasttest, 6x slower with 2).
PROBE_THREADS = 1


@dataclass(frozen=True)
class ProbeSettings:
    """The classifier settings of SentEval's `params['classifier']` (nhid=0: logistic regression)."""

    optim: str  # adam | rmsprop
    batch_size: int
    tenacity: int  # epochs without improvement tolerated (SentEval's early-stopping count)
    epoch_size: int  # passes over the training rows per epoch
    max_epoch: int = 200  # SentEval's default
    seed: int = 1111  # SentEval's default

    def __post_init__(self):
        if self.optim not in OPTIMIZERS:
            raise unknown_choice("probe optimizer", self.optim, OPTIMIZERS)


@dataclass(frozen=True)
class Fit:
    """One fit: training rows, the l2 penalty, and the validation rows (None: 5% of the training rows)."""

    train: np.ndarray  # (n,) int row indices
    l2reg: float
    valid: np.ndarray | None = None


@dataclass
class FittedProbe:
    weight: torch.Tensor  # (D, C)
    bias: torch.Tensor  # (C,)
    valid_accuracy: float  # the best validation accuracy (0-1), what SentEval's fit returns

    def predict(self, x: torch.Tensor) -> np.ndarray:
        return torch.argmax(x @ self.weight + self.bias, dim=1).numpy()

    def accuracy(self, x: torch.Tensor, y: np.ndarray) -> float:
        return float((self.predict(x) == y).mean())


@dataclass(frozen=True)
class PreparedFit:
    """A fit with its rows resolved: what it trains and validates on, and the hold-out draw it made first."""

    train: np.ndarray  # (n,) training rows
    valid: np.ndarray  # validation rows
    l2reg: float
    holdout_draw: int | None  # size of the permutation drawn for the 5% hold-out (None: validation rows given)


@dataclass
class RowSet:
    """Fits that train and validate on the same rows (they differ in their penalty only): one gather serves them."""

    train: np.ndarray
    valid: np.ndarray
    holdout_draw: int | None
    members: list[int]  # indices into the fits
    l2regs: list[float]


def fit_probes(x: np.ndarray | torch.Tensor, y: np.ndarray, fits: list[Fit], num_classes: int, settings: ProbeSettings) -> list[FittedProbe]:
    """Train every fit on rows of (x, y) as SentEval's classifier would; results in the order of `fits`."""
    x = torch.as_tensor(np.asarray(x, dtype=np.float32))  # (N, D); SentEval trains in float32
    y = np.asarray(y, dtype=np.int64)
    threads = torch.get_num_threads()
    torch.set_num_threads(PROBE_THREADS)
    try:
        return fit_row_sets(x, y, fits, num_classes, settings)
    finally:
        torch.set_num_threads(threads)


def fit_row_sets(x: torch.Tensor, y: np.ndarray, fits: list[Fit], num_classes: int, settings: ProbeSettings) -> list[FittedProbe]:
    row_sets: dict[tuple, RowSet] = {}
    for index, fit in enumerate(prepare_fit(fit, settings.seed) for fit in fits):
        key = (fit.train.tobytes(), fit.valid.tobytes(), fit.holdout_draw)
        if key not in row_sets:
            row_sets[key] = RowSet(fit.train, fit.valid, fit.holdout_draw, [], [])
        row_sets[key].members.append(index)
        row_sets[key].l2regs.append(fit.l2reg)
    # row sets of one size draw the same permutations (every SentEval fit reseeds): they train as one stack
    stacks: dict[tuple, list[RowSet]] = {}
    for rows in row_sets.values():
        stacks.setdefault((len(rows.train), rows.holdout_draw, len(rows.members)), []).append(rows)
    results: list[FittedProbe | None] = [None] * len(fits)
    for members in stacks.values():
        for start in range(0, len(members), MAX_STACK):
            chunk = members[start:start + MAX_STACK]
            fitted = train_stack(x, y, chunk, num_classes, settings)
            for rows, probes in zip(chunk, fitted):
                for index, probe in zip(rows.members, probes):
                    results[index] = probe
    return results


def prepare_fit(fit: Fit, seed: int) -> PreparedFit:
    """Resolve a fit's rows; with no validation rows, SentEval's hold-out: the first 5% of a fresh permutation."""
    train = np.asarray(fit.train, dtype=np.int64)
    if fit.valid is not None:
        return PreparedFit(train, np.asarray(fit.valid, dtype=np.int64), fit.l2reg, None)
    permutation = np.random.RandomState(seed).permutation(len(train))
    cut = int(VALIDATION_SPLIT * len(train))
    return PreparedFit(train[permutation[cut:]], train[permutation[:cut]], fit.l2reg, len(train))


def initial_linear(dim: int, num_classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """nn.Linear's initial (weight.T, bias) after torch.manual_seed(seed), as every SentEval fit starts."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        linear = nn.Linear(dim, num_classes)
    return linear.weight.detach().T.contiguous(), linear.bias.detach().clone()


def train_stack(x: torch.Tensor, y: np.ndarray, row_sets: list[RowSet], num_classes: int, settings: ProbeSettings) -> list[list[FittedProbe]]:
    """U row sets of R fits each, same size and same draws, trained side by side (module docstring).

    Layout: the R fits of a row set are R column blocks of one (D + 1, R * C) matrix, so a step gathers each row
    set's batch once, (U, B, D + 1), and multiplies it by all its fits' weights at once. The weight and the bias
    are one (D + 1) x C block per fit (rows of x get a constant 1): SentEval's L2 penalty covers both, and Adam and
    RMSprop update each entry on its own, so this changes nothing. The gradient of the mean cross-entropy is
    written out, (softmax - one-hot) / B, instead of taken by autograd: a step is a handful of tensor operations,
    which is what the speed of thousands of small steps depends on."""
    u, r, c = len(row_sets), len(row_sets[0].members), num_classes
    n, dim = len(row_sets[0].train), x.shape[1] + 1
    x1 = torch.cat([x, torch.ones(len(x), 1)], dim=1)  # (N, D + 1)
    one_hot = F.one_hot(torch.as_tensor(y), c).float()  # (N, C)
    train_rows = torch.as_tensor(np.stack([rows.train for rows in row_sets]))  # (U, n)
    l2 = torch.tensor([rows.l2regs for rows in row_sets], dtype=torch.float32)  # (U, R)
    l2 = l2.view(u, 1, r, 1).expand(u, 1, r, c).reshape(u, 1, r * c)
    weight0, bias0 = initial_linear(dim - 1, c, settings.seed)
    params = torch.cat([weight0, bias0[None]]).repeat(1, r).expand(u, dim, r * c).clone()  # (U, D + 1, R * C)
    params.grad = torch.zeros_like(params)
    optimizer = OPTIMIZERS[settings.optim]([params])
    # the validation rows of all row sets, and which set each belongs to: one product scores every fit
    valid_rows = np.unique(np.concatenate([rows.valid for rows in row_sets]))
    x_valid, y_valid = x1[valid_rows], torch.as_tensor(y[valid_rows])
    valid_mask = torch.zeros(len(valid_rows), u, 1, dtype=torch.bool)  # (V, U, 1)
    for i, rows in enumerate(row_sets):
        valid_mask[torch.as_tensor(np.searchsorted(valid_rows, rows.valid)), i] = True
    valid_count = valid_mask.sum(0).double()  # (U, 1)
    # every SentEval fit reseeds numpy, so the fits of a stack draw the same permutations: one generator serves all
    rng = np.random.RandomState(settings.seed)
    if row_sets[0].holdout_draw is not None:
        rng.permutation(row_sets[0].holdout_draw)
    best_accuracy = torch.full((u, r), -1.0, dtype=torch.float64)
    best_params = params.clone()
    active = torch.ones(u, r, dtype=torch.bool)  # not yet stopped early
    misses = torch.zeros(u, r, dtype=torch.long)  # epochs that did not improve on the best, never reset (as SentEval)
    epoch = 0
    with torch.no_grad():
        while bool(active.any()) and epoch <= settings.max_epoch:
            for _ in range(settings.epoch_size):
                order = train_rows[:, torch.as_tensor(rng.permutation(n))]  # (U, n): each set's rows in this pass's order
                for start in range(0, n, settings.batch_size):
                    rows = order[:, start:start + settings.batch_size]  # (U, B)
                    inputs = x1[rows]  # (U, B, D + 1)
                    probabilities = torch.softmax(torch.bmm(inputs, params).view(u, -1, r, c), dim=3)  # (U, B, R, C)
                    error = probabilities.sub_(one_hot[rows].unsqueeze(2)).view(u, -1, r * c)  # dloss/dlogits x B
                    torch.bmm(inputs.transpose(1, 2), error, out=params.grad).div_(rows.shape[1])
                    params.grad.addcmul_(params, l2)  # the L2 penalty as torch's weight_decay adds it: grad += l2reg * param
                    optimizer.step()
            epoch += settings.epoch_size
            logits = (x_valid @ params.permute(1, 0, 2).reshape(dim, -1)).view(-1, u, r, c)  # (V, U, R, C)
            correct = (logits.argmax(dim=3) == y_valid.view(-1, 1, 1)) & valid_mask  # (V, U, R)
            accuracy = correct.sum(0).double() / valid_count  # (U, R)
            improved = active & (accuracy > best_accuracy)
            best_accuracy = torch.where(improved, accuracy, best_accuracy)
            keep = improved.view(u, 1, r, 1).expand(u, dim, r, c).reshape(u, dim, r * c)
            best_params = torch.where(keep, params, best_params)
            stalled = active & ~improved
            active = active & ~(stalled & (misses >= settings.tenacity))
            misses = misses + stalled.long()
    blocks = best_params.view(u, dim, r, c)
    return [[FittedProbe(blocks[i, :-1, j].clone(), blocks[i, -1, j].clone(), float(best_accuracy[i, j])) for j in range(r)]
            for i in range(u)]
