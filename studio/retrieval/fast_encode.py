"""BGE-M3 encoding and cross-encoder scoring: FlagEmbedding's results, with less padding and less Python per token.

* :class:`M3Encoder` returns what ``BGEM3FlagModel.encode`` returns (``dense_vecs``, ``lexical_weights`` dicts,
  ``colbert_vecs``). It batches texts longest first by a token budget (short texts get big batches) without
  FlagEmbedding's trial run of the longest batch, tokenizes on a background thread slice by slice while the model
  encodes the slices before (FlagEmbedding tokenizes everything first: 4,096 passages take 0.7 s on 2 cores), turns
  token weights into lexical-weight dicts with a few numpy operations per batch instead of a Python loop over every
  token, and on a GPU prepares batch N's results on the CPU while batch N+1 runs. With packing
  (:mod:`studio.training.packing`, as for training) a batch is encoded on its real tokens only.
* :class:`CrossEncoderScorer` returns what ``FlagReranker.compute_score`` returns. FlagReranker (Transformers 5
  has no ``prepare_for_model``) decodes and re-tokenizes every pair on its own; here the same decode and pair
  encoding run as two batched tokenizer calls, then the same length-sorted batching by token budget.

Both load the same files with the same precision rules as FlagEmbedding (``use_fp16`` on GPUs; fp32 on the CPU).
"""

from __future__ import annotations

import contextlib
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from studio.training.fast_models import fast_attention, length_chunks, packing_enabled
from studio.training.packing import packed_hidden_states

# Padded tokens per forward pass: FlagEmbedding's largest batch (256 texts of 512 tokens for M3, 128 pairs for the
# reranker) on GPUs; smaller on CPUs, where big batches buy nothing.
CUDA_ENCODE_BUDGET = 131072
CUDA_RERANK_BUDGET = 65536
CPU_BUDGET = 8192
# Texts per tokenizer call on the background thread; the first slice is small so that the model starts early.
FIRST_SLICE, SLICE = 256, 1024


