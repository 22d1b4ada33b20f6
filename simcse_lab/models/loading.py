"""What `SimCSEEncoder.from_pretrained` recognises, and how it chooses the pooler.

The pooler is taken from the first of these that applies, and the encoder records which one
(`encoder.pooler_reason`):
1. a directory saved by simcse_lab (it has `simcse_config.json`): the saved pooler and MLP head (and the
   prompt template of the mask pooler);
2. a sentence-transformers directory (`1_Pooling/config.json`): its pooling mode (mean -> avg,
   cls -> cls_before_pooler);
3. an official SimCSE checkpoint, recognised by its name as the official `simcse/tool.py` does
   ("simcse" in the repository or directory name, and nothing saved that says otherwise): "unsup"
   checkpoints use cls_before_pooler, the others cls with the MLP stored as the BERT/RoBERTa pooler;
4. any other Hugging Face encoder (BERT, RoBERTa, DistilBERT, MiniLM, ELECTRA, ...): avg, the
   strongest raw pooling in the paper's analysis. Training from it uses whatever pooler you pass.
A pooler passed by the caller overrides all of them.

The `cls` pooler's MLP head, at inference, is what the official `evaluation.py` and `simcse/tool.py`
read as `pooler_output`: the head saved by simcse_lab, else the checkpoint's own pretrained pooler
(BERT's, RoBERTa's, a sentence-transformers model converted from BERT). A checkpoint without pooler
weights (an MLM checkpoint, such as the embedded default encoder) has no such head: there `cls` is the
[CLS] state through an untrained Linear + tanh drawn from a fixed seed (deterministic; transformers
would draw it afresh on every load), so `cls_before_pooler` is the meaningful [CLS] pooler of such a
model. Training is different: `fresh_mlp=True` (what the trainer passes, except when resuming) starts
from a newly initialised head whatever the checkpoint holds, as the official `cl_init` does.
"""

from __future__ import annotations

import dataclasses
import pickle
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from ..errors import SimCSELabError
from .device import pick_device
from .files import DENSE_DIR, SIMCSE_CONFIG, check_model_directory, read_model_json
from .pooling import MLPHead, check_pooler

ST_POOLING_CONFIG = "1_Pooling/config.json"
# Config attribute names that hold dropout probabilities, across the supported architectures.
DROPOUT_ATTRIBUTES = ("hidden_dropout_prob", "attention_probs_dropout_prob", "dropout", "attention_dropout")
UNTRAINED_HEAD_SEED = 0  # the cls head of a checkpoint without pooler weights is drawn from this seed


@dataclass(frozen=True)
class PoolerChoice:
    pooler: str
    mlp_only_train: bool
    reason: str  # said to the user: where the choice came from
    official: bool = False  # recognised as an official SimCSE checkpoint: its MLP is the backbone's pooler


