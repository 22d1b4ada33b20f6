"""SimCSEEncoder: a Hugging Face encoder + a SimCSE pooler, with encode / save / load.

`forward` maps token ids to one vector per sentence; `encode` does the same for sentences, in
length-sorted batches. Loading (what a directory or hub id is recognised as) lives in
`simcse_lab.models.loading`, the files written by `save_pretrained` in `simcse_lab.models.saving`.
"""

from __future__ import annotations

import os
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..errors import SimCSELabError, SimCSELabTypeError, unknown_choice
from .batches import TokenizedColumn, collate, tokenized_slabs
from .bert_forward import POSITION_SCHEMES, bert_hidden_states, supports_own_forward, worth_packing
from .device import autocast_for, pick_device
from .pooling import FIRST_TOKEN_POOLERS, NEEDS_ALL_LAYERS, POOLERS, MLPHead, check_pooler, pool
from .prompt import DEFAULT_TEMPLATE, PromptTemplate

__all__ = ["SimCSEEncoder", "POOLERS", "BERT_FORWARDS"]

BERT_FORWARDS = ("auto", "own", "transformers")  # SimCSEEncoder.bert_forward


class SimCSEEncoder(nn.Module):
    """A sentence encoder: `forward` maps token ids to one vector per sentence, (B, D).

    backbone, tokenizer: a Hugging Face encoder and its tokenizer.
    pooler: one of POOLERS (simcse_lab.models.pooling); with "cls" an MLP head (Linear + tanh) sits on
        the [CLS] state, freshly initialised unless `mlp` is given; mlp_only_train drops it at inference.
    postprocess: an encode-time transform (whitening, flow: simcse_lab.models.postprocess) or None.
    prompt: with the "mask" pooler (PromptBERT), the template every sentence is read through: a
        PromptTemplate or its text (simcse_lab.models.prompt; default DEFAULT_TEMPLATE); ignored otherwise.
    bert_forward: "auto" | "own" | "transformers" (see the property); onednn: the own CPU forward's
        linear layers through oneDNN (False: torch's default BLAS, for comparisons).
    name_or_path, training_config, pooler_reason: where the encoder came from, how it was trained (saved
        again with it) and why it has this pooler.
    """

    def __init__(
        self,
        backbone: nn.Module,
        tokenizer,
        pooler: str = "cls",
        mlp_only_train: bool = False,
        mlp: MLPHead | None = None,
        *,
        postprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
        prompt: PromptTemplate | str | None = None,
        bert_forward: str = "auto",
        onednn: bool = True,
        name_or_path: str | None = None,
        training_config: dict | None = None,
        pooler_reason: str = "given",
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
        self.postprocess = postprocess
        self.prompt = None
        if self.pooler == "mask":
            self.prompt = prompt if isinstance(prompt, PromptTemplate) else PromptTemplate.from_text(prompt or DEFAULT_TEMPLATE, tokenizer)
        self.bert_forward = bert_forward
        self.onednn = bool(onednn)
        self.name_or_path = name_or_path
        self.training_config = dict(training_config or {})
        self.pooler_reason = pooler_reason  # why this pooler (simcse_lab.models.loading.choose_pooler)

    # ------------------------------------------------------------------ properties
    @property
    def hidden_size(self) -> int:
        config = self.backbone.config
        return int(getattr(config, "hidden_size", None) or getattr(config, "dim"))

    @property
    def output_dim(self) -> int:
        """The size of what `encode` returns: the hidden size, or what a post-processing keeps."""
        return int(getattr(self.postprocess, "output_dim", None) or self.hidden_size)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def bert_forward(self) -> str:
        """Which BERT forward runs: "auto" (simcse_lab's own on the CPU, transformers' elsewhere), "own"
        (simcse_lab's on every device: no host syncs on a GPU) or "transformers". Both give the same
        hidden states (simcse_lab.models.bert_forward); models other than BERT and RoBERTa always run transformers'."""
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

    @property
    def max_tokens(self) -> int:
        """The longest input the model takes (position embeddings; RoBERTa-style models reserve 2)."""
        config = self.backbone.config
        limit = getattr(config, "max_position_embeddings", None) or 512
        if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
            limit -= 2
        tokenizer_limit = getattr(self.tokenizer, "model_max_length", None)
        return min(limit, tokenizer_limit) if tokenizer_limit and tokenizer_limit < 100_000 else limit

    # ------------------------------------------------------------------ forward
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                token_positions: torch.Tensor | None = None, position_ids: torch.Tensor | None = None) -> torch.Tensor:
        """input_ids, attention_mask: (B, T) -> sentence embeddings (B, H).

        token_positions: for simcse_lab's own forward off the CPU, the (N,) flat indices of the real tokens,
        computed on the host (`bert_forward.real_token_positions`); the batch then runs padding-free (packed)
        without a device sync. It needs a real token at position 0 of every row. Other paths ignore it.
        position_ids: (B, T) position ids other than the backbone's own (PromptBERT's template denoising)."""
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
            states = bert_hidden_states(self.backbone, input_ids, attention_mask, token_type_ids, all_layers, pack=pack,
                                        first_token_only=first_token_only, token_positions=token_positions, onednn=self.onednn,
                                        positions=position_ids)
        else:
            inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                inputs["token_type_ids"] = token_type_ids
            if position_ids is not None:
                inputs["position_ids"] = position_ids
            out = self.backbone(**inputs, output_hidden_states=all_layers, return_dict=True)
            states = out.hidden_states if all_layers else (out.last_hidden_state,)
        z = pool(self.pooler, states, attention_mask, self.prompt.after_mask if self.prompt else None)  # (B, H)
        return self.mlp(z) if self.uses_mlp else z

    def tokenize(self, sentences: Sequence[str], max_length: int = 128):
        """Padded, truncated tensors for a list of sentences (longer ones are cut at max_length tokens,
        and never beyond what the model's position embeddings allow); with a prompt, templated."""
        if self.prompt is not None:
            from transformers import BatchEncoding  # noqa: PLC0415

            column = self.prompt.apply(TokenizedColumn.from_sentences(self.tokenizer, list(sentences), min(max_length, self.max_tokens)),
                                       self.max_tokens)
            input_ids, attention_mask = collate([column], np.arange(len(column)))
            return BatchEncoding({"input_ids": input_ids, "attention_mask": attention_mask})
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
        normalisation. `device`: where this call runs (the model goes back where it was afterwards).
        """
        sentences = validate_sentences(sentences)
        check_positive("batch_size", batch_size)
        check_positive("max_length", max_length, minimum=2)  # [CLS] and [SEP] take two
        if not sentences:
            return torch.empty(0, self.output_dim)
        home = self.device
        device = pick_device(device) if device is not None else home
        was_training = self.training
        self.to(device)
        self.eval()
        try:
            embeddings = self.embed_sorted(sentences, batch_size, min(max_length, self.max_tokens), device, show_progress)
        finally:
            self.to(home)
            self.train(was_training)
        if self.postprocess is not None:
            embeddings = torch.as_tensor(self.postprocess(embeddings), dtype=torch.float32)
        if normalize:
            embeddings = torch.nn.functional.normalize(embeddings, dim=-1)
        return embeddings

    def embed_sorted(self, sentences: list[str], batch_size: int, max_length: int, device: torch.device,
                     show_progress: bool | None) -> torch.Tensor:
        """The bare encoder's embeddings (N, H) on the CPU, in input order.

        Tokenise a slab of sentences (in threads: simcse_lab.models.tokenization), sort it by token length
        (least padding), then run its batches. On a GPU the next slab is tokenised while this one runs, and
        pinned, non-blocking copies let the GPU run ahead of the host."""
        num_batches = -(-len(sentences) // batch_size)
        show_progress = num_batches > 10 if show_progress is None else show_progress
        slab = batch_size * max(1, 16384 // batch_size)
        pin = device.type == "cuda"
        template = None if self.prompt is None else (lambda column: self.prompt.apply(column, self.max_tokens))
        slabs = tokenized_slabs(self.tokenizer, sentences, slab, max_length, prefetch=device.type != "cpu", transform=template)
        chunks, order = [], []
        try:
            with torch.inference_mode(), autocast_for(device), tqdm(total=num_batches, desc="encode", disable=not show_progress,
                                                                     leave=False) as bar:
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
        embeddings = torch.empty(len(sentences), chunks[0].shape[1], device=device)
        embeddings[torch.from_numpy(np.concatenate(order)).to(device)] = torch.cat(chunks)
        return embeddings.cpu()

    # ------------------------------------------------------------------ load and save
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        pooler: str | None = None,
        mlp_only_train: bool | None = None,
        device: str | torch.device | None = None,
        dropout: float | None = None,
        trust_remote_code: bool = False,
        bert_forward: str = "auto",
        fresh_mlp: bool = False,
    ) -> "SimCSEEncoder":
        """Load an encoder: a simcse_lab directory, an official SimCSE checkpoint, a sentence-transformers
        model or any Hugging Face encoder (simcse_lab.models.loading says how each is recognised).

        pooler / mlp_only_train override what the checkpoint says. dropout, if given, sets every
        dropout probability of the backbone (the paper's Table 3 ablation). trust_remote_code is
        passed to transformers and is never turned on implicitly.

        The cls pooler's head is the saved one, else the checkpoint's own pooler (`pooler_output`, as the official
        evaluation.py reads it); fresh_mlp=True starts from a newly initialised head instead (training, as the
        official cl_init). simcse_lab.models.loading says what cls means on a checkpoint without pooler weights.
        """
        from .loading import load_encoder  # noqa: PLC0415  (transformers is imported there, on first use)

        return load_encoder(cls, name_or_path, pooler=pooler, mlp_only_train=mlp_only_train, device=device, dropout=dropout,
                            trust_remote_code=trust_remote_code, bert_forward=bert_forward, fresh_mlp=fresh_mlp)

    def save_pretrained(self, save_directory: str | os.PathLike, training: dict | None = None, max_seq_length: int = 128,
                        final_path: str | os.PathLike | None = None, eval_max_length: int | None = None):
        """Write HF format + simcse_config.json + sentence-transformers files + model card (simcse_lab.models.saving).

        final_path: where the directory will live when it is written somewhere temporary first (the model card
        names that path, not the temporary one). eval_max_length: the max length it is to be evaluated at
        (recorded for `simcse-lab evaluate`; the trainer passes the one it selected the checkpoint with)."""
        from .saving import save_encoder  # noqa: PLC0415

        return save_encoder(self, save_directory, training=training, max_seq_length=max_seq_length, final_path=final_path,
                            eval_max_length=eval_max_length)


# ---------------------------------------------------------------------- input checks
def validate_sentences(sentences) -> list[str]:
    """A list of str, or a clear error naming the first bad item."""
    if isinstance(sentences, str):
        sentences = [sentences]
    if isinstance(sentences, dict):
        raise SimCSELabTypeError("encode expects a list of strings, got a dict; pass list(d.values()) or list(d.keys())")
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


def check_positive(name: str, value, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise SimCSELabError(f"{name} must be a whole number of at least {minimum}, got {value!r}")
