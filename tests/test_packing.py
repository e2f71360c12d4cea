"""Packed encoder passes (studio.training.packing) give each text the hidden states a padded batch gives it."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertModel, XLMRobertaConfig, XLMRobertaModel

from studio.training.packing import PACKED, packable, packed_hidden_states

SIZE = {"vocab_size": 300, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
        "intermediate_size": 64, "max_position_embeddings": 80}
MODELS = {"xlm-roberta": lambda dropout: XLMRobertaModel(XLMRobertaConfig(
              **SIZE, pad_token_id=1, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)),
          "bert": lambda dropout: BertModel(BertConfig(
              **SIZE, type_vocab_size=2, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout))}


def batch(pad_id: int, lengths=(10, 3, 17, 5), seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.full((len(lengths), max(lengths)), pad_id)
    mask = torch.zeros_like(ids)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.randint(5, 300, (n,), generator=generator)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask}


@pytest.mark.parametrize("name", MODELS)
def test_packed_pass_equals_the_padded_one_with_gradients(name):
    torch.manual_seed(0)
    model = MODELS[name](0.0)
    assert packable(model)
    features = batch(model.config.pad_token_id)
    if name == "bert":  # a second segment, so that token types must travel with their tokens
        features["token_type_ids"] = (torch.arange(features["input_ids"].shape[1]) >= 2).long().expand_as(
            features["input_ids"]) * features["attention_mask"]
    mask = features["attention_mask"][..., None]

    expected = model(**features).last_hidden_state * mask
    (expected ** 2).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    got = packed_hidden_states(model, features)
    (got ** 2).sum().backward()

    assert torch.allclose(got, expected, atol=1e-5)
    assert got[mask.squeeze(-1) == 0].abs().max() == 0  # zeros at padding
    for n, p in model.named_parameters():
        if n in grads:
            assert torch.allclose(p.grad, grads[n], atol=1e-5, rtol=1e-4), n


def test_padded_calls_are_unchanged_after_a_packed_one():
    """The model keeps the packed attention function (checkpointed layers recompute with it in backward); calls
    without packing arguments still mask padding as SDPA did, and nothing of it is saved with the model."""
    torch.manual_seed(0)
    model = MODELS["xlm-roberta"](0.0).eval()
    features = batch(1)
    mask = features["attention_mask"][..., None]
    before = model(**features).last_hidden_state * mask
    packed_hidden_states(model, features)
    assert model.config._attn_implementation == PACKED
    assert torch.equal(model(**features).last_hidden_state * mask, before)
    assert "studio_packed" not in model.config.to_json_string()


def test_attention_dropout_still_applies_when_packed():
    """Packed training with BGE-M3's attention dropout (0.1; hidden dropout off here, so only attention can vary):
    outputs vary from pass to pass as the padded model's do, and their average stays with the dropout-free ones."""
    torch.manual_seed(0)
    model = XLMRobertaModel(XLMRobertaConfig(**SIZE, pad_token_id=1, hidden_dropout_prob=0.0,
                                             attention_probs_dropout_prob=0.1))
    features = batch(1)
    model.eval()
    clean = packed_hidden_states(model, features)
    model.train()
    runs = torch.stack([packed_hidden_states(model, features) for _ in range(200)])
    assert not torch.allclose(runs[0], runs[1])
    mask = features["attention_mask"].bool()
    assert (runs.mean(0) - clean)[mask].abs().mean() < 0.1 * clean[mask].abs().mean()


def test_only_encoders_with_sdpa_through_the_attention_interface_are_packed():
    model = MODELS["bert"](0.0)
    model.config._attn_implementation = "eager"
    assert not packable(model)
    assert not packable(torch.nn.Linear(2, 2))