def load_encoder(cls, name_or_path, pooler=None, mlp_only_train=None, device=None, dropout=None, trust_remote_code=False,
                 bert_forward="auto", fresh_mlp=False):
    """`cls.from_pretrained`'s body (cls: SimCSEEncoder or a subclass); see the module docstring."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer  # noqa: PLC0415

    name = str(name_or_path)
    local = Path(name).expanduser()
    is_local = local.is_dir()
    if not is_local and (local.exists() or name.startswith((".", "/", "~"))):
        raise SimCSELabError(f"model path {name!r} is not a directory holding a saved model; pass a model directory or a Hugging Face hub id")
    source = str(local) if is_local else name
    saved = check_model_directory(local) if is_local else None  # a damaged directory fails before anything loads
    device = pick_device(device)  # a bad device fails before the weights load

    with hub_errors(name), quiet_transformers():
        config = AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code)
        if dropout is not None:
            set_dropout(config, dropout)
        backbone, loading_info = AutoModel.from_pretrained(source, config=config, trust_remote_code=trust_remote_code,
                                                           output_loading_info=True)
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    check_tokenizer(tokenizer, backbone, name)
    backbone = backbone.float()

    choice = choose_pooler(name, local if is_local else None, saved, pooler, mlp_only_train)
    mlp = None  # with fresh_mlp, SimCSEEncoder draws a new cls head from the global RNG (which the trainer has seeded)
    saved_head = local / DENSE_DIR / "model.safetensors" if saved is not None and saved.get("has_mlp") else None
    if saved_head is not None and saved_head.exists() and (fresh_mlp or choice.pooler != "cls"):
        load_mlp(saved_head, hidden_size(config))  # unused here, but a damaged model directory fails the same way everywhere
    if choice.pooler == "cls" and not fresh_mlp:
        if saved_head is not None and saved_head.exists():
            mlp = load_mlp(saved_head, hidden_size(config))
        else:
            mlp, head = head_from_checkpoint(backbone, loading_info.get("missing_keys", ()), name, choice.official)
            choice = dataclasses.replace(choice, reason=f"{choice.reason}; cls head: {head}")
    postprocess = None
    if is_local:
        from .postprocess import load_postprocess  # noqa: PLC0415  (optional, saved beside the encoder)

        postprocess = load_postprocess(local, hidden_size(config))
    encoder = cls(backbone, tokenizer, pooler=choice.pooler, mlp_only_train=choice.mlp_only_train, mlp=mlp,
                  postprocess=postprocess, prompt=(saved or {}).get("prompt_template"), bert_forward=bert_forward, name_or_path=name,
                  training_config=(saved or {}).get("training", {}), pooler_reason=choice.reason)
    return encoder.to(device)


def choose_pooler(name: str, local: Path | None, saved: dict | None, pooler: str | None,
                  mlp_only_train: bool | None) -> PoolerChoice:
    """The pooler to use and why (module docstring): the caller's, else the saved configuration, else the name."""
    if saved is not None:
        default = PoolerChoice(saved["pooler"], bool(saved.get("mlp_only_train", False)), f"saved by simcse_lab ({SIMCSE_CONFIG})")
    elif local is not None and (st_pooler := sentence_transformers_pooler(local)) is not None:
        default = PoolerChoice(st_pooler, False, f"sentence-transformers pooling config ({ST_POOLING_CONFIG})")
    elif "simcse" in (model_name := name.rstrip("/").split("/")[-1].lower()):
        # the repository / directory name, not the whole path: ".../simcse_lab/data/models/x" is not official
        default = PoolerChoice("cls_before_pooler" if "unsup" in model_name else "cls", False,
                               "official SimCSE checkpoint name ('unsup' -> cls_before_pooler, else cls with its MLP)", official=True)
    else:
        default = PoolerChoice("avg", False, "no saved pooling configuration: avg (mean of the last layer's tokens)")
    if pooler is None and mlp_only_train is None:
        return default
    chosen = check_pooler(pooler or default.pooler)
    reason = default.reason if pooler is None or pooler == default.pooler else f"given by the caller (the checkpoint says {default.pooler})"
    return PoolerChoice(chosen, default.mlp_only_train if mlp_only_train is None else bool(mlp_only_train), reason, default.official)


def set_dropout(config, p: float) -> None:
    if not 0.0 <= p < 1.0:
        raise SimCSELabError(f"dropout must be in [0, 1), got {p}")
    for attribute in DROPOUT_ATTRIBUTES:
        if hasattr(config, attribute):
            setattr(config, attribute, p)


@contextmanager
def quiet_transformers():
    """Hide transformers' per-load progress bars and load reports (an MLM checkpoint loaded as an
    encoder always "misses" the pooler and has "unexpected" LM-head weights: expected, not news)."""
    from transformers.utils import logging as hf_logging  # noqa: PLC0415

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


# What transformers' and huggingface_hub's messages say when the hub could not be reached or has no such repo.
HUB_TROUBLE = ("connect", "offline", "huggingface.co", "not a valid model identifier", "internet", "resolve", "Repository Not Found")