def _device(device: str | None):
    import torch

    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def _pad(rows: Sequence[Sequence[int]], length: int, value: int) -> np.ndarray:
    out = np.full((len(rows), length), value, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out


def _to_device(array: np.ndarray, device):
    import torch

    tensor = torch.from_numpy(array)
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor


def _pipelined(batches: Iterable, launch: Callable, finish: Callable) -> None:
    """``finish(batch, launch(batch))`` for each batch, finishing batch N after batch N+1 is launched.

    On a GPU ``launch`` only queues work (results copied to pinned memory), so the CPU side of batch N overlaps the
    GPU side of batch N+1.
    """
    previous = None
    for batch in batches:
        current = (batch, launch(batch))
        if previous is not None:
            finish(*previous)
        previous = current
    if previous is not None:
        finish(*previous)


def _host(tensors: dict, device) -> tuple[dict, object]:
    """Start copying `tensors` to the host; returns (host tensors, CUDA event marking the end of the copies)."""
    import torch

    host = {key: value.to("cpu", non_blocking=True) for key, value in tensors.items()}
    if device.type != "cuda":
        return host, None
    event = torch.cuda.Event()
    event.record()
    return host, event


def tokenized_batches(tokenizer, texts: Sequence[str], max_length: int, budget: int,
                      lock: threading.Lock | None = None) -> Iterator[tuple[list[int], list[list[int]], int]]:
    """``(text indices, token ids, padded length)`` batches of at most `budget` padded tokens, longest texts first.

    Texts are ordered by characters (a proxy for tokens) and tokenized in slices on a background thread, so the
    caller encodes one slice while the next is tokenized (the tokenizer releases the GIL); each slice is cut into
    batches by its token lengths (:func:`length_chunks`). `lock` serialises calls into `tokenizer` when several
    threads share it (a Rust tokenizer refuses concurrent calls that change its truncation settings).
    """
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    slices = [order[:FIRST_SLICE]] + [order[s:s + SLICE] for s in range(FIRST_SLICE, len(order), SLICE)]

    def tokenize(rows: list[int]) -> list[list[int]]:
        with lock or contextlib.nullcontext():
            return tokenizer([texts[i] for i in rows], truncation=True, max_length=max_length)["input_ids"]

    with ThreadPoolExecutor(1, thread_name_prefix="tokenize") as pool:
        futures = [pool.submit(tokenize, rows) for rows in slices if rows]
        try:
            for rows, future in zip(slices, futures):
                ids = future.result()
                for chunk, length in length_chunks([len(row) for row in ids], budget):
                    yield [rows[j] for j in chunk], [ids[j] for j in chunk], length
        finally:
            for future in futures:
                future.cancel()


def special_ids(tokenizer) -> np.ndarray:
    """Ids of the CLS, EOS, PAD and UNK tokens: BGE-M3 gives them no lexical weight (as BGEM3FlagModel)."""
    ids = []
    for name in ("cls_token", "eos_token", "pad_token", "unk_token"):
        if name in tokenizer.special_tokens_map:
            ids.append(tokenizer.convert_tokens_to_ids(tokenizer.special_tokens_map[name]))
    return np.array(ids, dtype=np.int64)


def lexical_dicts(weights: np.ndarray, input_ids: np.ndarray, unused: np.ndarray) -> list[defaultdict]:
    """BGEM3FlagModel's ``lexical_weights`` for a padded batch, without a Python loop over tokens.

    Args:
        weights: (texts, length) token weights (ReLU of the sparse head).
        input_ids: (texts, length) token ids.
        unused: Ids that never get a weight (:func:`special_ids`).

    Returns:
        Per text, ``{str(token id): largest weight}`` over tokens with a positive weight, keys in order of first
        appearance, values numpy scalars of `weights`' dtype, in a ``defaultdict(int)``: what BGEM3FlagModel returns.
    """
    out = [defaultdict(int) for _ in range(len(input_ids))]
    rows, cols = np.nonzero((weights > 0) & ~np.isin(input_ids, unused))
    if rows.size == 0:
        return out
    tokens, values = input_ids[rows, cols], weights[rows, cols]
    order = np.lexsort((cols, tokens, rows))  # text, then token id, then position
    rows, cols, tokens, values = rows[order], cols[order], tokens[order], values[order]
    starts = np.flatnonzero(np.r_[True, (rows[1:] != rows[:-1]) | (tokens[1:] != tokens[:-1])])
    best = np.maximum.reduceat(values, starts)
    rows, first, tokens = rows[starts], cols[starts], tokens[starts]
    order = np.lexsort((first, rows))  # each text's ids in order of first appearance
    rows, tokens, best = rows[order], tokens[order], best[order]
    bounds = np.searchsorted(rows, np.arange(len(input_ids) + 1))
    for row in np.unique(rows):
        a, b = bounds[row], bounds[row + 1]
        out[row].update(zip(map(str, tokens[a:b].tolist()), best[a:b]))
    return out


class M3Encoder:
    """BGE-M3 dense, lexical and ColBERT encoding, returning exactly what ``BGEM3FlagModel.encode`` returns.

    Args:
        model_name_or_path: A BGE-M3 folder (transformer + ``colbert_linear.pt`` + ``sparse_linear.pt``).
        use_fp16: Half precision on GPUs; on the CPU the model runs in fp32 (after loading in fp16, as
            BGEM3FlagModel does, so results match it either way).
        device: ``cuda``, ``cuda:1``, ``cpu``; None: the first GPU if there is one.
        pooling: ``cls`` (BGE-M3) or ``mean``.
        normalize: L2-normalise dense and ColBERT vectors (BGEM3FlagModel's default).
        token_budget: Padded tokens per batch; None: CUDA_ENCODE_BUDGET on GPUs, CPU_BUDGET otherwise.
    """

    def __init__(self, model_name_or_path: str | Path, use_fp16: bool = True, device: str | None = None,
                 pooling: str = "cls", normalize: bool = True, token_budget: int | None = None):
        import torch
        from FlagEmbedding.finetune.embedder.encoder_only.m3 import (
            EncoderOnlyEmbedderM3Runner,
        )
        from transformers import AutoTokenizer

        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be cls or mean, not {pooling!r}")
        self.device = _device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_name_or_path))
        parts = EncoderOnlyEmbedderM3Runner.get_model(str(model_name_or_path),
                                                      torch_dtype=torch.float16 if use_fp16 else torch.float32)
        self.model, self.colbert_linear, self.sparse_linear = (
            parts[name].float() if self.device.type == "cpu" else parts[name]
            for name in ("model", "colbert_linear", "sparse_linear"))
        for module in (self.model, self.colbert_linear, self.sparse_linear):
            module.to(self.device).eval()
        self.pooling, self.normalize = pooling, normalize
        self.token_budget = token_budget or (CUDA_ENCODE_BUDGET if self.device.type == "cuda" else CPU_BUDGET)
        self.unused = special_ids(self.tokenizer)
        self._tokenizer_lock = threading.Lock()  # the app may encode from several request threads at once

    def encode(self, sentences: str | Sequence[str], max_length: int = 512, return_dense: bool = True,
               return_sparse: bool = False, return_colbert_vecs: bool = False, batch_size: int | None = None) -> dict:
        """``{"dense_vecs", "lexical_weights", "colbert_vecs"}`` as BGEM3FlagModel.encode (None where not asked).

        A single string gives one vector / dict / array instead of a list of them, as there. `batch_size` is
        accepted for BGEM3FlagModel's signature and ignored: batches follow the token budget.
        """
        import torch

        single = isinstance(sentences, str)
        texts = [sentences] if single else list(sentences)
        dense: list = [None] * len(texts)
        lexical: list = [None] * len(texts)
        colbert: list = [None] * len(texts)
        pad = self.tokenizer.pad_token_id

        def launch(batch):
            _, ids, length = batch
            input_ids = _pad(ids, length, pad)
            mask = (np.arange(length)[None, :] < np.array([len(row) for row in ids])[:, None]).astype(np.int64)
            outputs = self._forward(_to_device(input_ids, self.device), _to_device(mask, self.device),
                                    return_dense, return_sparse, return_colbert_vecs)
            return input_ids, _host(outputs, self.device)

        def finish(batch, launched):
            rows, ids, _ = batch
            input_ids, (host, event) = launched
            if event is not None:
                event.synchronize()
            if return_dense:
                for i, vector in zip(rows, host["dense"].numpy()):
                    dense[i] = vector
            if return_sparse:
                for i, weights in zip(rows, lexical_dicts(host["sparse"].numpy(), input_ids, self.unused)):
                    lexical[i] = weights
            if return_colbert_vecs:
                vectors = host["colbert"].numpy()
                for j, i in enumerate(rows):
                    colbert[i] = vectors[j, :len(ids[j]) - 1]  # no CLS vector, as BGEM3FlagModel

        with torch.inference_mode():
            _pipelined(tokenized_batches(self.tokenizer, texts, max_length, self.token_budget, self._tokenizer_lock),
                       launch, finish)
        result = {"dense_vecs": np.stack(dense) if return_dense and texts else None,
                  "lexical_weights": lexical if return_sparse else None,
                  "colbert_vecs": colbert if return_colbert_vecs else None}
        if single:
            result = {key: None if value is None else value[0] for key, value in result.items()}
        return result

    def encode_corpus(self, corpus: str | Sequence[str], **kwargs) -> dict:
        """:meth:`encode` (BGEM3FlagModel.encode_corpus without a passage instruction)."""
        return self.encode(corpus, **kwargs)

    def encode_queries(self, queries: str | Sequence[str], **kwargs) -> dict:
        """:meth:`encode` (BGEM3FlagModel.encode_queries without a query instruction)."""
        return self.encode(queries, **kwargs)

    def _forward(self, input_ids, attention_mask, dense: bool, sparse: bool, colbert: bool) -> dict:
        """Device tensors for one padded batch: the same operations as FlagEmbedding's inference model."""
        import torch
        import torch.nn.functional as F

        features = {"input_ids": input_ids, "attention_mask": attention_mask}
        if packing_enabled(self.model, input_ids.device):
            hidden = packed_hidden_states(self.model, features)
        else:
            with fast_attention(input_ids.device):
                hidden = self.model(**features, return_dict=True).last_hidden_state
        out = {}
        if dense:
            if self.pooling == "cls":
                vectors = hidden[:, 0]
            else:
                vectors = (hidden * attention_mask.unsqueeze(-1).float()).sum(dim=1) / attention_mask.sum(
                    dim=1, keepdim=True).float()
            out["dense"] = F.normalize(vectors, dim=-1) if self.normalize else vectors
        if sparse:
            out["sparse"] = torch.relu(self.sparse_linear(hidden)).squeeze(-1)
        if colbert:
            vectors = self.colbert_linear(hidden[:, 1:]) * attention_mask[:, 1:][:, :, None].float()
            out["colbert"] = F.normalize(vectors, dim=-1) if self.normalize else vectors
        return out


