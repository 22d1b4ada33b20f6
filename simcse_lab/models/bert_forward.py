"""simcse_lab's own BERT forward: the same function as `BertModel` (and RoBERTa's), less work.

`SimCSEEncoder.bert_forward` chooses where it runs: "auto" (the default) on the CPU only, "own" on
every device, "transformers" nowhere. Three savings, each exact (hidden states equal BertModel's;
tests/test_bert_forward.py):

1. Padding-free. A batch of sentences is a (B, T) matrix cut at its longest sentence, so a random
   training batch of short sentences is largely padding (benchmarks/README.md has the shares).
   Transformers runs every linear layer, LayerNorm and GELU over those padding positions too. Here the real tokens are packed into one
   (N, H) matrix first:

       embeddings -> LayerNorm -> dropout                     on (N, H), N = number of real tokens
       per layer:  Q, K, V projections                        on (N, H)
                   attention                                  scattered back to (B, T, ...) for SDPA only
                   output projection, FFN, LayerNorms, dropout on (N, H)

   Attention is the only step that needs the (B, T) layout, and at T <= 32 it is a small share of
   the work. Batches with little padding (`worth_packing`: `encode`'s length-sorted ones) keep every
   position (the dense layout), where gathering and scattering would cost more than they save.

2. [CLS]-only last layer. The cls and cls_before_pooler poolers read the last layer at position 0
   only, so the last layer computes keys and values for every token but the query, attention
   output, feed-forward and LayerNorms for the [CLS] row alone: of the last layer's six matrix
   products, four run on one row per sentence. For the default 4-layer encoder that is a fifth of
   the arithmetic of a forward pass (for BERT-base's 12 layers, 7%).

3. oneDNN matrix products. The linear layers call oneDNN's matmul (the library inside torch that its
   compiler uses on CPUs) instead of torch's default BLAS (MKL), which on some CPUs (AMD's) runs fp32
   products at about half oneDNN's speed (benchmarks/encode_ceiling.py measures both; figures in
   benchmarks/README.md). The same fp32 products, summed in another order. Under bf16
   autocast, and where torch has no oneDNN, torch's own linear runs.

The parameters are the backbone's own (nothing is copied; gradients flow into the HF module), so
saving, loading and every other code path are unchanged. On the CPU, in training mode, the dropout
masks come from another sampler (uniform noise, not Bernoulli draws), so the same seed gives other masks with
the same distribution.

On the CPU all three apply. On a GPU ("own") the linear layers are torch's own, and the forward reads
nothing back to the host. Transformers' BERT reads its attention mask (`padding_mask.all()`, to skip
the mask when there is no padding) in every forward: a device sync that stops the host from queueing
the next kernels while the GPU works. Packing needs the real tokens' positions, which the device only
knows after a sync (`nonzero`); the trainer finds them on the host instead, where the batch is built,
and sends them along (`real_token_positions`), for batches big enough that the arithmetic saved outweighs
the gathers and scatters added (`host_packing_pays`); smaller ones keep the dense (B, T) layout.
"auto" keeps the transformers forward on GPUs until the two are timed there (`bash
benchmarks/gpu/run.sh` times both).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["supports_own_forward", "worth_packing", "real_token_positions", "host_packing_pays", "bert_hidden_states"]

# Below this share of padding positions, packing and unpacking cost more than the padding it skips: `encode`
# sorts sentences by length, so its batches have almost none, and there the dense layout is faster; random
# training batches have far more (benchmarks/README.md).
MIN_PADDING_SHARE = 0.1


# The encoders with BertModel's layers that the own forward runs, and how each numbers its positions:
# BERT from 0 by column; the RoBERTa family from padding_idx + 1, counting the ids that are not padding.
POSITION_SCHEMES = {"BertModel": "column", "RobertaModel": "after_padding_idx", "XLMRobertaModel": "after_padding_idx",
                    "CamembertModel": "after_padding_idx"}


def supports_own_forward(backbone: nn.Module) -> bool:
    """True for a plain BERT or RoBERTa encoder (BertModel: BERT, MiniLM, the embedded default;
    RobertaModel, XLMRobertaModel, CamembertModel): absolute positions, no decoder or cross-attention,
    no chunked feed-forward."""
    config = getattr(backbone, "config", None)
    if type(backbone).__name__ not in POSITION_SCHEMES or config is None:
        return False
    return (getattr(config, "position_embedding_type", "absolute") == "absolute"
            and not getattr(config, "is_decoder", False)
            and not getattr(config, "add_cross_attention", False)
            and not getattr(config, "chunk_size_feed_forward", 0))


def position_ids(backbone: nn.Module, input_ids: torch.Tensor, layout: "TokenLayout") -> torch.Tensor:
    """(N,) the position id of each token row, as the backbone's embeddings number them."""
    if POSITION_SCHEMES[type(backbone).__name__] == "column":
        return layout.columns  # BertModel's default position_ids: 0, 1, ... along each row
    padding_idx = backbone.embeddings.padding_idx  # RoBERTa's create_position_ids_from_input_ids
    not_padding = input_ids.ne(padding_idx).long()
    return layout.gather((not_padding.cumsum(1) * not_padding + padding_idx).reshape(-1))


