"""Training settings: one dataclass whose fields are the official SimCSE train.py flags.

Every field has a one-line comment (it is the `--help` text) and a checked type; numeric fields are
range-checked in `BOUNDS`, choices in `__post_init__`, so a bad setting fails with one line before
any model or data is loaded.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from ..augment import AUGMENTATIONS
from ..errors import SimCSELabError, unknown_choice
from ..models.encoder import BERT_FORWARDS
from ..models.pooling import check_pooler
from ..models.prompt import DEFAULT_TEMPLATE, SECOND_TEMPLATE, check_template
from ..paths import DEFAULT_MODEL
from ..settings import Bounds, check_fields
from .schedule import SCHEDULES
from .followup_objectives import METHODS

OBJECTIVES = ("auto", "simcse", "sbert")
ON_NONFINITE = ("stop", "skip")
# torch.compile's modes. reduce-overhead replays each compiled graph as a CUDA graph (one per batch width, so at
# most four at max_seq_length 32): the kernel launches of a step cost one replay, which is what a small batch on a
# GPU is bound by. On a CPU it compiles as default.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")  # the modes that replay CUDA graphs on a GPU

POSITIVE = Bounds(0, low_open=True)
NON_NEGATIVE = Bounds(0)
SHARE = Bounds(0, 1)
BOUNDS = {
    "temp": POSITIVE,
    "hard_negative_weight": Bounds(),
    "max_seq_length": Bounds(2, why="[CLS] and [SEP] take two tokens"),
    "per_device_train_batch_size": Bounds(2, why="contrastive learning needs in-batch negatives"),
    "gradient_cache_chunk_size": NON_NEGATIVE,
    "learning_rate": POSITIVE,
    "num_train_epochs": POSITIVE,
    "max_steps": Bounds(1, also=(-1, 0)),
    "warmup_ratio": SHARE,
    "weight_decay": NON_NEGATIVE,
    "max_grad_norm": NON_NEGATIVE,
    "gradient_accumulation_steps": Bounds(1),
    "warmup_steps": NON_NEGATIVE,
    "adam_beta1": Bounds(0, 1, high_open=True),
    "adam_beta2": Bounds(0, 1, high_open=True),
    "adam_epsilon": NON_NEGATIVE,
    "mlm_probability": Bounds(0, 1, low_open=True, high_open=True),
    "preprocessing_num_workers": Bounds(1),
    "eval_steps": NON_NEGATIVE,
    "save_steps": NON_NEGATIVE,
    "save_total_limit": NON_NEGATIVE,
    "logging_steps": Bounds(1),
    "seed": Bounds(0, 2**32 - 1, why="numpy's seed range"),
    "mlm_weight": NON_NEGATIVE,
    "dropout": Bounds(0, 1, high_open=True),
    "augmentation_ratio": SHARE,
    "max_train_samples": Bounds(1),
    "eval_max_pairs": Bounds(2),
    "geometry_snapshots": Bounds(2, also=(0,), why="uniformity needs two sentences"),
    "dup_rate": SHARE,
    "queue_size": NON_NEGATIVE,
    "momentum": Bounds(0, 1, high_open=True, why="1 would never update the momentum encoder"),
    "mix_lambda": SHARE,
    "arc_margin": Bounds(0, 90, why="an angle in degrees"),
}


@dataclass
class TrainConfig:
    """Training settings. Names follow the official SimCSE train.py flags (and the HF TrainingArguments it takes).
    Defaults that differ from the official ones say so in their comment (= their --help)."""

    model_name_or_path: str = DEFAULT_MODEL  # HF hub id or local dir; the embedded default works offline
    train_file: str = ""  # .txt = unsupervised; .csv/.json(l) with sent0,sent1[,hard_neg] = supervised; sent0,sent1,label = SBERT
    output_dir: str = "outputs/simcse"  # checkpoints go in output_dir/checkpoint-<step>/, the best model in output_dir
    objective: str = "auto"  # auto (from the file) | simcse | sbert
    pooler_type: str | None = None  # cls | cls_before_pooler | avg | avg_top2 | avg_first_last; None = cls (SimCSE, official) or avg (SBERT)
    mlp_only_train: bool = False  # use the MLP head in training only (paper: unsupervised setting)
    temp: float = 0.05  # InfoNCE temperature (sentence-transformers scale = 1/temp)
    hard_negative_weight: float = 0.0  # log(alpha) added to each sentence's own hard-negative logit
    max_seq_length: int = 32  # longer sentences are truncated (paper: 32)
    per_device_train_batch_size: int = 64  # sentences per step per device (paper: 64 unsup, 512 sup; HF default 8)
    gradient_cache_chunk_size: int = 0  # 0 = off; else embed in chunks of this many sentences (cached loss: big batches in fixed memory)
    learning_rate: float = 3e-5  # peak learning rate (paper: 3e-5 unsup BERT-base, 5e-5 sup; HF default 5e-5)
    num_train_epochs: float = 1.0  # used when max_steps <= 0 (paper: 1 unsup, 3 sup; HF default 3)
    max_steps: int = -1  # > 0 overrides num_train_epochs
    warmup_ratio: float = 0.0  # fraction of steps with linear warm-up (official: 0)
    weight_decay: float = 0.0  # AdamW weight decay (HF Trainer default)
    max_grad_norm: float = 1.0  # gradient clipping (HF Trainer default)
    gradient_accumulation_steps: int = 1  # batches per optimiser step; NOT more in-batch negatives (each batch's loss sees its own): --gradient_cache_chunk_size for a big batch's loss
    warmup_steps: int = 0  # linear warm-up steps; > 0 overrides warmup_ratio (HF)
    lr_scheduler_type: str = "linear"  # linear | constant | constant_with_warmup | cosine (HF's schedules of those names)
    adam_beta1: float = 0.9  # AdamW beta1 (HF default)
    adam_beta2: float = 0.999  # AdamW beta2 (HF default)
    adam_epsilon: float = 1e-8  # AdamW epsilon (HF default)
    dataloader_drop_last: bool = True  # drop each epoch's last incomplete batch (HF default: keep it, a batch with fewer in-batch negatives)
    pad_to_max_length: bool = False  # pad every batch to max_seq_length (official: a memory test; the numbers do not change)
    preprocessing_num_workers: int | None = None  # threads that tokenise the training file (None: every core)
    eval_steps: int = 125  # evaluate on STS-B dev every N steps (0 = never); the official scripts pass 125
    eval_at_start: bool = True  # also score STS-B dev before the first step (the raw encoder: step 0 of the curves; never the selected model)
    save_steps: int = 0  # checkpoint every N steps (0 = at every evaluation; HF default 500)
    save_total_limit: int = 2  # keep this many newest checkpoints (0 = all; HF default: all)
    logging_steps: int = 10  # record the mean loss every N steps (HF default 500)
    seed: int = 42  # seeds python, numpy, torch and the data order
    bf16: bool = False  # bf16 autocast (CUDA, or CPUs with native bf16: faster; rounding moves the numbers a little)
    fp16: bool = False  # fp16 autocast + grad scaling (CUDA only)
    torch_compile: bool = False  # torch.compile the encoder (dynamic=False; batch widths padded to a multiple of 8)
    torch_compile_mode: str = "default"  # with torch_compile: default | reduce-overhead (CUDA graphs) | max-autotune | max-autotune-no-cudagraphs
    bert_forward: str = "auto"  # auto (simcse_lab's own BERT forward on the CPU) | own (on every device: no host syncs on a GPU) | transformers
    do_mlm: bool = False  # auxiliary MLM loss (paper: Appendix, hurts STS slightly)
    mlm_weight: float = 0.1  # lambda of the auxiliary MLM loss
    mlm_probability: float = 0.15  # share of tokens the auxiliary MLM masks (official default)
    dropout: float | None = None  # override every dropout probability of the encoder (paper Table 3)
    augmentation: str = "none"  # unsup only: none | crop | word_deletion | delete_one_word (paper Table 1) | same_mask (one dropout mask for both views, Table 3)
    augmentation_ratio: float = 0.1  # crop / deletion ratio for the augmentations above
    method: str = "simcse"  # simcse | esimcse | mixcse | arccse | promptbert: a follow-up of SimCSE (unsup; simcse_lab.training.followup_objectives)
    dup_rate: float = 0.32  # esimcse: the largest share of a sentence's tokens repeated in its positive (official run.sh: 0.32)
    queue_size: int = 160  # esimcse: momentum-encoded negatives kept from earlier batches (official: 160 = 2.5 x batch 64)
    momentum: float = 0.995  # esimcse: the momentum encoder's EMA weight, theta_m <- m theta_m + (1 - m) theta (official: 0.995)
    mix_lambda: float = 0.2  # mixcse: the positive's weight in each mixed hard negative (official: 0.2)
    arc_margin: float = 10.0  # arccse: the angular margin on the positive, in degrees (10 = pi/18)
    prompt_template: str = DEFAULT_TEMPLATE  # promptbert: the first view's template and the one the saved model embeds with
    prompt_template2: str = SECOND_TEMPLATE  # promptbert: the second view's template
    template_denoising: bool = True  # promptbert: subtract each template's own [MASK] state in training (PromptBERT's unsup objective)
    resume_from_checkpoint: str | None = None  # a checkpoint dir, or "auto" for the newest in output_dir
    overwrite_output_dir: bool = False  # allow an output_dir that already holds files
    data_dir: str | None = None  # where STS-B dev is read; default $SIMCSE_LAB_DATA, else the hub
    device: str = "auto"  # auto | cpu | cuda | cuda:1 | mps
    on_nonfinite: str = "stop"  # what a NaN/inf loss does: stop (keep the last good checkpoint) or skip the batch
    max_train_samples: int | None = None  # use only the first N rows of the train file (quick runs)
    eval_max_pairs: int | None = None  # evaluate on the first N STS-B dev pairs only (smoke runs)
    geometry_snapshots: int = 512  # STS-B dev sentences whose fp16 embeddings are kept at each evaluation, for explore's replay (0 = off)
    show_progress: bool = True  # tqdm progress bar

    def __post_init__(self):
        check_fields(self, BOUNDS, "training setting")
        if self.objective not in OBJECTIVES:
            raise unknown_choice("objective", self.objective, OBJECTIVES)
        if self.on_nonfinite not in ON_NONFINITE:
            raise unknown_choice("on_nonfinite mode", self.on_nonfinite, ON_NONFINITE)
        if self.bf16 and self.fp16:
            raise SimCSELabError("choose one of bf16 and fp16")
        if self.gradient_cache_chunk_size and self.do_mlm:
            raise SimCSELabError("gradient_cache_chunk_size does not combine with do_mlm; turn one of them off")
        # checked here, not when the model loads, so a typo fails before output_dir is created
        if self.pooler_type is not None:
            check_pooler(self.pooler_type)
        if self.mlp_only_train and self.pooler_type not in (None, "cls"):
            raise SimCSELabError(f"mlp_only_train applies to the cls pooler's MLP head; pooler_type {self.pooler_type!r} has no head")
        if self.augmentation not in AUGMENTATIONS:
            raise unknown_choice("augmentation", self.augmentation, AUGMENTATIONS)
        self.check_method()
        if self.bert_forward not in BERT_FORWARDS:
            raise unknown_choice("bert_forward", self.bert_forward, BERT_FORWARDS)
        if self.lr_scheduler_type not in SCHEDULES:
            raise unknown_choice("lr_scheduler_type", self.lr_scheduler_type, SCHEDULES)
        if self.torch_compile_mode not in COMPILE_MODES:
            raise unknown_choice("torch_compile_mode", self.torch_compile_mode, COMPILE_MODES)
        if self.torch_compile_mode != "default" and not self.torch_compile:
            raise SimCSELabError(f"torch_compile_mode {self.torch_compile_mode!r} needs torch_compile on (--torch_compile)")
        if not self.train_file:
            raise SimCSELabError("train_file is required (--train_file: a .txt of sentences or a .csv of pairs/triplets)")

    def check_method(self) -> None:
        """A follow-up method trains the SimCSE objective alone; PromptBERT's pooler is the template's [MASK]."""
        if self.method not in METHODS:
            raise unknown_choice("method", self.method, METHODS)
        if self.method == "simcse":
            if self.pooler_type == "mask":
                raise SimCSELabError("the mask pooler (a prompt's [MASK] state) trains with --method promptbert")
            return
        for name, value, off in (("objective", self.objective, "auto or simcse"), ("augmentation", self.augmentation, "none"),
                                 ("do_mlm", self.do_mlm, "off"), ("gradient_cache_chunk_size", self.gradient_cache_chunk_size, "0")):
            if value not in (False, 0, "none", "auto", "simcse"):
                raise SimCSELabError(f"--method {self.method} does not combine with {name} {value!r}; leave {name} {off}")
        if self.method == "promptbert":
            check_template(self.prompt_template)
            check_template(self.prompt_template2)
            if self.pooler_type not in (None, "mask"):
                raise SimCSELabError(f"--method promptbert embeds with the mask pooler (its template's [MASK] state); "
                                     f"pooler_type {self.pooler_type!r} does not apply: leave it out")
            self.pooler_type = "mask"
        elif self.pooler_type == "mask":
            raise SimCSELabError("the mask pooler (a prompt's [MASK] state) trains with --method promptbert")

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Build from a dict (a JSON/YAML recipe); unknown keys fail loudly."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SimCSELabError(f"unknown training setting(s) {unknown}; valid settings are: {', '.join(sorted(known))}")
        return cls(**values)

    def recipe(self) -> dict:
        """The settings as a JSON-able dict (what metrics.json, checkpoints and the model card record)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "show_progress"}


def check_precision_device(config: TrainConfig) -> None:
    """fp16 (autocast with loss scaling) runs on CUDA only: say so before the data and model load, as the
    official run_unsup_example.sh passes --fp16."""
    if not config.fp16:
        return
    if not torch.cuda.is_available():
        raise SimCSELabError(f"--fp16 needs a CUDA GPU and this machine has none (torch {torch.__version__}); drop --fp16 "
                             "(or pass --fp16 False) to train in fp32, or use --bf16 on a CPU with bf16 support")
    if not (config.device == "auto" or config.device.startswith("cuda")):
        raise SimCSELabError(f"--fp16 needs a CUDA device, but --device is {config.device!r}; drop --fp16 or use --device cuda")
