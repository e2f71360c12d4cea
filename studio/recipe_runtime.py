"""Run a Relevance Studio recipe without the studio: ``load_recipe("deploy/").search(query, documents)``.

`studio recipe export` copies this file beside ``recipe.json`` as ``recipe_runtime.py``: it imports nothing of the
studio — numpy and bm25s, sentence-transformers for a dense model or a reranker, torch for ``int8`` — so a RAG
service can ``import recipe_runtime`` from the recipe folder and rank documents exactly as the studio's own search
(``studio search QUERY --system SPEC``) and evaluation (⑧) rank them for the same recipe. ``studio recipe serve``
serves this same code over HTTP; tests/test_recipe.py checks it against the studio's ranking.

What it does, step by step (each step named in recipe.json):

1. a document's text is formed as ``document_text`` says (the studio's: title and text stripped, the title on the
   first line when there is one; a document without text is its title, as ``studio import beir`` reads a corpus);
2. each first stage scores every document: BM25 (bm25s with the studio's tokenizer rebuilt from
   ``bm25.tokenizer``; documents sharing no term are left out) or a dense model's cosine (normalised embeddings);
   each keeps its best ``depth`` documents;
3. two first stages are fused (``fusion``): reciprocal rank ``Σ 1 / (rrf_k + rank)`` or a weighted sum of
   min-max-normalised scores, ties broken by document id, as :mod:`studio.retrieval.fusion` does;
4. a reranker (``reranker``) rescores the first stage's best ``top_n`` by its raw score (the logit, the scale its
   threshold was calibrated on); ties keep the first stage's order, and the candidates past ``top_n`` follow
   below every reranked one (scores ``lowest - 1``, ``lowest - 2``, ... as ⑧'s evaluation ranks them);
5. each hit is flagged ``relevant`` when the recipe's calibrated threshold applies (``threshold.applies_to``:
   the final score, or for a fusion without reranker the dense stage's cosine); None without a threshold.

BGE-M3's sparse, ColBERT and weighted modes need FlagEmbedding and are not run here (``mode`` other than dense
raises ``ValueError``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FILE_NAME = "recipe.json"
FORMAT = "relevance-studio-recipe"
VERSION = 1
# How the studio forms a document's text (studio.store.gold.document_text over fields stripped on import).
DOCUMENT_TEXT = {"fields": ["title", "text"], "separator": "\n", "strip": True, "skip_empty": True,
                 "empty_text": "title"}
EMPTY_TOKEN = "\x00"  # what an empty document is indexed as (bm25s would drop it and shift the positions)
BATCH_SIZE = 64       # texts per forward pass, as the studio encodes


def load_recipe(path: str | Path, *, int8: bool = False, device: str | None = None,
                threshold: str = "best") -> Runtime:
    """The recipe in `path` (a recipe folder, or its recipe.json), ready to run.

    Args:
        int8: quantise the models' Linear layers to int8 (torch dynamic quantisation, CPU only); recipe.json's
            ``int8`` entry says what that costs in nDCG@10 when ``studio recipe export --int8-check`` measured it.
        device: where the models run (sentence-transformers' choice when None).
        threshold: which calibrated threshold flags a hit as relevant: ``best`` (max F1) or ``at_precision``.

    Raises:
        ValueError: not a recipe of this version, or a stage this runtime cannot run.
    """
    path = Path(path)
    file = path / FILE_NAME if path.is_dir() else path
    raw = file.read_bytes()
    data = json.loads(raw.decode("utf-8"))
    if data.get("format") != FORMAT or data.get("version") != VERSION:
        raise ValueError(f"{file} is not a {FORMAT} version {VERSION} file")
    return Runtime(data, file.parent, fingerprint=hashlib.sha256(raw).hexdigest(), int8=int8, device=device,
                   threshold=threshold)


def document_text(document: Mapping | str, how: Mapping | None = None) -> str:
    """A document's text as the recipe's `how` (its ``document_text``; the studio's by default) forms it.

    `document` is a mapping with the fields (``title``, ``text``; absent or None counts as empty) or a text as is.
    """
    if isinstance(document, str):
        return document
    how = how or DOCUMENT_TEXT
    values = {}
    for name in how["fields"]:
        value = document.get(name)
        value = "" if value is None else str(value)
        values[name] = value.strip() if how.get("strip") else value
    fallback = how.get("empty_text")
    if fallback and not values.get("text"):
        values["text"] = values.get(fallback, "")
    parts = [values[name] for name in how["fields"] if values[name] or not how.get("skip_empty")]
    return how["separator"].join(parts)


def tokenizer_of(settings: Mapping):
    """The studio's BM25 tokenizer rebuilt from recipe.json's ``bm25.tokenizer``: lower-cased matches of
    ``pattern``; a run of ``cjk`` characters becomes its overlapping ``cjk_ngram``-grams (one character stays
    whole); any other match is kept unless a stopword or shorter than ``min_length`` (digits kept at any length)."""
    pattern, cjk = re.compile(settings["pattern"]), re.compile(settings["cjk"])
    n, stop, shortest = settings["cjk_ngram"], frozenset(settings["stopwords"]), settings["min_length"]
    keep_digits, lower = settings.get("keep_digits", True), settings.get("lowercase", True)

    def tokenize(text: str) -> list[str]:
        terms: list[str] = []
        for match in pattern.finditer(text.lower() if lower else text):
            run = match.group()
            if cjk.match(run):
                terms.extend(run[i:i + n] for i in range(max(len(run) - n + 1, 1)))
            elif run not in stop and (len(run) >= shortest or (keep_digits and run.isdigit())):
                terms.append(run)
        return terms

    return tokenize


@dataclass
class Usage:
    """What a batch of texts cost a model: tokens it read (after cutting) and how many texts were cut."""

    tokens: int = 0
    truncated: int = 0
    max_length: int = 0


def _int8(module):
    """`module` with its Linear layers dynamically quantised to int8 (weights int8, activations quantised per
    batch); torch's deprecation notices about the quantisation API are silenced."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8)


class Runtime:
    """A loaded recipe: :meth:`search` (rank documents), :meth:`embed` (the dense model's normalised vectors) and
    :meth:`rerank` (the reranker's raw scores). Models load on first use, once; calls are serialised by a lock (on a
    CPU, concurrent forward passes only compete for the same cores)."""

    def __init__(self, data: dict, folder: Path, *, fingerprint: str, int8: bool = False, device: str | None = None,
                 threshold: str = "best"):
        self.data, self.folder, self.fingerprint = data, folder, fingerprint
        self.int8, self.device = bool(int8), device
        for stage in data["first_stage"]:
            if stage["kind"] == "dense" and stage.get("mode", "dense") != "dense":
                raise ValueError(f"a BGE-M3 '{stage['mode']}' stage needs FlagEmbedding; this runtime runs dense "
                                 "models only")
            if stage["kind"] not in ("bm25", "dense"):
                raise ValueError(f"a first stage of kind {stage['kind']!r} cannot search new queries")
        if threshold not in ("best", "at_precision"):
            raise ValueError("threshold is 'best' or 'at_precision'")
        self.document_format = data.get("document_text") or DOCUMENT_TEXT
        self.tokenize = tokenizer_of(data["bm25"]["tokenizer"]) if data.get("bm25") else None
        self._threshold_kind = threshold
        self._models: dict[str, object] = {}
        self._lock = threading.RLock()
        self._last: tuple[str, Index] | None = None

    # ------------------------------------------------------------------------------------------------ what it is
    @property
    def spec(self) -> str:
        return self.data["spec"]

    @property
    def dense_model(self) -> str | None:
        """The first dense stage's model folder (what :meth:`embed` runs), or None."""
        return next((s["model"] for s in self.data["first_stage"] if s["kind"] == "dense"), None)

    @property
    def reranker_model(self) -> str | None:
        return (self.data.get("reranker") or {}).get("model")

    @property
    def threshold(self) -> float | None:
        """The calibrated threshold hits are flagged against (None: the recipe has none, or not at that
        precision)."""
        entry = self.data.get("threshold") or {}
        chosen = entry.get(self._threshold_kind) or {}
        return chosen.get("threshold")

    @property
    def threshold_applies_to(self) -> str | None:
        """``final`` (the ranking's own score) or ``dense_stage`` (the dense component's cosine), or None."""
        return (self.data.get("threshold") or {}).get("applies_to") if self.threshold is not None else None

    # ------------------------------------------------------------------------------------------------ the models
    def embedder(self, model: str | None = None):
        """The SentenceTransformer of `model` (the recipe's first dense model by default), loaded once."""
        model = model or self.dense_model
        if model is None:
            raise LookupError(f"the recipe {self.spec} has no dense model")
        with self._lock:
            if model not in self._models:
                from sentence_transformers import SentenceTransformer

                loaded = SentenceTransformer(model, device=self._device())
                self._models[model] = _int8(loaded) if self.int8 else loaded
            return self._models[model]

    def cross_encoder(self):
        """The recipe's reranker as a sentence-transformers CrossEncoder cut to its ``max_length``, loaded once."""
        settings = self.data.get("reranker")
        if not settings:
            raise LookupError(f"the recipe {self.spec} has no reranker")
        key = "reranker:" + settings["model"]
        with self._lock:
            if key not in self._models:
                from sentence_transformers import CrossEncoder

                loaded = CrossEncoder(settings["model"], max_length=settings["max_length"], device=self._device())
                self._models[key] = _int8(loaded) if self.int8 else loaded
            return self._models[key]

    def _device(self) -> str | None:
        return "cpu" if self.int8 else self.device  # dynamic int8 kernels run on the CPU only

    # ------------------------------------------------------------------------------------------------ embeddings
    def embed(self, texts: Sequence[str] | str, model: str | None = None) -> np.ndarray:
        """L2-normalised float32 embeddings (one row per text) by `model` (the recipe's dense model by default), as
        the studio encodes documents and queries (no prompt, cut to the model's ``max_seq_length``)."""
        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        embedder = self.embedder(model)
        if not texts:
            return np.zeros((0, embedder.get_sentence_embedding_dimension() or 0), dtype=np.float32)
        with self._lock:
            vectors = embedder.encode(texts, batch_size=BATCH_SIZE, normalize_embeddings=True,
                                      convert_to_numpy=True, show_progress_bar=False)
        vectors = np.asarray(vectors, dtype=np.float32)
        return vectors[0] if single else vectors

    def embed_usage(self, texts: Sequence[str], model: str | None = None) -> Usage:
        """How many tokens `texts` give the embedder (special tokens included, after cutting) and how many are cut
        at its ``max_seq_length``."""
        embedder = self.embedder(model)
        limit = int(embedder.max_seq_length or 0)
        lengths = [len(ids) for ids in
                   embedder.tokenizer(list(texts), add_special_tokens=True, verbose=False)["input_ids"]]
        return _usage(lengths, limit)

    # ----------------------------------------------------------------------------------------------- the reranker
    def rerank(self, query: str, texts: Sequence[str]) -> list[float]:
        """The reranker's raw score (logit) of each text for `query`, in the order given."""
        texts = list(texts)
        if not texts:
            return []
        model = self.cross_encoder()
        with self._lock:
            scores = model.predict([(query, text) for text in texts], batch_size=32, activation_fn=_identity,
                                   show_progress_bar=False)
        return [float(s) for s in np.asarray(scores, dtype=np.float64).reshape(-1)]

    def rerank_usage(self, query: str, texts: Sequence[str]) -> Usage:
        """Tokens of each (query, text) pair for the reranker and how many pairs are cut at its ``max_length``."""
        model = self.cross_encoder()
        limit = int(self.data["reranker"]["max_length"])
        if not texts:
            return Usage(max_length=limit)
        encoded = model.tokenizer([query] * len(texts), list(texts), add_special_tokens=True,
                                  verbose=False)["input_ids"]
        return _usage([len(ids) for ids in encoded], limit)

    # --------------------------------------------------------------------------------------------------- search
    def index(self, documents: Iterable[Mapping | str]) -> Index:
        """An :class:`Index` over `documents` (mappings with ``id``/``_id``, ``title``, ``text``, or texts): the
        corpus embedded and BM25-indexed once, to search many queries."""
        return Index(self, documents)

    def search(self, query: str, documents: Sequence[Mapping | str], k: int = 10) -> list[dict]:
        """The best `k` of `documents` for `query`, as the recipe's system ranks them: a list of
        ``{"rank", "id", "index", "score", "relevant"}`` best first (see :meth:`Index.search`). The index of the
        last `documents` searched is kept, so asking many queries of one list embeds it once."""
        docs = list(documents)
        key = _documents_key(docs)
        if self._last is None or self._last[0] != key:
            self._last = (key, self.index(docs))
        return self._last[1].search(query, k)


def _identity(x):
    return x


def _usage(lengths: Sequence[int], limit: int) -> Usage:
    if limit <= 0:
        return Usage(sum(lengths), 0, 0)
    return Usage(sum(min(n, limit) for n in lengths), sum(n > limit for n in lengths), limit)


def _documents_key(documents: Sequence[Mapping | str]) -> str:
    h = hashlib.sha256()
    for doc in documents:
        h.update(json.dumps(doc, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


def _doc_id(document: Mapping | str, position: int) -> str:
    if isinstance(document, Mapping):
        for name in ("id", "_id"):
            value = document.get(name)
            if value is not None and str(value).strip():
                return str(value).strip()
    return str(position)


@dataclass
class _Stage:
    """One first stage over an index: BM25's retriever, or a dense model's document embeddings."""

    kind: str
    model: str | None = None
    embeddings: np.ndarray | None = None
    bm25: object = None
    vocab: dict = field(default_factory=dict)


class Index:
    """Documents held for searching: ids, texts (formed as the recipe says), each dense stage's embeddings and the
    BM25 index. :meth:`add` adds (or replaces, by id) documents."""

    def __init__(self, runtime: Runtime, documents: Iterable[Mapping | str] = ()):
        self.runtime = runtime
        self.ids: list[str] = []
        self.texts: list[str] = []
        self.documents: list[Mapping] = []
        self._position: dict[str, int] = {}
        self._stages = [_Stage(s["kind"], s.get("model")) for s in runtime.data["first_stage"]]
        self.add(documents)

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, documents: Iterable[Mapping | str]) -> tuple[int, int]:
        """Add `documents` (a document whose id is held already replaces it); (added, replaced). Nothing changes
        when embedding them fails.

        Raises:
            ValueError: one id given twice in `documents`.
        """
        planned: dict[str, tuple[str, dict]] = {}
        for offset, doc in enumerate(documents):
            key = _doc_id(doc, len(self.ids) + offset)
            if key in planned:
                raise ValueError(f"document id {key!r} is given twice")
            record = dict(doc) if isinstance(doc, Mapping) else {"text": doc}
            planned[key] = (document_text(doc, self.runtime.document_format), record)
        if not planned:
            return 0, 0
        replaced = sum(key in self._position for key in planned)
        texts = [text for text, _ in planned.values()]
        vectors = {s.model: self.runtime.embed(texts, s.model) for s in self._stages if s.kind == "dense"}
        positions = []
        for key, (text, record) in planned.items():
            if key not in self._position:
                self._position[key] = len(self.ids)
                self.ids.append(key)
                self.texts.append(text)
                self.documents.append(record)
            position = self._position[key]
            self.texts[position], self.documents[position] = text, record
            positions.append(position)
        for stage in self._stages:
            if stage.kind == "dense":
                grown = np.zeros((len(self.ids), vectors[stage.model].shape[1]), dtype=np.float32)
                if stage.embeddings is not None:
                    grown[:stage.embeddings.shape[0]] = stage.embeddings
                grown[positions] = vectors[stage.model]
                stage.embeddings = grown
            else:
                self._index_bm25(stage)
        return len(planned) - replaced, replaced

    def _index_bm25(self, stage: _Stage) -> None:
        import bm25s

        p = self.runtime.data["bm25"]
        stage.bm25 = bm25s.BM25(k1=p["k1"], b=p["b"], delta=p.get("delta", 0.5), method=p["method"],
                                idf_method=p.get("idf_method"))
        empty = p.get("empty_token", EMPTY_TOKEN)
        stage.bm25.index([self.runtime.tokenize(t) or [empty] for t in self.texts], show_progress=False)
        stage.vocab = stage.bm25.vocab_dict

    # ----------------------------------------------------------------------------------------------- ranking
    def _stage_run(self, stage: _Stage, query: str, query_vector: np.ndarray | None, depth: int) -> dict[str, float]:
        """One first stage's best `depth` documents for `query`: {document id: score}."""
        if stage.kind == "bm25":
            empty = self.runtime.data["bm25"].get("empty_token", EMPTY_TOKEN)
            tokens = [t for t in self.runtime.tokenize(query) if t in stage.vocab] or [empty]
            if tokens == [empty] and empty not in stage.vocab:
                return {}
            scores = np.asarray(stage.bm25.get_scores(tokens))
            keep = np.flatnonzero(scores > 0)
        else:
            scores = stage.embeddings @ query_vector
            keep = np.arange(len(scores))
        run = {self.ids[i]: float(scores[i]) for i in keep}
        return _top(run, depth)

    def search(self, query: str, k: int = 10) -> list[dict]:
        """The best `k` documents for `query` as the recipe's system ranks them, best first: each
        ``{"rank", "id", "index" (position in the documents given), "score", "relevant"}``. The score is the first
        stage's (BM25 or cosine), the fused one, or the reranker's logit; ``relevant`` is the calibrated
        threshold's verdict (None without one)."""
        if k < 1:
            raise ValueError("k must be at least 1")
        data, runtime = self.runtime.data, self.runtime
        if not self.ids:
            return []
        reranker = data.get("reranker")
        depth = int(data.get("depth") or 100)
        first_n = max(k, int(reranker["top_n"])) if reranker else k
        fused = data.get("fusion") is not None
        per_stage = max(depth, first_n) if fused else first_n
        vectors = {s.model: runtime.embed(query, s.model) for s in self._stages if s.kind == "dense"}
        runs = [self._stage_run(s, query, vectors.get(s.model), per_stage) for s in self._stages]
        if fused:
            scores = _fuse(runs[0], runs[1], data["fusion"], per_stage)
        else:
            scores = runs[0]
        ranked = sorted(scores, key=lambda d: (-scores[d], d))[:first_n]
        unscored: set[str] = set()
        if reranker:
            ranked, scores, unscored = self._rerank(query, ranked, int(reranker["top_n"]))
        hits = []
        for rank, key in enumerate(ranked[:k], start=1):
            relevant = False if key in unscored and self.runtime.threshold is not None else \
                self._relevant(key, scores[key], vectors)
            hits.append({"rank": rank, "id": key, "index": self._position[key], "score": float(scores[key]),
                         "relevant": relevant})
        return hits

    def _rerank(self, query: str, ranked: list[str], top_n: int) -> tuple[list[str], dict[str, float], set[str]]:
        """The first `top_n` of `ranked` by the reranker's logit (ties: first-stage order), the rest below them
        (not scored by the reranker: returned as the third item)."""
        docs, rest = ranked[:top_n], ranked[top_n:]
        logits = self.runtime.rerank(query, [self.texts[self._position[d]] for d in docs])
        order = sorted(range(len(docs)), key=lambda i: (-logits[i], i))
        scores = {docs[i]: logits[i] for i in order}
        floor = min(scores.values(), default=0.0)
        scores.update({d: floor - i for i, d in enumerate(rest, start=1)})
        return [docs[i] for i in order] + rest, scores, set(rest)

    def _relevant(self, key: str, score: float, vectors: dict) -> bool | None:
        threshold, applies = self.runtime.threshold, self.runtime.threshold_applies_to
        if threshold is None:
            return None
        if applies == "final":
            return bool(score >= threshold)
        model = self.runtime.data["threshold"].get("model")
        stage = next((s for s in self._stages if s.kind == "dense" and s.model == model), None)
        stage = stage or next(s for s in self._stages if s.kind == "dense")
        cosine = float(stage.embeddings[self._position[key]] @ vectors[stage.model])
        return bool(cosine >= threshold)


def _top(scores: dict[str, float], depth: int) -> dict[str, float]:
    """The best `depth` of `scores` (ties by document id)."""
    if len(scores) <= depth:
        return scores
    return dict(sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:depth])


def _fuse(a: dict[str, float], b: dict[str, float], fusion: Mapping, depth: int) -> dict[str, float]:
    """Two runs fused as recipe.json's ``fusion`` says (studio.retrieval.fusion's rules, ties by document id)."""
    if fusion["method"] == "rrf":
        k = fusion.get("rrf_k", 60)
        fused: dict[str, float] = {}
        for run in (a, b):
            for rank, doc in enumerate(sorted(run, key=lambda d: (-run[d], d)), start=1):
                fused[doc] = fused.get(doc, 0.0) + 1.0 / (k + rank)
        return _top(fused, depth)
    weight = float(fusion["weight"])
    na, nb = _min_max(a), _min_max(b)
    fused = {d: weight * na.get(d, 0.0) + (1 - weight) * nb.get(d, 0.0) for d in dict.fromkeys([*na, *nb])}
    return _top(fused, depth)


def _min_max(run: dict[str, float]) -> dict[str, float]:
    if not run:
        return {}
    low, high = min(run.values()), max(run.values())
    span = max(high - low, 1e-9)
    return {d: (s - low) / span for d, s in run.items()}


def as_base64(vector: np.ndarray) -> str:
    """A vector as OpenAI's ``encoding_format: "base64"`` sends it: little-endian float32 bytes, base64."""
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