def worth_packing(attention_mask: torch.Tensor) -> bool:
    """True when at least MIN_PADDING_SHARE of the batch's positions are padding (call on a CPU tensor)."""
    return float(attention_mask.sum()) <= (1.0 - MIN_PADDING_SHARE) * attention_mask.numel()


# Batches of at least this many (B x T) positions are packed on a GPU: unsupervised batch 64 at length 32
# (4,096 positions) stays dense, batch 512 (32,768) packs.
GPU_PACK_MIN_POSITIONS = 16_384


def real_token_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """(N,) flat indices (row * T + column) of the real tokens of a (B, T) mask: the packed layout, computed
    where the mask is (on the host, so that a GPU batch packs without a device sync)."""
    return attention_mask.reshape(-1).nonzero().squeeze(1)


def host_packing_pays(attention_mask: torch.Tensor) -> bool:
    """For a batch bound for a GPU (mask on the host): pack when it is big enough for the arithmetic saved
    to outweigh the gathers and scatters added (a GPU at a small batch is bound by kernel launches, not
    arithmetic), with a position 0 real in every row (the [CLS]-only layer needs it) and padding to skip.
    GPU_PACK_MIN_POSITIONS is set from first principles, not yet from a GPU timing."""
    return (attention_mask.numel() >= GPU_PACK_MIN_POSITIONS and bool(attention_mask[:, 0].all())
            and worth_packing(attention_mask))


