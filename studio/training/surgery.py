"""Model surgery before training: what is done to FlagEmbedding's model once it is built and before the Trainer sees
it (an eos token for M3 tokenizers that lack one, LoRA adapters, frozen embeddings or lower layers).

:func:`make_prepare` returns the hook :class:`studio.training.hook.PrepareHook` runs on the built model.
"""

from __future__ import annotations

from collections.abc import Callable

from studio.training.config import TrainConfig
from studio.training.failures import WorkerError, first_line


def _find_parts(model):
    """(embedding module, list of transformer layers) of an encoder, wrapped by peft or not."""
    import torch

    embeddings = layers = None
    for name, module in model.named_modules():
        last = name.rsplit(".", 1)[-1]
        if embeddings is None and last == "embeddings" and hasattr(module, "word_embeddings"):
            embeddings = module
        if layers is None and isinstance(module, torch.nn.ModuleList) and last in ("layer", "layers"):
            layers = module
    if embeddings is None:
        embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    return embeddings, layers


def freeze(model, embeddings: bool, layers: int) -> None:
    """Stop gradients to the embedding layer and/or the lowest `layers` transformer layers (LoRA ones included)."""
    if not embeddings and layers <= 0:
        return
    embedding_module, layer_list = _find_parts(model)
    if embeddings:
        if embedding_module is None:
            raise WorkerError("cannot find the embedding layer to freeze in this model")
        for p in embedding_module.parameters():
            p.requires_grad = False
    if layers > 0:
        if layer_list is None:
            raise WorkerError("cannot find the transformer layers to freeze in this model")
        if layers > len(layer_list):
            print(f"freeze_layers={layers} but the model has {len(layer_list)} layers: freezing all of them")
        for layer in list(layer_list)[:layers]:
            for p in layer.parameters():
                p.requires_grad = False


def make_prepare(config: TrainConfig, architecture: str) -> Callable[[object, object], None]:
    """The hook run on FlagEmbedding's model once built: eos for M3 tokenizers, LoRA, freezing."""

    def prepare(tokenizer, model) -> None:
        if architecture == "m3" and tokenizer.eos_token_id is None and tokenizer.sep_token is not None:
            # M3's sparse head zeroes cls/eos/pad/unk; BERT-style tokenizers have no eos, XLM-R's is its sep.
            tokenizer.eos_token = tokenizer.sep_token
        if config.method == "lora":
            from peft import LoraConfig, get_peft_model

            modules_to_save = None
            if config.task == "reranker":
                from studio.training.reranker import head_modules  # imports FlagEmbedding

                modules_to_save = head_modules(model.model) or None
            lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                              target_modules=list(config.lora_targets), modules_to_save=modules_to_save)
            try:
                model.model = get_peft_model(model.model, lora)
            except ValueError as exc:
                raise WorkerError(f"LoRA could not be applied (lora_targets {config.lora_targets}): "
                                  f"{first_line(exc)}") from None
        freeze(model.model, config.freeze_embeddings, config.freeze_layers)
        params = list(model.parameters())
        trainable = sum(p.numel() for p in params if p.requires_grad)
        total = sum(p.numel() for p in params)
        print(f"trainable parameters: {trainable:,} of {total:,} ({100 * trainable / max(total, 1):.2f}%)",
              flush=True)

    return prepare
