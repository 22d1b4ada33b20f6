"""PromptBERT's prompt (Jiang et al., EMNLP 2022): read a sentence through a template, keep the [MASK] state.

PromptBERT embeds a sentence x as the last-layer state of the [MASK] token of a template,

    h = BERT( [CLS] This sentence : " x " means [MASK] . [SEP] )[MASK]

which turns "what does this sentence mean?" into the fill-in-the-blank task BERT was pre-trained on.
`PromptTemplate` applies a template to tokenised sentences, token by token: the sentence's own tokens
(tokenised alone, as in the official code, so the template cannot change how the sentence splits), between
the template's tokens before [X] and after it. The template is tokenised in two pieces, the text before
"[X]" and the text after it, with "[MASK]" replaced by the tokenizer's mask token. The sentence pooler
"mask" (simcse_lab.models.pooling) reads the state at the [MASK] token.

Template denoising (the paper's unsupervised objective; training only). The [MASK] state also carries
the template's own bias; PromptBERT subtracts it: h - h_t, where h_t is the [MASK] state of the template
alone, with the sentence taken out but every template token keeping the position id it has around the sentence, so that
the suffix of a sentence of L tokens starts at position P + 1 + L (`template_only`). The official code
(kongds/Prompt-BERT, prompt_bert/models.py, `get_delta`) computes h_t the same way, for every length, and
subtracts the one of each sentence's length. simcse_lab.training.followup_objectives uses it in training;
at inference the embedding is the plain [MASK] state, as the official unsupervised BERT recipe evaluates it
(run.sh, unsup-bert: its evaluation flags do not turn denoising on).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import SimCSELabError
from .batches import TokenizedColumn
from .bert_forward import POSITION_SCHEMES

SENTENCE_SLOT = "[X]"
MASK_SLOT = "[MASK]"
# The official repository's template for untrained BERT (run.sh, bert-prompt: 67.85 average STS for bert-base-uncased).
# Its unsup-bert recipe trains with this one as the second view and SECOND_TEMPLATE as the first, and evaluates with
# SECOND_TEMPLATE; simcse_lab evaluates with TrainConfig.prompt_template, the first view's, whichever it is.
DEFAULT_TEMPLATE = 'This sentence : "[X]" means [MASK] .'
SECOND_TEMPLATE = 'This sentence of "[X]" means [MASK] .'


def check_template(text: str) -> str:
    """A template has one [X] (the sentence) and one [MASK] after it; anything else fails in one line."""
    if text.count(SENTENCE_SLOT) != 1 or text.count(MASK_SLOT) != 1 or text.index(MASK_SLOT) < text.index(SENTENCE_SLOT):
        raise SimCSELabError(f"a prompt template needs one {SENTENCE_SLOT} (the sentence) and one {MASK_SLOT} after it, "
                             f"as in {DEFAULT_TEMPLATE!r}; got {text!r}")
    return text


@dataclass(frozen=True)
class PromptTemplate:
    """A template as token ids: a templated row is [first] prefix sentence suffix [last] (right-padded)."""

    text: str
    prefix: tuple[int, ...]  # the tokens of the text before [X]
    suffix: tuple[int, ...]  # the tokens of the text after [X]; the [MASK] is among them
    after_mask: int  # how many tokens of a templated row follow the [MASK], the last special token included
    pad_id: int = 0

    @classmethod
    def from_text(cls, text: str, tokenizer) -> "PromptTemplate":
        check_template(text)
        if tokenizer.mask_token is None or len(tokenizer("")["input_ids"]) != 2:
            raise SimCSELabError("a prompt template needs a tokenizer with a mask token that adds one special token at each end "
                                 f"(BERT's [CLS] ... [SEP], RoBERTa's <s> ... </s>); {type(tokenizer).__name__} does not")
        before, after = (part.replace(MASK_SLOT, tokenizer.mask_token) for part in text.split(SENTENCE_SLOT))
        prefix = tuple(tokenizer(before, add_special_tokens=False)["input_ids"])
        suffix = tuple(tokenizer(after, add_special_tokens=False)["input_ids"])
        if suffix.count(tokenizer.mask_token_id) != 1:
            raise SimCSELabError(f"the template {text!r} does not tokenise to exactly one mask token after the sentence")
        return cls(text, prefix, suffix, len(suffix) - suffix.index(tokenizer.mask_token_id), tokenizer.pad_token_id or 0)

    @property
    def num_tokens(self) -> int:
        """The tokens a template adds to a sentence."""
        return len(self.prefix) + len(self.suffix)

    def apply(self, column: TokenizedColumn, limit: int | None = None) -> TokenizedColumn:
        """The templated column of a tokenised one ([first] sentence [last] rows): (N, T) -> (N, T + num_tokens) at most.

        limit: the longest row the model takes; a sentence is cut (from its end, before the template's suffix)
        when its templated row would be longer."""
        ids, lengths = column.ids, column.lengths.astype(np.int64)
        rows, width = ids.shape
        before, after = len(self.prefix), len(self.suffix)
        body = np.maximum(lengths - 2, 0)  # the sentence's own tokens
        if limit is not None:
            room = limit - 2 - self.num_tokens
            if room < 1:
                raise SimCSELabError(f"the template {self.text!r} takes {self.num_tokens + 2} of the model's {limit} positions, "
                                     "leaving none for the sentence; use a shorter template")
            body = np.minimum(body, room)
        new_lengths = body + 2 + self.num_tokens
        out_width = int(new_lengths.max()) if rows else 2 + self.num_tokens
        out = np.full((rows, out_width), self.pad_id, dtype=ids.dtype)
        out[:, 0] = ids[:, 0]  # [CLS]
        out[:, 1 : 1 + before] = self.prefix
        span = min(width - 2, out_width - 2 - self.num_tokens)
        out[:, 1 + before : 1 + before + span] = ids[:, 1 : 1 + span]  # the sentence (and what follows it, overwritten next)
        tail = np.array([*self.suffix, 0], dtype=ids.dtype)[None, :].repeat(rows, 0)  # (N, S + 1): suffix, then [SEP]
        tail[:, -1] = ids[np.arange(rows), np.maximum(lengths - 1, 0)]
        columns = 1 + before + body[:, None] + np.arange(after + 1)[None, :]
        out[np.arange(rows)[:, None], columns] = tail
        out[np.arange(out_width)[None, :] >= new_lengths[:, None]] = self.pad_id
        return TokenizedColumn(out, new_lengths.astype(np.int32))

    def sentence_lengths(self, column: TokenizedColumn) -> np.ndarray:
        """(N,) how many of the sentence's own tokens each row of a templated column holds."""
        return column.lengths.astype(np.int64) - 2 - self.num_tokens

    def template_only(self, sentence_lengths, first_id: int, last_id: int,
                      offset: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The template without its sentence, once per sentence length L: ids, mask, position ids, each (U, 2 + P + S).

        Row k is [first] prefix suffix [last] with the position ids those tokens have around a sentence of
        L_k tokens: 0 .. P for [first] and the prefix, then P + 1 + L_k onwards for the suffix and [last]
        (plus offset: 0 for BERT, padding_idx + 1 for RoBERTa-style position ids: `position_offset`)."""
        lengths = torch.as_tensor(np.asarray(sentence_lengths), dtype=torch.long)
        template = torch.tensor([first_id, *self.prefix, *self.suffix, last_id], dtype=torch.long)
        ids = template.repeat(len(lengths), 1)  # (U, 2 + P + S)
        positions = torch.arange(ids.shape[1]).repeat(len(lengths), 1)
        positions[:, 1 + len(self.prefix) :] += lengths[:, None]  # the sentence's L_k positions are skipped
        return ids, torch.ones_like(ids), positions + offset


def position_offset(backbone) -> int:
    """The position id of a row's first token: 0 for BERT, padding_idx + 1 for the RoBERTa family (whose
    positions count on from padding_idx). Template denoising sets position ids itself, so it needs to know."""
    scheme = POSITION_SCHEMES.get(type(backbone).__name__)
    if scheme is None:
        raise SimCSELabError(f"template denoising sets position ids, which simcse_lab does for BERT and RoBERTa encoders "
                             f"({', '.join(POSITION_SCHEMES)}); this backbone is a {type(backbone).__name__}: pass "
                             "--no_template_denoising")
    return 0 if scheme == "column" else int(backbone.embeddings.padding_idx) + 1
