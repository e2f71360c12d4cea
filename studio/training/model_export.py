"""Write a fine-tuned model as a plain folder that the usual libraries load as is.

* embedder, ``encoder``: ``SentenceTransformer(folder)`` (Transformer → Pooling → Normalize, sentence-transformers'
  folder layout: ``modules.json``, ``sentence_bert_config.json``, ``1_Pooling/config.json``, ``2_Normalize/``).
* embedder, ``m3``: ``FlagEmbedding.BGEM3FlagModel(folder)`` (``colbert_linear.pt`` and ``sparse_linear.pt`` beside
  the transformer weights, as BGE-M3 ships them) and ``SentenceTransformer(folder)`` for the dense (CLS) part.
* reranker: ``FlagEmbedding.FlagReranker(folder)`` and ``AutoModelForSequenceClassification.from_pretrained``.

LoRA adapters are merged into the base weights first, so no adapter (and no peft) is needed to load the result.
Weights are written as safetensors; the tokenizer always goes along. Every folder also gets a model card
(``README.md``) and ``studio_model.json`` saying what it was trained from.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import torch

from studio import __version__
from studio.models.registry import ORIGIN_FILE
from studio.training.base_model import passage_max_len
from studio.training.config import TrainConfig
from studio.training.train_file import file_fingerprints

_OFFSET_POSITIONS = {"roberta", "xlm-roberta", "camembert"}  # position ids start after the padding index


def merge_lora(model: torch.nn.Module) -> torch.nn.Module:
    """`model` with any peft (LoRA) adapter merged into its weights and removed; other models unchanged."""
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - peft is a dependency
        return model
    if isinstance(model, PeftModel):
        return model.merge_and_unload()
    return model


def manifest_for(train: str | Path) -> tuple[Path, dict] | None:
    """The export manifest beside a training file (``x.jsonl`` → ``x.manifest.json``), when there is one."""
    path = Path(train)
    manifest = path.with_name(path.name[: -len(path.suffix)] + ".manifest.json") if path.suffix else None
    if manifest is None or not manifest.is_file():
        return None
    try:
        return manifest, json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def export_model(model: torch.nn.Module, tokenizer, config: TrainConfig, out_dir: str | Path | None = None, *,
                 architecture: str, base_path: str | Path, pooling: str = "cls", normalize: bool = True,
                 colbert_linear: torch.nn.Module | dict | None = None,
                 sparse_linear: torch.nn.Module | dict | None = None,
                 job_dir: str | Path | None = None, final: dict | None = None) -> Path:
    """Save a trained model to `out_dir` (default ``config.output_dir``) and return that folder.

    Args:
        model: The Hugging Face transformer (``AutoModel`` for an embedder, ``...ForSequenceClassification`` for a
            reranker), possibly wrapped by peft: LoRA is merged before saving.
        tokenizer: Its tokenizer.
        config: The job's TrainConfig (task, method, data and hyperparameters for the card).
        out_dir: Where to write; replaced if it holds an earlier studio model, refused if it holds anything else.
        architecture: ``m3`` or ``encoder`` (embedders); recorded for rerankers too.
        base_path: The base model folder the run started from.
        pooling: Embedders: ``cls``, ``mean`` or ``last_token``, written to ``1_Pooling/config.json``.
        normalize: Embedders: add sentence-transformers' Normalize module.
        colbert_linear, sparse_linear: M3 heads (modules or state dicts), saved as ``colbert_linear.pt`` /
            ``sparse_linear.pt``.
        job_dir: The job folder, recorded in ``studio_model.json``.
        final: Final figures of the run (``loss``, ``eval_loss``, ``step``, ...) for the card.

    Raises:
        FileExistsError: `out_dir` exists and is neither empty nor a studio model.
    """
    out = Path(out_dir if out_dir is not None else config.output_dir).resolve()
    if out.exists() and any(out.iterdir()) and not (out / ORIGIN_FILE).is_file():
        raise FileExistsError(f"the output folder {out} already exists and is not a Relevance Studio model; "
                              "choose another name")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        merged = merge_lora(model)
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for head, name in ((colbert_linear, "colbert_linear.pt"), (sparse_linear, "sparse_linear.pt")):
            if head is not None:
                state = head if isinstance(head, dict) else head.state_dict()
                torch.save({k: v.detach().clone().cpu() for k, v in state.items()}, tmp / name)
        max_seq_length = None
        if config.task == "embedder":
            max_seq_length = _max_seq_length(merged, tokenizer, config, Path(base_path))
            _write_sentence_transformers(tmp, merged.config.hidden_size, pooling, normalize, max_seq_length,
                                         Path(base_path))
        else:
            max_seq_length = _reranker_max_length(merged, tokenizer, config, Path(base_path))
        info = _model_info(config, architecture, base_path, pooling if config.task == "embedder" else None,
                           normalize if config.task == "embedder" else None, max_seq_length, job_dir, final or {})
        (tmp / ORIGIN_FILE).write_text(json.dumps(info, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(_model_card(config, info), encoding="utf-8")
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _replace(tmp: Path, out: Path) -> None:
    """Move `tmp` to `out`, replacing an earlier model there."""
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def _position_limit(model, tokenizer) -> int:
    """The longest input the model can read: its position embeddings, or its tokenizer's limit if lower."""
    limit = getattr(model.config, "max_position_embeddings", None) or 512
    if getattr(model.config, "model_type", "") in _OFFSET_POSITIONS:
        limit -= 2
    tok_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_max, int) and 0 < tok_max < 1_000_000:
        limit = min(limit, tok_max)
    return limit


