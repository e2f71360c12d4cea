"""Embedder fine-tuning with FlagEmbedding's models, minus their padding (and M3's batch × length × vocab tensor).

:class:`StudioEncoderModel` is FlagEmbedding's dense ``BiEncoderOnlyEmbedderModel`` with texts encoded in
chunks of similar length (below). :class:`StudioM3Model` is FlagEmbedding's ``EncoderOnlyEmbedderM3Model`` (same
loss, scores, settings and ``save`` layout: the transformer, ``colbert_linear.pt``, ``sparse_linear.pt``) with
these changes, which leave the numbers as they were:

* Sparse head. FlagEmbedding scatters every token weight into ``zeros(batch, length, vocab)`` and takes the max over
  the length; for BGE-M3 (vocab 250002) and 64 passages of 512 tokens that is 16 GB in bf16, kept for backward. Here
  the max per (text, token id) goes straight into ``(batch, vocab)`` with ``scatter_reduce``, and the gradient still
  reaches only the first position holding the maximum, as ``torch.max`` sends it.
* Padding. The collator pads every text of a batch to the longest. Texts are encoded in chunks of similar length
  (longest first, at most ``token_budget`` padded tokens a chunk), each padded only to its own longest text; the
  outputs go back in batch order and ColBERT vectors are padded to the batch length with zeros, as before.
* One pass for queries and passages (M3): FlagEmbedding encodes them separately; here they share one set of length
  chunks, so a few short queries no longer cost an encoder pass of their own (a full set of GPU kernel launches).
* Packing (M3, :mod:`studio.training.packing`; the default on CPUs, ``STUDIO_PACKED=1`` on GPUs until timed there):
  instead of length chunks, the step's queries and passages go through the transformer as one row of real tokens,
  one pass, no padding; attention stays within each text.
* Attention runs on SDPA's flash / memory-efficient kernels, not cuDNN's (see :func:`fast_attention`).
* The Python loops of ``get_local_score`` and the ``m3_kd_loss`` distillation are single batched operations.

Attention is already PyTorch's SDPA: XLM-R loads with ``attn_implementation="sdpa"`` in Transformers 5. Dropout is
drawn per element either way, so with dropout on the two paths agree in distribution, not bit for bit.
Set ``STUDIO_FAST_M3=0`` to train with FlagEmbedding's models unchanged (the name predates the dense model).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from typing import TypeVar

import torch
import torch.nn.functional as F
from FlagEmbedding.finetune.embedder.encoder_only.base import BiEncoderOnlyEmbedderModel
from FlagEmbedding.finetune.embedder.encoder_only.m3 import EncoderOnlyEmbedderM3Model

from studio.config import fast_paths_enabled
from studio.training.packing import packable, packed_hidden_states

T = TypeVar("T")

# Padded tokens per encoder call: big enough for full GPU matrix units, small enough to skip most padding.
CUDA_TOKEN_BUDGET = 16384
CPU_TOKEN_BUDGET = 4096


def fast_attention(device: torch.device):
    """A context choosing SDPA's flash and memory-efficient kernels over cuDNN's on GPUs (no-op elsewhere).

    PyTorch prefers cuDNN attention on Hopper, and cuDNN builds an execution plan for every new (rows, length)
    shape, several milliseconds of CPU each time. Length-bucketed batches have a new shape in nearly every call, so
    on an H100 the GPU sat idle waiting for plans (measured: 7 ms of CPU per attention call, 0.49 s/step where the
    GPU's own work was 0.17 s). The other kernels need no plan.
    """
    if device.type != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


def length_chunks(lengths: list[int], budget: int) -> list[tuple[list[int], int]]:
    """Rows grouped longest first so that each group, padded to its longest row, holds at most `budget` tokens.

    Returns:
        (row indices, padded length) per group; a row longer than `budget` gets a group of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    chunks, start = [], 0
    while start < len(order):
        longest = max(lengths[order[start]], 1)
        size = max(1, budget // longest)
        chunks.append((order[start:start + size], longest))
        start += size
    return chunks


def encode_by_length(features: dict, budget: int,
                     encode: Callable[[dict], T]) -> tuple[list[T], torch.Tensor] | None:
    """`encode` each length chunk of a right-padded batch, each chunk cut to its own longest text.

    Returns:
        (one output per chunk, ``restore``: the index putting the chunks' concatenated rows back in batch order), or
        None when the whole batch is one chunk (then encode it as it is).
    """
    mask = features["attention_mask"]
    chunks = length_chunks(mask.sum(dim=1).tolist(), budget)
    if len(chunks) == 1:
        return None
    parts = []
    for rows, length in chunks:
        index = torch.tensor(rows, device=mask.device)
        parts.append(encode({key: value.index_select(0, index)[:, :length] for key, value in features.items()}))
    order = torch.tensor([i for rows, _ in chunks for i in rows], device=mask.device)
    restore = torch.empty_like(order)
    restore[order] = torch.arange(len(order), device=mask.device)
    return parts, restore


def chunk_budget(model, device: torch.device) -> int:
    """Padded tokens per encoder call on `device`: the model's ``token_budget`` or the device's default."""
    if getattr(model, "token_budget", None):
        return model.token_budget
    return CUDA_TOKEN_BUDGET if device.type == "cuda" else CPU_TOKEN_BUDGET


def _chunkable(model, features) -> bool:
    # The collator's batches are Transformers BatchEncodings: Mappings, not dicts.
    mask = features.get("attention_mask") if isinstance(features, Mapping) else None
    return (mask is not None and mask.dim() == 2
            and getattr(model.tokenizer, "padding_side", "right") == "right")


def sparse_max(weights: torch.Tensor, input_ids: torch.Tensor, vocab_size: int,
               unused_ids: torch.Tensor) -> torch.Tensor:
    """Lexical weights per text: for each token id, the largest weight it has in the text (0 if absent or unused).

    Args:
        weights: (batch, length) non-negative token weights (the ReLU of the sparse head).
        input_ids: (batch, length) token ids.
        vocab_size: Width of the result.
        unused_ids: Ids whose weight is always 0 (CLS, EOS, PAD, UNK), as FlagEmbedding zeroes them.

    Returns:
        (batch, vocab_size), equal to FlagEmbedding's ``zeros(batch, length, vocab).scatter(...).max(dim=1)`` with
        the unused ids zeroed; with autograd on, the gradient goes to the first position holding each maximum (ties
        are common in bf16), exactly where ``torch.max`` sends it.
    """
    rows, length = weights.shape
    weights = (weights * ~torch.isin(input_ids, unused_ids)).reshape(-1)
    # Flat (text * vocab + id) indices: one 1-D scatter is much faster than a row-wise one on CPUs.
    index = (torch.arange(rows, device=input_ids.device)[:, None] * vocab_size + input_ids).reshape(-1)
    top = weights.new_zeros(rows * vocab_size).scatter_reduce(0, index, weights.detach(), "amax")
    if not (torch.is_grad_enabled() and weights.requires_grad):
        return top.view(rows, vocab_size)
    with torch.no_grad():
        is_top = (weights > 0) & (weights == top[index])
        positions = torch.arange(length, device=weights.device, dtype=torch.int32).repeat(rows)
        first = torch.full_like(top, length, dtype=torch.int32).scatter_reduce(
            0, index, torch.where(is_top, positions, length), "amin")
        winner = is_top & (positions == first[index])
    # One winner per (text, id): adding the others' zeros leaves each maximum exact.
    return weights.new_zeros(rows * vocab_size).scatter_add(0, index, weights * winner).view(rows, vocab_size)


def packing_enabled(model, device: torch.device) -> bool:
    """Whether to encode `model`'s batches packed (:mod:`studio.training.packing`) rather than in length chunks.

    ``STUDIO_PACKED=1`` / ``0`` decide; unset, packing is on for CPUs and off for GPUs, where it has not been timed.
    """
    setting = os.environ.get("STUDIO_PACKED", "")
    if setting == "0" or (setting != "1" and device.type == "cuda"):
        return False
    return packable(model)


def should_compile(model) -> bool:
    """Whether to compile `model`'s layers: a plain Transformers encoder, no PEFT, no checkpointing, Triton there."""
    if os.environ.get("STUDIO_COMPILE", "1") == "0" or getattr(model, "is_gradient_checkpointing", False):
        return False
    if "peft" in type(model).__module__ or not hasattr(getattr(model, "encoder", None), "layer"):
        return False
    try:
        from torch.utils._triton import has_triton
    except ImportError:
        return False
    return has_triton()


def prepare_gpu(model, device: torch.device, compile_layers: bool) -> None:
    """Once per training model, on GPUs: no cuDNN attention, and (`compile_layers`) the transformer layers compiled.

    cuDNN attention is off for the whole training process (see :func:`fast_attention`), not in a context:
    activation checkpointing recomputes layers in backward, outside any context, and a recomputed layer must pick
    the same kernel. Each layer is compiled with dynamic shapes (fewer, fused kernels, less CPU per op: 0.35 → 0.31
    s/step for BGE-M3 on an H100) only for BGE-M3 (the dense model was not measured on a GPU), a full fine-tune
    without activation checkpointing and with Triton present, the setting measured; ``STUDIO_COMPILE=0`` turns it
    off.
    """
    if getattr(model, "_gpu_ready", False) or device.type != "cuda":
        return
    model._gpu_ready = True
    torch.backends.cuda.enable_cudnn_sdp(False)
    if compile_layers and should_compile(model.model):
        for layer in model.model.encoder.layer:
            layer.compile(dynamic=True)


class StudioEncoderModel(BiEncoderOnlyEmbedderModel):
    """FlagEmbedding's dense training model; texts encoded in chunks of similar length, the same embeddings."""

    token_budget: int | None = None  # None: CUDA_TOKEN_BUDGET on GPUs, CPU_TOKEN_BUDGET otherwise

    def encode(self, features):
        """FlagEmbedding's embeddings of a padded batch (MRL, sub-batches and lists of batches: FlagEmbedding's)."""
        if (isinstance(features, list) or self.use_mrl or (self.sub_batch_size or 0) > 0
                or not _chunkable(self, features)):
            return super().encode(features)
        device = features["attention_mask"].device
        prepare_gpu(self, device, compile_layers=False)
        done = encode_by_length(features, chunk_budget(self, device), super().encode)
        if done is None:
            return super().encode(features)
        parts, restore = done
        return torch.cat(parts).index_select(0, restore).contiguous()


class StudioM3Model(EncoderOnlyEmbedderM3Model):
    """FlagEmbedding's M3 training model with the same outputs, computed with less padding and memory."""

    token_budget: int | None = None  # None: CUDA_TOKEN_BUDGET on GPUs, CPU_TOKEN_BUDGET otherwise

    def _unused_ids(self, device: torch.device) -> torch.Tensor:
        tok = self.tokenizer
        ids = [i for i in (tok.cls_token_id, tok.eos_token_id, tok.pad_token_id, tok.unk_token_id) if i is not None]
        return torch.tensor(ids, dtype=torch.long, device=device)

    def _sparse_embedding(self, hidden_state, input_ids, return_embedding: bool = True):
        """Token weights, or the (batch, vocab) lexical embedding without FlagEmbedding's (batch, length, vocab)."""
        token_weights = torch.relu(self.sparse_linear(hidden_state))
        if not return_embedding:
            return token_weights
        return sparse_max(token_weights.squeeze(-1), input_ids, self.vocab_size, self._unused_ids(input_ids.device))

    def chunk_budget(self, device: torch.device) -> int:
        """Padded tokens per encoder call on `device` (``token_budget``, or the device default)."""
        return chunk_budget(self, device)

    def _encode(self, features):
        """FlagEmbedding's (dense, sparse, colbert) for a padded batch, encoded in chunks of similar length."""
        if not _chunkable(self, features):
            return super()._encode(features)
        mask = features["attention_mask"]
        prepare_gpu(self, mask.device, compile_layers=True)
        if packing_enabled(self.model, mask.device):
            return self._encode_packed(features)
        done = encode_by_length(features, self.chunk_budget(mask.device), super()._encode)
        if done is None:
            return super()._encode(features)
        parts, restore = done
        dense = torch.cat([p[0] for p in parts]).index_select(0, restore)
        if not self.unified_finetuning:
            return dense, None, None
        sparse = torch.cat([p[1] for p in parts]).index_select(0, restore)
        # Padded positions hold zero vectors in FlagEmbedding's output too (masked, then normalised).
        length = mask.shape[1]
        colbert = torch.cat([F.pad(p[2], (0, 0, 0, length - 1 - p[2].shape[1])) for p in parts])
        return dense, sparse, colbert.index_select(0, restore)

    def _encode_packed(self, features):
        """FlagEmbedding's ``_encode`` with the transformer run on the batch's real tokens only."""
        hidden = packed_hidden_states(self.model, features)
        dense = self._dense_embedding(hidden, features["attention_mask"])
        sparse = colbert = None
        if self.unified_finetuning:
            sparse = self._sparse_embedding(hidden, features["input_ids"])
            colbert = self._colbert_embedding(hidden, features["attention_mask"])
        if self.normalize_embeddings:
            dense = F.normalize(dense, dim=-1)
            if self.unified_finetuning:
                colbert = F.normalize(colbert, dim=-1)
        return dense, sparse, colbert

    def forward(self, queries=None, passages=None, teacher_scores=None, no_in_batch_neg_flag: bool = False):
        """FlagEmbedding's training forward, with queries and passages encoded in one length-chunked pass.

        FlagEmbedding encodes the queries and the passages separately: on the chunked path the queries took an
        encoder pass of their own (every layer, forward and backward) for a few short texts. Pooled, they ride in
        the chunk of the shortest passages. Each text's outputs depend on its own tokens only, so the numbers are
        the same up to float rounding.
        """
        joint = self._encode_jointly(queries, passages)
        if joint is None:
            return super().forward(queries, passages, teacher_scores, no_in_batch_neg_flag)
        self._joint = {id(queries): joint[0], id(passages): joint[1]}
        try:
            return super().forward(queries, passages, teacher_scores, no_in_batch_neg_flag)
        finally:
            self._joint = None

    def encode(self, features):
        """FlagEmbedding's ``encode``, answered from the joint pass when `features` are this step's batch."""
        joint = getattr(self, "_joint", None)
        if joint is not None and id(features) in joint:
            return joint[id(features)]
        return super().encode(features)

    def _encode_jointly(self, queries, passages) -> tuple[tuple, tuple] | None:
        """(query outputs, passage outputs) as ``encode`` returns them, from one pass; None where that does not apply
        (lists of batches, sub-batches, left padding, different feature names)."""
        if not (_chunkable(self, queries) and _chunkable(self, passages)) or set(queries) != set(passages):
            return None
        if self.sub_batch_size is not None and self.sub_batch_size != -1:
            return None
        q_len, p_len = queries["attention_mask"].shape[1], passages["attention_mask"].shape[1]
        length, pad_id = max(q_len, p_len), self.tokenizer.pad_token_id or 0

        def padded(key: str, value: torch.Tensor) -> torch.Tensor:
            return F.pad(value, (0, length - value.shape[1]), value=pad_id if key == "input_ids" else 0)

        joint = {key: torch.cat([padded(key, queries[key]), padded(key, passages[key])]) for key in queries}
        dense, sparse, colbert = self._encode(joint)
        rows = queries["attention_mask"].shape[0]

        def part(rows_slice: slice, text_len: int) -> tuple:
            if not self.unified_finetuning:
                return dense[rows_slice].contiguous(), None, None
            # ColBERT vectors cover positions 1.. of the text's own padded length, as FlagEmbedding returns them.
            return (dense[rows_slice].contiguous(), sparse[rows_slice].contiguous(),
                    colbert[rows_slice, :text_len - 1].contiguous())

        return part(slice(0, rows), q_len), part(slice(rows, None), p_len)

    def get_local_score(self, q_reps, p_reps, all_scores):
        """Each query's scores against its own group: (batch, group_size), one gather instead of a loop."""
        group_size = p_reps.size(0) // q_reps.size(0)
        starts = torch.arange(q_reps.size(0), device=all_scores.device) * group_size
        index = starts[:, None] + torch.arange(group_size, device=all_scores.device)[None, :]
        return all_scores.gather(1, index)

    @staticmethod
    def distill_loss(kd_loss_type, teacher_targets, student_scores, group_size=None):
        """FlagEmbedding's distillation losses; ``m3_kd_loss`` computes its per-positive terms in one batch."""
        if kd_loss_type != "m3_kd_loss":
            return EncoderOnlyEmbedderM3Model.distill_loss(kd_loss_type, teacher_targets, student_scores, group_size)
        queries, columns = student_scores.shape
        device = student_scores.device
        steps = torch.arange(group_size, device=device)
        targets = (torch.arange(queries, device=device) * group_size)[None, :] + steps[:, None]  # (group, queries)
        # Term i hides the group's earlier positives j < i, as FlagEmbedding's growing mask does.
        hidden = torch.where(steps[None, :] < steps[:, None], torch.finfo(student_scores.dtype).min, 0.0)
        mask = torch.zeros(group_size, queries, columns, device=device, dtype=student_scores.dtype).scatter(
            2, targets.T[None].expand(group_size, queries, group_size).contiguous(),
            hidden[:, None, :].expand(group_size, queries, group_size).to(student_scores.dtype).contiguous())
        losses = F.cross_entropy((student_scores[None] + mask).flatten(0, 1), targets.flatten(), reduction="none")
        return (teacher_targets.T * losses.view(group_size, queries)).mean(dim=1).sum()


FAST = {EncoderOnlyEmbedderM3Model: StudioM3Model, BiEncoderOnlyEmbedderModel: StudioEncoderModel}


def speed_up(model):
    """`model` (FlagEmbedding's dense or M3 training model) as its studio class: same object, weights and settings.

    Left as is when ``STUDIO_FAST_M3=0`` or when it is some other class.
    """
    fast = FAST.get(type(model))
    if fast is not None and fast_paths_enabled():
        model.__class__ = fast  # only methods differ; no state to add
    return model


class FastLoader:
    """Mix in before FlagEmbedding's embedder runners: the model they build is trained as its studio class."""

    def load_tokenizer_and_model(self):
        tokenizer, model = super().load_tokenizer_and_model()
        return tokenizer, speed_up(model)
