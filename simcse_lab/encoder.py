"""SimCSEEncoder: a Hugging Face encoder + a SimCSE pooler, with encode / save / load.

What it loads (`SimCSEEncoder.from_pretrained`), in this order of precedence:
1. a directory saved by simcse_lab (it has `simcse_config.json`): the saved pooler and MLP head;
2. an official SimCSE checkpoint in HF format (name or path contains "simcse"): the MLP is stored
   as the BERT/RoBERTa pooler; "unsup" checkpoints use cls_before_pooler, the others cls + that MLP,
   exactly as the official `simcse/tool.py` does;
3. a sentence-transformers directory (it has `modules.json`): its Pooling mode (mean -> avg, cls ->
   cls_before_pooler);
4. any other HF encoder (BERT, RoBERTa, DistilBERT, MiniLM, ELECTRA, ...): pooler avg, the strongest
   raw pooling in the paper's analysis. Training from it uses whatever pooler you pass.

What it saves (`save_pretrained`): HF format (safetensors + config + tokenizer) that AutoModel loads
as is, a small `simcse_config.json`, a model card, and the sentence-transformers module files so
`SentenceTransformer(dir)` loads it with the right pooling. The MLP head, when there is one, is
stored in `2_Dense/` (sentence-transformers' Dense module) and mirrored into the BERT pooler weights
(official layout), so AutoModel's `pooler_output` equals the `cls` embedding.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
import pickle
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from .batches import collate, tokenized_slabs
from .bert_forward import POSITION_SCHEMES, bert_hidden_states, supports_own_forward, worth_packing
from .errors import SimCSELabError, SimCSELabTypeError, unknown_choice
from .pooling import FIRST_TOKEN_POOLERS, NEEDS_ALL_LAYERS, POOLERS, MLPHead, check_pooler, pool

__all__ = ["SimCSEEncoder", "POOLERS", "pick_device"]

SIMCSE_CONFIG = "simcse_config.json"
DENSE_DIR = "2_Dense"
BERT_FORWARDS = ("auto", "own", "transformers")  # SimCSEEncoder.bert_forward
# Config attribute names that hold dropout probabilities, across the supported architectures.
DROPOUT_ATTRIBUTES = ("hidden_dropout_prob", "attention_probs_dropout_prob", "dropout", "attention_dropout")


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """'auto'/None -> cuda if available, else mps, else cpu."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)