def _reranker_max_length(model, tokenizer, config: TrainConfig, base: Path) -> int:
    """The (query, passage) length the reranker was trained on: FlagEmbedding's query_max_len + passage_max_len.

    Scoring longer pairs than that reads positions the fine-tune never trained and costs more for nothing.
    """
    return max(1, min(config.query_max_len + passage_max_len(config, base), _position_limit(model, tokenizer)))


def _max_seq_length(model, tokenizer, config: TrainConfig, base: Path) -> int:
    """The base's sentence-transformers max_seq_length, else the longest training length; within the model's limit."""
    limit = _position_limit(model, tokenizer)
    wanted = max(config.query_max_len, config.passage_max_len or 512)
    try:
        wanted = int(json.loads((base / "sentence_bert_config.json").read_text(encoding="utf-8"))["max_seq_length"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return max(1, min(wanted, limit))


def _write_sentence_transformers(folder: Path, dim: int, pooling: str, normalize: bool, max_seq_length: int,
                                 base: Path) -> None:
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
        (folder / "2_Normalize").mkdir(exist_ok=True)
    (folder / "modules.json").write_text(json.dumps(modules, indent=2) + "\n", encoding="utf-8")
    (folder / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": max_seq_length, "do_lower_case": False}, indent=2) + "\n", encoding="utf-8")
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": dim,
        "pooling_mode_cls_token": pooling == "cls",
        "pooling_mode_mean_tokens": pooling == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": pooling == "last_token",
        "include_prompt": True,
    }, indent=2) + "\n", encoding="utf-8")
    # The base's prompts (e.g. a query instruction) still apply to the fine-tuned model.
    st_config = base / "config_sentence_transformers.json"
    if st_config.is_file():
        shutil.copyfile(st_config, folder / "config_sentence_transformers.json")