class hub_errors:
    """Turn a failed load into one message: offline / hub trouble gets the offline advice, a damaged or
    foreign directory says what it is."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if isinstance(exc, pickle.UnpicklingError):  # transformers loads .bin weights with weights_only=True
            raise SimCSELabError(
                f"refused to load model {self.name!r}: its pytorch_model.bin holds pickled objects other than tensors, "
                "which could run code. Use a safetensors checkpoint, or convert it yourself only if you trust its source."
            ) from None
        if isinstance(exc, RuntimeError) and any(m in str(exc) for m in ("mismatched_sizes", "size mismatch")):
            raise SimCSELabError(f"could not load model {self.name!r}: its weights do not have the shapes its config.json "
                                 "describes (a hidden-size or vocabulary mismatch), so the two files belong to different "
                                 "models; copy the config.json that was saved with these weights") from None
        damaged_weights = type(exc).__name__ == "SafetensorError"  # safetensors' own class, not an OSError
        if exc is None or not (isinstance(exc, (OSError, ValueError)) or damaged_weights) or isinstance(exc, SimCSELabError):
            return False
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        if isinstance(exc, OSError) and any(marker.lower() in str(exc).lower() for marker in HUB_TROUBLE):
            raise SimCSELabError(
                f"could not load model {self.name!r} ({type(exc).__name__}: {detail}). "
                "If you are offline: pass a local model directory (for example simcse_lab.DEFAULT_MODEL, the "
                "embedded default encoder), or download once with internet and set HF_HUB_OFFLINE=1 to use the cache."
            ) from exc
        raise SimCSELabError(f"could not load model {self.name!r} ({type(exc).__name__}: {detail}); a model directory needs "
                             "config.json, the weights (model.safetensors) and the tokenizer files") from exc


def hidden_size(config) -> int:
    return int(getattr(config, "hidden_size", None) or getattr(config, "dim"))


def check_tokenizer(tokenizer, backbone: nn.Module, name: str) -> None:
    """A tokenizer with no vocabulary (a directory without tokenizer files loads one of just the special tokens:
    every word becomes [UNK]) or with ids past the embedding table is refused."""
    special = set(getattr(tokenizer, "all_special_ids", ()) or ())
    if len(tokenizer) - len(special) <= 1:
        raise SimCSELabError(f"model {name!r} has no tokenizer vocabulary (its tokenizer holds only the special tokens "
                             f"{', '.join(getattr(tokenizer, 'all_special_tokens', []))}): the tokenizer files (tokenizer.json, "
                             "vocab.txt, ...) are missing. Copy them from the model it was trained from")
    embeddings = backbone.get_input_embeddings() if hasattr(backbone, "get_input_embeddings") else None
    rows = getattr(embeddings, "num_embeddings", None)
    if rows is not None and len(tokenizer) > rows:
        raise SimCSELabError(f"model {name!r}: its tokenizer has {len(tokenizer)} tokens but the model's embedding table only "
                             f"{rows} rows, so these are not each other's files; use the tokenizer the model was trained with")


def sentence_transformers_pooler(directory: Path) -> str | None:
    """The simcse_lab pooler matching a sentence-transformers Pooling config, if there is one."""
    if not (directory / ST_POOLING_CONFIG).is_file():
        return None
    config = read_model_json(directory / ST_POOLING_CONFIG, "sentence-transformers pooling config")
    if config.get("pooling_mode_cls_token"):
        return "cls_before_pooler"
    return "avg"


def load_mlp(path: Path, hidden_size: int) -> MLPHead:
    """The MLP head saved in 2_Dense/ (sentence-transformers' Dense layout), which must fit the encoder's hidden size."""
    state = load_file(str(path))
    shapes = {key: tuple(state[key].shape) for key in ("linear.weight", "linear.bias") if key in state}
    if shapes != {"linear.weight": (hidden_size, hidden_size), "linear.bias": (hidden_size,)}:
        raise SimCSELabError(f"{path} does not hold an MLP head for this encoder (hidden size {hidden_size}): it has {shapes or 'no linear.* tensors'}; "
                             "it belongs to another model. Save the model again")
    mlp = MLPHead(hidden_size)
    mlp.dense.weight.data.copy_(state["linear.weight"])
    mlp.dense.bias.data.copy_(state["linear.bias"])
    return mlp


def head_from_checkpoint(backbone: nn.Module, missing_keys, name: str, official: bool) -> tuple[MLPHead, str]:
    """The cls pooler's inference head (module docstring) and what it is: the checkpoint's pretrained pooler
    (`pooler_output`, as the official evaluation.py and tool read it), or, without pooler weights, an untrained
    head drawn from a fixed seed."""
    pooler_module = getattr(backbone, "pooler", None)
    has_module = pooler_module is not None and isinstance(getattr(pooler_module, "dense", None), nn.Linear)
    loaded = has_module and not any(key.split(".")[0] == "pooler" or ".pooler." in f".{key}" for key in missing_keys)
    if loaded:
        mlp = MLPHead(pooler_module.dense.weight.shape[0])
        with torch.no_grad():
            mlp.dense.weight.copy_(pooler_module.dense.weight)
            mlp.dense.bias.copy_(pooler_module.dense.bias)
        return mlp, "the checkpoint's pretrained pooler (its pooler_output)"
    if official:
        raise SimCSELabError(f"{name!r} looks like an official SimCSE checkpoint but has no pooler weights to use as the MLP; "
                             "pass pooler='cls_before_pooler'")
    config = backbone.config
    mlp = MLPHead(int(getattr(config, "hidden_size", None) or getattr(config, "dim")))
    generator = torch.Generator().manual_seed(UNTRAINED_HEAD_SEED)
    with torch.no_grad():
        mlp.dense.weight.normal_(0.0, getattr(config, "initializer_range", 0.02), generator=generator)
        mlp.dense.bias.zero_()
    return mlp, (f"the checkpoint has no pooler weights, so an untrained Linear+tanh drawn from seed {UNTRAINED_HEAD_SEED} "
                 "(cls_before_pooler is the bare [CLS] state)")


__all__ = ["load_encoder", "choose_pooler", "PoolerChoice", "SIMCSE_CONFIG", "DENSE_DIR", "hub_errors", "quiet_transformers",
           "set_dropout"]