class SimCSEEncoder(nn.Module):
    """A sentence encoder: `forward` maps token ids to one vector per sentence, (B, D)."""

    def __init__(
        self,
        backbone: nn.Module,
        tokenizer,
        pooler: str = "cls",
        mlp_only_train: bool = False,
        mlp: MLPHead | None = None,
    ):
        super().__init__()
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.pooler = check_pooler(pooler)
        self.mlp_only_train = bool(mlp_only_train)
        if self.pooler == "cls" and mlp is None:
            mlp = MLPHead(self.hidden_size)
            std = getattr(backbone.config, "initializer_range", 0.02)
            nn.init.normal_(mlp.dense.weight, std=std)
            nn.init.zeros_(mlp.dense.bias)
        self.mlp = mlp
        self.postprocess: Callable[[torch.Tensor], torch.Tensor] | None = None
        self.bert_forward = "auto"

    # ------------------------------------------------------------------ properties
    @property
    def hidden_size(self) -> int:
        config = self.backbone.config
        return int(getattr(config, "hidden_size", None) or getattr(config, "dim"))

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def bert_forward(self) -> str:
        """Which BERT forward runs: "auto" (simcse_lab's own on the CPU, transformers' elsewhere), "own"
        (simcse_lab's on every device: no host syncs on a GPU) or "transformers". Both give the same
        hidden states (simcse_lab.bert_forward); models other than BERT and RoBERTa always run transformers'."""
        return self._bert_forward

    @bert_forward.setter
    def bert_forward(self, choice: str) -> None:
        if choice not in BERT_FORWARDS:
            raise unknown_choice("bert_forward", choice, BERT_FORWARDS)
        if choice == "own" and not supports_own_forward(self.backbone):
            raise SimCSELabError(f"bert_forward 'own' runs BERT and RoBERTa encoders only ({', '.join(POSITION_SCHEMES)}); this backbone is a "
                                 f"{type(self.backbone).__name__}: use 'auto' or 'transformers'")
        self._bert_forward = choice

    def runs_own_forward(self, device: torch.device) -> bool:
        """Whether a batch on `device` goes through simcse_lab's own BERT forward."""
        if self._bert_forward == "transformers" or torch.compiler.is_compiling() or not supports_own_forward(self.backbone):
            return False
        return self._bert_forward == "own" or device.type == "cpu"

    @property
    def uses_mlp(self) -> bool:
        """Whether the MLP head is applied now: always in training, at inference unless mlp_only_train."""
        return self.pooler == "cls" and self.mlp is not None and (self.training or not self.mlp_only_train)

    # ------------------------------------------------------------------ forward
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                token_positions: torch.Tensor | None = None) -> torch.Tensor:
        """input_ids, attention_mask: (B, T) -> sentence embeddings (B, H).

        token_positions: for simcse_lab's own forward off the CPU, the (N,) flat indices of the real tokens,
        computed on the host (`bert_forward.real_token_positions`); the batch then runs padding-free (packed)
        without a device sync. It needs a real token at position 0 of every row. Other paths ignore it."""
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        all_layers = self.pooler in NEEDS_ALL_LAYERS
        if self.runs_own_forward(input_ids.device):
            # packing reads the mask on the host: on the CPU that is free, on a GPU a sync, so a GPU batch packs
            # only with positions found on the host beforehand, and stays dense otherwise
            on_cpu = input_ids.device.type == "cpu"
            pack = token_positions is not None or (on_cpu and worth_packing(attention_mask))
            # the dense layout's [CLS] row is what BertModel gives at position 0 whatever is there; packed, it
            # must be a token (whoever passes token_positions checks that on the host)
            first_token_only = self.pooler in FIRST_TOKEN_POOLERS and (
                not pack or token_positions is not None or bool(attention_mask[:, 0].all()))
            states = bert_hidden_states(self.backbone, input_ids, attention_mask, token_type_ids, all_layers,
                                        pack=pack, first_token_only=first_token_only, token_positions=token_positions)
        else:
            out = self.backbone(**inputs, output_hidden_states=all_layers, return_dict=True)
            states = out.hidden_states if all_layers else (out.last_hidden_state,)
        z = pool(self.pooler, states, attention_mask)  # (B, H)
        return self.mlp(z) if self.uses_mlp else z

    @property
    def max_tokens(self) -> int:
        """The longest input the model takes (position embeddings; RoBERTa-style models reserve 2)."""
        config = self.backbone.config
        limit = getattr(config, "max_position_embeddings", None) or 512
        if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
            limit -= 2
        tokenizer_limit = getattr(self.tokenizer, "model_max_length", None)
        return min(limit, tokenizer_limit) if tokenizer_limit and tokenizer_limit < 100_000 else limit

    def tokenize(self, sentences: Sequence[str], max_length: int = 128):
        """Padded, truncated tensors for a list of sentences (longer ones are cut at max_length tokens,
        and never beyond what the model's position embeddings allow)."""
        return self.tokenizer(list(sentences), padding=True, truncation=True, max_length=min(max_length, self.max_tokens),
                              return_tensors="pt")

    # ------------------------------------------------------------------ encode
    def encode(
        self,
        sentences: str | Sequence[str],
        batch_size: int = 64,
        max_length: int = 128,
        normalize: bool = False,
        device: str | torch.device | None = None,
        show_progress: bool | None = None,
    ) -> torch.Tensor:
        """Embed sentences in eval mode. Returns a float32 CPU tensor (N, D) in the input order.

        A single string is treated as a list of one. Sentences longer than `max_length` tokens are
        truncated. Batches are formed after sorting by length (less padding) and the original order
        is restored. `show_progress=None` shows a bar for more than 10 batches. A post-processing
        transform (whitening, flow) attached as `encoder.postprocess` is applied last, before
        normalisation.
        """
        sentences = validate_sentences(sentences)
        device = pick_device(device) if device is not None else self.device
        if device != self.device:
            self.to(device)
        if not sentences:
            return torch.empty(0, self.output_dim)
        num_batches = -(-len(sentences) // batch_size)
        if show_progress is None:
            show_progress = num_batches > 10
        # Tokenise a slab of sentences (in threads: simcse_lab.tokenization), sort it by token length (least
        # padding), then run its batches. On a GPU the next slab is tokenised while this one runs, and pinned,
        # non-blocking copies let the GPU run ahead of the host.
        slab = batch_size * max(1, 16384 // batch_size)
        pin = device.type == "cuda"
        slabs = tokenized_slabs(self.tokenizer, sentences, slab, min(max_length, self.max_tokens), prefetch=device.type != "cpu")
        was_training = self.training
        self.eval()
        chunks, order = [], []
        try:
            with torch.inference_mode(), autocast_for(device), tqdm(total=num_batches, desc="encode", disable=not show_progress, leave=False) as bar:
                for start, column in slabs:
                    by_length = np.argsort(-column.lengths, kind="stable")
                    order.append(by_length + start)
                    for rows in np.split(by_length, range(batch_size, len(by_length), batch_size)):
                        input_ids, mask = collate([column], rows)  # (B, T) each, cut at the batch's longest sentence
                        if pin:
                            input_ids, mask = input_ids.pin_memory(), mask.pin_memory()
                        chunks.append(self(input_ids.to(device, non_blocking=True), mask.to(device, non_blocking=True)).float())
                        bar.update(1)
        finally:
            slabs.close()  # an error mid-way: the prefetching thread is joined here
            self.train(was_training)
        embeddings = torch.empty(len(sentences), chunks[0].shape[1], device=device)
        embeddings[torch.from_numpy(np.concatenate(order)).to(device)] = torch.cat(chunks)
        embeddings = embeddings.cpu()
        if self.postprocess is not None:
            embeddings = torch.as_tensor(self.postprocess(embeddings), dtype=torch.float32)
        if normalize:
            embeddings = torch.nn.functional.normalize(embeddings, dim=-1)
        return embeddings

    @property
    def output_dim(self) -> int:
        return self.hidden_size

    # ------------------------------------------------------------------ load
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        pooler: str | None = None,
        mlp_only_train: bool | None = None,
        device: str | torch.device | None = None,
        dropout: float | None = None,
        trust_remote_code: bool = False,
    ) -> "SimCSEEncoder":
        """Load an encoder (see the module docstring for what is recognised).

        pooler / mlp_only_train override what the checkpoint says. dropout, if given, sets every
        dropout probability of the backbone (the paper's Table 3 ablation). trust_remote_code is
        passed to transformers and is never turned on implicitly.
        """
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        name = str(name_or_path)
        local = Path(name).expanduser()
        is_local = local.is_dir()
        if not is_local and (local.exists() or name.startswith((".", "/", "~"))):
            raise SimCSELabError(f"model path {name!r} is not a directory holding a saved model; pass a model directory or a Hugging Face hub id")
        source = str(local) if is_local else name
        saved = read_json(local / SIMCSE_CONFIG) if is_local else None
        # the repository / directory name, not the whole path: ".../simcse_lab/data/models/x" is not official
        model_name = name.rstrip("/").split("/")[-1].lower()
        official = saved is None and "simcse" in model_name
        st_pooler = sentence_transformers_pooler(local) if is_local and saved is None else None

        with hub_errors(name), quiet_transformers():
            config = AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code)
            if dropout is not None:
                set_dropout(config, dropout)
            backbone = AutoModel.from_pretrained(source, config=config, trust_remote_code=trust_remote_code)
            tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
        backbone = backbone.float()

        if saved is not None:
            default_pooler, default_mlp_only = saved["pooler"], saved.get("mlp_only_train", False)
        elif official:
            default_pooler, default_mlp_only = ("cls_before_pooler" if "unsup" in model_name else "cls"), False
        elif st_pooler is not None:
            default_pooler, default_mlp_only = st_pooler, False
        else:
            default_pooler, default_mlp_only = "avg", False
        pooler = check_pooler(pooler or default_pooler)
        mlp_only_train = default_mlp_only if mlp_only_train is None else mlp_only_train

        mlp = None
        if saved is not None and saved.get("has_mlp") and (local / DENSE_DIR / "model.safetensors").exists():
            mlp = load_mlp(local / DENSE_DIR / "model.safetensors", config)
        elif official and pooler == "cls":
            mlp = mlp_from_backbone_pooler(backbone, name)
        encoder = cls(backbone, tokenizer, pooler=pooler, mlp_only_train=mlp_only_train, mlp=mlp)
        encoder.name_or_path = name
        encoder.training_config = (saved or {}).get("training", {})
        if is_local:
            from .postprocess import load_postprocess  # noqa: PLC0415  (optional, saved beside the encoder)

            encoder.postprocess = load_postprocess(local)
        return encoder.to(pick_device(device))

    # ------------------------------------------------------------------ save
    def save_pretrained(self, save_directory: str | os.PathLike, training: dict | None = None, max_seq_length: int = 128) -> Path:
        """Write HF format + simcse_config.json + sentence-transformers files + model card."""
        out = Path(save_directory)
        out.mkdir(parents=True, exist_ok=True)
        pooler_module = getattr(self.backbone, "pooler", None)
        if self.mlp is not None and pooler_module is not None and hasattr(pooler_module, "dense"):
            with torch.no_grad():  # official layout: the MLP lives in the BERT pooler
                pooler_module.dense.weight.copy_(self.mlp.dense.weight)
                pooler_module.dense.bias.copy_(self.mlp.dense.bias)
        with quiet_transformers():
            self.backbone.save_pretrained(out, safe_serialization=True)
        self.tokenizer.save_pretrained(out)
        if self.mlp is not None:
            save_mlp(self.mlp, out / DENSE_DIR)
        simcse_config = {
            "pooler": self.pooler,
            "mlp_only_train": self.mlp_only_train,
            "has_mlp": self.mlp is not None,
            "mlp_at_inference": self.pooler == "cls" and self.mlp is not None and not self.mlp_only_train,
            "max_seq_length": max_seq_length,
            "training": training or getattr(self, "training_config", {}) or {},
            "simcse_lab_version": __import__("simcse_lab").__version__,
        }
        write_json(out / SIMCSE_CONFIG, simcse_config)
        write_sentence_transformers_files(out, self.pooler, self.hidden_size, simcse_config["mlp_at_inference"], max_seq_length)
        from .model_card import write_model_card  # noqa: PLC0415

        write_model_card(out, simcse_config, name=getattr(self, "name_or_path", None))
        if self.postprocess is not None and hasattr(self.postprocess, "save"):
            self.postprocess.save(out)
        return out