def _model_info(config: TrainConfig, architecture: str, base_path: str | Path, pooling: str | None,
                normalize: bool | None, max_seq_length: int | None, job_dir: str | Path | None, final: dict) -> dict:
    manifest = manifest_for(config.train)
    hyper = {k: v for k, v in asdict(config).items()
             if k not in ("task", "base", "train", "valid", "name", "output_dir", "method", "architecture")}
    hyper["learning_rate"] = config.learning_rate()
    return {
        "task": config.task,
        "architecture": architecture,
        "base": config.base,
        "base_path": str(base_path),
        "method": config.method,
        "job_dir": str(Path(job_dir).resolve()) if job_dir else None,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "final_loss": final.get("loss"),
        "final_eval_loss": final.get("eval_loss"),
        "final": final,
        "train": str(Path(config.train).resolve()),
        "valid": str(Path(config.valid).resolve()) if config.valid else None,
        # What it learned from, kept when those files are rewritten: evaluations leave these queries out
        "queries": {"train": file_fingerprints(config.train), "valid": file_fingerprints(config.valid)},
        "train_manifest": None if manifest is None else {
            "path": str(manifest[0].resolve()),
            "source_fingerprint": manifest[1].get("source_fingerprint"),
            "counts": manifest[1].get("counts"),
            "created": manifest[1].get("created"),
        },
        "pooling": pooling,
        "normalize": normalize,
        "max_seq_length": max_seq_length,
        "hyperparameters": hyper,
        "studio_version": __version__,
    }


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _model_card(config: TrainConfig, info: dict) -> str:
    task = "an embedding model" if config.task == "embedder" else "a reranker (cross-encoder)"
    library = "sentence-transformers" if config.task == "embedder" else "transformers"
    lines = [
        "---",
        f"library_name: {library}",
        f"base_model: {json.dumps(config.base)}",
        "tags: [relevance-studio, flagembedding, "
        + ("sentence-similarity" if config.task == "embedder" else "text-ranking") + "]",
        "---",
        "",
        f"# {config.name}",
        "",
        f"{task[0].upper()}{task[1:]} fine-tuned with Relevance Studio (FlagEmbedding) on expert relevance labels.",
        "",
        "| | |",
        "|---|---|",
        f"| Base model | `{config.base}` |",  # by name: the folder may be a path inside .venv
        f"| Task | {config.task} |",
        f"| Architecture | {info['architecture']} |",
        f"| Method | {config.method}" + (" (LoRA merged into the weights)" if config.method == "lora" else "") + " |",
        f"| Training data | `{info['train']}` |",
    ]
    if info["valid"]:
        lines.append(f"| Validation data | `{info['valid']}` |")
    manifest = info["train_manifest"]
    if manifest:
        lines.append(f"| Gold set fingerprint | `{manifest.get('source_fingerprint')}` |")
        counts = manifest.get("counts") or {}
        if counts:
            shown = ", ".join(f"{k} {v}" for k, v in counts.items())
            lines.append(f"| Data counts | {shown} |")
    final = info.get("final") or {}
    if info["final_loss"] is not None:
        lines.append(f"| Final training loss | {info['final_loss']:.4f} |")
    if info.get("final_eval_loss") is not None:
        lines.append(f"| Final validation loss | {info['final_eval_loss']:.4f} |")
    if final.get("step") is not None:
        lines.append(f"| Steps | {final['step']} |")
    if info["pooling"]:
        lines.append(f"| Pooling | {info['pooling']}" + (", normalised" if info["normalize"] else "") + " |")
    lines.append(f"| Created | {info['created']} |")
    lines += ["", "## Hyperparameters", "", "| Name | Value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in info["hyperparameters"].items()]
    lines += ["", "## Usage", "", "```python"]
    if config.task == "reranker":
        lines += ["from FlagEmbedding import FlagReranker", "",
                  "reranker = FlagReranker(\"path/to/this/folder\")",
                  "scores = reranker.compute_score([[\"query\", \"passage\"]])"]
    elif info["architecture"] == "m3":
        lines += ["from FlagEmbedding import BGEM3FlagModel", "",
                  "model = BGEM3FlagModel(\"path/to/this/folder\")",
                  "out = model.encode([\"text\"], return_dense=True, return_sparse=True, return_colbert_vecs=True)",
                  "", "# dense part only:", "from sentence_transformers import SentenceTransformer",
                  "vectors = SentenceTransformer(\"path/to/this/folder\").encode([\"text\"])"]
    else:
        lines += ["from sentence_transformers import SentenceTransformer", "",
                  "model = SentenceTransformer(\"path/to/this/folder\")",
                  "vectors = model.encode([\"text\"], normalize_embeddings=True)"]
    lines += ["```", ""]
    return "\n".join(lines)