class CrossEncoderScorer:
    """Cross-encoder relevance scores, equal to ``FlagReranker.compute_score``'s for the same model and lengths.

    Args:
        model_name_or_path: A sequence-classification model folder with one logit (bge-reranker style).
        use_fp16: Half precision on GPUs (ignored on the CPU, as FlagReranker does).
        device: ``cuda``, ``cpu``...; None: the first GPU if there is one.
        token_budget: Padded tokens per batch; None: CUDA_RERANK_BUDGET on GPUs, CPU_BUDGET otherwise.
        max_length: Tokens per (query, passage) pair when :meth:`compute_score` is not given one (FlagReranker's
            ``max_length``).
    """

    def __init__(self, model_name_or_path: str | Path, use_fp16: bool = False, device: str | None = None,
                 token_budget: int | None = None, max_length: int = 512):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.device = _device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_name_or_path))
        self.model = AutoModelForSequenceClassification.from_pretrained(str(model_name_or_path))
        if use_fp16 and self.device.type != "cpu":
            self.model.half()
        self.model.to(self.device).eval()
        self.token_budget = token_budget or (CUDA_RERANK_BUDGET if self.device.type == "cuda" else CPU_BUDGET)
        self.max_length = max_length

    def tokenize(self, pairs: Sequence[Sequence[str]], max_length: int, query_max_length: int) -> dict:
        """FlagReranker's inputs: query cut to `query_max_length` tokens, passage to `max_length`, both decoded and
        encoded again as a pair cut to `max_length` (only the passage shortened), here in batched calls."""
        tok = self.tokenizer

        def cut(texts: list[str], limit: int) -> list[str]:
            ids = tok(texts, add_special_tokens=False, truncation=True, max_length=limit)["input_ids"]
            return tok.batch_decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

        queries = cut([pair[0] for pair in pairs], query_max_length)
        passages = cut([pair[1] for pair in pairs], max_length)
        encoded = dict(tok(queries, passages, truncation="only_second", max_length=max_length))
        # FlagReranker encodes one pair per call, where an empty passage counts as no passage: the query alone,
        # without a second [SEP]. A batched call keeps the pair, so those rows are encoded again on their own.
        empty = [i for i, passage in enumerate(passages) if not passage]
        if empty:
            alone = tok([queries[i] for i in empty], truncation=True, max_length=max_length)
            for key, rows in encoded.items():
                for j, i in enumerate(empty):
                    rows[i] = alone[key][j]
        return encoded

    def compute_score(self, sentence_pairs: Sequence[Sequence[str]], max_length: int | None = None,
                      query_max_length: int | None = None, normalize: bool = False,
                      batch_size: int | None = None) -> list[float]:
        """One score per (query, passage) pair, in input order; sigmoid of the logit if `normalize`.

        `max_length` defaults to the constructor's, `query_max_length` to 3/4 of `max_length`, as FlagReranker's.
        `batch_size` is accepted for FlagReranker's signature and ignored: batches follow the token budget.
        A single pair gives a one-item list.
        """
        import torch

        max_length = max_length or self.max_length
        pairs = [sentence_pairs] if isinstance(sentence_pairs[0], str) else list(sentence_pairs)
        if query_max_length is None:
            query_max_length = max_length * 3 // 4
        encoded = self.tokenize(pairs, max_length, query_max_length)
        lengths = [len(row) for row in encoded["input_ids"]]
        pads = {"input_ids": self.tokenizer.pad_token_id, "attention_mask": 0,
                "token_type_ids": self.tokenizer.pad_token_type_id}
        scores = torch.empty(len(pairs), dtype=torch.float32)
        chunks, logits = length_chunks(lengths, self.token_budget), []
        with torch.inference_mode():
            for rows, length in chunks:
                inputs = {key: _to_device(_pad([values[i] for i in rows], length, pads.get(key, 0)), self.device)
                          for key, values in encoded.items()}
                with fast_attention(self.device):
                    logits.append(self.model(**inputs, return_dict=True).logits.view(-1).float())
            if logits:
                order = torch.tensor([i for rows, _ in chunks for i in rows])
                scores[order] = torch.cat(logits).cpu()
        values = scores.tolist()
        if normalize:
            values = [float(1 / (1 + np.exp(-v))) for v in values]
        return values
