"""A padding-free forward pass for BERT encoders: the same function as `BertModel`, less work.

A batch of sentences is a (B, T) matrix cut at its longest sentence, so a random batch of wiki
sentences (mean 22 tokens, truncated at 32) is about one third padding; a batch of the default
training file (mean 13 tokens) more than half. Transformers runs every linear layer, LayerNorm and
GELU over those padding positions too. Here the real tokens are packed into one (N, H) matrix first:

    embeddings -> LayerNorm -> dropout                     on (N, H), N = number of real tokens
    per layer:  Q, K, V projections                        on (N, H)
                attention                                  scattered back to (B, T, ...) for SDPA only
                output projection, FFN, LayerNorms, dropout on (N, H)

Attention is the only step that needs the (B, T) layout, and at T <= 32 it is a small share of the
work. The parameters are the backbone's own (nothing is copied; gradients flow into the HF module),
so saving, loading and every other code path are unchanged. In eval mode the hidden states equal
`BertModel`'s at the real positions (tests/test_padding_free.py checks values and gradients); in
training mode the dropout masks come from another sampler (uniform noise, not Bernoulli draws), so
the same seed gives other masks with the same distribution.

Used on the CPU, where the work saved is the time saved, for batches with padding to skip
(`worth_packing`: random training batches, not `encode`'s length-sorted ones). On CUDA the
transformers path is kept: the packed layout needs the token count on the host (a device sync per
batch), and small batches are bound by kernel launches rather than arithmetic there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["supports_padding_free", "worth_packing", "padding_free_hidden_states"]

# Below this share of padding positions, packing and unpacking cost more than the padding it skips:
# `encode` sorts sentences by length, so its batches are about 1% padding (4,096 wiki sentences, batch 64),
# and there the transformers forward is about 5% faster; a random training batch is 32% (wiki) to 60%
# (the default wiki + WordNet file) padding.
MIN_PADDING_SHARE = 0.1


def supports_padding_free(backbone: nn.Module) -> bool:
    """True for a plain BERT encoder (BertModel: BERT, MiniLM, the embedded default): absolute
    positions, no decoder or cross-attention, no chunked feed-forward."""
    config = getattr(backbone, "config", None)
    if type(backbone).__name__ != "BertModel" or config is None:
        return False
    return (getattr(config, "position_embedding_type", "absolute") == "absolute"
            and not getattr(config, "is_decoder", False)
            and not getattr(config, "add_cross_attention", False)
            and not getattr(config, "chunk_size_feed_forward", 0))


def worth_packing(attention_mask: torch.Tensor) -> bool:
    """True when at least MIN_PADDING_SHARE of the batch's positions are padding (call on a CPU tensor)."""
    return float(attention_mask.sum()) <= (1.0 - MIN_PADDING_SHARE) * attention_mask.numel()


def padding_free_hidden_states(backbone: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                               token_type_ids: torch.Tensor | None = None, all_layers: bool = False) -> tuple[torch.Tensor, ...]:
    """BertModel's hidden states, (B, T, H) each with zeros at padding positions.

    Returns (last,) or, with all_layers, (embeddings, layer 1, ..., layer L) like `output_hidden_states`."""
    batch, width = input_ids.shape
    real = attention_mask.bool()  # (B, T)
    flat_positions = real.reshape(-1).nonzero().squeeze(1)  # (N,) indices into B*T

    embeddings = backbone.embeddings
    ids = input_ids.reshape(-1)[flat_positions]  # (N,)
    positions = flat_positions % width  # a token's column, as BertModel's default position_ids
    types = torch.zeros_like(ids) if token_type_ids is None else token_type_ids.reshape(-1)[flat_positions]
    h = embeddings.word_embeddings(ids) + embeddings.token_type_embeddings(types) + embeddings.position_embeddings(positions)
    h = dropout(embeddings.LayerNorm(h), embeddings.dropout)  # (N, H)

    key_padding = real[:, None, None, :]  # (B, 1, 1, T): every sentence attends to its own tokens only
    states = [h]
    for layer in backbone.encoder.layer:
        h = bert_layer(layer, h, flat_positions, batch, width, key_padding)
        states.append(h)
    return tuple(unpack(s, flat_positions, batch, width) for s in (states if all_layers else states[-1:]))


def bert_layer(layer: nn.Module, h: torch.Tensor, flat_positions: torch.Tensor, batch: int, width: int,
               key_padding: torch.Tensor) -> torch.Tensor:
    """One BertLayer on packed tokens h: (N, H) -> (N, H)."""
    attention = layer.attention.self
    heads, head_size = attention.num_attention_heads, attention.attention_head_size
    q, k, v = (unpack(projection(h), flat_positions, batch, width).view(batch, width, heads, head_size).transpose(1, 2)
               for projection in (attention.query, attention.key, attention.value))  # each (B, heads, T, d)
    attention_dropout = attention.dropout.p if attention.training else 0.0
    context = F.scaled_dot_product_attention(q, k, v, attn_mask=key_padding, dropout_p=attention_dropout, scale=attention.scaling)
    context = context.transpose(1, 2).reshape(batch * width, heads * head_size)[flat_positions]  # (N, H)

    out = layer.attention.output
    h = out.LayerNorm(dropout(out.dense(context), out.dropout) + h)
    ffn = layer.output
    return ffn.LayerNorm(dropout(ffn.dense(layer.intermediate.intermediate_act_fn(layer.intermediate.dense(h))), ffn.dropout) + h)


def dropout(x: torch.Tensor, module: nn.Dropout) -> torch.Tensor:
    """`module(x)` with the same distribution (each element kept with probability 1 - p, scaled by
    1 / (1 - p)), drawn from uniform noise: on the CPU twice as fast as the Bernoulli sampler
    nn.Dropout uses, and dropout is a tenth of a small BERT's training step there."""
    if not module.training or module.p == 0.0:
        return x
    keep = torch.rand_like(x) >= module.p
    return x * keep * (1.0 / (1.0 - module.p))


def unpack(packed: torch.Tensor, flat_positions: torch.Tensor, batch: int, width: int) -> torch.Tensor:
    """(N, C) packed tokens -> (B, T, C) with zeros at padding positions."""
    padded = packed.new_zeros(batch * width, packed.shape[-1])
    padded = padded.index_copy(0, flat_positions, packed)
    return padded.view(batch, width, -1)
