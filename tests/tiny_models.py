"""Tiny, seeded, random models for fast training tests (no network: tokenizers come from the embedded MiniLM).

There is no XLM-R tokenizer on disk, so the tiny BGE-M3-shaped model reuses the embedded all-MiniLM-L6-v2 BERT
tokenizer (WordPiece, 30522 ids, handles Chinese characters one by one) with ``vocab_size`` set to match it.
What FlagEmbedding's M3 code needs from the tokenizer: ``cls``, ``pad`` and ``unk`` ids, and an ``eos`` id (the
sparse head zeroes the weights of those four tokens); BERT's tokenizer has no eos, so ``[SEP]`` is declared as
eos, which is what XLM-R's ``</s>`` is as well. The model's ``pad_token_id`` is the tokenizer's (0), so XLM-R
position ids (which start after the padding index) stay consistent.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import (AutoTokenizer, BertConfig, BertForSequenceClassification, XLMRobertaConfig,
                          XLMRobertaModel)

from studio.config import embedded_model_path

HIDDEN, LAYERS, HEADS, INTERMEDIATE = 32, 2, 2, 64


def _tokenizer(eos_as_sep: bool = False):
    tokenizer = AutoTokenizer.from_pretrained(str(embedded_model_path()))
    if eos_as_sep:
        tokenizer.eos_token = tokenizer.sep_token
    return tokenizer


def build_tiny_m3(folder: str | Path, seed: int = 0) -> Path:
    """A random BGE-M3-shaped model: XLMRobertaModel (hidden 32, 2 layers) + colbert_linear.pt + sparse_linear.pt."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(eos_as_sep=True)
    torch.manual_seed(seed)
    config = XLMRobertaConfig(vocab_size=len(tokenizer), hidden_size=HIDDEN, num_hidden_layers=LAYERS,
                              num_attention_heads=HEADS, intermediate_size=INTERMEDIATE,
                              max_position_embeddings=514, type_vocab_size=1, pad_token_id=tokenizer.pad_token_id,
                              bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id)
    model = XLMRobertaModel(config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    # Exactly the files BGE-M3 ships beside its transformer weights.
    torch.save(torch.nn.Linear(HIDDEN, HIDDEN).state_dict(), out / "colbert_linear.pt")
    torch.save(torch.nn.Linear(HIDDEN, 1).state_dict(), out / "sparse_linear.pt")
    # As BGE-M3: a sentence-transformers description of its dense part (CLS pooling, normalised).
    (out / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]))
    (out / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 512, "do_lower_case": False}))
    (out / "1_Pooling").mkdir(exist_ok=True)
    (out / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": HIDDEN, "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}))
    (out / "2_Normalize").mkdir(exist_ok=True)
    return out


def build_tiny_reranker(folder: str | Path, seed: int = 0) -> Path:
    """A random BERT cross-encoder (hidden 32, 2 layers) with a one-logit classification head."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer()
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=HIDDEN, num_hidden_layers=LAYERS,
                        num_attention_heads=HEADS, intermediate_size=INTERMEDIATE, max_position_embeddings=512,
                        num_labels=1, pad_token_id=tokenizer.pad_token_id)
    model = BertForSequenceClassification(config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
