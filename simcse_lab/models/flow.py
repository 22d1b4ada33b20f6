"""BERT-flow: an invertible normalising flow that maps frozen sentence embeddings to N(0, I).

Li et al. (2020), "On the Sentence Embeddings from Pre-trained Language Models" (EMNLP), observe
that BERT's sentence embeddings are anisotropic: they sit in a narrow cone, so every pair has a high
cosine and cosine similarity says little about meaning. Their fix keeps the encoder frozen and learns
an invertible map f from the embedding x to a latent y = f(x) whose distribution is a standard
Gaussian, which is isotropic by construction; similarity is then measured on y.

Change of variables. If f is invertible and differentiable, the density of x is

    log p_X(x) = log p_Y(f(x)) + log |det df/dx|,        p_Y = N(0, I_D)
               = -1/2 ||f(x)||^2 - D/2 log(2 pi) + log |det J_f(x)|.

The flow is trained by maximising this exact log-likelihood on the embeddings (no labels). The first
term pulls the latents towards the origin; the log-determinant stops f from cheating by shrinking
everything. At the optimum y has zero mean and identity covariance (and, as far as the flow can
express, a Gaussian shape): the common offset and the few dominant directions that cause
anisotropy are removed, so the average cosine of random pairs drops to about 0.

Where it sits next to whitening. BERT-whitening (Su et al., 2021; `simcse_lab.geometry.Whitening`)
is the closed-form, linear special case: the maximum-likelihood Gaussian fit of x is exactly
y = W^T (x - mu) with W W^T = Cov(x)^-1. This flow contains that map and adds non-linear affine
couplings, so it can also straighten curved, non-Gaussian clouds; in exchange it needs training,
and with few embeddings per dimension it overfits (held-out log-likelihood is tracked for that
reason). Li et al. train on the target task's sentences ("BERT-flow (target)") or on the SNLI+MNLI
sentences ("BERT-flow (NLI)"); with this module the difference is only which sentences you encode
before `FlowTransform.fit`.

An option beyond the paper: with `whiten_init=True` the flow *starts* at
BERT-whitening (a fixed whitening layer in front of the trainable steps, which start near the
identity), so the untrained flow already has the best Gaussian likelihood, and with `keep_best`
training can only improve the held-out likelihood or leave the whitened start in place
(`history.best_epoch == 0` says so). When a Gaussian already describes the cloud well, that is
what happens, in line with Su et al.'s finding that whitening matches or beats BERT-flow on STS.
The default, `whiten_init=False`, is Glow's start (identity + data-initialised ActNorm), as in Li et al.,
so the "BERT-flow" rows of the course are the paper's method, not whitening in disguise.

Architecture (Glow, Kingma & Dhariwal 2018, as used by BERT-flow, on vectors instead of images).
A fixed whitening (the closed-form Gaussian fit, see `whiten_init`; the identity without it), then
a stack of `num_layers` steps, each

    ActNorm          y = (x + b) * exp(log_s)          per-dimension, initialised from the data so
                                                      that its input is standardised
    InvertibleLinear y = W x,  W = P L (U + diag(sign * exp(log_s)))     (Glow's LU-parametrised
                                                      1x1 convolution: a learned rotation/mixing
                                                      that generalises a fixed permutation)
    AffineCoupling   y_a = x_a,  y_b = x_b * exp(s(x_a)) + t(x_a)        (RealNVP, Dinh et al. 2017)
                     s = scale * tanh(raw): bounded log-scales keep training stable

Every step has an exact inverse and a cheap log-determinant (sum of log-scales), so `forward`
returns (y, logdet) and `inverse` undoes it exactly.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import SimCSELabError
from ..geometry import as_float64
from .files import check_input_dim, inside_directory, read_model_json, safetensors_problem

__all__ = [
    "FlowConfig", "FlowHistory", "Flow", "FixedAffine", "ActNorm", "InvertibleLinear", "AffineCoupling",
    "FlowTransform", "train_flow", "log_likelihood",
]

POSTPROCESS_DIR = "postprocess"  # same folder as simcse_lab.models.postprocess (not imported: it imports us)
WEIGHTS_FILE = "flow.safetensors"
LOG_2PI = math.log(2 * math.pi)


@dataclass
class FlowConfig:
    """Training options for BERT-flow. Defaults: 10k embeddings of dim 256 take ~11 s of one CPU core."""

    num_layers: int = 4  # flow steps (ActNorm + InvertibleLinear + AffineCoupling each)
    hidden_size: int = 128  # width of the two hidden layers of each coupling's MLP
    lr: float = 1e-3  # Adam peak learning rate (BERT-flow uses 1e-3)
    warmup_fraction: float = 0.1  # linear warm-up over this share of the steps, then cosine decay to 0
    epochs: int = 10  # passes over the training split
    batch_size: int = 256  # embeddings per optimisation step
    heldout_fraction: float = 0.1  # share of the embeddings kept aside to watch for overfitting; 0 = none
    max_grad_norm: float = 5.0  # gradient clipping; guards against an early large step
    keep_best: bool = True  # restore the epoch with the best held-out log-likelihood at the end
    whiten_init: bool = False  # False = Glow's start, as in Li et al.; True = start from BERT-whitening (never worse)
    seed: int = 0  # initialisation, the held-out split and batch order

    @classmethod
    def from_options(cls, **options) -> "FlowConfig":
        """A config from keyword options; an unknown key fails loudly and lists the valid ones."""
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise SimCSELabError(f"unknown flow option(s) {', '.join(unknown)}; valid flow options are: {', '.join(valid)}")
        config = cls(**options)
        config.validate()
        return config

    def validate(self) -> None:
        if self.num_layers < 1 or self.hidden_size < 1 or self.epochs < 1 or self.batch_size < 1:
            raise SimCSELabError(f"num_layers, hidden_size, epochs and batch_size must be >= 1; got {self}")
        if not 0.0 <= self.warmup_fraction <= 1.0:
            raise SimCSELabError(f"warmup_fraction must be in [0, 1], got {self.warmup_fraction}")
        if not 0.0 <= self.heldout_fraction < 1.0:
            raise SimCSELabError(f"heldout_fraction must be in [0, 1), got {self.heldout_fraction}")
        if self.lr <= 0:
            raise SimCSELabError(f"lr must be positive, got {self.lr}")


@dataclass
class FlowHistory:
    """Mean log-likelihood per sample (nats) after each epoch; index 0 is before training.

    train: mean over the epoch's batches (the weights move during the epoch; entry 0 is a full pass).
    heldout: a full pass over the held-out split with the end-of-epoch weights (NaN if nothing is held out).
    """

    train: list[float] = field(default_factory=list)
    heldout: list[float] = field(default_factory=list)
    best_epoch: int = 0  # the epoch whose weights were kept
    seconds: float = 0.0  # wall-clock training time


# ---------------------------------------------------------------------- layers
class ActNorm(nn.Module):
    """y = (x + bias) * exp(log_scale), per dimension. logdet = sum(log_scale), the same for every x."""

    def __init__(self, dim: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(dim))
        self.log_scale = nn.Parameter(torch.zeros(dim))

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        """Data-dependent init (Glow): the output on x has zero mean and unit variance per dimension."""
        self.bias.copy_(-x.mean(0))
        self.log_scale.copy_(-x.std(0).clamp_min(1e-6).log())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = (x + self.bias) * self.log_scale.exp()  # (N, D)
        return y, self.log_scale.sum().expand(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * (-self.log_scale).exp() - self.bias


class InvertibleLinear(nn.Module):
    """y = W x with W = P L (U + diag(sign * exp(log_s))) (Glow's LU-parametrised 1x1 convolution).

    P is a fixed permutation, L unit lower-triangular, U strictly upper-triangular; so
    log|det W| = sum(log_s) costs O(D) and the inverse is two triangular solves.
    Initialised at a random rotation, so the first steps mix all dimensions.
    """

    def __init__(self, dim: int, generator: torch.Generator | None = None):
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
        p, lower, upper = torch.linalg.lu(q)  # q = p @ lower @ upper
        diag = upper.diagonal()
        self.register_buffer("permutation", p.argmax(1))  # P as indices: (P v)_i = v[permutation[i]]
        self.register_buffer("sign", diag.sign().float())
        self.lower = nn.Parameter(lower.tril(-1).float())
        self.upper = nn.Parameter(upper.triu(1).float())
        self.log_s = nn.Parameter(diag.abs().log().float())

    def factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(L, U'): L unit lower-triangular and U' = U + diag(sign * exp(log_s)) upper-triangular."""
        eye = torch.eye(self.lower.shape[0], dtype=self.lower.dtype, device=self.lower.device)
        lower = self.lower.tril(-1) + eye  # tril/triu: the masked entries never receive gradients
        upper = self.upper.triu(1) + torch.diag(self.sign * self.log_s.exp())
        return lower, upper

    def weight(self) -> torch.Tensor:
        """The (D, D) matrix W (for inspection; forward never forms it)."""
        lower, upper = self.factors()
        return (lower @ upper)[self.permutation]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lower, upper = self.factors()
        y = (x @ upper.T @ lower.T)[:, self.permutation]  # (N, D); rows are samples: y^T = P L U x^T
        return y, self.log_s.sum().expand(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        lower, upper = self.factors()
        z = y[:, torch.argsort(self.permutation)].T  # (D, N); undo P
        z = torch.linalg.solve_triangular(lower, z, upper=False, unitriangular=True)
        z = torch.linalg.solve_triangular(upper, z, upper=True)
        return z.T


class AffineCoupling(nn.Module):
    """RealNVP coupling: the first half conditions an affine map of the second half.

    x = [x_a, x_b] -> [x_a, x_b * exp(s) + t], with (raw, t) = MLP(x_a) and s = scale * tanh(raw).
    The Jacobian is triangular, so log|det| = sum(s). The MLP's last layer starts at zero, so a
    fresh coupling is the identity and training starts from ActNorm + rotation.
    """

    def __init__(self, dim: int, hidden_size: int):
        super().__init__()
        if dim < 2:
            raise SimCSELabError(f"a coupling layer needs at least 2 dimensions, got {dim}")
        self.split = dim // 2
        out = dim - self.split
        self.net = nn.Sequential(
            nn.Linear(self.split, hidden_size), nn.ReLU(),
            nn.Linear(hidden_size, hidden_size), nn.ReLU(),
            nn.Linear(hidden_size, 2 * out),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)
        self.scale = nn.Parameter(torch.ones(out))  # learned bound on |log-scale|

    def shift_and_log_scale(self, x_a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw, shift = self.net(x_a).chunk(2, dim=-1)  # (N, D - D//2) each
        return shift, self.scale * torch.tanh(raw)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_a, x_b = x[:, : self.split], x[:, self.split :]
        shift, log_scale = self.shift_and_log_scale(x_a)
        y_b = x_b * log_scale.exp() + shift
        return torch.cat([x_a, y_b], dim=1), log_scale.sum(1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        y_a, y_b = y[:, : self.split], y[:, self.split :]
        shift, log_scale = self.shift_and_log_scale(y_a)
        return torch.cat([y_a, (y_b - shift) * (-log_scale).exp()], dim=1)


class FixedAffine(nn.Module):
    """y = (x - mean) @ matrix^T with fixed (not trained) buffers; identity until set by `fit_whitening`.

    With whitening, the untrained flow already is BERT-whitening and the trainable steps work in
    whitened coordinates, where a step of size lr means the same in every direction (in raw BERT
    coordinates a few directions are hundreds of times wider than others, and Adam's equal-size
    steps on an ill-conditioned linear map can blow the likelihood up).
    """

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("matrix", torch.eye(dim))
        self.register_buffer("logdet", torch.zeros(()))  # log|det matrix|, cached

    @torch.no_grad()
    def fit_whitening(self, x: torch.Tensor) -> None:
        matrix = whitening_matrix(x)
        self.mean.copy_(x.mean(0))
        self.matrix.copy_(matrix)
        self.logdet.copy_(torch.linalg.slogdet(matrix.double())[1])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (x - self.mean) @ self.matrix.T, self.logdet.expand(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return torch.linalg.solve(self.matrix, y.T).T + self.mean


class Flow(nn.Module):
    """FixedAffine, then num_layers x (ActNorm -> InvertibleLinear -> AffineCoupling), on vectors of size dim."""

    def __init__(self, dim: int, num_layers: int = 4, hidden_size: int = 128, seed: int = 0):
        super().__init__()
        self.dim, self.num_layers, self.hidden_size = int(dim), int(num_layers), int(hidden_size)
        generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):  # nn.Linear's init uses the global RNG; keep it untouched
            torch.manual_seed(seed)
            layers = [FixedAffine(dim)]
            for _ in range(num_layers):
                layers += [ActNorm(dim), InvertibleLinear(dim, generator), AffineCoupling(dim, hidden_size)]
        self.layers = nn.ModuleList(layers)

    @torch.no_grad()
    def initialize(self, x: torch.Tensor, whiten: bool = True) -> None:
        """Data-dependent init on a sample x (N, D).

        With whiten=True the fixed first layer is set to the PCA whitening of x, so the untrained
        flow already is BERT-whitening (up to a rotation, which changes no cosine) and starts at
        the best Gaussian log-likelihood; training only has to add what a linear map cannot express.
        With whiten=False it stays the identity (Glow's start). Then every ActNorm standardises
        what reaches it (Glow's data-dependent init).
        """
        for layer in self.layers:
            if isinstance(layer, FixedAffine) and whiten:
                layer.fit_whitening(x)
            elif isinstance(layer, ActNorm):
                layer.initialize(x)
            x, _ = layer(x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (N, D) -> latents y (N, D) and log|det df/dx| per sample (N,)."""
        logdet = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for layer in self.layers:
            x, step = layer(x)
            logdet = logdet + step
        return x, logdet

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """latents y (N, D) -> x (N, D), the exact inverse of forward."""
        for layer in reversed(self.layers):
            y = layer.inverse(y)
        return y


def whitening_matrix(x: torch.Tensor, floor: float = 1e-6) -> torch.Tensor:
    """W (D, D) with Cov(x W^T) = I: W = diag(s)^-1/2 U^T from Cov(x) = U diag(s) U^T (PCA whitening).

    Eigenvalues below floor * the largest are raised to it, so a rank-deficient sample (fewer
    embeddings than dimensions) still gives an invertible, if very stretching, matrix.
    """
    cov = torch.cov(x.double().T)  # (D, D)
    s, u = torch.linalg.eigh(cov)  # ascending
    s, u = s.flip(0), u.flip(1)  # largest variance first, as in geometry.Whitening
    s = s.clamp_min(floor * float(s[0].clamp_min(1e-12)))
    return (u / s.sqrt()).T.to(x.dtype)


def log_likelihood(flow: Flow, x: torch.Tensor) -> torch.Tensor:
    """log p(x) per sample (N,), in nats: standard normal log-density of f(x) plus log|det J_f(x)|."""
    y, logdet = flow(x)
    log_base = -0.5 * (y.pow(2).sum(1) + y.shape[1] * LOG_2PI)  # log N(y; 0, I)
    return log_base + logdet


# ---------------------------------------------------------------------- training
def split_heldout(n: int, fraction: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, held-out indices): a random split with round(n * fraction) held out (>= 1 if fraction > 0)."""
    order = torch.randperm(n, generator=generator)
    heldout = 0 if fraction == 0 else max(1, round(n * fraction))
    if n - heldout < 2:
        raise SimCSELabError(f"BERT-flow needs at least 2 training embeddings after holding out {heldout}; got {n} in all")
    return order[heldout:], order[:heldout]


def train_flow(embeddings, config: FlowConfig | None = None) -> tuple[Flow, FlowHistory]:
    """Fit a Flow to embeddings (N, D) by maximum likelihood. Returns (flow in eval mode, history).

    Trains in float32 on CPU (N x D is small; the embeddings were computed elsewhere). With
    keep_best (default) the weights of the epoch with the best held-out log-likelihood are restored.
    """
    config = config or FlowConfig()
    config.validate()
    x = as_float64(embeddings).float()  # (N, D); as_float64 rejects NaN/inf with a clear message
    generator = torch.Generator().manual_seed(config.seed)
    train_idx, heldout_idx = split_heldout(x.shape[0], config.heldout_fraction, generator)
    x_train, x_heldout = x[train_idx], x[heldout_idx]
    if float((x_train - x_train[0]).abs().max()) == 0.0:
        raise SimCSELabError(f"all {len(x_train)} training embeddings are identical, so there is no distribution to fit; "
                             "the encoder seems to ignore its input (check that the tokenizer does not map every word to [UNK])")

    start = time.perf_counter()
    flow = Flow(x.shape[1], config.num_layers, config.hidden_size, seed=config.seed)
    flow.initialize(x_train, whiten=config.whiten_init)
    optimizer = torch.optim.Adam(flow.parameters(), lr=config.lr)
    steps_per_epoch = math.ceil(len(x_train) / config.batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(steps_per_epoch * config.epochs, config.warmup_fraction))
    history = FlowHistory()

    def heldout_ll() -> float:
        return mean_log_likelihood(flow, x_heldout) if len(x_heldout) else float("nan")

    history.train.append(mean_log_likelihood(flow, x_train))
    history.heldout.append(heldout_ll())
    best_score, best_state = score(history), clone_state(flow)
    for epoch in range(1, config.epochs + 1):
        flow.train()
        order = torch.randperm(len(x_train), generator=generator)
        total, count = 0.0, 0
        for i in range(0, len(order), config.batch_size):
            batch = x_train[order[i : i + config.batch_size]]  # (B, D)
            ll = log_likelihood(flow, batch)  # (B,)
            loss = -ll.mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(flow.parameters(), config.max_grad_norm)
            optimizer.step()
            schedule.step()
            total, count = total + float(ll.detach().sum()), count + len(batch)
        history.train.append(total / count)
        history.heldout.append(heldout_ll())
        if not math.isfinite(history.train[-1]):
            raise SimCSELabError(f"BERT-flow training diverged at epoch {epoch} (log-likelihood {history.train[-1]}); lower lr")
        if config.keep_best and score(history) > best_score:
            best_score, best_state, history.best_epoch = score(history), clone_state(flow), epoch
    if config.keep_best:
        flow.load_state_dict(best_state)
    else:
        history.best_epoch = config.epochs
    history.seconds = time.perf_counter() - start
    return flow.eval(), history


def warmup_cosine(total_steps: int, warmup_fraction: float):
    """lr multiplier per step: 0 -> 1 linearly over the warm-up, then a cosine down to 0.

    Adam's first steps are full-size whatever the gradient's noise; the warm-up keeps them from
    kicking the flow off its (whitened) starting point, and the decay lets it settle at the end.
    """
    warmup = max(1, round(total_steps * warmup_fraction))

    def multiplier(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return multiplier


@torch.no_grad()
def mean_log_likelihood(flow: Flow, x: torch.Tensor, batch_size: int = 4096) -> float:
    """Mean log p(x) over the rows of x, in nats per sample (batched to bound memory)."""
    was_training = flow.training
    flow.eval()
    total = sum(float(log_likelihood(flow, x[i : i + batch_size]).sum()) for i in range(0, len(x), batch_size))
    flow.train(was_training)
    return total / len(x)


def score(history: FlowHistory) -> float:
    """The number keep_best maximises: held-out log-likelihood, or train when nothing is held out."""
    value = history.heldout[-1]
    return history.train[-1] if math.isnan(value) else value


def clone_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# ---------------------------------------------------------------------- encode-time transform
class FlowTransform:
    """BERT-flow as an encode-time transform: x -> f(x), float32 (N, D), saved beside the encoder.

    `fit` trains a flow on embeddings; `save(directory)` writes directory/postprocess/config.json
    ({"kind": "flow", ...}) and flow.safetensors; `load(directory)` reads them back.
    """

    kind = "flow"

    def __init__(self, flow: Flow, config: FlowConfig | None = None, history: FlowHistory | None = None):
        self.flow = flow.eval()
        self.config = config or FlowConfig(num_layers=flow.num_layers, hidden_size=flow.hidden_size)
        self.history = history

    @property
    def output_dim(self) -> int:
        return int(self.flow.dim)

    @classmethod
    def fit(cls, embeddings, config: FlowConfig | None = None, **options) -> "FlowTransform":
        """Train on embeddings (N, D). Pass a FlowConfig, or its fields as keywords (epochs=5, ...)."""
        if config is not None and options:
            raise SimCSELabError("pass either a FlowConfig or flow options as keywords, not both")
        config = config or FlowConfig.from_options(**options)
        flow, history = train_flow(embeddings, config)
        return cls(flow, config, history)

    @torch.no_grad()
    def __call__(self, embeddings) -> torch.Tensor:
        x = as_float64(embeddings)
        if x.shape[1] != self.flow.dim:
            raise SimCSELabError(f"this flow was fitted on {self.flow.dim}-dimensional embeddings; got {x.shape[1]}")
        parameter = next(self.flow.parameters())
        y, _ = self.flow(x.to(parameter.device, parameter.dtype))
        return y.float().cpu()

    transform = __call__

    @torch.no_grad()
    def log_likelihood(self, embeddings) -> torch.Tensor:
        """Per-sample log p(x) (N,) in nats under the fitted flow."""
        parameter = next(self.flow.parameters())
        return log_likelihood(self.flow, as_float64(embeddings).to(parameter.device, parameter.dtype)).cpu()

    def save(self, directory) -> Path:
        target = Path(directory) / POSTPROCESS_DIR
        target.mkdir(parents=True, exist_ok=True)
        state = {k: (v.float() if v.is_floating_point() else v).detach().cpu().contiguous() for k, v in self.flow.state_dict().items()}
        save_file(state, str(target / WEIGHTS_FILE))
        config = {"kind": self.kind, "dim": self.flow.dim, "weights": WEIGHTS_FILE, "flow_config": asdict(self.config)}
        if self.history is not None:  # NaN (nothing held out) is not JSON: stored as null
            config["history"] = {k: [None if math.isnan(v) else v for v in value] if isinstance(value, list) else value
                                 for k, value in asdict(self.history).items()}
        (target / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        return target

    @classmethod
    def load(cls, directory, input_dim: int | None = None) -> "FlowTransform":
        """The flow saved in directory/postprocess; input_dim: the hidden size of the encoder it will sit on."""
        target = Path(directory) / POSTPROCESS_DIR
        config_path = target / "config.json"
        if not config_path.is_file():
            raise SimCSELabError(f"no flow saved in {target}: {config_path.name} is missing")
        saved = read_model_json(config_path, "post-processing config")
        if saved.get("kind") != cls.kind:
            raise SimCSELabError(f"{config_path} holds a {saved.get('kind')!r} transform, not a flow")
        if not isinstance(saved.get("flow_config"), dict) or not isinstance(saved.get("dim"), int) or saved["dim"] < 2:
            raise SimCSELabError(f"{config_path} lacks the flow's settings (a \"flow_config\" object and its \"dim\"); fit and save the flow again")
        config = FlowConfig.from_options(**saved["flow_config"])
        check_input_dim("flow", saved["dim"], input_dim, config_path)
        weights = inside_directory(target, saved.get("weights", WEIGHTS_FILE), f"{config_path} (\"weights\")")
        if (problem := safetensors_problem(weights)) is not None:
            raise SimCSELabError(f"flow weights in {target}: {problem}; fit and save the flow again")
        flow = Flow(saved["dim"], config.num_layers, config.hidden_size, seed=config.seed)
        try:
            flow.load_state_dict(load_file(str(weights)))
        except RuntimeError as error:  # missing / unexpected keys or shapes: another flow's weights
            raise SimCSELabError(f"{weights} does not match the flow described in {config_path} "
                                 f"({str(error).splitlines()[0][:120]}); fit and save the flow again") from None
        history = None
        if "history" in saved:
            history = FlowHistory(**{k: [float("nan") if v is None else v for v in value] if isinstance(value, list) else value
                                     for k, value in saved["history"].items()})
        return cls(flow, config, history)
