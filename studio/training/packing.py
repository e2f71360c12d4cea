"""Transformer passes over real tokens only: the texts of a padded batch packed into one row, no padding.

A padded batch of 72 texts (8 queries, 64 passages up to 512 tokens) holds about twice as many positions as real
tokens, and splitting it into length chunks (``fast_models.length_chunks``) trades padding for extra encoder
passes. Packed, every linear layer, layer norm and activation runs once over the real tokens, and attention stays
within each text: on GPUs with PyTorch's variable-length flash attention (``torch.nn.attention.varlen``; it has no
dropout, so it serves when attention dropout is off), elsewhere with SDPA over the texts laid out padded again for
that one operation (attention dropout kept; the projections and feed-forward layers, most of the work, stay packed).

It works for any Transformers encoder whose attention goes through ``ALL_ATTENTION_FUNCTIONS`` (BERT, XLM-R):
:func:`packed_hidden_states` registers :data:`PACKED` there and switches the model's config to it, gives each token the position id the model would give it in the padded batch, and returns the hidden states
padded back to the batch, zeros at padding. Each text's hidden states depend on its own tokens only, as before.
"""

from __future__ import annotations

import functools
import inspect

import torch
import torch.nn.functional as F

PACKED = "studio_packed"

try:  # PyTorch >= 2.10 (flash attention, CUDA only)
    from torch.nn.attention.varlen import varlen_attn
except ImportError:  # pragma: no cover - older PyTorch
    varlen_attn = None


def _padded_attention(query, key, value, mask: torch.Tensor, index: torch.Tensor, dropout: float,
                      scaling: float | None) -> torch.Tensor:
    """SDPA over the texts laid out padded again ((tokens, heads, dim) in and out), padding masked as keys.

    `index` holds each packed token's flat position in the padded (texts × length) layout, so that no shape here
    depends on the data (a compiled layer keeps one graph).
    """
    rows, length = mask.shape

    def padded(x):
        return x.new_zeros(rows * length, *x.shape[1:]).index_copy(0, index, x).view(rows, length, *x.shape[1:])

    out = F.scaled_dot_product_attention(*(padded(x).transpose(1, 2) for x in (query, key, value)),
                                         attn_mask=mask[:, None, None, :], dropout_p=dropout, scale=scaling)
    return out.transpose(1, 2).reshape(rows * length, *out.shape[1:2], out.shape[-1]).index_select(0, index)


def _default_scale(scaling: float | None, head_dim: int) -> bool:
    return scaling is None or abs(scaling - head_dim ** -0.5) < 1e-12


# varlen_attn's `scale` came after PyTorch 2.9: without it, only the default 1/sqrt(head dim) can be asked for.
_VARLEN_SCALE = varlen_attn is not None and "scale" in inspect.signature(varlen_attn).parameters


def packed_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling: float | None = None,
                     is_causal: bool | None = None, cu_seq_lens_q: torch.Tensor | None = None,
                     max_length_q: int | None = None, packed_mask: torch.Tensor | None = None,
                     packed_index: torch.Tensor | None = None, **kwargs):
    """An ``AttentionInterface`` function: attention within each packed text, or plain SDPA for unpacked calls.

    Transformers passes (batch, heads, tokens, dim) tensors; a packed pass has batch 1, and among the keyword
    arguments the model forwards to its layers ``cu_seq_lens_q`` (int32 starts of the texts, then the total),
    ``packed_mask`` (the padded batch's attention mask, boolean) and ``packed_index`` (each token's flat position
    in that batch).
    """
    if cu_seq_lens_q is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    # (1, heads, tokens, dim) is a transposed view of the projection's (tokens, heads, dim): no copy here.
    q, k, v = (x[0].transpose(0, 1) for x in (query, key, value))
    default_scale = _default_scale(scaling, q.shape[-1])
    if dropout == 0.0 and q.is_cuda and varlen_attn is not None and (default_scale or _VARLEN_SCALE):
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()  # no-ops for the projections' own layout
        out = varlen_attn(q, k, v, cu_seq_lens_q, cu_seq_lens_q, max_length_q, max_length_q,
                          **({} if default_scale else {"scale": scaling}))
    else:
        out = _padded_attention(q, k, v, packed_mask, packed_index, dropout, scaling)
    return out[None], None  # (1, tokens, heads, dim), as Transformers' attention functions return