def bert_hidden_states(backbone: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                       token_type_ids: torch.Tensor | None = None, all_layers: bool = False,
                       pack: bool = True, first_token_only: bool = False,
                       token_positions: torch.Tensor | None = None, onednn: bool = True,
                       positions: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    """BertModel's hidden states, (B, T, H) each: zeros at padding positions when packed, what BertModel
    computes there in the dense layout.

    Returns (last,) or, with all_layers, (embeddings, layer 1, ..., layer L) like `output_hidden_states`.
    pack=False keeps every position of the (B, T) batch in the token matrix (for batches with little
    padding, where packing costs more than it saves). first_token_only: the last layer computes the
    state of position 0 only ([CLS]: its keys and values still come from every token), returned as
    (B, 1, H); for the [CLS] poolers, which read nothing else. It needs a real token at position 0 of
    every sentence (right padding). token_positions: the packed layout's (N,) flat indices of the real
    tokens (`real_token_positions`), computed on the host; without them packing finds them on the device
    (`nonzero`: a device sync on a GPU). onednn: fp32 linear layers on the CPU through oneDNN (False: torch's
    default BLAS, for comparisons). positions: (B, T) position ids to use instead of the backbone's own
    numbering (as `position_ids` of BertModel's forward).
    """
    if first_token_only and all_layers:
        raise ValueError("first_token_only gives the last layer's [CLS] state only; all_layers asks for every state")
    batch, width = input_ids.shape
    real = attention_mask.bool()  # (B, T)
    layout = TokenLayout(real, pack, token_positions)

    embeddings = backbone.embeddings
    ids = layout.gather(input_ids.reshape(-1))  # (N,)
    types = torch.zeros_like(ids) if token_type_ids is None else layout.gather(token_type_ids.reshape(-1))
    positions = position_ids(backbone, input_ids, layout) if positions is None else layout.gather(positions.reshape(-1))
    h = embeddings.word_embeddings(ids) + embeddings.token_type_embeddings(types) + embeddings.position_embeddings(positions)
    h = dropout(embeddings.LayerNorm(h), embeddings.dropout)  # (N, H)

    key_padding = real[:, None, None, :]  # (B, 1, 1, T): every sentence attends to its own tokens only
    states = [h]
    layers = list(backbone.encoder.layer)
    for index, layer in enumerate(layers):
        cls_only = first_token_only and index == len(layers) - 1
        h = bert_layer(layer, h, layout, key_padding, query_rows=layout.first_rows() if cls_only else None, onednn=onednn)
        states.append(h)
    if first_token_only:
        return (h.unsqueeze(1),)  # (B, 1, H)
    return tuple(layout.unpack(s) for s in (states if all_layers else states[-1:]))


class TokenLayout:
    """Where the rows of the (N, H) token matrix sit in the (B, T) batch: its real tokens only
    (packed), or every position (dense: N = B * T, no gathering or scattering)."""

    def __init__(self, real: torch.Tensor, pack: bool, flat_positions: torch.Tensor | None = None):
        self.real = real
        self.batch, self.width = real.shape
        # (N,) indices into B * T, or None for the dense layout
        if pack and flat_positions is None:
            flat_positions = real_token_positions(real)
        self.flat_positions = flat_positions if pack else None
        flat = self.flat_positions if pack else torch.arange(self.batch * self.width, device=real.device)
        self.columns = flat % self.width  # a token's column, as BertModel's default position_ids

    def gather(self, padded: torch.Tensor) -> torch.Tensor:
        """(B * T, ...) -> (N, ...)."""
        return padded if self.flat_positions is None else padded[self.flat_positions]

    def unpack(self, rows: torch.Tensor) -> torch.Tensor:
        """(N, C) -> (B, T, C), zeros at the positions left out."""
        if self.flat_positions is None:
            return rows.view(self.batch, self.width, -1)
        padded = rows.new_zeros(self.batch * self.width, rows.shape[-1]).index_copy(0, self.flat_positions, rows)
        return padded.view(self.batch, self.width, -1)

    def first_rows(self) -> torch.Tensor:
        """(B,) the row of each sentence's position 0 (which must be a real token)."""
        if self.flat_positions is None:
            return torch.arange(self.batch, device=self.real.device) * self.width
        lengths = self.real.sum(1)
        return lengths.cumsum(0) - lengths


def bert_layer(layer: nn.Module, h: torch.Tensor, layout: TokenLayout, key_padding: torch.Tensor,
               query_rows: torch.Tensor | None = None, onednn: bool = True) -> torch.Tensor:
    """One BertLayer on token rows h: (N, H) -> (N, H); with query_rows (B,), only those rows, one per
    sentence: (B, H) (their keys and values still come from every token)."""
    attention = layer.attention.self
    heads, head_size = attention.num_attention_heads, attention.attention_head_size
    batch, width = layout.batch, layout.width
    k, v = (layout.unpack(linear(h, projection, onednn)).view(batch, width, heads, head_size).transpose(1, 2)
            for projection in (attention.key, attention.value))  # each (B, heads, T, d)
    if query_rows is None:
        q = layout.unpack(linear(h, attention.query, onednn)).view(batch, width, heads, head_size).transpose(1, 2)
    else:
        h = h[query_rows]  # (B, H): the residual stream of the rows computed
        q = linear(h, attention.query, onednn).view(batch, 1, heads, head_size).transpose(1, 2)  # (B, heads, 1, d)
    attention_dropout = attention.dropout.p if attention.training else 0.0
    # transformers 5 stores BERT's 1/sqrt(d) as `scaling`; 4.x computes it in the forward
    scale = getattr(attention, "scaling", head_size ** -0.5)
    context = F.scaled_dot_product_attention(q, k, v, attn_mask=key_padding, dropout_p=attention_dropout, scale=scale)
    context = context.transpose(1, 2).reshape(-1, heads * head_size)  # (B * T, H) or (B, H)
    if query_rows is None:
        context = layout.gather(context)  # (N, H)

    out = layer.attention.output
    h = out.LayerNorm(dropout(linear(context, out.dense, onednn), out.dropout) + h)
    ffn = layer.output
    up = layer.intermediate.intermediate_act_fn(linear(h, layer.intermediate.dense, onednn))
    return ffn.LayerNorm(dropout(linear(up, ffn.dense, onednn), ffn.dropout) + h)


def linear(x: torch.Tensor, module: nn.Linear, onednn: bool = True) -> torch.Tensor:
    """`module(x)` for 2-D x: through oneDNN for fp32 on the CPU when it is there and `onednn` is on."""
    if not (onednn and x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")
            and onednn_available()):
        return F.linear(x, module.weight, module.bias)
    if torch.is_grad_enabled() and (x.requires_grad or module.weight.requires_grad):
        return OneDnnLinear.apply(x, module.weight, module.bias)
    return matmul_transposed(x, module.weight, module.bias)


def matmul_transposed(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """a @ b.T (+ bias) by oneDNN: a (M, K), b (N, K), either may be a transposed view."""
    return torch.ops.mkldnn._linear_pointwise(a, b, bias, "none", [], "")


@functools.cache
def onednn_available() -> bool:
    """Whether this torch has oneDNN's linear and it agrees with F.linear in fp32 (checked once, whatever
    autocast or grad mode the first caller is in)."""
    if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")):
        return False
    generator = torch.Generator().manual_seed(0)
    a, b, bias = (torch.randn(shape, generator=generator) for shape in ((5, 8), (3, 8), (3,)))
    try:
        with torch.autocast("cpu", enabled=False), torch.no_grad():
            return torch.allclose(matmul_transposed(a, b, bias), F.linear(a, b, bias), atol=1e-5)
    except RuntimeError:
        return False


class OneDnnLinear(torch.autograd.Function):
    """F.linear with its three products (forward, input gradient, weight gradient) by oneDNN."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return matmul_transposed(x, weight, bias)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad = grad.contiguous()
        grad_x = matmul_transposed(grad, weight.t()) if ctx.needs_input_grad[0] else None  # (M, N) @ (N, K)
        grad_weight = matmul_transposed(grad.t(), x.t()) if ctx.needs_input_grad[1] else None  # (N, M) @ (M, K)
        grad_bias = grad.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_weight, grad_bias


def dropout(x: torch.Tensor, module: nn.Dropout) -> torch.Tensor:
    """`module(x)` with the same distribution (each element kept with probability 1 - p, scaled by
    1 / (1 - p)), drawn from uniform noise on the CPU: twice as fast as the Bernoulli sampler
    nn.Dropout uses, and dropout is a tenth of a small BERT's training step there. Elsewhere
    `module(x)` itself (one fused kernel on a GPU)."""
    if not module.training or module.p == 0.0:
        return x
    if x.device.type != "cpu":
        return module(x)
    keep = torch.rand_like(x) >= module.p
    return x * keep * (1.0 / (1.0 - module.p))