# ---------------------------------------------------------------------- helpers
def validate_sentences(sentences) -> list[str]:
    """A list of str, or a clear error naming the first bad item."""
    if isinstance(sentences, str):
        sentences = [sentences]
    if sentences is None or not hasattr(sentences, "__iter__"):
        raise SimCSELabTypeError(f"encode expects a list of strings, got {type(sentences).__name__}")
    sentences = list(sentences)
    for i, s in enumerate(sentences):
        if not isinstance(s, str):
            raise SimCSELabTypeError(
                f"encode expects a list of strings, but item {i} is {type(s).__name__} ({s!r:.60}); convert it with str() or drop it"
            )
        try:  # the tokenizer's own error for a lone surrogate ("TextEncodeInput must be ...") names neither item nor fix
            s.encode("utf-8")
        except UnicodeEncodeError:
            raise SimCSELabError(f"item {i} ({s!r:.60}) is not valid Unicode (it holds a lone surrogate); "
                                 "clean it with s.encode('utf-8', 'replace').decode('utf-8')") from None
    return sentences


def autocast_for(device: torch.device):
    """bf16 autocast on CUDA for inference; a no-op elsewhere (CPU results stay fp32-exact)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)


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


class hub_errors:
    """Turn a failed hub/network load into one message that says how to work offline."""

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
        if exc is None or not isinstance(exc, (OSError, ValueError)) or isinstance(exc, SimCSELabError):
            return False
        raise SimCSELabError(
            f"could not load model {self.name!r} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}). "
            "If you are offline: pass a local model directory (for example simcse_lab.DEFAULT_MODEL, the "
            "embedded default encoder), or download once with internet and set HF_HUB_OFFLINE=1 to use the cache."
        ) from exc


def read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def sentence_transformers_pooler(directory: Path) -> str | None:
    """The simcse_lab pooler matching a sentence-transformers Pooling config, if there is one."""
    config = read_json(directory / "1_Pooling" / "config.json")
    if config is None:
        return None
    if config.get("pooling_mode_cls_token"):
        return "cls_before_pooler"
    return "avg"


def load_mlp(path: Path, config) -> MLPHead:
    state = load_file(str(path))
    mlp = MLPHead(state["linear.weight"].shape[0])
    mlp.dense.weight.data.copy_(state["linear.weight"])
    mlp.dense.bias.data.copy_(state["linear.bias"])
    return mlp


def save_mlp(mlp: MLPHead, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    size = mlp.dense.weight.shape[0]
    save_file({"linear.weight": mlp.dense.weight.detach().cpu().contiguous(), "linear.bias": mlp.dense.bias.detach().cpu().contiguous()},
              str(directory / "model.safetensors"))
    write_json(directory / "config.json", {"in_features": size, "out_features": size, "bias": True,
                                           "activation_function": "torch.nn.modules.activation.Tanh"})


def mlp_from_backbone_pooler(backbone: nn.Module, name: str) -> MLPHead:
    pooler_module = getattr(backbone, "pooler", None)
    if pooler_module is None or not hasattr(pooler_module, "dense"):
        raise SimCSELabError(f"{name!r} looks like an official SimCSE checkpoint but has no pooler weights to use as the MLP; pass pooler='cls_before_pooler'")
    mlp = MLPHead(pooler_module.dense.weight.shape[0])
    mlp.load_state_dict({"dense.weight": pooler_module.dense.weight.detach().clone(), "dense.bias": pooler_module.dense.bias.detach().clone()})
    return mlp


ST_POOLING_MODES = {"cls": "cls", "cls_before_pooler": "cls", "avg": "mean"}


def write_sentence_transformers_files(out: Path, pooler: str, hidden_size: int, dense_at_inference: bool, max_seq_length: int) -> None:
    """modules.json + 1_Pooling so that sentence-transformers loads the model without converters.

    sentence-transformers' Pooling has no layer-averaging mode, so for avg_top2 / avg_first_last the
    files are not written (simcse_lab and AutoModel still load the directory).
    """
    mode = ST_POOLING_MODES.get(pooler)
    if mode is None:
        return
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if dense_at_inference:
        modules.append({"idx": 2, "name": "2", "path": DENSE_DIR, "type": "sentence_transformers.models.Dense"})
    (out / "modules.json").write_text(json.dumps(modules, indent=2) + "\n")
    write_json(out / "sentence_bert_config.json", {"max_seq_length": max_seq_length, "do_lower_case": False})
    write_json(out / "1_Pooling" / "config.json", {
        "word_embedding_dimension": hidden_size,
        "pooling_mode_cls_token": mode == "cls",
        "pooling_mode_mean_tokens": mode == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": False,
        "include_prompt": True,
    })