def use_packed_attention(model) -> None:
    """Route `model`'s attention through :func:`packed_attention` from now on (until the process ends).

    For the whole model's life, not for one pass: activation checkpointing recomputes layers in backward, after
    the forward has returned, and a recomputed layer must attend as it did. Calls without packing arguments get
    SDPA with the usual padding mask, as before; the setting is not saved with the model (Transformers never
    writes ``_attn_implementation`` to config.json).
    """
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    if PACKED not in ALL_ATTENTION_FUNCTIONS:
        ALL_ATTENTION_FUNCTIONS.register(PACKED, packed_attention)
        ALL_MASK_ATTENTION_FUNCTIONS.register(PACKED, sdpa_mask)
    model.config._attn_implementation = PACKED


def packable(model) -> bool:
    """Whether `model` is a Transformers encoder using SDPA through the attention interface (BERT and XLM-R in
    Transformers 5), so that a packed pass reaches :func:`packed_attention`."""
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    config = getattr(model, "config", None)
    if not layers or config is None or getattr(config, "is_decoder", False):
        return False
    if config._attn_implementation not in ("sdpa", PACKED):
        return False
    return _uses_attention_interface(type(getattr(getattr(layers[0], "attention", None), "self", None)))


@functools.cache
def _uses_attention_interface(attention_class: type) -> bool:
    try:
        return "ALL_ATTENTION_FUNCTIONS" in inspect.getsource(attention_class.forward)
    except (AttributeError, TypeError, OSError):
        return False


def _position_ids(model, input_ids: torch.Tensor) -> torch.Tensor:
    """The position ids `model` gives a right-padded batch (XLM-R counts from the padding id + 1, BERT from 0)."""
    embeddings = model.embeddings
    if hasattr(embeddings, "create_position_ids_from_input_ids"):
        return embeddings.create_position_ids_from_input_ids(input_ids, embeddings.padding_idx)
    rows, length = input_ids.shape
    return torch.arange(length, device=input_ids.device)[None, :].expand(rows, length)


def packed_hidden_states(model, features) -> torch.Tensor:
    """`model`'s last hidden states for a right-padded batch, computed on its real tokens only.

    Args:
        model: A Transformers encoder for which :func:`packable` holds; its attention goes through
            :func:`packed_attention` from then on (:func:`use_packed_attention`).
        features: ``input_ids`` and ``attention_mask`` (batch, length), optionally ``token_type_ids``.

    Returns:
        (batch, length, hidden), zeros at padded positions (which no head reads: FlagEmbedding masks them).
    """
    use_packed_attention(model)
    mask = features["attention_mask"].bool()
    input_ids = features["input_ids"]
    lengths = mask.sum(dim=1)
    cu_seq_lens = F.pad(lengths.cumsum(0), (1, 0)).to(torch.int32)
    longest = int(lengths.max())
    index = mask.flatten().nonzero().squeeze(1)  # row-major: each text's tokens in order, texts in batch order

    def pack(values: torch.Tensor) -> torch.Tensor:
        return values.flatten().index_select(0, index)[None]

    inputs = {"input_ids": pack(input_ids), "position_ids": pack(_position_ids(model, input_ids))}
    if "token_type_ids" in features:
        inputs["token_type_ids"] = pack(features["token_type_ids"])
    packed = model(**inputs, cu_seq_lens_q=cu_seq_lens, cu_seq_lens_k=cu_seq_lens, max_length_q=longest,
                   max_length_k=longest, packed_mask=mask, packed_index=index, return_dict=True).last_hidden_state[0]
    rows, length = input_ids.shape
    return packed.new_zeros(rows * length, packed.shape[-1]).index_copy(0, index, packed).view(rows, length, -1)
